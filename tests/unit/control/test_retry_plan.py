"""`mp retry`'s rules on their own: an item's row and what is known of it in, a plan (or
a refusal) out. No database and no share: control/retry_plan.py is pure."""

from __future__ import annotations

import pytest

from media_pipeline.control.retry_plan import (
    ASKS_AGAIN,
    RetryFacts,
    done_say,
    plan_retry,
    would_say,
)
from media_pipeline.errors import UsageError
from media_pipeline.items.names import ItemKey
from media_pipeline.pipeline import State

MOVIE = ItemKey("movie", "Heat (1995)")
BOTH_GATES = ("remux_review", "filebot_confirm")


def facts(
    state: State,
    stopped_in: State | None = None,
    *,
    gates: tuple[str, ...] = BOTH_GATES,
    approved: tuple[str, ...] = (),
    live_job: bool = False,
) -> RetryFacts:
    row = {
        "uid": MOVIE.uid,
        "type": MOVIE.type,
        "title": MOVIE.title,
        "disc_label": MOVIE.disc_label,
        "state": state,
        "stopped_in": stopped_in,
    }
    return RetryFacts(row, gates, frozenset(approved), live_job)


def test_a_failed_job_goes_back_to_the_state_before_it():
    plan = plan_retry(facts(State.FAILED, State.TRANSCODING))
    assert (plan.target, plan.gate, plan.asks, plan.redo_stage) == (
        State.REMUXED,
        "remux_review",
        True,  # its approval is not in force: the gate asks
        None,
    )
    assert plan.forget == (("rejected", None),)
    assert plan.reason == "mp retry (FAILED)" and not plan.decision_aside
    assert done_say(plan, "movie/Heat (1995)") == (
        f"movie/Heat (1995): back to REMUXED; remux_review {ASKS_AGAIN}"
    )


def test_an_approval_in_force_is_not_asked_for_again():
    plan = plan_retry(facts(State.FAILED, State.TRANSCODING, approved=("remux_review",)))
    assert plan.target == State.REMUXED and not plan.asks
    assert done_say(plan, "x") == "x: back to REMUXED; 'mp dispatch' queues its job"


def test_a_rejection_is_set_aside_and_its_gate_asks_again():
    plan = plan_retry(facts(State.REJECTED, State.REMUXED, approved=("remux_review",)))
    assert plan.target == State.REMUXED and plan.asks and plan.decision_aside
    assert would_say(plan, "x", "") == (
        "x: would go back to REMUXED; remux_review would ask again "
        "(its decision is kept, set aside)"
    )


def test_a_gate_that_is_off_asks_nothing():
    plan = plan_retry(facts(State.REJECTED, State.REMUXED, gates=("filebot_confirm",)))
    assert plan.gate is None and not plan.asks


def test_a_stopped_rip_rips_again_at_once():
    plan = plan_retry(facts(State.CANCELLED, State.RIPPING))
    assert plan.target == State.RIPPING and plan.rips and plan.gate is None
    assert would_say(plan, "x", "/dev/sr0 again") == (
        "x: would go back to RIPPING; its rip reads /dev/sr0 again"
    )


def test_redo_sets_the_rejected_output_aside_and_makes_it_again():
    plan = plan_retry(facts(State.REJECTED, State.TRANSCODED), redo=True)
    assert (plan.redo_stage, plan.target) == ("3-transcoded", State.REMUXED)
    assert plan.reason == "mp retry --redo (REJECTED)"
    said = done_say(plan, "x", moved="/s/3-transcoded/movies/.Heat.rejected-1")
    assert said.startswith("x: its rejected output was set aside as ")
    assert said.endswith("back to REMUXED, and 'mp dispatch' queues the job that makes it again")


@pytest.mark.parametrize(
    ("state", "stopped_in"),
    [(State.FAILED, State.TRANSCODING), (State.REJECTED, State.RIPPING)],
)
def test_redo_is_only_for_an_output_rejected_at_a_gate(state, stopped_in):
    with pytest.raises(UsageError, match="--redo is for an item rejected at a gate"):
        plan_retry(facts(state, stopped_in), redo=True)


def test_ask_again_sets_the_approval_aside_too():
    plan = plan_retry(
        facts(State.FAILED, State.FILING, approved=("filebot_confirm",)), ask_again=True
    )
    assert plan.target == State.TRANSCODED and plan.asks and plan.decision_aside
    assert plan.forget == (("rejected", None), ("approved", "filebot_confirm"))
    assert plan.reason == "mp retry --ask-again (FAILED)"


def test_ask_again_of_an_approved_item_waiting_past_its_gate_only_asks_again():
    waiting = facts(State.REMUXED, approved=("remux_review",))
    plan = plan_retry(waiting, ask_again=True)
    assert (plan.target, plan.gate, plan.forget) == (
        None,
        "remux_review",
        (("approved", "remux_review"),),
    )
    assert would_say(plan, "x", "") == "x: remux_review would ask again"
    assert done_say(plan, "x") == f"x: remux_review {ASKS_AGAIN}"
    # With a job under way it is not waiting: an item that is not stopped is refused.
    with pytest.raises(UsageError, match="only FAILED, REJECTED or CANCELLED"):
        plan_retry(facts(State.REMUXED, approved=("remux_review",), live_job=True), ask_again=True)


def test_ask_again_where_no_gate_is_on_is_refused():
    with pytest.raises(UsageError, match=r"--ask-again: .* goes back to RIPPING, where no gate"):
        plan_retry(facts(State.FAILED, State.RIPPING), ask_again=True)


def test_ask_again_past_review_without_a_filing_gate_is_refused():
    with pytest.raises(UsageError, match="add filebot_confirm to 'gates'"):
        plan_retry(facts(State.FAILED, State.FILING, gates=("remux_review",)), ask_again=True)


def test_what_cannot_be_retried_says_why():
    with pytest.raises(UsageError, match=r"movie/Heat \(1995\) is REMUXED; only FAILED"):
        plan_retry(facts(State.REMUXED))
    with pytest.raises(UsageError, match="still has a live job"):
        plan_retry(facts(State.FAILED, State.REMUXING, live_job=True))
    with pytest.raises(UsageError, match="does not record where it stopped"):
        plan_retry(facts(State.FAILED, None))
