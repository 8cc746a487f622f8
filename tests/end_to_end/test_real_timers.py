"""The pipeline run by real systemd timers: three `systemd --user` managers, one per host
(ct302 rips, ct303 is the controller and remuxes, ct304 transcodes and files), each in
its own namespaces with its own hostname and private /run, /tmp, /var/tmp and journal,
sharing one staging and library folder. The units are the ones `mp timers install
--user` writes (with a drop-in making the timers fire every second or two, so the test
takes seconds, not the minutes of the shipped intervals). Nothing but the timers, and
`mp approve --yes` for the gates, carries items from rip to the library.

Never a system manager: systemd runs here as a user manager, never as PID 1 of a
namespace (its boot would clean the machine's real /tmp). See DESIGN section 11.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAKE_SCRIPT, KINDS, make_sandbox

SYSTEMD = "/lib/systemd/systemd"
JOURNALD = "/lib/systemd/systemd-journald"
HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct303"
DEADLINE_SECONDS = 150

# The init of one simulated host: PID 1 of its namespaces is this shell, never systemd.
HOST_INIT = r"""#!/bin/bash
set -eu
name=$1; shift
hostname "$name"
mount --make-rprivate /
# Private /run, /tmp, /var/tmp and journal; the folders the test needs (the clone, the
# sandbox) stay visible at their paths.
mount -t tmpfs tmpfs /mnt
mkdir -p /mnt/keep && mount --bind /tmp /mnt/keep
mount -t tmpfs tmpfs /tmp
for keep in "$@"; do
  case "$keep" in
    /tmp/*) mkdir -p "$keep" && mount --bind "/mnt/keep/${keep#/tmp/}" "$keep" ;;
  esac
done
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/tmp
mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal
mount -t cgroup2 none /sys/fs/cgroup
mkdir -p /run/systemd/system /run/user/0
JOURNALD &
export XDG_RUNTIME_DIR=/run/user/0
SYSTEMD --user &
for _ in $(seq 1 200); do
  state=$(systemctl --user is-system-running 2>/dev/null || true)
  [ "$state" = running ] || [ "$state" = degraded ] && break
  sleep 0.05
done
systemctl --user daemon-reload
systemctl --user enable --now $(cat "$XDG_CONFIG_HOME/timers")
echo up > "$XDG_CONFIG_HOME/up"
wait
""".replace("JOURNALD", JOURNALD).replace("SYSTEMD", SYSTEMD)

# The test's intervals: a drop-in over the installed timers.
FAST_TIMER = "[Timer]\nOnActiveSec=\nOnActiveSec=1s\nOnUnitInactiveSec=1s\nRandomizedDelaySec=0\n"


def cannot_run() -> str | None:
    """Why this machine cannot make the namespaces and managers, or None."""
    if os.geteuid() != 0:
        return "needs root to make mount, pid, cgroup and uts namespaces"
    for tool in ("unshare", "systemctl", SYSTEMD, JOURNALD):
        if not (shutil.which(tool) or os.path.exists(tool)):
            return f"{tool} is not installed"
    probe = subprocess.run(
        ["unshare", "--pid", "--mount", "--cgroup", "--uts", "--fork", "--mount-proc",
         "sh", "-c", "mount -t tmpfs tmpfs /mnt && mount -t cgroup2 none /sys/fs/cgroup"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"namespaces cannot be made here: {probe.stderr.strip()[:200]}"
    return None


pytestmark = pytest.mark.skipif(bool(reason := cannot_run()), reason=reason or "")


class Hosts:
    """The three simulated hosts; each can be killed (as a host that loses power) and
    started again."""

    def __init__(self, root: Path, keep: list[str]):
        self.root, self.keep = root, keep
        self.processes: dict[str, subprocess.Popen] = {}
        (root / "host-init").write_text(HOST_INIT)

    def home(self, host: str) -> Path:
        return self.root / "hosts" / host

    def start(self, host: str) -> None:
        home = self.home(host)
        (home / "up").unlink(missing_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "LANG": "C.UTF-8",
        }
        with open(home / "init.log", "a") as log:
            self.processes[host] = subprocess.Popen(
                ["unshare", "--pid", "--mount", "--cgroup", "--uts", "--fork", "--mount-proc",
                 "--kill-child=SIGKILL", "bash", str(self.root / "host-init"), host, *self.keep],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (home / "up").exists():
            if self.processes[host].poll() is not None or time.monotonic() > deadline:
                raise AssertionError((home / "init.log").read_text()[-3000:])
            time.sleep(0.05)

    def inside(self, host: str, *command: str) -> str:
        """Run a command inside a host's namespaces (its init's), for what it says."""
        unshare = self.processes[host].pid
        children = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
        done = subprocess.run(
            ["nsenter", "-t", children[0], "-m", "-p", "-u", "env",
             "XDG_RUNTIME_DIR=/run/user/0", *command],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return done.stdout + done.stderr

    def diagnose(self) -> str:
        """Each host's timers and the end of its journal, for a failure's message."""
        said = []
        for host in self.processes:
            said.append(f"== {host}")
            said.append(self.inside(host, "systemctl", "--user", "list-timers", "--all"))
            said.append(self.inside(host, "systemctl", "--user", "status", f"mp-claim@{host}.timer",
                                    f"mp-claim@{host}.service", "--no-pager"))  # fmt: skip
            said.append(self.inside(host, "systemctl", "--user", "cat", f"mp-claim@{host}.timer"))
            said.append(self.inside(host, "journalctl", "--no-pager", "-n", "25"))
        return "\n".join(said)

    def kill(self, host: str) -> None:
        """The host's power goes: every process in its namespaces dies at once."""
        process = self.processes.pop(host)
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop_all(self) -> None:
        for host in list(self.processes):
            self.kill(host)


@pytest.fixture
def hosts(tmp_path):
    sandbox = make_sandbox(tmp_path)
    sample = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         "testsrc=size=64x48:rate=5:duration=1", "-c:v", "mpeg4", str(tmp_path / "sample.mkv")],
        capture_output=True,
    )  # fmt: skip
    assert sample.returncode == 0 or not shutil.which("ffmpeg")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for kind in KINDS:
        (scripts / f"{kind}.sh").write_text(FAKE_SCRIPT)
        (scripts / f"{kind}.sh").chmod(0o755)
    script_table = {kind: {"path": str(scripts / f"{kind}.sh")} for kind in KINDS}
    script_table["rip"]["args"] = ["{output_dir}", "{title}"]
    script_table["filebot"]["args"] = ["{input_dir}", "{destination}"]
    sandbox.write_config(
        workers={host: {"kinds": kinds} for host, kinds in HOSTS.items()},
        scripts=script_table,
        gates=["remux_review", "filebot_confirm"],
        jobs={"heartbeat_seconds": 1, "stale_after_seconds": 6, "cancel_grace_seconds": 1,
              "backoff_seconds": 1, "max_attempts": 3},
    )  # fmt: skip
    sandbox.database.parent.mkdir(parents=True, exist_ok=True)
    sandbox.mp("reconcile")  # the share's identity, made once by the controller
    repo = str(Path(__file__).resolve().parents[2])
    simulated = Hosts(tmp_path, [repo, str(tmp_path), sys.prefix])
    mp = str(Path(sys.executable).with_name("mp"))
    for host in HOSTS:
        home = simulated.home(host)
        units = home / "systemd" / "user"
        controller = "--controller" if host == CONTROLLER else "--no-controller"
        subprocess.run(
            [mp, "timers", "install", "--user", "--dest", str(units), "--worker", host,
             controller, "--config", str(sandbox.config_path)],
            check=True, capture_output=True,
        )  # fmt: skip
        for timer in ("mp-reconcile.timer", "mp-dispatch.timer", "mp-claim@.timer"):
            (units / f"{timer}.d").mkdir(parents=True, exist_ok=True)
            (units / f"{timer}.d" / "fast.conf").write_text(FAST_TIMER)
        (units / "mp-claim@.service.d").mkdir(parents=True, exist_ok=True)
        (units / "mp-claim@.service.d" / "test.conf").write_text(
            f"[Service]\nEnvironment=MP_TEST_DIR={tmp_path}\n"
        )
        timers = [f"mp-claim@{host}.timer"]
        if host == CONTROLLER:
            timers += ["mp-reconcile.timer", "mp-dispatch.timer"]
        (home / "timers").write_text(" ".join(timers) + "\n")
    for host in HOSTS:
        simulated.start(host)
    simulated.sandbox = sandbox
    yield simulated
    simulated.stop_all()


def status(sandbox) -> dict:
    return json.loads(sandbox.mp("status", "--json").stdout)


def carry(hosts, until, deadline: float) -> None:
    """Approve what waits at a gate (as a person would), until until() holds."""
    sandbox = hosts.sandbox
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(json.dumps(status(sandbox))[:2000] + "\n" + hosts.diagnose())
        listed = json.loads(sandbox.mp("approve", "--list", "--json").stdout)["approvals"]
        for approval in listed:
            sandbox.mp("approve", approval["item"]["uid"], "--yes", expect=None)
        time.sleep(0.5)


def state_of(sandbox, title: str) -> str | None:
    found = [i for i in status(sandbox)["items"] if i["title"] == title]
    return found[0]["state"] if found else None


def runs(sandbox, kind: str, title: str) -> list[str]:
    slug = title.replace(" ", "-")
    return [line for line in sandbox.runlog() if f"_{kind}_" in line and slug in line]


def test_the_timers_carry_an_item_from_rip_to_the_library_once(hosts):
    sandbox = hosts.sandbox
    deadline = time.monotonic() + DEADLINE_SECONDS
    sandbox.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    carry(hosts, lambda: state_of(sandbox, "Heat (1995)") == "IN_LIBRARY", deadline)
    assert (sandbox.root / "library" / "Movies" / "Heat (1995)" / "Heat (1995).mkv").exists()
    for kind in KINDS:
        started = [line for line in runs(sandbox, kind, "Heat") if line.startswith("start")]
        assert len(started) == 1, (kind, sandbox.runlog())
    # Each job ran on the host that does its kind, under that host's name.
    jobs = json.loads(sandbox.mp("jobs", "--state", "completed", "--json").stdout)["jobs"]
    workers = {job["kind"]: job["worker"] for job in jobs}
    assert workers == {"rip": "ct302", "remux": "ct303", "transcode": "ct304", "filebot": "ct304"}

    # ct304 loses power in the middle of a transcode; when it is back, the item arrives,
    # and its transcode completes once.
    sandbox.behave("transcode", "wait")  # the script waits for a file that never comes
    sandbox.mp("rip", "--type", "movie", "--title", "Ronin (1998)")
    carry(hosts, lambda: bool(list(sandbox.root.glob("started.*transcode*Ronin*"))), deadline)
    hosts.kill("ct304")
    (sandbox.root / "behaviour.transcode").unlink()
    hosts.start("ct304")
    carry(hosts, lambda: state_of(sandbox, "Ronin (1998)") == "IN_LIBRARY", deadline)
    jobs = json.loads(sandbox.mp("jobs", "--state", "completed", "--json").stdout)["jobs"]
    assert [j["kind"] for j in jobs if "Ronin" in j["id"]].count("transcode") == 1
    done = [line for line in runs(sandbox, "transcode", "Ronin") if line.startswith("done")]
    assert len(done) == 1, sandbox.runlog()
