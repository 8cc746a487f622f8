"""`mp why ITEM`: one sentence for each thing an item can be waiting for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from conftest import silence

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")


def why(pipeline) -> str:
    out = pipeline.mp("why", MOVIE.uid).stdout
    assert out.startswith("movie/Heat (1995): ")
    return out


def ripped(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")


def test_waiting_for_dispatch(pipeline):
    ripped(pipeline)
    assert "waits for 'mp dispatch' to queue its remux job" in why(pipeline)


def test_waiting_for_an_approval_and_after_it(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    ripped(pipeline)
    pipeline.mark(MOVIE, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    assert "waits for a person's remux_review approval since" in why(pipeline)
    pipeline.mp("approve", MOVIE.uid, "--yes")
    text = why(pipeline)
    assert "remux_review was approved by" in text and "waits for 'mp dispatch'" in text


def test_a_job_no_worker_has_claimed_names_the_workers_that_could(pipeline):
    pipeline.write_pipeline_config(
        workers={
            "w1": {"kinds": ["rip"]},
            "ct303": {"kinds": ["remux"]},
            "spare": {"kinds": ["remux", "transcode"]},
        }
    )
    ripped(pipeline)
    pipeline.mp("dispatch")
    text = why(pipeline)
    assert "Its remux job has waited" in text and "ct303, spare can run it" in text


def test_no_worker_runs_the_kind(pipeline):
    ripped(pipeline)
    pipeline.mp("dispatch")
    pipeline.write_pipeline_config(workers={"w1": {"kinds": ["rip"]}})
    assert "no worker under 'workers'" in why(pipeline)


def test_a_closed_window(pipeline):
    later = datetime.now() + timedelta(hours=3)
    window = f"{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"
    pipeline.write_pipeline_config(windows={"remux": window})
    ripped(pipeline)
    pipeline.mp("dispatch")
    assert f"waits for the remux window {window}" in why(pipeline)


def test_a_back_off(pipeline):
    ripped(pipeline)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    text = why(pipeline)
    assert "failed 1 time(s) (last: script exited with 3) and backs off until" in text


def test_running_and_then_a_stale_heartbeat(pipeline):
    ripped(pipeline)
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    pipeline.behave("remux", "block")
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mp")),
            "claim",
            "--worker",
            "w1",
            "--config",
            str(pipeline.config_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "MP_TEST_DIR": str(pipeline.root)},
    )
    try:
        started = pipeline.root / f"started.{job_id}"
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert "Its remux job is running on w1 since" in why(pipeline)
        (folder,) = (pipeline.staging / ".pipeline/jobs/running").iterdir()
        silence(folder)  # the worker, finding its job moved, stops it
        assert "it has given no sign of life for 60 min" in why(pipeline)
    finally:
        pipeline.mp("cancel", MOVIE.uid)
        worker.wait(timeout=60)


def test_a_failure_a_rejection_a_cancel_and_the_end(pipeline):
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    ripped(pipeline)
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.mp("reconcile")
    text = why(pipeline)
    assert "It failed in REMUXING on" in text and "script exited with 3" in text
    assert "'mp retry' tries again" in text
    pipeline.mp("retry", MOVIE.uid)
    pipeline.mp("dispatch")
    pipeline.mp("cancel", MOVIE.uid)
    assert "It was cancelled in REMUXING" in why(pipeline)
    pipeline.mark(MOVIE, "3-transcoded", "transcode", "filebot")
    pipeline.mp("reconcile")
    assert "Done: in the library since" in why(pipeline)


def test_a_vanished_job_and_a_vanished_folder(pipeline):
    ripped(pipeline)
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    shutil.rmtree(pipeline.staging / ".pipeline/jobs/pending" / job_id)
    assert "its remux job is not in the queue" in why(pipeline)
    pipeline.mp("reconcile")
    shutil.rmtree(pipeline.folder(MOVIE, "1-ripped"))
    pipeline.mark(ItemKey("movie", "Other"), "1-ripped", "rip")
    pipeline.mp("reconcile")
    assert "Its folder vanished from staging" in why(pipeline)


# A remux that fails the way ffmpeg does: a screenful of output, the error at the end.
LOUD_FAILURE = """#!/usr/bin/env bash
for n in 1 2 3 4 5; do echo "frame=$n"; done
printf 'title \\033]0;owned\\007 from the share\\n'
echo "Error while decoding stream #0:1: Invalid data found when processing input"
exit 1
"""


def test_a_failure_shows_the_end_of_its_log(pipeline):
    """`mp why` shows the last lines of the failed job's log, where the script's error
    is; share text in them is escaped, never acted on by the terminal."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    (pipeline.scripts / "remux.sh").write_text(LOUD_FAILURE)
    ripped(pipeline)
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.mp("reconcile")
    text = why(pipeline)
    ending = text[text.index("The end of its log") :].splitlines()[1:]
    assert ending[-1].strip() == (
        "Error while decoding stream #0:1: Invalid data found when processing input"
    ), text
    assert len(ending) == 5 and ending[0].strip() == "frame=3", text
    assert "\x1b" not in text and "\\x1b]0;owned" in text, text


def test_a_claim_time_beyond_any_date_in_a_running_name_is_no_time(pipeline):
    """A share writer's running/ID.w1.1.tN with N past the year 9999 (helper-29) made
    `mp why` print a traceback, or a sentence about the wrong thing; such a claim is no
    sign of life, as reconcile judges it."""
    ripped(pipeline)
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    jobs = pipeline.staging / ".pipeline" / "jobs"
    (jobs / "running").mkdir(exist_ok=True)
    for claimed in ("253402300800", "99999999999999999"):
        forged = f"{job_id}.w1.1.t{claimed}"
        (jobs / "pending" / job_id).rename(jobs / "running" / forged)
        said = why(pipeline)
        assert "given no sign of life that can be believed; the next reconcile puts it" in said
        (jobs / "running" / forged).rename(jobs / "pending" / job_id)
