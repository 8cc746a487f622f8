"""`mp why ITEM`: what an item waits for, and since when, in a sentence or two."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from media_pipeline.config.hosts import window_open
from media_pipeline.config.settings import Config
from media_pipeline.control.dispatch import earlier_filings
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import printable
from media_pipeline.items.state import item_name
from media_pipeline.jobs.outcome import log_tail
from media_pipeline.jobs.queue import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    JobName,
    Queue,
    RunningName,
    back_off_time,
)
from media_pipeline.library.disc import Drive
from media_pipeline.library.filing import settle_filing
from media_pipeline.library.seasons import Waiting
from media_pipeline.pipeline import DESTINATION_GATE, FILING_STAGE, NEXT_JOB, RUNNING_KINDS, State
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry
from media_pipeline.store import reading_database
from media_pipeline.text import NOT_A_TIME, duration_text, local_time, mixed_scripts


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _pending_job(config: Config, queue: Queue, name: str, kind: str) -> str:
    job = JobName.parse(name)
    now = time.time()
    spec = queue.read_spec(PENDING, name) or {}
    until = back_off_time(spec.get("not_before"))
    if until is not None and until > now:
        return (
            f"Its {kind} job failed {spec.get('attempts', '?')} time(s) (last: "
            f"{printable(str(spec.get('last_error', 'no reason recorded')))}) and backs "
            f"off until {datetime.fromtimestamp(until):%Y-%m-%d %H:%M}."
        )
    window = config.windows.get(kind)
    if window is not None:
        moment = datetime.now()
        minute = moment.hour * 60 + moment.minute
        if not window_open(window, minute):
            return (
                f"Its {kind} job waits for the {kind} window {_clock(window[0])}-"
                f"{_clock(window[1])} (it is {moment:%H:%M} now)."
            )
    workers = sorted(name for name, spec in config.workers.items() if kind in spec.kinds)
    waited = duration_text(now - job.created.timestamp()) if job else "a while"
    if not workers:
        return (
            f"Its {kind} job has waited {waited}, but no worker under 'workers' in "
            f"{config.source} runs {kind} jobs."
        )
    drive = Drive.named_in(spec, kind)
    if drive is not None and drive.host:
        return (
            f"Its {kind} job has waited {waited} for host {drive.host}, whose drive "
            f"{drive.device} holds the disc: only a rip worker's claim on that host takes it "
            "(is its mp-claim timer running?)."
        )
    return (
        f"Its {kind} job has waited {waited} in the queue for a worker to claim it; "
        f"{', '.join(workers)} can run it (each claims from its mp-claim timer)."
    )


def _running_job(config: Config, queue: Queue, name: str, kind: str) -> str:
    entry = RunningName.parse(name)
    # The worker's name is part of a folder's name on the share: anyone's text.
    worker = printable(entry.worker) if entry else "an unknown worker"
    now = time.time()
    if entry is not None:
        beat, silent = queue.liveness(entry, now, config.jobs.stale_after_seconds)
    else:
        beat = silent = queue.heartbeat_age(RUNNING, name, now)
    named = None  # the claim time its folder's name gives
    # Anyone's digits: a time past what mp could write (back_off_time's bound) is none.
    claimed_at = back_off_time(entry.claimed) if entry is not None else None
    if claimed_at is not None:
        named = datetime.fromtimestamp(claimed_at, UTC).isoformat()
    claimed = queue.read_claimed_at(RUNNING, name, limit=4096) or named
    since = local_time(claimed) or "a time it did not write"
    untimely = ""
    if since == NOT_A_TIME:
        # Anyone can write claimed_at: other text is said to be none, never shown.
        since = local_time(named) or "a time not known"
        untimely = "; its claimed_at is not a time"
    if silent is not None and silent > config.jobs.stale_after_seconds:
        told = f"for {duration_text(silent)}" if math.isfinite(silent) else "that can be believed"
        return (
            f"Its {kind} job was running on {worker}, but it has given no sign of life "
            f"{told}; the next reconcile puts it back in the queue."
        )
    beat_text = f"heartbeat {duration_text(beat)} ago" if beat is not None else "no heartbeat yet"
    return f"Its {kind} job is running on {worker} since {since} ({beat_text}{untimely})."


# What the next reconcile does with an item whose job has ended, by the folder it ended in.
ENDED: dict[str, str] = {
    COMPLETED: "finished; the next reconcile moves the item on",
    FAILED: "failed for good; the next reconcile marks the item FAILED",
    CANCELLED: "was cancelled; the next reconcile marks the item CANCELLED",
}


def _ended_job(queue: Queue, item: dict, kind: str, state: State, since: str) -> str:
    """For an item in a job's state without a live job: its job has ended and reconcile
    has not looked yet, or the job is gone."""
    # Only a job of this visit to the state: one written shortly before the item entered
    # it (dispatch writes the job, then moves the item), not one of an earlier try.
    entered = datetime.fromisoformat(item["updated_at"]) - timedelta(minutes=5)
    ended = [
        (job.created, folder)
        for folder, _name, job in queue.jobs(tuple(ENDED))
        if job.item_uid == item["uid"] and job.kind == kind and job.created >= entered
    ]
    if ended:
        _created, folder = max(ended)
        return f"Its {kind} job {ENDED[folder]} (it is in {folder}/)."
    return (
        f"It is {state} since {since}, but its {kind} job is not in the queue; the "
        "next reconcile sends it back to be queued again."
    )


def explain(
    config: Config, item: dict, approvals: list[dict], queue: Queue, waits: str | None = None
) -> str:
    """What the item waits for; `waits` is what holds its filing back beyond that (the
    earlier discs of its season), if anything."""
    """The sentence for one item, from its row, its approvals and the queue."""
    state = State(item["state"])
    since = local_time(item["updated_at"])
    if item.get("missing_since"):
        return (
            f"Its folder vanished from staging on {local_time(item['missing_since'])}; it is "
            f"kept as MISSING ({state}) and nothing moves until the folder is back."
        )
    pending = [a for a in approvals if a["status"] == "pending"]
    if pending:
        gate = pending[0]["gate"]
        return (
            f"It waits for a person's {gate} approval since "
            f"{local_time(pending[0]['requested_at'])}: run 'mp approve'."
        )
    live = queue.live_job_for(item["uid"])
    if state in RUNNING_KINDS:
        kind = RUNNING_KINDS[state]
        if live is None:
            return _ended_job(queue, item, kind, state, since)
        if live[0] == PENDING:
            return _pending_job(config, queue, live[1], kind)
        return _running_job(config, queue, live[1], kind)
    if state in NEXT_JOB:
        kind, gate, _running = NEXT_JOB[state]
        approved = [a for a in approvals if a["gate"] == gate and a["status"] == "approved"]
        if waits and (gate not in config.gates or approved):
            return f"It is {state} since {since}; its {kind} job {waits}."
        if gate in config.gates:
            decided = [a for a in approvals if a["gate"] == gate and a["status"] == "approved"]
            if not decided:
                return f"It is {state} since {since}; the next reconcile opens its {gate} approval."
            return (
                f"{gate} was approved by {decided[-1]['decided_by']} on "
                f"{local_time(decided[-1]['decided_at'])}; it waits for 'mp dispatch' to queue "
                f"its {kind} job."
            )
        return f"It is {state} since {since} and waits for 'mp dispatch' to queue its {kind} job."
    stopped_in = item.get("stopped_in") or "?"
    reason = printable(item.get("reason") or "no reason recorded")
    if state == State.FAILED:
        said = f"It failed in {stopped_in} on {since}: {reason}. 'mp retry' tries again."
        return said + _failed_log(queue, item)
    if state == State.REJECTED:
        return f"A person rejected it on {since} ({reason}). 'mp retry' asks again."
    if state == State.CANCELLED:
        return f"It was cancelled in {stopped_in} on {since}. 'mp retry' resumes it."
    return f"Done: in the library since {since}."


# How much of a failed job's log `mp why` shows: the end, where the error is.
FAILED_LOG_LINES = 5


def failed_log(queue: Queue, uid: str) -> tuple[str, list[str]] | None:
    """(job folder, its last lines with text in them) of the item's newest failed job,
    or None when it has none. The lines are the share's: escape them to show them."""
    failed = [(job.created, name) for _s, name, job in queue.jobs((FAILED,)) if job.item_uid == uid]
    if not failed:
        return None
    _created, name = max(failed)
    try:
        with queue.open_job(FAILED, name) as job:
            tail = log_tail(job)
    except (OSError, BadEntry):
        return None
    return name, [line for line in tail.splitlines() if line.strip()][-FAILED_LOG_LINES:]


def _failed_log(queue: Queue, item: dict) -> str:
    """The end of the item's newest failed job's log, each line indented and escaped."""
    found = failed_log(queue, item["uid"])
    if found is None or not found[1]:
        return ""
    name, lines = found
    shown = "".join(f"\n  {printable(line)[:300]}" for line in lines)
    return f"\nThe end of its log ({name}):{shown}"


def item_decisions(db, uid: str) -> list[dict]:
    """An item's approvals, oldest first, leaving out those a later one replaced: what
    explain() reads."""
    return list(
        db.query(
            "SELECT * FROM human_approvals WHERE item_uid = ? AND status != 'superseded' "
            "ORDER BY id",
            [uid],
        )
    )


def run_why(config: Config, item_text: str) -> Said:
    with reading_database(config) as db:
        if db is None:
            raise UsageError("no database yet: run 'mp reconcile' first")
        item = find_item(db, item_text)
        approvals = item_decisions(db, item["uid"])
        waits = None
        next_kind = NEXT_JOB.get(State(item["state"]))
        if next_kind is not None and next_kind[0] == FILING_STAGE.kind:
            # What dispatch would say: earlier discs, files gone, two files to one name.
            approved = [a for a in approvals if a["gate"] == DESTINATION_GATE]
            gated = DESTINATION_GATE in config.gates and approved
            chosen = approved[-1]["destination"] if gated else None
            # With what it filed before at another place, which dispatch moves first.
            with Queue.of(config) as queue:
                earlier = earlier_filings(config, queue, item)
            settled = settle_filing(config, db, item, chosen, earlier)
            waits = settled.reason if isinstance(settled, Waiting) else None
    with Queue.of(config) as queue:
        explained = explain(config, item, approvals, queue, waits)
    look_alike = mixed_scripts(f"{item['title']} {item['disc_label']}")
    if look_alike is not None:
        explained += f" Note: {look_alike}."
    return Said(f"{printable(item_name(item))}: {explained}")
