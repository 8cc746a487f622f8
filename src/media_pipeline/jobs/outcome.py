"""Recording a job's outcome in its folder: result.json, then the move that ends it.

Shared by the worker that ran the job and by reconcile when it takes back a job whose
worker vanished, so both count attempts and back off the same way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from media_pipeline.config.settings import Config
from media_pipeline.jobs.queue import FAILED, MAX_WAIT_SECONDS, PENDING, JobFolder, Queue
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry
from media_pipeline.text import utc_now


@dataclass
class ClaimResult(Said):
    job_id: str | None = None
    outcome: str | None = None  # completed, retry, failed, cancelled, interrupted, rejected

    @property
    def failed(self) -> bool:
        return self.outcome in ("retry", "failed")

    @property
    def stops(self) -> bool:
        """Whether the command ends here, lingering or not: its job failed (the unit
        shows it) or it was told to stop (SIGTERM: a shutdown, `systemctl stop`)."""
        return self.failed or self.outcome == "interrupted"


LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192


def log_tail(job: JobFolder) -> str:
    """The last lines of a job's log (never through a link, never more than 8 KiB)."""
    try:
        text = job.log_tail(LOG_TAIL_BYTES)
    except (FileNotFoundError, BadEntry):
        return ""
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


# The most of a script's last line that goes with its failure into the item's reason.
SAID_CHARACTERS = 200


def last_words(tail: str) -> str:
    """What a failed script said last (ffmpeg's sentence, say): the last line of its log
    with text in it, cut short. The exit code alone tells a person nothing."""
    for line in reversed(tail.splitlines()):
        if line.strip():
            text = line.strip()
            return text if len(text) <= SAID_CHARACTERS else text[: SAID_CHARACTERS - 3] + "..."
    return ""


def backoff_until(config: Config, attempts: int, now: float) -> float:
    """Doubling with each attempt, never more than a day (MAX_WAIT_SECONDS)."""
    doubled = config.jobs.backoff_seconds * 2 ** min(max(0, attempts - 1), 20)
    return now + min(doubled, MAX_WAIT_SECONDS)


def _count(value, default: int) -> int:
    """A count from a spec that anyone may have edited: a whole number, else default."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value


def record_failure(
    config: Config,
    queue: Queue,
    job: JobFolder,
    queue_folder: str,
    name: str,
    job_id: str,
    spec_data: dict,
    reason: str,
    *,
    exit_code: int | None,
    worker: str,
    retry_at_once: bool = False,
) -> str:
    """A failed attempt: back to pending/ with attempts + 1 and a back-off, or to failed/
    once max_attempts is reached. job is the job's open folder, state/name where it is.
    Returns the folder it went to. Shared by claim and by reconcile's stale-job recovery."""
    # The spec's counts are on the share: the limit is this host's config, whatever the
    # spec says (a forged max_attempts of a million kept a failing job going for ever).
    max_attempts = config.jobs.max_attempts
    # Take-backs the worker answered (it was alive: a forged or misjudged silence) are
    # no failed attempts: the spec's count keeps them all, what is judged leaves them out.
    made = min(_count(spec_data.get("attempts"), 0), 10**6)
    attempts = min(max(made - answered_take_backs(job), 0), max_attempts) + 1
    tail = log_tail(job)
    result = {
        "status": "failed",
        "reason": reason,
        "exit_code": exit_code,
        "attempt": attempts,
        "max_attempts": max_attempts,
        "worker": worker,
        "finished_at": utc_now(),
        "log_tail": tail,
        "said": last_words(tail),
    }
    write_outcome(config, job, job_id, result)
    if attempts < max_attempts:
        now = time.time()
        not_before = now if retry_at_once else backoff_until(config, attempts, now)
        updated = {
            **spec_data,
            "attempts": made + 1,
            "not_before": not_before,
            "last_error": reason,
        }
        job.write_spec(updated)
        if not_before > now:
            queue.hold(job_id, not_before)
        queue.move(queue_folder, name, PENDING, job_id)
        return PENDING
    job.write_spec({**spec_data, "attempts": made + 1})
    queue.move(queue_folder, name, FAILED, job_id)
    return FAILED


def write_outcome(config: Config, job: JobFolder, job_id: str, result: dict) -> None:
    """A job's result.json, signed by this host (reconcile acts only on outcomes a host
    it trusts signed): every way a job ends writes it through here."""
    # Here, not at the top: an empty claim imports this module and must stay light.
    from media_pipeline.jobs.signature import signed_result

    job.write_result(signed_result(config, job_id, result))


def answered_take_backs(job: JobFolder) -> int:
    """How many take-backs of this job its workers lived to see (distinct claims)."""
    try:
        text = job.answered_take_backs()
    except (OSError, BadEntry):
        return 0
    return len({line for line in text.split(b"\n") if line.strip()})


def answer_take_back(job: JobFolder, running_name: str) -> None:
    """The worker of a job taken back from it says it was alive, in the job's folder
    (wherever reconcile moved it: the descriptor follows the folder)."""
    try:
        descriptor = job.open_answered_to_append()
    except (OSError, BadEntry):
        return  # a link or a FIFO planted there: the take-back counts, no more
    try:
        os.write(descriptor, running_name.encode() + b"\n")
    finally:
        os.close(descriptor)
