"""Recording a job's outcome in its folder: result.json, then the move that ends it.

Shared by the worker that ran the job and by reconcile when it takes back a job whose
worker vanished, so both count attempts and back off the same way.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from media_pipeline.config import Config
from media_pipeline.jobs.queue import (
    LOG_FILE,
    RESULT_FILE,
    SPEC_FILE,
    Queue,
    write_json,
)

LOG_TAIL_LINES = 20


def log_tail(folder: str) -> str:
    try:
        with open(os.path.join(folder, LOG_FILE), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            data = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-LOG_TAIL_LINES:])


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def backoff_until(config: Config, attempts: int, now: float) -> float:
    return now + config.jobs.backoff_seconds * 2 ** max(0, attempts - 1)


def record_failure(
    config: Config,
    queue: Queue,
    folder: str,
    job_id: str,
    spec_data: dict,
    reason: str,
    *,
    exit_code: int | None,
    worker: str,
    retry_at_once: bool = False,
) -> str:
    """A failed attempt: back to pending/ with attempts + 1 and a back-off, or to failed/
    once max_attempts is reached. Returns the folder it went to. Shared by claim and by
    reconcile's stale-job recovery."""
    attempts = int(spec_data.get("attempts", 0)) + 1
    max_attempts = int(spec_data.get("max_attempts", config.jobs.max_attempts))
    result = {
        "status": "failed",
        "reason": reason,
        "exit_code": exit_code,
        "attempt": attempts,
        "max_attempts": max_attempts,
        "worker": worker,
        "finished_at": now_text(),
        "log_tail": log_tail(folder),
    }
    write_json(os.path.join(folder, RESULT_FILE), result)
    if attempts < max_attempts:
        now = time.time()
        not_before = now if retry_at_once else backoff_until(config, attempts, now)
        updated = {
            **spec_data,
            "attempts": attempts,
            "not_before": not_before,
            "last_error": reason,
        }
        write_json(os.path.join(folder, SPEC_FILE), updated)
        if not_before > now:
            queue.hold(job_id, not_before)
        queue.move(folder, "pending", job_id)
        return "pending"
    write_json(os.path.join(folder, SPEC_FILE), {**spec_data, "attempts": attempts})
    queue.move(folder, "failed", job_id)
    return "failed"
