"""Timer runs with nothing to do stop at once, from the note the last full run left in
$RUNTIME_DIRECTORY (idle/quick.py); whatever changed since sends the run to the full
command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import claim_in_background

from media_pipeline.idle import entry, quick

MP = str(Path(sys.executable).with_name("mp"))


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(folder))
    return folder


@pytest.fixture
def share(pipeline):
    pipeline.mp("reconcile")  # the share's id, as the controller makes it
    (pipeline.staging / ".pipeline" / "jobs" / "pending").mkdir(parents=True, exist_ok=True)
    return pipeline


def real_mp(pipeline, *args: str, importtime: bool = False) -> subprocess.CompletedProcess:
    """`mp` as the timer starts it; with importtime, stderr lists every module imported."""
    python = ["-X", "importtime"] if importtime else []
    # Under coverage, every Python started imports coverage (and logging with it) first.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS")}
    return subprocess.run(
        [sys.executable, *python, MP, *args, "--config", str(pipeline.config_path)],
        capture_output=True,
        text=True,
        env=env if importtime else os.environ,
    )


def imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if "import time:" in line}


def claim_args(pipeline) -> list[str]:
    return ["claim", "--worker", "w1", "--config", str(pipeline.config_path)]


# -- the claim -----------------------------------------------------------------------


def test_an_idle_claim_answers_from_the_note_importing_nothing_heavy(share, runtime):
    first = real_mp(share, "claim", "--worker", "w1", importtime=True)
    assert first.stdout == "worker w1: no job to run\n"
    assert "yaml" in imported(first.stderr), "no note yet: the config was read"
    assert (runtime / "claim-w1.note").exists()
    second = real_mp(share, "claim", "--worker", "w1", importtime=True)
    assert second.stdout == "worker w1: no job to run\n"
    assert not {"yaml", "click", "sqlite3", "logging"} & imported(second.stderr)


def test_without_a_runtime_folder_no_note_is_left(share, tmp_path, monkeypatch):
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    assert real_mp(share, "claim", "--worker", "w1").stdout == "worker w1: no job to run\n"
    assert not list(tmp_path.rglob("*.note"))


@pytest.mark.parametrize(
    "change",
    ["config edited", "drained", "own job", "share id", "share replaced", "pending linked",
     "note of another user", "note garbled", "note is a link"],
)  # fmt: skip
def test_a_claim_note_that_no_longer_holds_sends_the_claim_to_the_full_command(
    share, runtime, tmp_path, change
):
    args = claim_args(share)
    assert entry.idle_claim(args) == "worker w1: no job to run"  # leaves the note
    assert quick.idle_claim(str(share.config_path), "w1") == "worker w1: no job to run"
    jobs = share.staging / ".pipeline" / "jobs"
    note = runtime / "claim-w1.note"
    if change == "config edited":
        settings = yaml.safe_load(share.config_path.read_text())
        settings["workers"]["w1"]["kinds"] = ["rip"]
        share.config_path.write_text(yaml.safe_dump(settings))
    elif change == "drained":
        share.mp("worker", "drain", "w1")
    elif change == "own job":
        share.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    elif change == "share id":
        (share.staging / ".pipeline" / "share.id").write_text("f" * 32 + "\n")
    elif change == "share replaced":  # another folder mounted where the share was
        os.rename(share.staging, tmp_path / "old-staging")
        (share.staging / ".pipeline" / "jobs" / "pending").mkdir(parents=True)
        (share.staging / ".pipeline" / "share.id").write_text(
            (tmp_path / "old-staging" / ".pipeline" / "share.id").read_text()
        )
    elif change == "pending linked":
        (tmp_path / "elsewhere").mkdir()
        (jobs / "pending").rename(tmp_path / "elsewhere" / "pending")
        (jobs / "pending").symlink_to(tmp_path / "elsewhere" / "pending")
    elif change == "note of another user":
        os.chown(note, 65534, 65534)
    elif change == "note garbled":
        note.write_text("config\x00\nwatch\n" * 3)
    else:
        (runtime / "elsewhere.note").write_text(note.read_text())
        note.unlink()
        note.symlink_to(runtime / "elsewhere.note")
    assert quick.idle_claim(str(share.config_path), "w1") is None


def test_a_worker_with_time_windows_is_answered_until_a_job_of_its_kinds(share, runtime):
    share.write_pipeline_config(windows={"transcode": "01:00-07:00"})
    assert entry.idle_claim(claim_args(share)) == "worker w1: no job to run"
    assert quick.idle_claim(str(share.config_path), "w1") == "worker w1: no job to run"
    share.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    assert quick.idle_claim(str(share.config_path), "w1") is None


def test_jobs_of_other_kinds_and_back_off_waits_are_no_job(share, runtime):
    share.write_pipeline_config(workers={"w1": {"kinds": ["transcode"]}, "w2": {"kinds": ["rip"]}})
    args = claim_args(share)
    assert entry.idle_claim(args) is not None
    share.mp("rip", "--type", "movie", "--title", "Heat (1995)")  # a rip job: w2's
    assert entry.idle_claim(args) is not None  # the first job made the queue's folders
    pending = share.staging / ".pipeline" / "jobs" / "pending"
    (pending / ".wait.1764130000.x").touch()
    assert quick.idle_claim(str(share.config_path), "w1") == "worker w1: no job to run"
    (pending / "job_p500_garbled").mkdir()
    assert quick.idle_claim(str(share.config_path), "w1") is None, "a name it cannot read"


# -- the controller ------------------------------------------------------------------


def controller(pipeline):
    return pipeline.mp("reconcile", "--if-changed", "--dispatch")


def idle(pipeline, now: float | None = None) -> str | None:
    return quick.controller_unchanged(str(pipeline.config_path), now)


def settle(pipeline, runtime) -> int:
    """Full runs until one finds nothing changed while it ran (and leaves its note)."""
    for runs in range(1, 4):
        controller(pipeline)
        if (runtime / "controller.note").exists():
            return runs
    raise AssertionError("three full runs in a row changed something")


def test_the_controller_stops_at_once_when_nothing_changed(share, runtime):
    share.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    assert settle(share, runtime) <= 2
    said = real_mp(share, "reconcile", "--if-changed", "--dispatch", importtime=True)
    assert said.returncode == 0 and said.stdout.startswith("reconcile: nothing changed since")
    assert not {"yaml", "click", "sqlite3"} & imported(said.stderr)
    # The rip job runs and finishes: the next run is a full one, and queues the remux.
    claimed = real_mp(share, "claim", "--worker", "w1")
    assert claimed.returncode == 0, claimed.stderr
    assert idle(share) is None
    result = controller(share)
    assert "queued" in result.stdout and share.queue("pending"), result.stdout
    assert not (runtime / "controller.note").exists(), "it changed things: no note"


def test_a_run_leaves_no_note_when_it_changed_something(share, runtime):
    share.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    real_mp(share, "claim", "--worker", "w1")  # ripped: the next run queues the remux
    controller(share)
    assert share.queue("pending")
    assert not (runtime / "controller.note").exists()


@pytest.mark.parametrize(
    "change",
    ["approval", "new item", "new disc of a show", "job claimed", "config edited",
     "queue folder linked", "five minutes"],
)  # fmt: skip
def test_what_wakes_the_controller(share, runtime, tmp_path, change):
    share.mp("rip", "--type", "tv", "--title", "Show", "--disc-label", "S01 Disc1")
    real_mp(share, "claim", "--worker", "w1")
    settle(share, runtime)
    note = quick.read_note(quick.CONTROLLER_NOTE)
    assert note is not None
    at = float(note["at"][0])
    assert idle(share, at + 10) is not None
    show = share.staging / "1-ripped" / "tv" / "Show"
    if change == "approval":
        share.mp("cancel", share.status_json()["items"][0]["uid"], expect=None)
    elif change == "new item":
        (share.staging / "1-ripped" / "movies" / "Heat (1995)").mkdir(parents=True)
    elif change == "new disc of a show":
        (show / "S01 Disc2").mkdir()
    elif change == "job claimed":
        jobs = share.staging / ".pipeline" / "jobs"
        (jobs / "pending").rename(jobs / "running")  # as a claim's rename changes both
    elif change == "config edited":
        share.config_path.write_text(share.config_path.read_text() + "\n")
    elif change == "queue folder linked":
        jobs = share.staging / ".pipeline" / "jobs"
        (jobs / "completed").rename(tmp_path / "completed")
        (jobs / "completed").symlink_to(tmp_path / "completed")
    else:
        assert idle(share, at + quick.FULL_RUN_EVERY - 1) is not None
        assert idle(share, at + quick.FULL_RUN_EVERY + 1) is None
        return
    assert idle(share, at + 10) is None


def test_while_a_job_runs_a_full_run_comes_before_its_heartbeat_goes_stale(share, runtime):
    share.behave("rip", "wait")
    share.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    worker = claim_in_background(share, lambda: list(share.root.glob("started.*")))
    try:
        # A job running: its heartbeat can go stale with no folder changing.
        settle(share, runtime)
        note = quick.read_note(quick.CONTROLLER_NOTE)
        assert note is not None
        at, until = float(note["at"][0]), float(note["until"][0])
        assert until - at == 15, "half the fixture's stale_after_seconds (30)"
        assert idle(share, until - 1) is not None
        assert idle(share, until) is None
    finally:
        (share.root / "release").touch()
        worker.wait(30)


def test_a_failed_run_leaves_no_note(share, runtime):
    settle(share, runtime)
    (share.staging / ".pipeline" / "share.id").unlink()  # the share looks unmounted
    refused = share.mp("reconcile", "--if-changed", "--dispatch", expect=3).stderr
    assert "has lost its .pipeline/share.id" in refused and "is the share mounted?" in refused
    assert not (runtime / "controller.note").exists()
    assert idle(share) is None


def test_if_changed_is_for_the_timer_only(share):
    result = share.mp("reconcile", "--if-changed", "--dry-run", expect=2)
    assert "--if-changed" in result.stderr


def test_a_note_without_dispatch_does_not_answer_a_run_with_it(share, runtime):
    for _ in range(3):
        share.mp("reconcile", "--if-changed")
    assert idle(share) is None, "the last run did not dispatch"
    assert quick.controller_unchanged(str(share.config_path), dispatch=False) is not None
    settle(share, runtime)
    assert idle(share) is not None


@pytest.mark.parametrize("name", ["Evil\nShow", b"Caf\xe9"])
def test_odd_folder_names_on_the_share_keep_the_quick_path(share, runtime, name):
    tv = os.fsencode(share.staging / "1-ripped" / "tv")
    os.makedirs(os.path.join(tv, os.fsencode(name)))
    settle(share, runtime)
    assert idle(share) is not None
    os.rmdir(os.path.join(tv, os.fsencode(name)))
    assert idle(share) is None
