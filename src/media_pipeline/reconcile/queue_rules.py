"""What the queue says about an item, decided without touching anything: the rules
`reconcile/queue_sync.py` applies. Pure, so each is tested on its own.

A job is seen as (the queue folder it is in, its kind); an item by its state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from media_pipeline.jobs.queue import (
    CANCELLED,
    FAILED,
    LIVE_DIRS,
)
from media_pipeline.pipeline import BEFORE_KIND, KIND_STATES, REVERT, RUNNING_KINDS, State

# The states an item is in while a job of its works on it: a job must speak for it.
IN_JOB = (*REVERT, State.RIPPING)

Fate = Literal["wait", "refused", "fail", "revert"]


def latest_job_says(current: State, folder: str, kind: str) -> tuple[State, str, str] | None:
    """What an item's newest job means for it: (new state, trigger, reason), or None.
    A job that failed for good or was cancelled ends the item it was working on; a live
    job for an item still waiting before it (dispatch died between the two writes, or a
    rip queued before the database was lost) moves the item to the job's state."""
    working = KIND_STATES[kind]
    if folder == FAILED and current == working:
        return State.FAILED, "auto", f"{kind} failed"
    if folder == CANCELLED and current == working:
        return State.CANCELLED, "manual", "job cancelled"
    if folder in LIVE_DIRS and current == BEFORE_KIND.get(kind):
        return working, "auto", f"{kind} job in the queue"
    return None


def orphan_fate(
    current: State,
    latest: tuple[str, str] | None,
    marker_written: Callable[[], bool],
    refused_kind: str | None,
) -> Fate:
    """What becomes of an item in a job's state: "wait" while a job of the kind it waits
    for is live, ended (failed, cancelled: latest_job_says handles those) or done with
    its marker written; "refused" when a worker refused that job and put it in
    rejected/; else its job vanished: a rip cannot be made again from staging ("fail"),
    any other job is dispatched again ("revert"). `latest` is the newest job's (folder,
    kind); `refused_kind` the kind of a refused job no older than it. marker_written
    reads the share, so it is asked last and only when it decides."""
    if current not in IN_JOB:
        return "wait"
    kind = RUNNING_KINDS[current]
    same_kind = latest is not None and latest[1] == kind
    if same_kind and latest is not None and latest[0] in (*LIVE_DIRS, FAILED, CANCELLED):
        return "wait"
    if same_kind and marker_written():
        return "wait"  # completed after this reconcile read the markers: the next moves it
    if refused_kind == kind:
        return "refused"
    return "fail" if current == State.RIPPING else "revert"


def after_refusal(
    current: State, kind: str, earlier_refusals: int, max_attempts: int, why: str
) -> tuple[State, str]:
    """A refused job is queued again from the controller's own spec, up to max_attempts
    refusals since a person last acted on the item; then the item fails, with the
    reason. A rip fails at once: its disc is not in staging to queue again from."""
    refused = f"its {kind} job was rejected"
    if current == State.RIPPING or earlier_refusals + 1 >= max_attempts:
        return State.FAILED, f"{refused} {earlier_refusals + 1} time(s), last: {why}"
    return REVERT[current], f"{refused} ({why}); will be dispatched again"
