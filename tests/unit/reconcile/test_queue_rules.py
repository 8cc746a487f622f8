"""Reconcile's queue decisions on their own: an item's state and what the queue shows
in, what becomes of the item out. Pure; the wiring is tested in tests/integration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.queue import JobName, make_job_id
from media_pipeline.pipeline import JOB_KINDS, KIND_STATES, State
from media_pipeline.reconcile.queue_rules import (
    QueuedJob,
    Verdict,
    after_refusal,
    failure_reason,
    latest_job_says,
    newest_jobs,
    orphan_fate,
    rows_out_of_date,
    verdicts,
)


def never_asked() -> bool:
    raise AssertionError("the share was read when the decision did not need it")


@pytest.mark.parametrize(
    ("current", "folder", "kind", "expected"),
    [
        (State.REMUXING, "failed", "remux", (State.FAILED, "auto", "remux failed")),
        (State.TRANSCODING, "cancelled", "transcode", (State.CANCELLED, "manual", "job cancelled")),
        # dispatch died between writing the job and the item's state
        (
            State.REMUXED,
            "pending",
            "transcode",
            (State.TRANSCODING, "auto", "transcode job in the queue"),
        ),
        (
            State.TRANSCODED,
            "running",
            "filebot",
            (State.FILING, "auto", "filebot job in the queue"),
        ),
        # a failed job of a kind the item is no longer in says nothing
        (State.TRANSCODING, "failed", "remux", None),
        # a person retried the item since: the old failure is history
        (State.REMUXED, "failed", "remux", None),
        (State.REMUXING, "completed", "remux", None),
        # a live job for an item already past it
        (State.IN_LIBRARY, "pending", "remux", None),
    ],
)
def test_what_the_newest_job_means_for_its_item(current, folder, kind, expected):
    assert latest_job_says(current, folder, kind) == expected


def test_a_rip_job_in_the_queue_does_not_move_an_item_the_database_has_elsewhere():
    # Nothing comes before a rip: an item the database has is never moved to RIPPING by
    # a rip job it sees (a lost database's items come back through the restore instead).
    assert all(latest_job_says(s, "pending", "rip") is None for s in State)


@pytest.mark.parametrize("state", [State.RIPPED, State.IN_LIBRARY, State.FAILED, State.REJECTED])
def test_an_item_not_in_a_jobs_state_is_never_an_orphan(state):
    assert orphan_fate(state, None, never_asked, "remux") == "wait"


@pytest.mark.parametrize("folder", ["pending", "running", "failed", "cancelled"])
def test_a_job_of_the_kind_the_item_waits_for_speaks_for_it(folder):
    assert orphan_fate(State.REMUXING, (folder, "remux"), never_asked, "remux") == "wait"


def test_a_completed_job_waits_for_its_marker_only_if_written():
    assert orphan_fate(State.REMUXING, ("completed", "remux"), lambda: True, None) == "wait"
    assert orphan_fate(State.REMUXING, ("completed", "remux"), lambda: False, None) == "revert"


def test_a_job_of_another_kind_says_nothing_for_the_item():
    # A transcode job completed long ago does not speak for the filing job that vanished.
    assert orphan_fate(State.FILING, ("completed", "transcode"), never_asked, None) == "revert"


def test_a_vanished_job_sends_the_item_back_and_a_vanished_rip_fails_it():
    for kind in JOB_KINDS:
        fate = orphan_fate(KIND_STATES[kind], None, never_asked, None)
        assert fate == ("fail" if kind == "rip" else "revert")


def test_a_refused_job_of_the_kind_it_waits_for_is_a_refusal():
    assert orphan_fate(State.TRANSCODING, None, never_asked, "transcode") == "refused"
    assert orphan_fate(State.TRANSCODING, None, never_asked, "remux") == "revert"


def test_refusals_queue_the_job_again_until_max_attempts_then_fail():
    assert after_refusal(State.TRANSCODING, "transcode", 0, 3, "bad spec") == (
        State.REMUXED,
        "its transcode job was rejected (bad spec); will be dispatched again",
    )
    assert after_refusal(State.TRANSCODING, "transcode", 1, 3, "bad spec")[0] == State.REMUXED
    assert after_refusal(State.TRANSCODING, "transcode", 2, 3, "bad spec") == (
        State.FAILED,
        "its transcode job was rejected 3 time(s), last: bad spec",
    )


def test_a_refused_rip_fails_at_once():
    assert after_refusal(State.RIPPING, "rip", 0, 3, "link")[0] == State.FAILED


# -- sync_jobs' plan: which job speaks for each item, which rows are stale, what follows


def queued(state: str, kind: str, made: datetime, uid: str = "0123456789ab", worker: str = ""):
    job_id = make_job_id(kind, ItemKey("movie", "Heat"), 0, made).replace(
        ItemKey("movie", "Heat").uid, uid
    )
    name = f"{job_id}.{worker}.42.t1" if state == "running" else job_id
    job = JobName.parse(job_id)
    assert job is not None
    return QueuedJob(state, name, job)


T1 = datetime(2026, 11, 1, tzinfo=UTC)
T2 = datetime(2026, 11, 2, tzinfo=UTC)
T3 = datetime(2026, 11, 3, tzinfo=UTC)


def test_the_newest_job_by_creation_speaks_for_its_item():
    old, new = queued("failed", "remux", T1), queued("pending", "remux", T2)
    other = queued("running", "rip", T1, uid="ba9876543210", worker="w1")
    assert newest_jobs([new, old, other], {}) == {
        "0123456789ab": new,
        "ba9876543210": other,
    }


def test_an_ended_job_older_than_a_persons_last_change_no_longer_speaks():
    failed = queued("failed", "remux", T1)
    assert newest_jobs([failed], {"0123456789ab": T2}) == {}
    # A live one still does, and a failure after the person's change does too.
    live = queued("pending", "remux", T1)
    assert newest_jobs([live], {"0123456789ab": T2}) == {"0123456789ab": live}
    later = queued("failed", "remux", T3)
    assert newest_jobs([failed, later], {"0123456789ab": T2}) == {"0123456789ab": later}


def test_only_rows_that_say_another_folder_or_worker_are_written_again():
    pending = queued("pending", "remux", T1)
    running = queued("running", "rip", T1, uid="ba9876543210", worker="w2")
    new = queued("completed", "transcode", T2, uid="aaaaaaaaaaaa")
    known: dict[str, dict] = {
        pending.job.job_id: {"state": "pending", "worker": None},
        running.job.job_id: {"state": "running", "worker": "w1"},  # claimed elsewhere since
    }
    assert rows_out_of_date([pending, running, new], known) == [running, new]


def test_verdicts_follow_latest_job_says_for_the_items_the_database_has():
    failed = queued("failed", "remux", T1)
    unknown = queued("pending", "rip", T1, uid="ba9876543210")
    newest = {"0123456789ab": failed, "ba9876543210": unknown}
    items = {"0123456789ab": {"state": "REMUXING"}}
    assert verdicts(newest, items) == [
        Verdict("0123456789ab", failed, State.REMUXING, State.FAILED, "auto", "remux failed")
    ]
    assert verdicts(newest, {"0123456789ab": {"state": "TRANSCODING"}}) == []


def test_a_failure_says_its_outcome_and_the_scripts_last_words_escaped():
    assert failure_reason("remux failed", {}) == "remux failed: no reason recorded"
    result = {"reason": "exit 1", "said": "  bad \x1b[31mframe\n"}
    assert failure_reason("remux failed", result) == (
        "remux failed: exit 1 (it said: bad \\x1b[31mframe)"
    )
