"""Reconcile's side of the job queue: take back orphaned jobs, drop old ones, and bring
the `jobs` table and the items' states in line with the queue folders.

Every function returns one sentence per change; with dry_run they only describe.
"""

from __future__ import annotations

import logging
import os
import time

from sqlite_utils import Database

from media_pipeline.config import Config
from media_pipeline.item_state import change_state, create_item, item_name, write_item_files
from media_pipeline.items import printable
from media_pipeline.jobs.dispatch import KIND_STATES
from media_pipeline.jobs.outcome import record_failure
from media_pipeline.jobs.queue import (
    HEARTBEAT_FILE,
    LIVE_DIRS,
    RESULT_FILE,
    SPEC_FILE,
    JobName,
    Queue,
    RunningName,
    age_seconds,
    read_json,
    write_json,
)
from media_pipeline.jobs.spec import SpecError, parse_spec
from media_pipeline.notify import Event, notify
from media_pipeline.states import State
from media_pipeline.store import in_slices, rows_by, utc_now

log = logging.getLogger(__name__)

# job kind -> the state an item is in before that job is queued
BEFORE_KIND = {"remux": State.RIPPED, "transcode": State.REMUXED, "filebot": State.TRANSCODED}
FINISHED_DIRS = ("completed", "failed", "cancelled")


def recover_stale_jobs(config: Config, queue: Queue, *, dry_run: bool) -> list[str]:
    """Running jobs whose heartbeat is older than stale_after_seconds lost their worker
    (host rebooted, worker killed): finish them if their marker shows the script did its
    work, else put them back (claimable at once) or fail them after max_attempts."""
    changes = []
    now = time.time()
    for entry in queue.running():
        folder = queue.folder("running", entry.folder_name)
        age = age_seconds(os.path.join(folder, HEARTBEAT_FILE), now)
        if age is None:
            age = age_seconds(folder, now)
        if age is None or age <= config.jobs.stale_after_seconds:
            continue
        name = JobName.parse(entry.job_id)
        spec_data = read_json(os.path.join(folder, SPEC_FILE)) or {}
        try:
            marker = parse_spec(spec_data, name, config).marker_path
        except SpecError:
            marker = None
        if marker and os.path.exists(marker):
            changes.append(
                f"job {entry.job_id}: worker {entry.worker} vanished after its "
                "script finished; completed"
            )
            if not dry_run:
                write_json(
                    os.path.join(folder, RESULT_FILE),
                    {
                        "status": "completed",
                        "exit_code": 0,
                        "worker": entry.worker,
                        "finished_at": utc_now(),
                        "note": "recovered by reconcile: the marker was written",
                    },
                )
                _move_quietly(queue.move, folder, "completed", entry.job_id)
            continue
        reason = f"worker {entry.worker} vanished (heartbeat {age:.0f} s old)"
        changes.append(f"job {entry.job_id}: {reason}; taken back")
        if not dry_run:
            _move_quietly(
                record_failure,
                config,
                queue,
                folder,
                entry.job_id,
                spec_data,
                reason,
                exit_code=None,
                worker=entry.worker,
                retry_at_once=True,
            )
    return changes


def _move_quietly(move, *args, **kwargs) -> None:
    # The worker may finish and move the job itself between our look and our move.
    try:
        move(*args, **kwargs)
    except (FileNotFoundError, FileExistsError):
        log.info("a job moved while reconcile was taking it back; left as the worker left it")


# A job still in tmp/ after this long was never finished by the dispatch that built it.
HALF_BUILT_SECONDS = 3600


def remove_expired_jobs(config: Config, queue: Queue, *, dry_run: bool) -> list[str]:
    """Completed and cancelled job folders older than retention_days (history stays),
    and jobs half-built in tmp/ by a dispatch that died (it builds a new one)."""
    changes = []
    cutoff = config.jobs.retention_days * 86400
    now = time.time()
    for name in queue.names("tmp"):
        age = age_seconds(queue.folder("tmp", name), now)
        if age is not None and age > HALF_BUILT_SECONDS:
            changes.append(f"job {name}: half-built in tmp/ {age / 60:.0f} min ago; removed")
            if not dry_run:
                queue.remove("tmp", name)
    if not dry_run:
        queue.remove_expired_waits(now)  # housekeeping only: not worth a line of output
    for state in ("completed", "cancelled"):
        for name in queue.names(state):
            folder = queue.folder(state, name)
            age = age_seconds(os.path.join(folder, RESULT_FILE), now) or age_seconds(folder, now)
            if age is not None and age > cutoff:
                changes.append(f"job {name}: {state} {age / 86400:.0f} days ago; folder removed")
                if not dry_run:
                    queue.remove(state, name)
    return changes


def _job_row(queue: Queue, state: str, name: str, job: JobName) -> dict:
    folder = queue.folder(state, name)
    spec = read_json(os.path.join(folder, SPEC_FILE)) or {}
    result = read_json(os.path.join(folder, RESULT_FILE)) or {}
    running = RunningName.parse(name) if state == "running" else None
    attempts = spec.get("attempts")
    exit_code = result.get("exit_code") if state in FINISHED_DIRS else None
    return {
        "id": job.job_id,
        "item_uid": job.item_uid,
        "kind": job.kind,
        "state": state,
        "attempts": attempts if isinstance(attempts, int) else None,
        "max_attempts": spec.get("max_attempts")
        if isinstance(spec.get("max_attempts"), int)
        else None,
        "priority": job.priority,
        "worker": running.worker if running else result.get("worker"),
        "created_at": job.created.isoformat(timespec="seconds"),
        "finished_at": result.get("finished_at") if state in FINISHED_DIRS else None,
        "exit_code": exit_code if isinstance(exit_code, int) else None,
        "reason": str(result.get("reason"))[:500] if result.get("reason") else None,
        **{
            name: _number(result.get(name)) if state == "completed" else None
            for name in ("seconds", "bytes_in", "bytes_out")
        },
    }


def _number(value):
    """A measurement from result.json, or None if it is not a plain number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _queue_jobs(queue: Queue) -> list[tuple[str, str, JobName]]:
    found = []
    for state in (*LIVE_DIRS, *FINISHED_DIRS):
        for name in queue.names(state):
            job = JobName.parse(name.partition(".")[0])
            if job is not None:
                found.append((state, name, job))
    return found


def sync_jobs(config: Config, db: Database | None, queue: Queue, *, dry_run: bool) -> list[str]:
    """Record what the queue folders say in the jobs table, and its consequences for the
    items: a job failed for good fails its item; a live job for an item the database
    lacks (after losing it) or has not moved on brings the item to the job's state; an
    item whose job vanished from the queue goes back to be dispatched again."""
    changes: list[str] = []
    queue_jobs = _queue_jobs(queue)
    latest: dict[str, tuple[str, str, JobName]] = {}
    for state, name, job in queue_jobs:
        if job.item_uid not in latest or job.job_id > latest[job.item_uid][2].job_id:
            latest[job.item_uid] = (state, name, job)
    # Only the rows these jobs concern: the tables grow with the library and its history,
    # the queue folders only with the retention period.
    jobs = rows_by(db, "jobs", "id", [job.job_id for _s, _n, job in queue_jobs])
    items = rows_by(db, "media_items", "uid", list(latest))

    for state, name, job in queue_jobs:
        known = jobs.get(job.job_id)
        worker = RunningName.parse(name).worker if state == "running" else None
        if known and known["state"] == state and (worker is None or known["worker"] == worker):
            continue
        row = _job_row(queue, state, name, job)
        if not dry_run and db is not None:
            db["jobs"].upsert(row, pk="id")
        if known is None or known["state"] != state:
            changes.append(f"job {job.job_id}: {state}")

    # Items, judged by their latest job (newest name: retries make newer jobs).
    for uid, (state, name, job) in sorted(latest.items()):
        item = items.get(uid)
        running_state = KIND_STATES[job.kind]
        if item is None:
            if state in LIVE_DIRS:
                changes.extend(_restore_item(config, db, queue, state, name, job, dry_run))
            continue
        current = State(item["state"])
        if state == "failed" and current == running_state:
            result = read_json(os.path.join(queue.folder(state, name), RESULT_FILE)) or {}
            reason = f"{job.kind} failed: {result.get('reason') or 'no reason recorded'}"
            changes.append(f"{printable(item_name(item))}: {current} -> FAILED ({reason})")
            if not dry_run:
                write_item_files(
                    change_state(db, item, State.FAILED, trigger="auto", reason=reason[:500])
                )
                name_text = item_name(item)
                notify(
                    config,
                    db,
                    Event(
                        key=f"job_failed:{job.job_id}",
                        kind="job_failed",
                        title=f"Failed: {name_text}",
                        item=name_text,
                        high_priority=True,
                        message=f"{name_text}: {reason}. 'mp why' explains, 'mp retry' retries.",
                    ),
                )
        elif state == "cancelled" and current == running_state:
            changes.append(f"{printable(item_name(item))}: {current} -> CANCELLED (job cancelled)")
            if not dry_run:
                write_item_files(
                    change_state(
                        db, item, State.CANCELLED, trigger="manual", reason="job cancelled"
                    )
                )
        elif state in LIVE_DIRS and current == BEFORE_KIND.get(job.kind):
            changes.append(
                f"{printable(item_name(item))}: {current} -> {running_state} "
                "(its job is in the queue)"
            )
            if not dry_run:
                write_item_files(
                    change_state(
                        db,
                        item,
                        running_state,
                        trigger="auto",
                        reason=f"{job.kind} job in the queue",
                    )
                )

    if db is not None:
        in_job_states = [str(state) for state in (*REVERT, State.RIPPING)]
        for marks, states in in_slices(in_job_states):
            query = f"SELECT * FROM media_items WHERE state IN ({marks}) AND missing_since IS NULL"
            for item in list(db.query(query, states)):  # listed: _orphan writes the table
                changes.extend(_orphan(config, db, queue, item, latest.get(item["uid"]), dry_run))
    return changes


def _restore_item(config, db, queue, state, name, job, dry_run) -> list[str]:
    """An item the database lacks but the queue has a live job for (`mp rip` before the
    database was lost): bring it back in the job's state."""
    spec_data = read_json(os.path.join(queue.folder(state, name), SPEC_FILE))
    try:
        key = parse_spec(spec_data, job, config).key
    except SpecError:
        return []
    running_state = KIND_STATES[job.kind]
    change = f"{printable(key.name)}: new item, {running_state} (restored from the queue)"
    if dry_run or db is None:
        return [change]
    create_item(
        db,
        key,
        running_state,
        trigger="auto",
        reason="restored from the queue",
        priority=job.priority,
    )
    return [change]


def _marker_written(config, queue, state, name, job) -> bool:
    spec_data = read_json(os.path.join(queue.folder(state, name), SPEC_FILE))
    try:
        return os.path.exists(parse_spec(spec_data, job, config).marker_path)
    except SpecError:
        return False


REVERT = {
    State.REMUXING: State.RIPPED,
    State.TRANSCODING: State.REMUXED,
    State.FILING: State.TRANSCODED,
}


def _orphan(config, db, queue, item: dict, latest, dry_run: bool) -> list[str]:
    """An item in a job's state whose job is not live, and did not fail or get
    cancelled: the job vanished (a queue folder lost, a job deleted by hand)."""
    current = State(item["state"])
    if current not in (*REVERT, State.RIPPING) or item.get("missing_since"):
        return []
    if latest is not None and latest[0] in (*LIVE_DIRS, "failed", "cancelled"):
        return []
    if latest is not None and _marker_written(config, queue, *latest):
        # Completed after this reconcile read the markers: the next one moves it on.
        return []
    if current == State.RIPPING:
        target, reason = State.FAILED, "its rip job is gone from the queue; 'mp retry' to rip again"
    else:
        target, reason = REVERT[current], "its job is gone from the queue; will be dispatched again"
    change = f"{printable(item_name(item))}: {current} -> {target} ({reason})"
    if not dry_run and db is not None:
        write_item_files(change_state(db, item, target, trigger="auto", reason=reason))
    return [change]
