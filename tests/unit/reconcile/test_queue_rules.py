"""Reconcile's queue decisions on their own: an item's state and what the queue shows
in, what becomes of the item out. Pure; the wiring is tested in tests/integration."""

from __future__ import annotations

import pytest

from media_pipeline.pipeline import JOB_KINDS, KIND_STATES, State
from media_pipeline.reconcile.queue_rules import after_refusal, latest_job_says, orphan_fate


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
