"""Three Debian 12 systems deployed by the unmodified deploy/site.yml, as the
deployed-system test and the deployed benchmark use them: each booted with its own
systemd as PID 1 in systemd-nspawn (nspawn_hosts.py), sharing one folder at /srv/share,
reached by Ansible over the community.docker.nsenter connection. ct302 rips, ct303
is the controller and remuxes, ct304 transcodes and files; the stand-in scripts
log what they do to the share's test folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from conftest import FAKE_SCRIPT, KINDS, stand_in_scripts
from nspawn_hosts import Containers, build_root_filesystem, canaries, cannot_run

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct303"  # as DESIGN section 1 has it
SHARE = "/srv/share"
STAGING, LIBRARY, TEST_DIR = f"{SHARE}/staging", f"{SHARE}/library", f"{SHARE}/test"
# Inside each container: the stand-in scripts, and the wheels of mp's dependencies (the
# hosts install offline, from what the test puts there, as a host without an index would).
SCRIPTS, WHEELS = "/opt/media/test-scripts", "/opt/media/wheels"
# What a Debian 12 host installed without them lacks (python3-venv alone would leave
# the venv module of python3.11-venv).
BARE = ("python3-venv", "python3.11-venv", "python3-packaging")
FAST_TIMER = "[Timer]\nOnActiveSec=\nOnActiveSec=1s\nOnUnitInactiveSec=1s\nRandomizedDelaySec=0\n"
# Started every second, a quick service would meet systemd's default start limit (5 in
# 10 s) and be failed for it; at the shipped intervals (15 s and more) it cannot.
NO_START_LIMIT = "[Unit]\nStartLimitIntervalSec=0\n"
# The stand-in scripts log what they do to the share's test folder (mp's units may not
# write anywhere else there).
TEST_SERVICE = f"[Service]\nEnvironment=MP_TEST_DIR={TEST_DIR}\nReadWritePaths={TEST_DIR}\n"


def nsenter_connection() -> Path | None:
    """Where the community.docker.nsenter connection plugin is installed, if it is."""
    for site in map(Path, sys.path):
        plugin = site / "ansible_collections/community/docker/plugins/connection/nsenter.py"
        if plugin.exists():
            return plugin
    return None


def why_skip() -> str | None:
    if not (BIN / "ansible-playbook").exists():
        return "ansible-core is not installed (make test installs it)"
    if nsenter_connection() is None:
        return "the ansible package (community.docker's nsenter connection) is not installed"
    return cannot_run()


def wheels_of_this_tree(folder: Path) -> tuple[Path, list[Path]]:
    """A wheel of mp and wheels of its dependencies, for the hosts' Python (Debian 12's
    3.11, as here)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-c", str(REPO / "constraints.txt"),
         "-w", str(folder), str(REPO)],
        check=True, timeout=600, cwd=folder.parent,
    )  # fmt: skip
    [mp] = folder.glob("media_pipeline-*.whl")
    return mp, [wheel for wheel in folder.glob("*.whl") if wheel != mp]


def settings(gates: tuple[str, ...] = ("remux_review", "filebot_confirm")) -> dict:
    table = {
        kind: {"path": f"{SCRIPTS}/{kind}.sh", **({"args": args} if args else {})}
        for kind, args in (
            ("rip", ["{output_dir}", "{title}"]), ("remux", None), ("transcode", None),
            ("filebot", ["{input_dir}", "{destination}"]),
        )
    }  # fmt: skip
    assert set(table) == set(KINDS)
    return {
        "staging_root": STAGING,
        "library_root": LIBRARY,
        "workers": {host: {"kinds": kinds} for host, kinds in HOSTS.items()},
        "scripts": table,
        "gates": list(gates),
        # The stand-in scripts' notes (runlog, started.*, probed.*) go to the test folder.
        "script_writable_paths": [TEST_DIR],
        "jobs": {"heartbeat_seconds": 1, "stale_after_seconds": 6, "backoff_seconds": 1,
                 "cancel_grace_seconds": 1},
    }  # fmt: skip


@contextlib.contextmanager
def booted(
    tmp_path: Path,
    *,
    fast: bool = True,
    gates: tuple[str, ...] = ("remux_review", "filebot_confirm"),
    script: str = FAKE_SCRIPT,
    before_boot=None,
) -> Iterator[Containers]:
    """The three containers booted, each from a fresh copy of the cached root file
    system, with the inventory that reaches them; powered off afterwards. With fast,
    drop-ins make the timers fire every second (the shipped intervals would make a test
    take minutes); before_boot(share) may fill the share first."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    packed = build_root_filesystem()
    timings["root file system"] = time.monotonic() - started
    share = tmp_path / "share"
    for folder in (STAGING, LIBRARY, TEST_DIR):
        (share / Path(folder).relative_to(SHARE)).mkdir(parents=True)
    stand_in = stand_in_scripts(tmp_path, script)
    if (tmp_path / "sample.mkv").exists():  # a real video for the scripts to carry
        shutil.copy(tmp_path / "sample.mkv", share / "test" / "sample.mkv")
    assert {Path(entry["path"]).name for entry in stand_in.values()} == {
        f"{kind}.sh" for kind in KINDS
    }
    started = time.monotonic()
    (tmp_path / "wheels").mkdir()
    wheel, wheels = wheels_of_this_tree(tmp_path / "wheels")
    timings["wheels"] = time.monotonic() - started
    containers = Containers(tmp_path, share, SHARE)
    started = time.monotonic()
    with ThreadPoolExecutor(len(HOSTS)) as unpacking:  # tar and zstd: two processes each
        list(unpacking.map(lambda host: containers.unpack(host, packed), HOSTS))
    for host in HOSTS:
        machine = containers.machine(host)
        shutil.copytree(tmp_path / "scripts", machine / SCRIPTS.lstrip("/"))
        (machine / WHEELS.lstrip("/")).mkdir(parents=True)
        for dependency in wheels:
            shutil.copy(dependency, machine / WHEELS.lstrip("/"))
        units = machine / "etc" / "systemd" / "system"
        drop_ins = {"mp-claim@.service.d/test.conf": TEST_SERVICE}
        if fast:
            for timer in ("mp-reconcile.timer", "mp-dispatch.timer", "mp-claim@.timer"):
                drop_ins[f"{timer}.d/fast.conf"] = FAST_TIMER
            for service in ("mp-reconcile.service", "mp-dispatch.service", "mp-claim@.service"):
                drop_ins[f"{service}.d/no-start-limit.conf"] = NO_START_LIMIT
        for name, text in drop_ins.items():
            (units / name).parent.mkdir(parents=True, exist_ok=True)
            (units / name).write_text(text)
    if before_boot is not None:
        before_boot(share)
    timings["unpack"] = time.monotonic() - started
    with canaries():
        try:
            started = time.monotonic()
            for host in HOSTS:
                containers.boot(host)
            timings["boot"] = time.monotonic() - started
            inventory = {"media_pipeline": {
                "vars": {
                    "ansible_connection": "community.docker.nsenter",
                    "ansible_become": False,
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "mp_wheel": str(wheel),
                    "mp_pip_extra_args": f"--no-index --find-links {WHEELS}",
                    "mp_install_scripts": True,
                    "mp_config": settings(gates),
                },
                "hosts": {host: {"ansible_nsenter_pid": containers.leader(host),
                                 "mp_controller": host == CONTROLLER} for host in HOSTS},
            }}  # fmt: skip
            (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
            containers.timings = timings
            yield containers
        finally:
            started = time.monotonic()
            containers.poweroff_all()
            timings["poweroff"] = time.monotonic() - started
            print("timings:", {name: round(seconds, 1) for name, seconds in timings.items()})
    for host in HOSTS:
        shutil.rmtree(containers.machine(host), ignore_errors=True)


def play(containers: Containers, *arguments: str) -> subprocess.CompletedProcess:
    """One ansible-playbook run of deploy/site.yml, in an environment of its own (the
    connection passes it on into the containers)."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(containers.root / "inventory.yml"),
         str(REPO / "deploy" / "site.yml"), *arguments],
        env={"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
             "HOME": str(containers.root), "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_LOCAL_TEMP": str(containers.root / "ansible-tmp")},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def make_service_user(containers: Containers) -> int:
    """The service user made on every host by the play's own tasks and given the share,
    as an administrator would (the same uid on the three fresh systems): its uid."""
    users = play(containers, "--tags", "service-user")
    assert users.returncode == 0, users.stdout[-4000:] + users.stderr[-2000:]
    uids = {host: containers.inside(host, "id", "-u", "media").strip() for host in HOSTS}
    assert len(set(uids.values())) == 1, uids
    uid = int(uids[CONTROLLER])
    for path in [containers.share, *containers.share.rglob("*")]:
        os.chown(path, uid, uid, follow_symlinks=False)
    return uid


def mp_on(containers: Containers, host: str, *args: str) -> str:
    """mp run as root on host, as a person would (it becomes the service user)."""
    return containers.run(host, ["mp", *args], timeout=120, check=True).stdout


def status(containers: Containers) -> dict:
    return json.loads(mp_on(containers, CONTROLLER, "status", "--json"))


def wait_for(containers: Containers, what, deadline: float, saying: str):
    """Wait until what() holds, deciding what waits at a gate meanwhile as a person
    would: `mp approve --yes` run as root on the controller."""
    while not (found := what()):
        if time.monotonic() > deadline:
            raise AssertionError(saying + "\n" + json.dumps(status(containers))[:2000]
                                 + containers.diagnose())  # fmt: skip
        listed = json.loads(mp_on(containers, CONTROLLER, "approve", "--list", "--json"))
        for approval in listed["approvals"]:
            containers.run(CONTROLLER, ["mp", "approve", approval["item"]["uid"], "--yes"])
        time.sleep(0.5)
    return found


def proc_status(
    containers: Containers, host: str, pattern: str, wait: float = 30
) -> dict[str, str]:
    """/proc/PID/status of the process on host whose command line matches pattern, once
    there is one (a timer's run may be a second away)."""
    deadline = time.monotonic() + wait
    while True:
        text = containers.inside(host, "python3", "-c", PROC_STATUS, pattern)
        found = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if "Uid" in found:
            return {key: value.strip() for key, value in found.items()}
        assert time.monotonic() < deadline, (host, pattern, text, containers.diagnose())
        time.sleep(0.2)


# The oldest process whose command line holds argv[1] (but this one): its /proc status.
# (A minimal Debian has no pgrep.)
PROC_STATUS = r"""import os, sys
def command_line(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
    except OSError:
        return b""  # gone meanwhile
pids = sorted(int(pid) for pid in os.listdir("/proc") if pid.isdigit()
              and int(pid) != os.getpid() and sys.argv[1].encode() in command_line(pid))
print(open(f"/proc/{pids[0]}/status").read() if pids else "none found")
"""


def in_library(containers: Containers, title: str, count: int = 1):
    """A question for wait_for: whether the items titled title (count of them: a show's
    discs) are in the library."""
    return lambda: [item["state"] for item in status(containers)["items"]
                    if item["title"] == title] == ["IN_LIBRARY"] * count  # fmt: skip
