"""The pipeline as deployed: three Debian 12 systems, each booted with its own systemd as
PID 1 in systemd-nspawn (tests/nspawn_hosts.py), sharing one folder at /srv/share,
deployed by the unmodified deploy/site.yml over the community.docker.nsenter connection.
ct302 is the controller and rips, ct303 remuxes, ct304 transcodes and files. The shipped
system units run mp as `media` in their sandbox; a drop-in only makes the timers fire
every second (the shipped intervals would make the test take minutes) and gives the
stand-in scripts a folder on the share for their log. ct304 starts without
python3-venv and python3-packaging, as a minimal Debian 12 install does: the play
installs them; no host is failed for the udev rules a container cannot reload. A movie
goes from rip to library on the timers alone, both gates decided by `mp approve` run
as root on the controller; a running job is seen from
/proc to run as media with no capabilities, NoNewPrivs and seccomp, and its view of the
file system to be read-only but for the share; no unit failed on any host; a second run
of the play changes nothing. ct304 shut down mid-transcode finishes the job after its
next boot, run to its end once; the share gone from under the controller (an empty
folder in its place) makes every command refuse and nothing be written, and the
pipeline carries on once it is back. The machine's /tmp and /var/tmp carry a canary
throughout.

Not verified here (cgroup device control is not available in these containers):
DevicePolicy= and DeviceAllow=.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import KINDS, recap, stand_in_scripts
from nspawn_hosts import Containers, build_root_filesystem, canaries, cannot_run

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct302"
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


pytestmark = pytest.mark.skipif(bool(reason := why_skip()), reason=reason or "")


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


def settings() -> dict:
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
        "gates": ["remux_review", "filebot_confirm"],
        "jobs": {"heartbeat_seconds": 1, "stale_after_seconds": 6, "backoff_seconds": 1,
                 "cancel_grace_seconds": 1},
    }  # fmt: skip


@pytest.fixture
def systems(tmp_path):
    """The three containers booted, each from a fresh copy of the cached root file
    system, with the inventory that reaches them; powered off afterwards."""
    timings = {}
    started = time.monotonic()
    packed = build_root_filesystem()
    timings["root file system"] = time.monotonic() - started
    share = tmp_path / "share"
    for folder in (STAGING, LIBRARY, TEST_DIR):
        (share / Path(folder).relative_to(SHARE)).mkdir(parents=True)
    stand_in = stand_in_scripts(tmp_path)
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
        for timer in ("mp-reconcile.timer", "mp-dispatch.timer", "mp-claim@.timer"):
            (units / f"{timer}.d").mkdir(parents=True)
            (units / f"{timer}.d" / "fast.conf").write_text(FAST_TIMER)
        for service in ("mp-reconcile.service", "mp-dispatch.service", "mp-claim@.service"):
            (units / f"{service}.d").mkdir(parents=True)
            (units / f"{service}.d" / "no-start-limit.conf").write_text(NO_START_LIMIT)
        (units / "mp-claim@.service.d" / "test.conf").write_text(TEST_SERVICE)
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
                    "mp_config": settings(),
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


def task_results(output: str, task: str) -> dict[str, str]:
    """Each host's result of the play's task named task: ok, changed, skipping, ..."""
    section = output.split(f"TASK [mp : {task}]", 1)[1].split("TASK [", 1)[0]
    return dict((host, result) for result, host in re.findall(r"^(\w+): \[(\S+)\]", section, re.M))


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


def proc_status(containers: Containers, host: str, pattern: str) -> dict[str, str]:
    """/proc/PID/status of the process on host whose command line matches pattern."""
    text = containers.inside(host, "python3", "-c", PROC_STATUS, pattern)
    found = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    assert "Uid" in found, (host, pattern, text)
    return {key: value.strip() for key, value in found.items()}


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


def in_library(containers: Containers, title: str):
    """A question for wait_for: whether the item titled title is in the library."""
    return lambda: any(item["title"] == title and item["state"] == "IN_LIBRARY"
                       for item in status(containers)["items"])  # fmt: skip


@pytest.mark.timeout(900)
def test_three_deployed_systems(systems):
    """Deployed by the play, the systems carry movies as media through a shutdown and
    a lost share, and a second play changes nothing."""
    containers, timings = systems, systems.timings
    started = time.monotonic()
    uid = deploy(containers)
    timings["plays"] = time.monotonic() - started
    started = time.monotonic()
    carry_a_movie_as_media(containers, uid)
    timings["rip to library"] = time.monotonic() - started
    for host in HOSTS:  # the workers' first claims included: none failed
        failed = containers.inside(host, "systemctl", "list-units", "--failed", "--plain",
                                   "--no-legend", "mp-*")  # fmt: skip
        said = containers.inside(host, "journalctl", "--no-pager", "-u", "mp-*", "-p", "warning")
        assert failed.strip() == "", f"{host}: {failed}\n{said[-3000:]}"
        # Each worker noted the jobs it ended, in the one folder its claim unit may write.
        assert "cannot note job" not in said, f"{host}: {said[-3000:]}"
    ledger = containers.inside("ct304", "cat", "/var/lib/media-pipeline/ledger/ran_jobs")
    assert "_transcode_movie_" in ledger and "_filebot_movie_" in ledger, ledger
    started = time.monotonic()
    again = play(containers)
    timings["second play"] = time.monotonic() - started
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
    started = time.monotonic()
    shut_down_mid_job(containers)
    timings["shut down mid-job, to library"] = time.monotonic() - started
    started = time.monotonic()
    lose_the_share_and_get_it_back(containers)
    timings["share lost and back, to library"] = time.monotonic() - started


def deploy(containers: Containers) -> int:
    """The service user made on every host and given the share, as an administrator
    would (the same uid on the three fresh systems); then the whole play. The service
    user's uid."""
    share = containers.share
    users = play(containers, "--tags", "service-user")
    assert users.returncode == 0, users.stdout[-4000:] + users.stderr[-2000:]
    uids = {host: containers.inside(host, "id", "-u", "media").strip() for host in HOSTS}
    assert len(set(uids.values())) == 1, uids
    uid = int(uids[CONTROLLER])
    for path in [share, *share.rglob("*")]:
        os.chown(path, uid, uid)
    # ct304 as a fresh Debian 12 host is, without what the role's pip module needs.
    containers.run("ct304", ["dpkg", "--purge", *BARE], check=True)
    first = play(containers)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
    assert set(recap(first.stdout)) == set(HOSTS)
    assert all(counts["changed"] > 0 for counts in recap(first.stdout).values())
    assert task_results(first.stdout, "Install the packages the role's modules need") == {
        "ct302": "skipping", "ct303": "skipping", "ct304": "changed"
    }  # fmt: skip
    # udevd does not run in a container: the play says so, and fails no host for it.
    assert "udev rules were not reloaded on ct302" in first.stdout, first.stdout[-4000:]
    assert (share / "staging" / ".pipeline" / "share.id").exists()
    return uid


def carry_a_movie_as_media(containers: Containers, uid: int) -> None:
    """A movie from rip to library on the timers, each job on the host of its kind; the
    running transcode (held until released) and its claim are media's, with no
    capabilities, and the job sees a read-only system but for the share."""
    share = containers.share
    (share / "test" / "behaviour.transcode").write_text("wait\n")
    deadline = time.monotonic() + 180
    assert "queued" in mp_on(containers, CONTROLLER, "rip", "--type", "movie", "--title",
                             "Heat (1995)")  # fmt: skip
    wait_for(containers, lambda: list((share / "test").glob("started.*transcode*")), deadline,
             "the transcode never started on ct304")  # fmt: skip
    for pattern in (f"{SCRIPTS}/transcode.sh", "mp claim --worker ct304"):
        found = proc_status(containers, "ct304", pattern)
        assert found["Uid"].split()[:2] == [str(uid)] * 2, (pattern, found)
        assert found["Gid"].split()[:2] == [str(uid)] * 2, (pattern, found)
        for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(found[capabilities], 16) == 0, (pattern, capabilities, found)
        assert found["NoNewPrivs"] == "1", (pattern, found)
        assert found["Seccomp"] == "2", (pattern, found)
    # The job's own view of the file system (its mount namespace).
    job = proc_status(containers, "ct304", f"{SCRIPTS}/transcode.sh")["Pid"]
    outside = ["/etc/mp-write-test", "/usr/local/bin/mp-write-test", "/var/lib/mp-write-test",
               "/home/media/mp-write-test"]  # fmt: skip
    for path in outside:
        tried = containers.run("ct304", ["nsenter", "-t", job, "-m", "touch", path])
        assert "Read-only file system" in tried.stderr, (path, tried)
        assert containers.run("ct304", ["test", "-e", path]).returncode == 1, path
    inside = containers.run("ct304", ["nsenter", "-t", job, "-m", "touch", f"{TEST_DIR}/written"])
    assert inside.returncode == 0, inside
    (share / "test" / "release").touch()
    wait_for(containers, in_library(containers, "Heat (1995)"), deadline,
             "the movie never reached the library")  # fmt: skip
    assert (share / "library" / "Movies" / "Heat (1995)" / "Heat (1995).mkv").exists()
    runlog = (share / "test" / "runlog").read_text().splitlines()
    for kind in KINDS:
        assert len([line for line in runlog if line.startswith(f"start {kind} ")]) == 1, runlog
    jobs = json.loads(mp_on(containers, CONTROLLER, "jobs", "--state", "completed", "--json"))
    assert {job["kind"]: job["worker"] for job in jobs["jobs"]} == {
        "rip": "ct302", "remux": "ct303", "transcode": "ct304", "filebot": "ct304"
    }  # fmt: skip
    # Everything mp and the scripts made on the share is the service user's, the root
    # run of `mp rip` included.
    made = [path for top in ("staging", "library") for path in (share / top).rglob("*")]
    assert {(path.stat().st_uid, path.stat().st_gid) for path in made} == {(uid, uid)}, sorted(
        str(path) for path in made if path.stat().st_uid != uid
    )
    (share / "test" / "release").unlink()


def shut_down_mid_job(containers: Containers) -> None:
    """ct304 shut down in the middle of a transcode (systemd stops the running claim);
    booted again, it runs the job to its end, once."""
    share = containers.share
    (share / "test" / "behaviour.transcode").write_text("wait\n")
    deadline = time.monotonic() + 180
    mp_on(containers, CONTROLLER, "rip", "--type", "movie", "--title", "Ronin (1998)")
    wait_for(containers, lambda: list((share / "test").glob("started.*transcode*Ronin*")),
             deadline, "the second transcode never started on ct304")  # fmt: skip
    containers.poweroff("ct304")
    (share / "test" / "behaviour.transcode").unlink()
    containers.boot("ct304")
    wait_for(containers, in_library(containers, "Ronin (1998)"), deadline,
             "the movie never reached the library after ct304's restart")  # fmt: skip
    runlog = (share / "test" / "runlog").read_text().splitlines()
    ronin = [line for line in runlog if " transcode " in line and "Ronin" in line]
    assert [line.split()[0] for line in ronin] == ["start", "start", "done"], runlog
    jobs = json.loads(mp_on(containers, CONTROLLER, "jobs", "--state", "completed", "--json"))
    assert [job["kind"] for job in jobs["jobs"] if "Ronin" in job["id"]].count("transcode") == 1


def lose_the_share_and_get_it_back(containers: Containers) -> None:
    """The share gone from under the running controller, an empty folder in its place
    (the service's own, so that only mp's refusal keeps it empty): every command
    refuses, the timers' runs write nothing there, and once the share is back the
    pipeline carries on."""
    away = "/run/mp-test-share-away"
    for command in (
        ["mkdir", away],
        ["mount", "--bind", SHARE, away],
        ["umount", SHARE],
        ["install", "-d", "-o", "media", "-g", "media", STAGING, LIBRARY],
    ):
        containers.run(CONTROLLER, command, check=True)  # fmt: skip
    for command in (["reconcile"], ["dispatch"], ["claim", "--worker", CONTROLLER],
                    ["rip", "--type", "movie", "--title", "Alien (1979)"]):  # fmt: skip
        refused = containers.run(CONTROLLER, ["mp", *command])
        assert refused.returncode == 3, (command, refused)
        assert "is the share mounted?" in refused.stderr, (command, refused)
    time.sleep(3)  # the controller's timers fire every second meanwhile
    left = containers.inside(CONTROLLER, "find", SHARE, "-mindepth", "2")
    assert left == "", left
    for command in (["rmdir", STAGING, LIBRARY], ["mount", "--bind", away, SHARE],
                    ["umount", away]):  # fmt: skip
        containers.run(CONTROLLER, command, check=True)
    mp_on(containers, CONTROLLER, "rip", "--type", "movie", "--title", "Alien (1979)")
    wait_for(containers, in_library(containers, "Alien (1979)"), time.monotonic() + 120,
             "the pipeline did not carry on once the share was back")  # fmt: skip
