"""The pipeline as deployed: three Debian 12 systems, each booted with its own systemd as
PID 1 in systemd-nspawn (tests/nspawn_hosts.py), sharing one folder at /srv/share,
deployed by the unmodified deploy/site.yml over the community.docker.nsenter connection.
ct302 rips, ct303 is the controller and remuxes, ct304 transcodes and files (DESIGN 1). The shipped
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
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import KINDS, recap
from deployed_hosts import (
    BARE,
    CONTROLLER,
    HOSTS,
    LIBRARY,
    SCRIPTS,
    SHARE,
    STAGING,
    TEST_DIR,
    booted,
    in_library,
    make_service_user,
    mp_on,
    play,
    proc_status,
    wait_for,
    why_skip,
)
from nspawn_hosts import Containers

pytestmark = pytest.mark.skipif(bool(reason := why_skip()), reason=reason or "")


@pytest.fixture
def systems(tmp_path):
    with booted(tmp_path) as containers:
        yield containers


def task_results(output: str, task: str) -> dict[str, str]:
    """Each host's result of the play's task named task: ok, changed, skipping, ..."""
    section = output.split(f"TASK [mp : {task}]", 1)[1].split("TASK [", 1)[0]
    return dict((host, result) for result, host in re.findall(r"^(\w+): \[(\S+)\]", section, re.M))


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
    started = time.monotonic()
    carry_a_season(containers)
    timings["two-disc season to library"] = time.monotonic() - started
    assert every_run_was_media(containers, uid) == {
        "ct302": {"mp-claim@ct302.service"},
        "ct303": {"mp-reconcile.service", "mp-dispatch.service", "mp-claim@ct303.service"},
        "ct304": {"mp-claim@ct304.service"},
    }  # fmt: skip
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
    uid = make_service_user(containers)
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
    """A movie from rip to library on the timers, each job on the host of its kind; while
    the transcode is held, every sandbox setting of its claim unit and of the
    controller's lingering reconcile is checked from outside (sandbox_seen) and, for
    those only a try can show, from inside the job (tests/sandbox_probe.py)."""
    share = containers.share
    shutil.copy(Path(__file__).parents[1] / "sandbox_probe.py", share / "test" / "probe.py")
    (share / "test" / "behaviour.transcode").write_text("probe\n")
    deadline = time.monotonic() + 180
    assert "queued" in mp_on(containers, CONTROLLER, "rip", "--type", "movie", "--title",
                             "Heat (1995)")  # fmt: skip
    wait_for(containers, lambda: list((share / "test").glob("started.*transcode*")), deadline,
             "the transcode never started on ct304")  # fmt: skip
    [probed] = (share / "test").glob("probed.*transcode*")
    tried = json.loads(probed.read_text())
    # The same tries as media outside any unit: one refused even there shows nothing.
    control = json.loads(containers.inside(
        "ct304", "runuser", "-u", "media", "--", "env", f"MP_TEST_DIR={TEST_DIR}",
        "python3", f"{TEST_DIR}/probe.py",
    ))  # fmt: skip
    unprovable = {setting for setting, said in control.items() if not said.startswith("allowed")}
    tried = {setting: said for setting, said in tried.items() if setting not in unprovable}
    # Not a unit setting: the worker's own confinement of its job's writes.
    logs = [path.read_text() for path in share.glob("staging/.pipeline/jobs/running/*/log")]
    assert tried.pop("Landlock") == "held", (tried, control, logs)
    for host, unit, pattern in (
        ("ct304", "mp-claim@.service", f"{SCRIPTS}/transcode.sh"),
        ("ct304", "mp-claim@.service", "mp claim --worker ct304"),
        (CONTROLLER, "mp-reconcile.service", "mp reconcile --if-changed"),
    ):
        settings = set(unit_settings(containers, host, unit))
        seen = sandbox_seen(containers, host, pattern, uid)
        if "transcode.sh" in pattern:  # the job itself: what it tried
            seen.update({setting: said == "held" for setting, said in tried.items()})
        seen = {setting: held for setting, held in seen.items() if setting in settings}
        assert all(seen.values()), (pattern, seen, tried)
        unseen = settings - set(seen) - set(NOT_VERIFIED)
        assert not unseen, f"{unit}: sandbox settings neither verified nor said not to be: {unseen}"
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


# The sandbox settings no test here can show at work, and why.
NOT_VERIFIED = {
    "DevicePolicy": "cgroup device control is not available in these containers",
    "DeviceAllow": "cgroup device control is not available in these containers",
    "ProtectClock": "setting the clock is refused anyway to a user with no capabilities",
    "RestrictRealtime": "a realtime policy is refused anyway under RLIMIT_RTPRIO 0",
    "ProtectKernelModules": "a container has no modules, and the units no CAP_SYS_MODULE",
    "RemoveIPC": "acts when the unit's last process ends",
    "MemoryDenyWriteExecute": "the controller runs no script of ours to try it",
    "RestrictAddressFamilies": "tried inside a job's unit only (tests/sandbox_probe.py)",
    "RestrictNamespaces": "tried inside a job's unit only (tests/sandbox_probe.py)",
    "RestrictSUIDSGID": "tried inside a job's unit only (tests/sandbox_probe.py)",
    "LockPersonality": "tried inside a job's unit only (tests/sandbox_probe.py)",
}


def unit_settings(containers: Containers, host: str, unit: str) -> list[str]:
    """The names of the settings below the unit's hardening line, as installed."""
    text = containers.inside(host, "cat", f"/etc/systemd/system/{unit}")
    hardening = text.split("# Hardening", 1)[1]
    return sorted({line.split("=", 1)[0] for line in hardening.splitlines() if "=" in line})


def sandbox_seen(containers: Containers, host: str, pattern: str, uid: int) -> dict[str, bool]:
    """Setting name -> whether it was seen at work on the oldest process on host whose
    command line holds pattern: from its /proc status, its mounts and namespaces, and
    writes tried in its mount namespace."""
    status = proc_status(containers, host, pattern)
    pid = status["Pid"]

    def in_its_mounts(*command: str) -> subprocess.CompletedProcess:
        return containers.run(host, ["nsenter", "-t", pid, "-m", *command])

    mounts = {}
    for line in containers.inside(host, "cat", f"/proc/{pid}/mountinfo").splitlines():
        fields, _, tail = line.partition(" - ")
        words = fields.split()
        mounts[words[4]] = (words[5].split(","), tail.split()[2].split(",") if tail else [])
    outside = ["/etc/mp-write-test", "/usr/local/bin/mp-write-test", "/var/lib/mp-write-test"]
    written = [in_its_mounts("touch", path) for path in outside]
    home = in_its_mounts("touch", "/home/media/mp-write-test")
    same = containers.inside(host, "stat", "-c", "%d:%i", "/tmp")
    proc = mounts.get("/proc", ([], []))[1]
    seen = {
        "User": status["Uid"].split()[:2] == [str(uid)] * 2,
        "Group": status["Gid"].split()[:2] == [str(uid)] * 2,
        "NoNewPrivileges": status["NoNewPrivs"] == "1",
        "CapabilityBoundingSet": int(status["CapBnd"], 16) == 0
        and all(int(status[name], 16) == 0 for name in ("CapInh", "CapPrm", "CapEff")),
        "AmbientCapabilities": int(status["CapAmb"], 16) == 0,
        "UMask": status["Umask"] == "0022",
        "SystemCallFilter": status["Seccomp"] == "2",
        "SystemCallArchitectures": status["Seccomp"] == "2",
        "ProtectSystem": all("Read-only file system" in done.stderr for done in written),
        "ReadWritePaths": in_its_mounts("test", "-w", STAGING).returncode == 0,
        "ProtectHome": home.returncode != 0,
        "PrivateTmp": in_its_mounts("stat", "-c", "%d:%i", "/tmp").stdout != same,
        "ProtectHostname": containers.inside(host, "readlink", f"/proc/{pid}/ns/uts")
        != containers.inside(host, "readlink", "/proc/1/ns/uts"),
        # Read-only in its view, or not there at all (ProcSubset=pid leaves out of /proc
        # all that is not a process).
        "ProtectKernelTunables": "ro" in mounts.get("/proc/sys", ([], []))[0]
        or in_its_mounts("test", "-e", "/proc/sys").returncode == 1,
        "ProtectControlGroups": "ro" in mounts.get("/sys/fs/cgroup", ([], []))[0],
        "ProtectKernelLogs": "/proc/kmsg" in mounts
        or in_its_mounts("test", "-e", "/proc/kmsg").returncode == 1,
        "ProtectProc": "hidepid=invisible" in proc,
        "ProcSubset": "subset=pid" in proc,
        "PrivateDevices": "console" not in in_its_mounts("ls", "/dev").stdout.split(),
    }
    return seen


def every_run_was_media(containers: Containers, uid: int) -> dict[str, set[str]]:
    """The units whose runs logged to the journal on each host, each line of theirs
    checked to come from a process of the service user with no effective capability
    (journald records both of whoever wrote it): what shows the short runs (a dispatch,
    an idle claim) that /proc cannot catch. The rip unit is started by udev for a disc,
    which a container has not: it is not among them."""
    found: dict[str, set[str]] = {}
    for host in HOSTS:
        lines = containers.inside(host, "journalctl", "--no-pager", "-o", "json", "-u", "mp-*")
        for line in filter(None, lines.splitlines()):
            entry = json.loads(line)
            if entry.get("_PID") == "1":
                continue  # systemd's own lines about the unit
            assert (entry.get("_UID"), entry.get("_CAP_EFFECTIVE")) == (str(uid), "0"), entry
            found.setdefault(host, set()).add(entry["_SYSTEMD_UNIT"])
    return found


def carry_a_season(containers: Containers) -> None:
    """Two discs of one season, ripped together, each of three episodes, through both
    gates: the season's six episodes in the library, numbered on from the first disc."""
    share = containers.share
    for kind in ("rip", "remux", "transcode"):
        (share / "test" / f"behaviour.{kind}").write_text("episodes\n")
    for label in ("S01 Disc1", "S01 Disc2"):
        mp_on(containers, CONTROLLER, "rip", "--type", "tv", "--title", "Lost (2004)",
              "--disc-label", label)  # fmt: skip
    wait_for(containers, in_library(containers, "Lost (2004)", count=2),
             time.monotonic() + 240, "the season never reached the library")  # fmt: skip
    season = share / "library" / "TV Shows" / "Lost (2004)" / "Season 01"
    assert sorted(path.name for path in season.iterdir()) == [
        f"Lost (2004) - s01e{number:02d}.mkv" for number in range(1, 7)
    ]
    jobs = json.loads(mp_on(containers, CONTROLLER, "jobs", "--state", "completed", "--json"))
    ran = sorted((job["kind"], job["worker"]) for job in jobs["jobs"] if "Lost" in job["id"])
    assert ran == sorted(2 * [("rip", "ct302"), ("remux", "ct303"), ("transcode", "ct304"),
                              ("filebot", "ct304")]), ran  # fmt: skip
    for kind in ("rip", "remux", "transcode"):
        (share / "test" / f"behaviour.{kind}").unlink()


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
    # The shutdown's stop was no failed attempt: as many as Heat's, which ran once.
    attempts = {job["id"].rpartition("_")[2]: job["attempts"] for job in jobs["jobs"]
                if job["kind"] == "transcode"}  # fmt: skip
    assert attempts["Ronin-1998"] == attempts["Heat-1995"], attempts


def lose_the_share_and_get_it_back(containers: Containers) -> None:
    """The share gone from under the running controller, an empty folder in its place
    (the service's own, so that only mp's refusal keeps it empty): every command
    refuses, the timers' runs write nothing there, and once the share is back the
    pipeline carries on."""
    away = "/run/mp-test-share-away"
    since = containers.inside(CONTROLLER, "date", "+%Y-%m-%d %H:%M:%S").strip()
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
    # The controller's timers fire every second: wait until one of their runs has met
    # the empty folder and refused, then look at what is there.
    deadline = time.monotonic() + 60
    while "is the share mounted?" not in containers.inside(
        CONTROLLER, "journalctl", "--no-pager", "-u", "mp-reconcile", "--since", since
    ):
        assert time.monotonic() < deadline, "no timer run of reconcile met the empty folder"
        time.sleep(0.5)
    left = containers.inside(CONTROLLER, "find", SHARE, "-mindepth", "2")
    assert left == "", left
    for command in (["rmdir", STAGING, LIBRARY], ["mount", "--bind", away, SHARE],
                    ["umount", away]):  # fmt: skip
        containers.run(CONTROLLER, command, check=True)
    mp_on(containers, CONTROLLER, "rip", "--type", "movie", "--title", "Alien (1979)")
    wait_for(containers, in_library(containers, "Alien (1979)"), time.monotonic() + 120,
             "the pipeline did not carry on once the share was back")  # fmt: skip
