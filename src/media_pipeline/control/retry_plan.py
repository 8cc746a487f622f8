"""What `mp retry` does with an item, decided from what is known of it: no database, no
share, no clock. retry.py gathers the facts, asks for the plan, then carries it out (or,
for a dry run, says it); the rules are here, and tests/unit/control/test_retry_plan.py
holds them to account.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_pipeline.errors import UsageError
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.pipeline import (
    DESTINATION_GATE,
    DISC_STAGE,
    FILING_STAGE,
    GATE_STATES,
    REDO,
    RETRY_TARGET,
    REVIEW_GATE,
    STOPPED,
    State,
)

# The gate's approval is opened by reconcile, not by retry: say so, or 'mp approve' finds
# none.
ASKS_AGAIN = "asks again once 'mp reconcile' has run (then 'mp approve')"
# Decisions retry sets aside (kept): (their status, the gate, or None for every gate).
Forget = tuple[str, str | None]


@dataclass(frozen=True)
class RetryFacts:
    """What retry knows of the item before it decides."""

    row: dict  # its row in media_items
    gates: tuple[str, ...]  # the gates the config turns on
    approved: frozenset[str]  # the gates whose approval of it is in force
    live_job: bool  # it has a pending or running job

    @property
    def name(self) -> str:
        return printable(ItemKey.of(self.row).name)


@dataclass(frozen=True)
class RetryPlan:
    # The state the item goes back to; None when only its gate asks again (an approved
    # item waiting past its gate, with nothing to stop).
    target: State | None
    gate: str | None  # the gate at that state, when it is on (or the one asked again)
    asks: bool  # whether that gate asks the person again
    forget: tuple[Forget, ...]  # decisions set aside, in this order
    redo_stage: str | None = None  # --redo: the stage folder of the output set aside
    reason: str = ""  # the history row's reason
    # Whether a decision the person made goes aside (a rejection, or --ask-again's).
    decision_aside: bool = False

    @property
    def rips(self) -> bool:
        """Whether it goes back to ripping: its rip job is queued at once."""
        return self.target == DISC_STAGE.running


def plan_retry(facts: RetryFacts, *, redo: bool = False, ask_again: bool = False) -> RetryPlan:
    """The plan for `mp retry [--redo | --ask-again]`; UsageError, saying why, for an
    item it cannot retry so."""
    row, name = facts.row, facts.name
    waiting = _approved_gate_waiting(facts) if ask_again else None
    if waiting is not None and not facts.live_job:
        # Approved, and waiting for dispatch (an earlier disc, a file gone): nothing to
        # stop, so the decision is set aside (kept) and the gate asked again.
        return RetryPlan(None, waiting, True, (("approved", waiting),))
    if ask_again and _past_review_without_filing_gate(facts):
        raise UsageError(
            f"{name}: its files' roles were set at {REVIEW_GATE}, which it has passed, and "
            f"no filing gate is on to set them again: add {DESTINATION_GATE} to 'gates' in "
            "the config, then 'mp retry --ask-again' opens it"
        )
    if row["state"] not in STOPPED:
        raise UsageError(
            f"{name} is {row['state']}; only FAILED, REJECTED or CANCELLED items can be retried"
        )
    if facts.live_job:
        raise UsageError(f"{name} still has a live job; wait for its cancel to finish")
    stopped_in = State(row["stopped_in"]) if row["stopped_in"] else None
    target = RETRY_TARGET.get(stopped_in) if stopped_in else None
    if target is None:
        raise UsageError(
            f"{name} does not record where it stopped; run 'mp reconcile' and look at 'mp history'"
        )
    redo_stage = None
    if redo:
        if row["state"] != State.REJECTED or stopped_in not in REDO:
            raise UsageError(
                f"--redo is for an item rejected at a gate; {name} is {row['state']} in "
                f"{row['stopped_in'] or '?'}: 'mp retry' without it"
            )
        redo_stage, target = REDO[stopped_in]
    gate = next((g for g, state in GATE_STATES.items() if state == target), None)
    gate = gate if gate in facts.gates else None
    if ask_again and gate is None:
        raise UsageError(f"--ask-again: {name} goes back to {target}, where no gate is on")
    asks = gate is not None and (
        ask_again or row["state"] == State.REJECTED or gate not in facts.approved
    )
    # A rejection is always set aside (it would say no again); with --ask-again, the
    # approval at the gate it goes back to.
    forget: tuple[Forget, ...] = (("rejected", None),)
    if ask_again and gate is not None:
        forget += (("approved", gate),)
    flags = " --redo" if redo else " --ask-again" if ask_again else ""
    reason = f"mp retry{flags} ({row['state']})"
    decision_aside = row["state"] == State.REJECTED or ask_again
    return RetryPlan(target, gate, asks, forget, redo_stage, reason, decision_aside)


def _approved_gate_waiting(facts: RetryFacts) -> str | None:
    """The approved gate of the item's state, which it waits past for its next job to
    be queued (an earlier disc, a file gone), if any."""
    gate = next((g for g, state in GATE_STATES.items() if state == facts.row["state"]), None)
    if gate is not None and gate in facts.gates and gate in facts.approved:
        return gate
    return None


def _past_review_without_filing_gate(facts: RetryFacts) -> bool:
    """A transcoded (or stopped in filing) item whose roles only remux_review could set."""
    stopped = facts.row.get("stopped_in") or facts.row["state"]
    filing = stopped in (GATE_STATES[DESTINATION_GATE], FILING_STAGE.running)
    return filing and REVIEW_GATE in facts.gates and DESTINATION_GATE not in facts.gates


def would_say(plan: RetryPlan, name: str, drive_said: str) -> str:
    """What a dry run says the plan would do (a --redo's is said by retry.py, which
    looks for the folder first)."""
    if plan.target is None:
        return f"{name}: {plan.gate} would ask again"
    again = f"; {plan.gate} would ask again" if plan.asks else ""
    if plan.decision_aside:
        again += " (its decision is kept, set aside)"
    if plan.rips:
        again += f"; its rip reads {drive_said}"
    return f"{name}: would go back to {plan.target}{again}"


def done_say(plan: RetryPlan, name: str, *, moved: str | None = None) -> str:
    """What retry says it did (a rip, queued at once, is said by retry.py with its job)."""
    if plan.target is None:
        return f"{name}: {plan.gate} {ASKS_AGAIN}"
    if moved:
        return (
            f"{name}: its rejected output was set aside as {printable(moved)} (kept); back "
            f"to {plan.target}, and 'mp dispatch' queues the job that makes it again"
        )
    if plan.asks:
        return f"{name}: back to {plan.target}; {plan.gate} {ASKS_AGAIN}"
    return f"{name}: back to {plan.target}; 'mp dispatch' queues its job"
