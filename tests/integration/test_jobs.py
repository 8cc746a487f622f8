"""The job queue through the real commands: dispatch, claim (running real scripts),
reconcile reading the outcomes, cancel, retry, priority, rip."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from datetime import datetime, timedelta

import pytest
from conftest import job_name

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")
DISC = ItemKey("tv", "The Wire", "S02 Disc1")


def ripped(pipeline, *keys):
    for key in keys:
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")


def state_of(pipeline, key) -> str:
    return next(i for i in pipeline.status_json()["items"] if i["uid"] == key.uid)["state"]


def job_folder(pipeline, state, name):
    return pipeline.staging / ".pipeline" / "jobs" / state / name


def test_dispatch_writes_one_job_per_item_and_moves_it_on(pipeline):
    ripped(pipeline, MOVIE, DISC)
    dry = pipeline.mp("dispatch", "--dry-run")
    assert "would queue remux job for movie/Heat (1995)" in dry.stdout
    assert pipeline.queue("pending") == []
    out = pipeline.mp("dispatch")
    assert "2 job(s) queued" in out.stdout
    pending = pipeline.queue("pending")
    assert len(pending) == 2 and all("_remux_" in name for name in pending)
    assert pipeline.queue("tmp") == []
    assert state_of(pipeline, MOVIE) == "REMUXING"
    spec = json.loads((job_folder(pipeline, "pending", pending[0]) / "spec.json").read_text())
    assert set(spec) >= {
        "id",
        "kind",
        "item",
        "input_dir",
        "output_dir",
        "destination",
        "priority",
        "attempts",
        "max_attempts",
        "created_at",
        "not_before",
    }
    # Running it again writes nothing more: never two live jobs for an item.
    assert "0 job(s) queued" in pipeline.mp("dispatch").stdout
    assert len(pipeline.queue("pending")) == 2


def test_claim_runs_the_script_with_arguments_and_environment(pipeline):
    ripped(pipeline, DISC)
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    result = pipeline.mp("claim", "--worker", "w1")
    assert f"job {job_id} completed" in result.stdout
    assert pipeline.queue("completed") == [job_id]
    args = (pipeline.root / f"args.{job_id}").read_text().splitlines()
    assert args == [str(pipeline.folder(DISC, "1-ripped")), str(pipeline.folder(DISC, "2-remuxed"))]
    env = dict(
        line.split("=", 1) for line in (pipeline.root / f"env.{job_id}").read_text().splitlines()
    )
    assert env["MP_JOB_ID"] == job_id
    assert env["MP_ITEM_TITLE"] == "The Wire" and env["MP_DISC_LABEL"] == "S02 Disc1"
    assert env["MP_ITEM_TYPE"] == "tv"
    folder = job_folder(pipeline, "completed", job_id)
    assert json.loads((folder / "result.json").read_text())["status"] == "completed"
    assert (folder / "claimed_by").read_text() == "w1\n"
    pipeline.mp("reconcile")
    assert state_of(pipeline, DISC) == "REMUXED"
    jobs = json.loads(pipeline.mp("jobs", "--json").stdout)["jobs"]
    assert [(j["id"], j["state"], j["worker"]) for j in jobs] == [(job_id, "completed", "w1")]
    assert "completed" in pipeline.mp("history", DISC.uid).stdout


def test_a_whole_pipeline_with_gates_off(pipeline):
    pipeline.mp("reconcile")  # a new install: the database
    pipeline.mp("rip", "--type", "movie", "--title", MOVIE.title)
    assert state_of(pipeline, MOVIE) == "RIPPING"
    for _ in range(4):
        assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")
    assert state_of(pipeline, MOVIE) == "IN_LIBRARY"
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    assert [line.split()[:2] for line in pipeline.runlog() if line.startswith("done")] == [
        ["done", "rip"],
        ["done", "remux"],
        ["done", "transcode"],
        ["done", "filebot"],
    ]
    filebot_id = next(n for n in pipeline.queue("completed") if "_filebot_" in n)
    args = (pipeline.root / f"args.{filebot_id}").read_text().splitlines()
    library = pipeline.root / "library"
    assert args[1] == str(library / "Movies" / MOVIE.title / f"{MOVIE.title}.mkv")


def test_exit_0_without_the_marker_is_a_failure_and_backs_off(pipeline):
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "nomarker")
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "did not write" in result.stdout and "will be retried" in result.stdout
    (job_id,) = pipeline.queue("pending")
    spec = json.loads((job_folder(pipeline, "pending", job_id) / "spec.json").read_text())
    assert spec["attempts"] == 1
    assert spec["not_before"] > time.time() + 30  # back-off: 60 s for the first failure
    # Inside the back-off, nothing is claimed.
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    assert pipeline.runlog() == [f"start remux {job_id}"]


def test_max_attempts_fails_the_job_and_the_item_until_retry(pipeline):
    pipeline.write_pipeline_config(jobs={"max_attempts": 2, "backoff_seconds": 1})
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    (job_id,) = pipeline.queue("pending")
    spec_path = job_folder(pipeline, "pending", job_id) / "spec.json"
    spec = json.loads(spec_path.read_text())
    pending = spec_path.parent.parent
    (wait,) = pending.glob(".wait.*")
    assert wait.name == f".wait.{math.ceil(spec['not_before'])}.{job_id}"
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    wait.rename(pending / f".wait.0.{job_id}")  # as if the back-off had passed
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "failed for good (script exited with 3)" in result.stdout
    assert pipeline.queue("failed") == [job_id]
    outcome = json.loads((job_folder(pipeline, "failed", job_id) / "result.json").read_text())
    assert outcome["exit_code"] == 3 and "something broke" in outcome["log_tail"]
    pipeline.mp("reconcile")
    item = next(i for i in pipeline.status_json()["items"])
    assert item["state"] == "FAILED" and "script exited with 3" in item["reason"]
    assert item["stopped_in"] == "REMUXING"
    pipeline.behave("remux", "ok")
    assert "back to RIPPED" in pipeline.mp("retry", MOVIE.uid).stdout
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    assert state_of(pipeline, MOVIE) == "REMUXED"


def test_a_closed_window_leaves_the_job_pending(pipeline):
    later = datetime.now() + timedelta(hours=2)
    window = f"{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"
    pipeline.write_pipeline_config(windows={"remux": window})
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    result = pipeline.mp("claim", "--worker", "w1")
    assert "outside its time window" in result.stdout
    assert len(pipeline.queue("pending")) == 1 and pipeline.runlog() == []


def test_a_script_past_its_timeout_is_stopped_and_fails(pipeline):
    pipeline.write_pipeline_config()
    config = json.loads(json.dumps(__import__("yaml").safe_load(pipeline.config_path.read_text())))
    config["scripts"]["remux"]["timeout_seconds"] = 1
    pipeline.write_config(
        **{
            k: v
            for k, v in config.items()
            if k not in ("staging_root", "library_root", "database", "gates")
        }
    )
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "block")
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "timed out after 1 s" in result.stdout


def test_a_script_with_no_timeout_configured_has_its_kinds_default(pipeline, monkeypatch):
    """A filing script blocked for ever (on a FIFO planted in the library, say) with no
    timeout_seconds in the config: its kind's default stops it. The defaults are hours;
    here the remux default is made 1 s in this process, where the claim runs."""
    from media_pipeline.config import hosts

    assert "timeout_seconds" not in pipeline.config_path.read_text()
    monkeypatch.setitem(hosts.DEFAULT_TIMEOUTS, "remux", 1)
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "block")
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "timed out after 1 s" in result.stdout


def test_every_kind_has_a_finite_timeout_and_the_claim_unit_waits_longer(pipeline, tmp_path):
    from media_pipeline.config.hosts import DEFAULT_TIMEOUTS
    from media_pipeline.config.load import load_config
    from media_pipeline.setup.timers import paths_for, render_units

    config = load_config(str(pipeline.config_path))
    assert set(DEFAULT_TIMEOUTS) == {"rip", "remux", "transcode", "filebot"}
    longest = config.longest_job_seconds()
    assert longest == max(DEFAULT_TIMEOUTS.values())  # none configured in the sandbox
    units = render_units(paths_for(config, mp="/usr/local/bin/mp"))
    line = next(
        line
        for line in units["mp-claim@.service"].splitlines()
        if line.startswith("TimeoutStartSec=")
    )
    assert int(line.removeprefix("TimeoutStartSec=").removesuffix("s")) > longest + 30


def test_priority_requeues_a_pending_job_under_a_better_name(pipeline):
    ripped(pipeline, MOVIE, DISC)
    pipeline.mp("dispatch")
    before = pipeline.queue("pending")
    disc_job = next(n for n in before if DISC.uid in n)
    result = pipeline.mp("priority", "tv/The Wire/S02 Disc1", "10")
    assert "re-queued" in result.stdout
    after = pipeline.queue("pending")
    assert len(after) == 2 and disc_job not in after
    assert pipeline.queue("tmp") == []
    # The better job is claimed first.
    first = pipeline.mp("claim", "--worker", "w1").stdout
    assert DISC.uid in first
    history = pipeline.mp("history", DISC.uid).stdout
    assert "job_p490_" in history


def test_a_backing_off_job_keeps_its_back_off_when_re_queued_and_reconcile_tidies(pipeline):
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.behave("remux", "ok")
    pipeline.mp("priority", MOVIE.uid, "5")
    (job_id,) = pipeline.queue("pending")
    assert job_id.startswith("job_p495_")
    # Re-queued under its new name, it still waits out the back-off of the old one.
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    pending = job_folder(pipeline, "pending", job_id).parent
    waits = sorted(path.name for path in pending.glob(".wait.*"))
    assert len(waits) == 2 and waits[0].endswith(job_id) != waits[1].endswith(job_id)
    for wait in pending.glob(".wait.*"):
        wait.rename(pending / (".wait.0." + wait.name.split(".", 3)[3]))
    pipeline.mp("reconcile")
    assert list(pending.glob(".wait.*")) == []  # expired back-offs are cleared
    assert job_id in pipeline.mp("claim", "--worker", "w1").stdout


def test_worker_not_in_config_is_a_usage_error(pipeline):
    result = pipeline.mp("claim", "--worker", "nobody", expect=2)
    assert "worker 'nobody' is not under 'workers'" in result.stderr


def test_rip_refuses_an_item_already_tracked(pipeline):
    pipeline.mp("reconcile")  # a new install: the database
    pipeline.mp("rip", "--type", "tv", "--title", "Lost", "--disc-label", "S01 Disc1")
    result = pipeline.mp(
        "rip", "--type", "tv", "--title", "Lost", "--disc-label", "S01 Disc1", expect=2
    )
    assert "already tracked" in result.stderr
    assert (
        "needs --disc-label" in pipeline.mp("rip", "--type", "tv", "--title", "X", expect=2).stderr
    )
    assert (
        "cannot be a folder name"
        in pipeline.mp("rip", "--type", "movie", "--title", "../etc", expect=2).stderr
    )


def test_losing_the_database_rebuilds_jobs_and_queued_rips(pipeline):
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("rip", "--type", "tv", "--title", "Lost", "--disc-label", "S01 Disc1")
    pipeline.mp("reconcile")
    before = pipeline.status_json()
    jobs_before = pipeline.mp("history", MOVIE.uid).stdout
    # The database lost, its keys kept (docs/operations.md says to back them up).
    for path in pipeline.database.parent.glob(pipeline.database.name + "*"):
        path.unlink()
    pipeline.mp("reconcile")
    after = pipeline.status_json()
    strip = lambda status: sorted(  # noqa: E731
        (i["uid"], i["state"]) for i in status["items"]
    )
    assert strip(after) == strip(before)
    history = pipeline.mp("history", MOVIE.uid).stdout
    job_lines = [line for line in jobs_before.splitlines() if line[18:].startswith("job ")]
    assert job_lines and all(line in history for line in job_lines)
    assert "remux job" in history and "completed" in history


def test_with_the_signing_key_lost_too_no_queued_job_is_taken_in(pipeline):
    pipeline.mp("reconcile")  # a new install: the database
    pipeline.mp("rip", "--type", "tv", "--title", "Lost", "--disc-label", "S01 Disc1")
    (job_id,) = pipeline.queue("pending")
    for path in pipeline.database.parent.iterdir():
        path.unlink()
    result = pipeline.mp("reconcile", "-v")
    assert pipeline.status_json()["items"] == []
    assert pipeline.queue("pending") == []
    assert f"job {job_id} in pending/: not trusted: it is signed by 'controller'" in (result.stderr)
    (reason,) = (pipeline.staging / ".pipeline" / "jobs" / "rejected").glob(f"*.{job_id}/reason")
    assert "no item changed" in reason.read_text()


def test_a_job_that_vanished_from_the_queue_is_dispatched_again(pipeline):
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    import shutil

    shutil.rmtree(job_folder(pipeline, "pending", job_id))
    result = pipeline.mp("reconcile", "-v")
    assert "REMUXING -> RIPPED" in result.stderr
    pipeline.mp("dispatch")
    assert len(pipeline.queue("pending")) == 1


def test_old_finished_jobs_are_removed_but_their_history_stays(pipeline):
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    (job_id,) = pipeline.queue("completed")
    folder = job_folder(pipeline, "completed", job_id)
    old = time.time() - 31 * 86400
    for path in (folder / "result.json", folder):
        os.utime(path, (old, old))
    result = pipeline.mp("reconcile", "-v")
    assert "folder removed" in result.stderr
    assert pipeline.queue("completed") == []
    assert job_id in pipeline.mp("history", MOVIE.uid).stdout


def _verification_fails(pipeline, behaviour) -> str:
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", behaviour)
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "outputs failed verification" in result.stdout
    assert pipeline.queue("completed") == [] and len(pipeline.queue("pending")) == 1
    return result.stdout


def test_an_empty_output_fails_verification(pipeline):
    assert "remux.out is empty" in _verification_fails(pipeline, "empty")


def test_unreadable_media_fails_verification(pipeline):
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe is not installed (make test installs it)")
    assert "broken.mkv is not readable media" in _verification_fails(pipeline, "garbage")


def test_an_output_much_longer_than_any_input_fails_verification(pipeline):
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed (make test installs it)")
    pipeline.mark(MOVIE, "1-ripped", "rip")
    shutil.copy(pipeline.root / "sample.mkv", pipeline.folder(MOVIE, "1-ripped") / "t00.mkv")
    text = _verification_fails(pipeline, "long")
    assert "long.mkv lasts 4.0 s; no input lasts about as long (1.0 s)" in text


def test_a_job_half_built_by_a_dead_dispatch_is_cleared_after_an_hour(pipeline):
    tmp = pipeline.staging / ".pipeline" / "jobs" / "tmp"
    (tmp / "job_p500_20261124T000000000000_remux_movie_0123456789ab").mkdir(parents=True)
    fresh = tmp / "job_p500_20261124T000000000001_remux_movie_0123456789ab"
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(tmp / "job_p500_20261124T000000000000_remux_movie_0123456789ab", (old, old))
    assert "half-built in tmp/" in pipeline.mp("reconcile", "-v").stderr
    assert pipeline.queue("tmp") == [fresh.name]


def test_cancel_stops_that_item_s_job_and_no_other(pipeline):
    """Six items with pending jobs: cancelling each in turn takes its own job out of the
    queue, whatever order the folder lists them in. (Found by mutation testing: the
    queue matched an item's job by `<=` on its uid, and every test still passed.)"""
    keys = [ItemKey("movie", f"Film {n} (200{n})") for n in range(6)]
    ripped(pipeline, *keys)
    pipeline.mp("dispatch")
    remaining = {key.uid for key in keys}
    for key in sorted(keys, key=lambda k: k.uid, reverse=True):  # the largest uid first
        pipeline.mp("cancel", key.uid)
        remaining.discard(key.uid)
        pending = {job_name(name).item_uid for name in pipeline.queue("pending")}
        assert pending == remaining, f"cancelling {key.name} took another item's job"


def test_a_failure_says_what_the_script_said_last(pipeline):
    """'script exited with 3' tells a person nothing: the item's reason, mp why and mp
    status carry the script's last line (ffmpeg's sentence, in real life)."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    ripped(pipeline, MOVIE)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.mp("reconcile")
    item = next(i for i in pipeline.status_json()["items"] if i["uid"] == MOVIE.uid)
    assert item["state"] == "FAILED"
    assert "script exited with 3 (it said: something broke)" in item["reason"], item["reason"]
    assert "it said: something broke" in pipeline.mp("why", MOVIE.uid).stdout
