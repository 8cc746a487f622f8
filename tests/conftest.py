"""Shared fixtures: a sandbox with a real config, staging tree and database under tmp_path."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

import pytest
import yaml
from click.testing import CliRunner, Result
from receiver import Receiver

from media_pipeline.cli import mp
from media_pipeline.config.load import load_config
from media_pipeline.config.settings import Config
from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.keys import CONTROLLER, Signer
from media_pipeline.jobs.live import LIVE_FILE
from media_pipeline.jobs.queue import JobName
from media_pipeline.jobs.signature import sign_spec, signed_live
from media_pipeline.store import private_key


def pytest_configure(config):
    """Lock files (worker slots, the drive lock) go to a folder of this run's own, never
    into the machine's /run/lock: set before any test starts an mp process, and so
    inherited by the xdist workers and every process the tests start."""
    if "MP_LOCK_DIR" not in os.environ:
        os.environ["MP_LOCK_DIR"] = tempfile.mkdtemp(prefix="mp-test-locks-")
        config.stash[_LOCKS_MADE] = os.environ["MP_LOCK_DIR"]


def pytest_unconfigure(config):
    made = config.stash.get(_LOCKS_MADE, None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


_LOCKS_MADE = pytest.StashKey[str]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With MP_TEST_NO_SKIP set (CI sets it, on a machine where .ci/run installed every
    tool the docs name), a skipped test fails and says why: a skip there means a
    promise went untested. Elsewhere a skip stays a skip, listed with its reason in the
    summary (-ra)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("MP_TEST_NO_SKIP") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and MP_TEST_NO_SKIP forbids it: {reason}"


# units.user root: mp run as root stays root (service_user.py). What a config written
# by a test that runs commands as root needs, unless it tests the switch.
AS_ROOT = {"user": "root", "group": "root"}


class ScriptEntry(TypedDict):
    """One kind's entry in the config's scripts table."""

    path: str
    args: NotRequired[list[str]]


ScriptsTable = dict[str, ScriptEntry]  # the config's scripts table, by kind


@dataclass
class Sandbox:
    root: Path
    config_path: Path
    scripts: Path | None = None

    @property
    def config(self) -> Config:
        return load_config(str(self.config_path))

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def database(self) -> Path:
        return self.root / "db" / "state.db"

    @property
    def signing_key(self) -> Path:
        return self.database.parent / "job.key"

    def write_config(self, **overrides) -> None:
        settings = {
            "staging_root": str(self.staging),
            "library_root": str(self.root / "library"),
            "database": str(self.database),
            "gates": [],
            # The tests run as root and the sandbox is theirs: no service user to become.
            "units": AS_ROOT,
            # The stand-in scripts keep their notes (runlog, args.*, started.*) in the
            # test's folder, beside staging and the library: the tests of confinement
            # itself leave this out (test_confined_scripts.py).
            "script_writable_paths": [str(self.root)],
            **overrides,
        }
        self.config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")

    def folder(self, key: ItemKey, stage: str) -> Path:
        return Path(key.folder(str(self.staging), stage))

    def mark(self, key: ItemKey, stage: str, *markers: str) -> Path:
        """Do what a stage script does: a file in its output folder, then its markers."""
        folder = self.folder(key, stage)
        (folder / ".pipeline").mkdir(parents=True, exist_ok=True)
        (folder / "video.mkv").write_bytes(b"not really video")
        for marker in markers:
            (folder / ".pipeline" / f"{marker}.done").touch()
            (folder / ".pipeline" / f"{marker}.timestamp").write_text("2026-11-24T12:00:00+00:00\n")
        return folder

    def mp(self, *args: str, expect: int | None = 0) -> Result:
        result = CliRunner().invoke(
            mp, [*args, "--config", str(self.config_path)], catch_exceptions=False
        )
        if expect is not None:
            assert result.exit_code == expect, (result.exit_code, result.output, result.stderr)
        return result

    def status_json(self) -> dict:
        return json.loads(self.mp("status", "--json").stdout)

    def write_pipeline_config(self, **overrides) -> None:
        assert self.scripts is not None, "add_fake_scripts() sets the scripts folder"
        scripts: ScriptsTable = {kind: {"path": str(self.scripts / f"{kind}.sh")} for kind in KINDS}
        scripts["rip"]["args"] = ["{output_dir}", "{title}"]
        scripts["filebot"]["args"] = ["{input_dir}", "{destination}"]
        settings = {
            "workers": {"w1": {"kinds": list(KINDS), "max_running": 50}},
            "scripts": scripts,
            "jobs": {
                "heartbeat_seconds": 1,
                "stale_after_seconds": 30,
                "backoff_seconds": 60,
                "cancel_grace_seconds": 1,
                "max_attempts": 3,
            },
        }
        settings.update(overrides)
        self.write_config(**settings)

    def runlog(self) -> list[str]:
        path = self.root / "runlog"
        return path.read_text().splitlines() if path.exists() else []

    def queue(self, state: str) -> list[str]:
        folder = self.staging / ".pipeline" / "jobs" / state
        names = os.listdir(folder) if folder.exists() else []
        return sorted(name for name in names if not name.startswith("."))  # jobs, not .wait.*

    def behave(self, kind: str, behaviour: str) -> None:
        (self.root / f"behaviour.{kind}").write_text(behaviour)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records what notifications send it."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return make_sandbox(tmp_path)


def make_sandbox(root: Path) -> Sandbox:
    box = Sandbox(root=root, config_path=root / "config.yaml")
    box.staging.mkdir(parents=True)
    (root / "library").mkdir()
    box.write_config()
    return box


def tree_snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every path under roots with its bytes (None for folders), to compare before/after.

    Leaves out SQLite's -shm index, which every reader of a WAL database writes, and an
    empty -wal, which a read-only reader may have to make: neither holds data."""
    snapshot: dict[str, bytes | None] = {}
    for root in roots:
        if not root.exists():
            continue
        for folder, _folders, files in os.walk(root):
            snapshot[folder] = None
            for name in files:
                path = os.path.join(folder, name)
                data = Path(path).read_bytes()
                if name.endswith("-shm") or (name.endswith("-wal") and not data):
                    continue
                snapshot[path] = data
    return snapshot


def claim_in_background(pipeline: Sandbox, until: Callable[[], object]) -> subprocess.Popen:
    """`mp claim` as a real process, returned once until() is true (its script started)."""
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mp")),
            *("claim", "--worker", "w1", "--config", str(pipeline.config_path)),
        ],
        env={**os.environ, "MP_TEST_DIR": str(pipeline.root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not until():
        assert time.monotonic() < deadline, "the claimed job's script never started"
        time.sleep(0.02)
    return worker


# A stand-in for the owner's stage scripts: logs each start and end to $MP_TEST_RUNLOG,
# then behaves as $MP_TEST_BEHAVIOUR (or the per-kind file beside it) says.
FAKE_SCRIPT = r"""#!/usr/bin/env bash
set -u
kind="$(basename "$0" .sh)"
behaviour="${MP_TEST_BEHAVIOUR:-ok}"
if [ -f "$MP_TEST_DIR/behaviour.$kind" ]; then behaviour="$(cat "$MP_TEST_DIR/behaviour.$kind")"; fi
printf 'start %s %s\n' "$kind" "$MP_JOB_ID" >> "$MP_TEST_DIR/runlog"
printf '%s\n' "$@" > "$MP_TEST_DIR/args.$MP_JOB_ID"
env | grep '^MP_' | sort > "$MP_TEST_DIR/env.$MP_JOB_ID"
# A process that takes a moment to end even after SIGKILL: the kernel frees its 2 GiB,
# every page touched, after the signal (about 0.2 s here).
HOG='import sys, time
memory = bytearray(1 << 31)
memory[::4096] = b"x" * ((1 << 31) // 4096)
open(sys.argv[1], "w").close()
time.sleep(1000)'
case "$kind" in
  filebot) marker_dir="$MP_INPUT_DIR" ;;
  *) marker_dir="$MP_OUTPUT_DIR" ;;
esac
case "$behaviour" in
  fail) echo "something broke"; exit 3 ;;
  nomarker) exit 0 ;;
  block) touch "$MP_TEST_DIR/started.$MP_JOB_ID"; while true; do sleep 0.1; done ;;
  probe) python3 "$MP_TEST_DIR/probe.py" > "$MP_TEST_DIR/probed.$MP_JOB_ID" 2>&1
         touch "$MP_TEST_DIR/started.$MP_JOB_ID"
         while [ ! -e "$MP_TEST_DIR/release" ]; do sleep 0.05; done ;;
  wait) touch "$MP_TEST_DIR/started.$MP_JOB_ID"
        while [ ! -e "$MP_TEST_DIR/release" ]; do sleep 0.05; done ;;
  alone) exec 9>>"$MP_TEST_DIR/one-at-a-time"  # held until this script has ended
         flock -n 9 || printf 'beside %s\n' "$MP_JOB_ID" >> "$MP_TEST_DIR/runlog"
         touch "$MP_TEST_DIR/started.$MP_JOB_ID"
         while [ ! -e "$MP_TEST_DIR/release" ]; do sleep 0.05; done ;;
  stubborn) trap '' TERM; touch "$MP_TEST_DIR/started.$MP_JOB_ID"; while true; do sleep 0.1; done ;;
  spawn) sleep 1000 & echo "$$ $!" > "$MP_TEST_DIR/pids.$MP_JOB_ID"
         touch "$MP_TEST_DIR/started.$MP_JOB_ID"; wait ;;
  chatty) seq 1 400000 | sed 's/^/output line /' ;;
  # A TV disc's three episodes, ripped, then carried through each stage as they are.
  episodes) mkdir -p "$marker_dir"
            if [ "$kind" = rip ]; then
              for n in 1 2 3; do
                cp "$MP_TEST_DIR/sample.mkv" "$marker_dir/title_t0$n.mkv" 2>/dev/null ||
                  echo "episode $n" > "$marker_dir/title_t0$n.mkv"
              done
            else
              cp "$MP_INPUT_DIR"/*.mkv "$marker_dir"/
            fi ;;
  hog) python3 -c "$HOG" "$MP_TEST_DIR/hogging.$MP_JOB_ID" &
       echo "$$ $!" > "$MP_TEST_DIR/pids.$MP_JOB_ID"
       touch "$MP_TEST_DIR/started.$MP_JOB_ID"; wait ;;
esac
mkdir -p "$marker_dir/.pipeline"
echo "output of $kind" > "$marker_dir/$kind.out"
if [ "$kind" = filebot ] && [ -n "${MP_FILES+set}" ]; then
  # Each file of the list at its place below the movie's or the show's folder.
  case "$MP_ITEM_TYPE" in
    tv) base="$(dirname "${MP_DESTINATION%/}")" ;;
    *) base="$(dirname "$MP_DESTINATION")" ;;
  esac
  printf '%s' "$MP_FILES" | while IFS="$(printf '\t')" read -r name place; do
    mkdir -p "$(dirname "$base/$place")"
    cp "$MP_TEST_DIR/sample.mkv" "$base/$place" 2>/dev/null || echo filed > "$base/$place"
  done
elif [ "$kind" = filebot ]; then
  case "$MP_DESTINATION" in
    */) mkdir -p "$MP_DESTINATION"; echo filed > "$MP_DESTINATION/episode.out" ;;
    *) mkdir -p "$(dirname "$MP_DESTINATION")"
       cp "$MP_TEST_DIR/sample.mkv" "$MP_DESTINATION" 2>/dev/null ||
         echo filed > "$MP_DESTINATION" ;;
  esac
fi
case "$behaviour" in
  empty) : > "$marker_dir/$kind.out" ;;
  garbage) echo "not video" > "$marker_dir/broken.mkv" ;;
  long) ffmpeg -nostdin -v error -f lavfi -i testsrc=size=64x48:rate=5:duration=4 \
          "$marker_dir/long.mkv" ;;
esac
touch "$marker_dir/.pipeline/$kind.done"
date -Iseconds > "$marker_dir/.pipeline/$kind.timestamp"
printf 'done %s %s\n' "$kind" "$MP_JOB_ID" >> "$MP_TEST_DIR/runlog"
"""

KINDS = ("rip", "remux", "transcode", "filebot")


@pytest.fixture(scope="session")
def sample_media(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A one-second real video file, where ffmpeg is installed (verification probes it)."""
    if not shutil.which("ffmpeg"):
        return None
    path = tmp_path_factory.mktemp("media") / "sample.mkv"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=5:duration=1",
            "-c:v",
            "mpeg4",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture
def pipeline(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, sample_media: Path | None
) -> Sandbox:
    """A sandbox whose config runs fake scripts on worker 'w1' (every kind)."""
    add_fake_scripts(sandbox, sample_media)
    monkeypatch.setenv("MP_TEST_DIR", str(sandbox.root))
    return sandbox


def add_fake_scripts(sandbox: Sandbox, sample_media: Path | None) -> None:
    if sample_media is not None:
        shutil.copy(sample_media, sandbox.root / "sample.mkv")
    scripts = sandbox.root / "scripts"
    scripts.mkdir()
    for kind in KINDS:
        path = scripts / f"{kind}.sh"
        path.write_text(FAKE_SCRIPT)
        path.chmod(0o755)
    sandbox.scripts = scripts
    sandbox.write_pipeline_config()


def process_state(pid: int) -> str | None:
    """A process's state letter from /proc (R, S, T, Z...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # The state follows the command name, which is in parentheses and may itself
            # hold spaces, parentheses or a "Z".
            return handle.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def running(pid: int) -> bool:
    """Whether pid is a live process: gone, or a zombie waiting for its reaper (which
    has closed its files and runs nothing), is not."""
    return process_state(pid) not in (None, "Z", "X")


def group_processes(group: int) -> list[int]:
    """The live processes of a process group."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(int(name)) == group and running(int(name)):
                    found.append(int(name))
    return found


def silence(folder: Path, seconds: float = 3600) -> Path:
    """Make a running job look as it would `seconds` after its last sign of life, as
    time passing with its worker gone would: its heartbeat, and its claim time (in its
    folder's name) when later, moved back to then. Returns the folder's new path. A live
    worker whose folder is renamed finds it no longer holds its job, as if taken back."""
    moment = time.time() - seconds
    for path in (folder / "heartbeat", folder):
        if path.exists():
            os.utime(path, (moment, moment))
    head, _, last = folder.name.rpartition(".")
    if last[:1] != "t" or not last[1:].isdigit():
        return folder  # a name without a claim time, as an earlier release made
    claimed = min(int(last[1:]), int(moment))
    moved = folder.with_name(f"{head}.t{claimed}")
    if moved != folder:
        folder.rename(moved)
    return moved


def job_name(job_id: str) -> JobName:
    """What a job's name says, for a name the test knows is a job's (a queue's entry)."""
    made = JobName.parse(job_id)
    assert made is not None, job_id
    return made


def earlier_copy_id(job_id: str) -> str:
    """The name of a copy of this job made a year before it: the same priority, kind and
    item, and a date that sorts first, worked out from the job's own date (a literal year
    in a test stops working when the calendar passes it)."""
    made = job_name(job_id)
    earlier = made.created.replace(year=made.created.year - 1, day=min(made.created.day, 28))
    stamp = made.job_id.split("_")[2]
    return job_id.replace(stamp, earlier.strftime("%Y%m%dT%H%M%S%f"), 1)


def pending_spec_of(pipeline: Sandbox, kind: str) -> tuple[Path, dict]:
    folder = pipeline.staging / ".pipeline" / "jobs" / "pending"
    [name] = [n for n in pipeline.queue("pending") if job_name(n).kind == kind]
    path = folder / name / "spec.json"
    return path, json.loads(path.read_text())


def signed_by_controller(pipeline: Sandbox, spec: dict) -> dict:
    """spec signed again with the sandbox controller's own key, and named in its list of
    live jobs, as only the controller (or whoever has its key) can: the checks behind
    the signature are then what refuses it. A share writer's changes alone are refused
    as not trusted."""
    seed = private_key(str(pipeline.signing_key), "signing key")[:32]  # made if not yet
    signer = Signer(CONTROLLER, seed)
    live = pipeline.staging / ".pipeline" / "jobs" / LIVE_FILE
    listed = set(json.loads(live.read_text()).get("jobs", [])) if live.exists() else set()
    if isinstance(spec.get("id"), str):
        listed.add(spec["id"])
    live.write_text(json.dumps(signed_live(signer, sorted(listed), time.time())))
    return sign_spec(spec, signer)


@contextlib.contextmanager
def forged_pending_spec(pipeline: Sandbox, kind: str, *, sign: bool = True) -> Iterator[dict]:
    """The pending job's spec, to change: written back after, signed again with the
    controller's key unless sign=False (a share writer's own change)."""
    path, spec = pending_spec_of(pipeline, kind)
    yield spec
    path.write_text(json.dumps(signed_by_controller(pipeline, spec) if sign else spec))


def set_aside_by_reconcile(pipeline: Sandbox) -> str:
    """Reconcile takes the pending job out of the queue; the reason it gives."""
    pipeline.mp("reconcile")
    assert pipeline.queue("pending") == []
    return only_rejection(pipeline)


def refused_by_worker(pipeline: Sandbox, kind: str) -> str:
    """A claim refuses the pending job before any script runs; the reason it gives."""
    pipeline.mp("claim", "--worker", "w1")
    assert not list(pipeline.root.glob(f"env.job_*{kind}*")), "its script never ran"
    return only_rejection(pipeline)


def item_row(pipeline: Sandbox, key: ItemKey) -> dict:
    with sqlite3.connect(pipeline.database) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM media_items WHERE uid = ?", [key.uid]).fetchone())


def lose_the_database(pipeline: Sandbox) -> None:
    """The database and its WAL files gone, as after a disk loss."""
    for path in pipeline.database.parent.iterdir():
        if path.name.startswith("state.db"):
            path.unlink()


def only_rejection(pipeline: Sandbox) -> str:
    """The reason of the one entry in the queue's rejected/ folder."""
    [reason] = (pipeline.staging / ".pipeline" / "jobs" / "rejected").glob("*/reason")
    return reason.read_text()


def stand_in_scripts(root: Path, script: str = FAKE_SCRIPT) -> ScriptsTable:
    """The stand-in script for every kind in root/scripts, a real one-second video at
    root/sample.mkv for the filing script to file (where ffmpeg is), and the config's
    scripts table for them: what the tests of several hosts share."""
    if shutil.which("ffmpeg"):  # filed outputs are probed as media where ffprobe exists
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
             "testsrc=size=64x48:rate=5:duration=1", "-c:v", "mpeg4", str(root / "sample.mkv")],
            check=True, timeout=120,
        )  # fmt: skip
    scripts = root / "scripts"
    scripts.mkdir()
    for kind in KINDS:
        (scripts / f"{kind}.sh").write_text(script)
        (scripts / f"{kind}.sh").chmod(0o755)
    table: ScriptsTable = {kind: {"path": str(scripts / f"{kind}.sh")} for kind in KINDS}
    table["rip"]["args"] = ["{output_dir}", "{title}"]
    table["filebot"]["args"] = ["{input_dir}", "{destination}"]
    return table


def build_wheel(folder: Path) -> Path:
    """A wheel of this tree, in folder."""
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(repo)],
        check=True, timeout=300, cwd=folder.parent,
    )  # fmt: skip
    [wheel] = folder.glob("*.whl")
    return wheel


DECOY_SECRET = b"root-only secret 8c1f\n"


@pytest.fixture
def decoy(tmp_path: Path) -> Iterator[Path]:
    """Files outside the sandbox's staging and library that an attacker aims at: they
    must be byte for byte the same after the test, and no new file may appear."""
    root = tmp_path / "decoy"
    (root / "home" / ".ssh").mkdir(parents=True)
    (root / "home" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA owner\n")
    (root / "etc" / "cron.d").mkdir(parents=True)
    (root / "etc" / "shadow").write_bytes(DECOY_SECRET)
    (root / "etc" / "shadow").chmod(0o600)
    before = tree_snapshot(root)
    yield root
    assert tree_snapshot(root) == before, "something outside the sandbox changed"


def run_mp(
    *args: str,
    umask: int = 0o022,
    env: dict[str, str] | None = None,
    preexec: Callable[[], object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`mp` as its own process (the installed script beside this Python), with a umask
    and environment of the test's choosing."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("mp")), *args],
        capture_output=True,
        text=True,
        umask=umask,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec,
        timeout=120,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """Each host's counts in an Ansible play's recap."""
    import re

    found = re.findall(
        r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M
    )
    assert found, output[-3000:]
    names = ("ok", "changed", "unreachable", "failed")
    return {host: dict(zip(names, map(int, counts), strict=True)) for host, *counts in found}


def ffmpeg_title(path: Path, seconds: float, tone: int) -> None:
    """A disc title of that many seconds made with ffmpeg: small video, English audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=5:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency={tone}:duration={seconds}",
         "-c:v", "mpeg4", "-c:a", "aac", "-metadata:s:a:0", "language=eng", str(path)],
        check=True,
    )  # fmt: skip
