"""What the queue says about an item, decided without touching anything: the rules
`reconcile/queue_sync.py` applies. Pure, so each is tested on its own.

A job is seen as (the queue folder it is in, its kind); an item by its state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Literal, NamedTuple

from media_pipeline.items.names import printable
from media_pipeline.jobs.queue import CANCELLED, FAILED, LIVE_DIRS, RUNNING, JobName, RunningName
from media_pipeline.pipeline import (
    BEFORE_KIND,
    DISC_STAGE,
    KIND_STATES,
    REVERT,
    RUNNING_KINDS,
    State,
)

# The states an item is in while a job of its works on it: a job must speak for it.
IN_JOB = (*REVERT, DISC_STAGE.running)

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
    return "fail" if current == DISC_STAGE.running else "revert"


def after_refusal(
    current: State, kind: str, earlier_refusals: int, max_attempts: int, why: str
) -> tuple[State, str]:
    """A refused job is queued again from the controller's own spec, up to max_attempts
    refusals since a person last acted on the item; then the item fails, with the
    reason. A rip fails at once: its disc is not in staging to queue again from."""
    refused = f"its {kind} job was rejected"
    if current == DISC_STAGE.running or earlier_refusals + 1 >= max_attempts:
        return State.FAILED, f"{refused} {earlier_refusals + 1} time(s), last: {why}"
    return REVERT[current], f"{refused} ({why}); will be dispatched again"


# -- sync_jobs' plan ---------------------------------------------------------------------


class QueuedJob(NamedTuple):
    """A job as the queue listing shows it: its folder, its folder's name, its name."""

    state: str
    name: str
    job: JobName


class Verdict(NamedTuple):
    """An item moved by its newest job: to target, by trigger, for reason."""

    uid: str
    newest: QueuedJob
    current: State
    target: State
    trigger: str
    reason: str


def newest_jobs(jobs: Iterable[QueuedJob], acted: Mapping[str, datetime]) -> dict[str, QueuedJob]:
    """Each item's newest job (by creation time: a job's name sorts by priority first),
    leaving out a failed or cancelled one that ended before a person last moved the item
    (acted, per uid): a retry after it means it no longer speaks for the item, and were
    the retry's job deleted, it would bring the item back."""
    newest: dict[str, QueuedJob] = {}
    for entry in jobs:
        job = entry.job
        acted_at = acted.get(job.item_uid)
        if entry.state in (FAILED, CANCELLED) and acted_at is not None and job.created < acted_at:
            continue
        if job.item_uid not in newest or job.created > newest[job.item_uid].job.created:
            newest[job.item_uid] = entry
    return newest


def rows_out_of_date(jobs: Iterable[QueuedJob], known: Mapping[str, dict]) -> list[QueuedJob]:
    """The jobs whose row in the jobs table is missing or says another folder, or, for a
    running one, another worker (a take-back and a claim elsewhere)."""
    found = []
    for entry in jobs:
        row = known.get(entry.job.job_id)
        running = RunningName.parse(entry.name) if entry.state == RUNNING else None
        worker = running.worker if running else None
        if row and row["state"] == entry.state and (worker is None or row["worker"] == worker):
            continue
        found.append(entry)
    return found


def verdicts(newest: Mapping[str, QueuedJob], items: Mapping[str, dict]) -> list[Verdict]:
    """What each item's newest job means for it (latest_job_says), in uid order, for the
    items the database has."""
    found = []
    for uid, entry in sorted(newest.items()):
        item = items.get(uid)
        if item is None:
            continue
        current = State(item["state"])
        said = latest_job_says(current, entry.state, entry.job.kind)
        if said is not None:
            found.append(Verdict(uid, entry, current, *said))
    return found


def failure_reason(reason: str, result: dict) -> str:
    """A failed item's reason: the rule's, the outcome's own reason, and what its script
    said last (signed with the outcome; shown escaped)."""
    reason = f"{reason}: {result.get('reason') or 'no reason recorded'}"
    said = result.get("said")
    if isinstance(said, str) and said.strip():
        reason += f" (it said: {printable(said.strip())[:200]})"
    return reason
