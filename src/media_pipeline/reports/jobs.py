"""`mp jobs`: the queue by folder, read from the share (works without the database)."""

from __future__ import annotations

import time

from tabulate import tabulate

from media_pipeline.config.settings import Config
from media_pipeline.errors import UsageError
from media_pipeline.items.names import printable
from media_pipeline.jobs.queue import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    QUEUE_DIRS,
    REJECTED_DIR,
    RUNNING,
    Queue,
    RunningName,
    back_off_time,
    parse_entry,
)
from media_pipeline.library.disc import Drive
from media_pipeline.share.identity import check_share
from media_pipeline.text import duration_text

STATES = (*QUEUE_DIRS[1:], REJECTED_DIR)


def list_jobs(config: Config, state: str | None = None) -> list[dict]:
    if state is not None and state not in STATES:
        raise UsageError(f"--state must be one of {', '.join(STATES)}")
    # An unmounted share shows an empty queue: refused as claim refuses it, not "empty".
    check_share(config.staging_root)
    with Queue.of(config) as queue:
        now = time.time()
        jobs = []
        for folder_state in [state] if state else STATES:
            if folder_state == REJECTED_DIR:
                # All when asked for; else the newest (there may be thousands of junk).
                jobs.extend(_rejected(queue, now, None if state else REJECTED_LISTED))
                continue
            for name in sorted(queue.names(folder_state)):
                job = parse_entry(folder_state, name)
                if job is None:
                    continue  # not a job: the next reconcile moves it to rejected/
                spec = queue.read_spec(folder_state, name) or {}
                result = queue.read_result(folder_state, name) or {}
                found = spec.get("item")
                item: dict = found if isinstance(found, dict) else {}
                running = RunningName.parse(name) if folder_state == RUNNING else None
                heartbeat = queue.heartbeat_age(folder_state, name, now) if running else None
                not_before = spec.get("not_before")
                drive = Drive.named_in(spec, job.kind)
                jobs.append(
                    {
                        "id": job.job_id,
                        "state": folder_state,
                        "kind": job.kind,
                        "priority": job.priority,
                        "item": "/".join(
                            str(p)
                            for p in (item.get("type"), item.get("title"), item.get("disc_label"))
                            if p
                        ),
                        "item_uid": job.item_uid,
                        "worker": running.worker if running else _text(result.get("worker")),
                        "attempts": _count(spec.get("attempts")),
                        "max_attempts": _count(spec.get("max_attempts")),
                        "age_seconds": round(max(0.0, now - job.created.timestamp())),
                        "heartbeat_age_seconds": None if heartbeat is None else round(heartbeat),
                        "not_before": back_off_time(not_before),
                        "reason": _text(result.get("reason"))
                        if folder_state != COMPLETED
                        else None,
                        # A rip a disc started: only that host's worker claims it.
                        "drive": str(drive) if drive else None,
                    }
                )
        return jobs


REJECTED_LISTED = 50


def _rejected(queue: Queue, now: float, newest: int | None) -> list[dict]:
    """Entries moved to rejected/: kept for a person to look at, never run."""
    found = []
    for entry in queue.rejected(newest=newest):
        job = entry.job
        found.append(
            {
                "id": job.job_id if job else entry.name,
                "state": REJECTED_DIR,
                "kind": job.kind if job else "",
                "priority": job.priority if job else None,
                "item": "",
                "item_uid": job.item_uid if job else None,
                "worker": None,
                "attempts": None,
                "max_attempts": None,
                "age_seconds": round(max(0.0, now - job.created.timestamp())) if job else None,
                "heartbeat_age_seconds": None,
                "not_before": None,
                "reason": entry.reason,
                "drive": None,
                "folder": queue.folder(REJECTED_DIR, entry.name),
            }
        )
    return found


def _text(value) -> str | None:
    return str(value)[:500] if value else None


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


JOB_STATE_COLOURS = {
    PENDING: "cyan",
    RUNNING: "blue",
    COMPLETED: "green",
    FAILED: "red",
    CANCELLED: "yellow",
    REJECTED_DIR: "magenta",
}


def format_jobs(jobs: list[dict], color: bool = False) -> str:
    """The jobs as a table, each item's uid beside its whole name: plain (for pipes and
    scripts), or with color for a terminal, at its width, the whole note too."""
    if not jobs:
        return "The queue is empty."
    if color:
        return _terminal_jobs(jobs)
    now = time.time()
    rows = []
    for job in jobs:
        waits = ""
        if job["state"] == PENDING and job["not_before"] and job["not_before"] > now:
            waits = f"retry in {duration_text(job['not_before'] - now, short=True)}"
        note = waits or (printable(str(job["reason"]))[:40] if job["reason"] else "")
        if job["state"] == PENDING and job["drive"]:
            note = f"disc in {printable(job['drive'])}" + (f"; {note}" if note else "")
        failures = f"{job['attempts'] or 0}/{job['max_attempts'] or '?'}"
        rows.append(
            [
                job["state"],
                job["kind"],
                (job["item_uid"] or "")[:8],
                printable(job["item"]),
                printable(job["worker"] or ""),
                failures,
                duration_text(job["age_seconds"], short=True),
                duration_text(job["heartbeat_age_seconds"], short=True),
                note,
            ]
        )
    # "failed": attempts that failed so far, of the most allowed.
    headers = ["state", "kind", "uid", "item", "worker", "failed", "age", "beat", "note"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _terminal_jobs(jobs: list[dict]) -> str:
    from media_pipeline.reports.tables import terminal_table

    now = time.time()
    headers = ["state", "kind", "uid", "item", "worker", "failed", "age", "beat", "note"]
    rows = []
    for job in jobs:
        note = str(job["reason"] or "")
        if job["state"] == PENDING and job["not_before"] and job["not_before"] > now:
            note = f"retry in {duration_text(job['not_before'] - now, short=True)}"
        if job["state"] == PENDING and job["drive"]:
            note = f"disc in {job['drive']}" + (f"; {note}" if note else "")
        rows.append(
            [
                job["state"],
                job["kind"],
                (job["item_uid"] or "")[:8],
                job["item"],
                job["worker"] or "",
                f"{job['attempts'] or 0}/{job['max_attempts'] or '?'}",
                duration_text(job["age_seconds"], short=True),
                duration_text(job["heartbeat_age_seconds"], short=True),
                note,
            ]
        )
    styles = [JOB_STATE_COLOURS.get(job["state"], "") for job in jobs]
    return terminal_table(None, headers, rows, styles=styles)
