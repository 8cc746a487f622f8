"""Real systems for the deployed units: Debian bookworm containers, each booted with its own
systemd as PID 1 by `systemd-nspawn` from a root file system of its own, sharing one
folder at the share path, entered with nsenter. Used by the deployed-system test.

Safety (DESIGN section 11): systemd runs as a system manager only inside `systemd-nspawn
-D COPY`, COPY a fresh copy of the cached root file system; only the test's own share
folder is bound into a container; each container starts from a cgroup of its own, is
stopped with `systemctl poweroff` and its cgroups are removed; the machine's /tmp and
/var/tmp carry a canary that must come through untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
# As DESIGN 11 has it: the base system, systemd to boot it, and the Python the role's
# modules run on; nothing of ours. (The test takes python3-venv and python3-packaging
# away on one host, as a minimal Debian 12 install lacks them and the role installs
# them.)
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "python3-packaging")
DEBOOTSTRAP = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE]
# Outside any clone: built once per machine, unpacked fresh for every container.
CACHE = Path(os.environ.get("MP_NSPAWN_CACHE", "/var/cache/media-pipeline-test"))
TOOLS = ("systemd-nspawn", "nsenter", "tar", "zstd")
# The cgroups the containers start from: CGROUP_PREFIX + host + "-" + the test's pid.
CGROUP_PREFIX = "mp-test-"
PR_SET_PDEATHSIG = 1  # prctl(2)


def cannot_run() -> str | None:
    """Why this machine cannot boot the containers, or None."""
    if os.geteuid() != 0:
        return "needs root to boot containers with systemd-nspawn"
    for tool in TOOLS:
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install systemd-container zstd)"
    if not packed_root().exists() and not shutil.which("debootstrap"):
        return f"no cached root file system in {CACHE} and debootstrap is not installed"
    return None


def current_cgroups() -> list[Path]:
    """This process's cgroup in each hierarchy systemd-nspawn uses: the unified one and,
    on a hybrid or legacy machine, systemd's own (name=systemd)."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "name=systemd":
            base = Path("/sys/fs/cgroup/systemd")
        elif controllers == "":
            unified = Path("/sys/fs/cgroup/unified")
            base = unified if (unified / "cgroup.procs").exists() else Path("/sys/fs/cgroup")
        else:
            continue
        if (base / path.lstrip("/") / "cgroup.procs").exists():
            found.append(base / path.lstrip("/"))
    return found


def remove_stale_cgroups(parents: list[Path]) -> None:
    """Remove what a test process that died unannounced left of the cgroups it made
    (named CGROUP_PREFIX HOST-PID): those of a process gone, with no process left in
    them."""
    for parent in parents:
        for cgroup in parent.glob(f"{CGROUP_PREFIX}*"):
            maker = cgroup.name.rpartition("-")[2]
            if maker.isdigit() and not Path(f"/proc/{maker}").exists():
                remove_cgroup(cgroup)


def remove_cgroup(cgroup: Path) -> None:
    """Remove cgroup and those below it (nspawn makes its own), deepest first; one that
    still holds a process stays."""
    if not cgroup.exists():
        return
    for folder in sorted((path for path in cgroup.rglob("*") if path.is_dir()),
                         key=lambda path: len(path.parts), reverse=True):  # fmt: skip
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        cgroup.rmdir()


def packed_root() -> Path:
    """The cached root file system for the debootstrap command above: its name changes
    with the command, so a changed package list builds a new one."""
    key = hashlib.sha256(" ".join(DEBOOTSTRAP).encode()).hexdigest()[:12]
    return CACHE / f"{SUITE}-{key}.tar.zst"


def fingerprint_of(root: Path) -> str:
    """The packages installed in root and their versions, one per line."""
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package} ${Version}\n"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return "".join(sorted(listed.splitlines(keepends=True)))


def build_root_filesystem() -> Path:
    """The packed root file system, built with debootstrap when not cached yet (about 2.5
    minutes), with its package list beside it (NAME.packages) and that list's sha256 as
    its fingerprint (NAME.sha256). One build at a time on a machine."""
    packed = packed_root()
    clone = Path(__file__).resolve().parents[1]
    assert not CACHE.resolve().is_relative_to(clone), f"{CACHE}: keep the cache outside the clone"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if packed.exists():
            return packed
        build = CACHE / f"build-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        try:
            subprocess.run([*DEBOOTSTRAP, str(build)], check=True, capture_output=True,
                           timeout=1800)  # fmt: skip
            # No host-specific identity in the image: each copy gets its own at boot.
            (build / "etc" / "machine-id").write_text("")
            # The downloaded packages are installed: half the packed size, none of the use.
            for package in (build / "var" / "cache" / "apt" / "archives").glob("*.deb"):
                package.unlink()
            packages = fingerprint_of(build)
            subprocess.run(
                ["tar", "--zstd", "--numeric-owner", "--xattrs", "-C", str(build), "-cf",
                 f"{packed}.part", "."],
                check=True, timeout=600,
            )  # fmt: skip
            packed.with_suffix("").with_suffix(".packages").write_text(packages)
            packed.with_suffix("").with_suffix(".sha256").write_text(
                hashlib.sha256(packages.encode()).hexdigest() + "\n"
            )
            os.replace(f"{packed}.part", packed)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return packed


def unpack_root_filesystem(packed: Path, dest: Path) -> None:
    """A fresh copy of the cached root file system at dest, checked against its
    fingerprint (a cache changed since it was built fails here, not later)."""
    dest.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "--numeric-owner", "--xattrs", "-xpf", str(packed),
                    "-C", str(dest)], check=True, timeout=300)  # fmt: skip
    expected = packed.with_suffix("").with_suffix(".sha256").read_text().strip()
    found = hashlib.sha256(fingerprint_of(dest).encode()).hexdigest()
    assert found == expected, f"{packed} does not match its fingerprint: delete it to rebuild"


@contextlib.contextmanager
def canaries() -> Iterator[None]:
    """A file in the machine's /tmp and /var/tmp before the first boot, checked after the
    last container stopped: a container's boot that cleaned the machine's own would fail
    the test loudly."""
    made = {}
    for folder in ("/tmp", "/var/tmp"):
        path = Path(folder) / f"mp-nspawn-canary-{uuid.uuid4().hex}"
        text = f"canary {time.time()}\n"
        path.write_text(text)
        os.utime(path, (0, 0))  # old: a cleaner by age would take it first
        made[path] = (text, path.stat().st_mtime_ns)
    try:
        yield
    finally:
        changed = [str(path) for path, (text, mtime) in made.items()
                   if not path.exists() or path.read_text() != text
                   or path.stat().st_mtime_ns != mtime]  # fmt: skip
        for path in made:
            path.unlink(missing_ok=True)
        assert not changed, f"THE MACHINE'S /tmp OR /var/tmp WAS TOUCHED: {changed} changed"


class Containers:
    """Booted containers, one per host name, each from a fresh copy of the root file
    system, sharing one folder at share_path."""

    def __init__(self, root: Path, share: Path, share_path: str):
        self.root, self.share, self.share_path = root, share, share_path
        self.processes: dict[str, subprocess.Popen] = {}
        self.cgroups: dict[str, list[Path]] = {}
        # Seconds each step of making them took, as deployed_hosts.booted() measured.
        self.timings: dict[str, float] = {}

    def machine(self, host: str) -> Path:
        """The container's root file system, as the machine sees it."""
        return self.root / "machines" / host

    def unpack(self, host: str, packed: Path) -> None:
        unpack_root_filesystem(packed, self.machine(host))

    def boot(self, host: str, timeout: float = 60) -> None:
        """Boot the container, from a cgroup of its own (containers started from one
        cgroup would share one 'payload' cgroup), until its systemd says it is up."""
        parents = current_cgroups()
        remove_stale_cgroups(parents)
        cgroups = [parent / f"{CGROUP_PREFIX}{host}-{os.getpid()}" for parent in parents]
        for cgroup in cgroups:
            cgroup.mkdir(exist_ok=True)
        self.cgroups[host] = cgroups

        def into_own_cgroup() -> None:
            for cgroup in cgroups:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            # Should the test's process die unannounced, nspawn gets SIGTERM, which it
            # turns into the container's orderly shutdown: none is left running.
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

        with open(self.root / f"{host}.console", "ab") as console:
            self.processes[host] = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.machine(host)), f"--machine={host}",
                 "--boot", "--register=no", "--keep-unit", "--console=read-only",
                 f"--bind={self.share}:{self.share_path}",
                 # nspawn's own allow list of system calls (systemd 252) leaves out
                 # Landlock's, which a worker uses to confine its jobs' scripts; LXC's
                 # deny list, which Proxmox containers get, does not.
                 "--system-call-filter=landlock_create_ruleset landlock_add_rule "
                 "landlock_restrict_self"],
                stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=into_own_cgroup,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            state = ""
            with contextlib.suppress(OSError, IndexError, subprocess.SubprocessError):
                state = self.run(host, ["systemctl", "is-system-running"], timeout=10).stdout
            if state.strip() in ("running", "degraded"):
                return
            if self.processes[host].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{host} did not boot ({state.strip()}):\n"
                                     + self.console(host))  # fmt: skip
            time.sleep(0.1)

    def leader(self, host: str) -> int:
        """The container's PID 1 (the child of its nspawn process), as the machine sees
        it."""
        nspawn = self.processes[host].pid
        children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
        return int(children[0])

    def enter(self, host: str) -> list[str]:
        """The command words that run what follows them inside the container."""
        return ["nsenter", "-t", str(self.leader(host)), "-a"]

    def run(
        self, host: str, command: list[str], timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*self.enter(host), "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
             "LANG=C.UTF-8", *command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0 or not check, (host, command, done.stdout, done.stderr)
        return done

    def inside(self, host: str, *command: str) -> str:
        """What a command run inside the container says."""
        done = self.run(host, list(command))
        return done.stdout + done.stderr

    def console(self, host: str) -> str:
        return (self.root / f"{host}.console").read_text(errors="replace")[-3000:]

    def diagnose(self) -> str:
        """Each container's timers, failed units and journal's end, for a failure."""
        said = []
        for host in self.processes:
            said.append(f"== {host}")
            for command in (["systemctl", "list-timers", "--all", "--no-pager"],
                            ["systemctl", "--failed", "--no-pager"],
                            ["journalctl", "--no-pager", "-n", "40"]):  # fmt: skip
                with contextlib.suppress(Exception):
                    said.append(self.inside(host, *command))
        return "\n".join(said)

    def poweroff(self, host: str, timeout: float = 60) -> None:
        """Stop the container as a host shuts down, its nspawn gone, and its cgroups
        removed; killed if it does not stop in time."""
        process = self.processes.pop(host)
        if process.poll() is None:
            with contextlib.suppress(Exception):
                leader = self.leader_of(process)
                subprocess.run(["nsenter", "-t", str(leader), "-a", "systemctl", "poweroff"],
                               capture_output=True, timeout=30)  # fmt: skip
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(30)
        self.remove_cgroups(host)

    @staticmethod
    def leader_of(process: subprocess.Popen) -> int:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
        return int(children.split()[0])

    def cpu_seconds(self, host: str) -> float:
        """CPU time spent so far in the container's cgroup: its nspawn, its systemd and
        everything that systemd started, the units' runs included."""
        for cgroup in self.cgroups[host]:
            stat = cgroup / "cpu.stat"
            if stat.exists():
                fields = dict(line.split() for line in stat.read_text().splitlines())
                return int(fields["usage_usec"]) / 1e6
        raise AssertionError(f"{host}: no cgroup with cpu.stat in {self.cgroups[host]}")

    def remove_cgroups(self, host: str) -> None:
        """Remove the cgroups made for host."""
        for cgroup in self.cgroups.pop(host, []):
            remove_cgroup(cgroup)

    def poweroff_all(self) -> None:
        for host in list(self.processes):
            self.poweroff(host)
