"""`mp jobs`: the queue by folder, read from the share (works without the database)."""

from __future__ import annotations

import os
import time

from tabulate import tabulate

from media_pipeline.config import Config
from media_pipeline.errors import UsageError
from media_pipeline.items import printable
from media_pipeline.jobs.queue import (
    HEARTBEAT_FILE,
    QUEUE_DIRS,
    RESULT_FILE,
    SPEC_FILE,
    JobName,
    Queue,
    RunningName,
    age_seconds,
    read_json,
)
from media_pipeline.store import duration_text

STATES = QUEUE_DIRS[1:]


def list_jobs(config: Config, state: str | None = None) -> list[dict]:
    if state is not None and state not in STATES:
        raise UsageError(f"--state must be one of {', '.join(STATES)}")
    queue = Queue(config.queue_dir)
    now = time.time()
    jobs = []
    for folder_state in [state] if state else STATES:
        for name in sorted(queue.names(folder_state)):
            job = JobName.parse(name.partition(".")[0])
            if job is None:
                continue
            folder = queue.folder(folder_state, name)
            spec = read_json(os.path.join(folder, SPEC_FILE)) or {}
            result = read_json(os.path.join(folder, RESULT_FILE)) or {}
            item = spec.get("item") if isinstance(spec.get("item"), dict) else {}
            running = RunningName.parse(name) if folder_state == "running" else None
            heartbeat = age_seconds(os.path.join(folder, HEARTBEAT_FILE), now) if running else None
            not_before = spec.get("not_before")
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
                    "worker": running.worker if running else result.get("worker"),
                    "attempts": spec.get("attempts"),
                    "max_attempts": spec.get("max_attempts"),
                    "age_seconds": round(max(0.0, now - job.created.timestamp())),
                    "heartbeat_age_seconds": None if heartbeat is None else round(heartbeat),
                    "not_before": not_before if isinstance(not_before, int | float) else None,
                    "reason": result.get("reason") if folder_state != "completed" else None,
                }
            )
    return jobs


def format_jobs(jobs: list[dict]) -> str:
    if not jobs:
        return "The queue is empty."
    now = time.time()
    rows = []
    for job in jobs:
        waits = ""
        if job["state"] == "pending" and job["not_before"] and job["not_before"] > now:
            waits = f"retry in {duration_text(job['not_before'] - now, short=True)}"
        note = waits or (printable(str(job["reason"]))[:30] if job["reason"] else "")
        failures = f"{job['attempts'] or 0}/{job['max_attempts'] or '?'}"
        rows.append(
            [
                job["state"],
                job["kind"],
                printable(job["item"])[:28],
                job["worker"] or "",
                failures,
                duration_text(job["age_seconds"], short=True),
                duration_text(job["heartbeat_age_seconds"], short=True),
                note,
            ]
        )
    # "failed": attempts that failed so far, of the most allowed.
    headers = ["state", "kind", "item", "worker", "failed", "age", "beat", "note"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
