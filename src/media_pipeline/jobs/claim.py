"""`mp claim`: take at most one job this worker may run, run it, record the outcome.

Runs on every worker host; it never opens the database. The queue folder is the only
thing it shares with the controller, and every move it makes there is one rename.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from media_pipeline.config import Config, window_open
from media_pipeline.errors import PipelineError, UsageError
from media_pipeline.faults import crash_point
from media_pipeline.fsutil import check_staging_root, local_lock, read_text, write_atomic
from media_pipeline.jobs.drain import is_drained
from media_pipeline.jobs.outcome import log_tail, now_text, record_failure
from media_pipeline.jobs.queue import (
    HEARTBEAT_FILE,
    NOT_BEFORE_FILE,
    RESULT_FILE,
    SPEC_FILE,
    JobName,
    Queue,
    read_json,
    write_json,
)
from media_pipeline.jobs.spec import JobSpec, SpecError, parse_spec

if TYPE_CHECKING:
    from media_pipeline.jobs.runner import RunOutcome

log = logging.getLogger(__name__)


@dataclass
class ClaimResult:
    message: str
    job_id: str | None = None
    outcome: str | None = None  # completed, retry, failed, cancelled, interrupted

    @property
    def failed(self) -> bool:
        return self.outcome in ("retry", "failed")


def default_worker() -> str:
    return os.uname().nodename.split(".")[0]


def _local_lock_path(worker: str) -> str:
    # Local, not on the share: file locks on NFS are unreliable, and the claimers it
    # serializes (instances of one worker) all run on this host.
    if os.access("/run/lock", os.W_OK):
        folder = "/run/lock"
    else:
        import tempfile  # only where /run/lock is not ours to write

        folder = tempfile.gettempdir()
    return os.path.join(folder, f"media-pipeline-claim-{worker}.lock")


def _script_ready(config: Config, job: JobName) -> bool:
    script = config.script_for(job.kind, job.item_type)
    return script is not None and os.access(script.path, os.X_OK)


def _due(queue: Queue, job: JobName, now: float) -> bool:
    """Whether a pending job's back-off is over: only a job put back after a failure has
    a not_before file, so most candidates cost one failed stat."""
    text = read_text(os.path.join(queue.folder("pending", job.job_id), NOT_BEFORE_FILE), 64)
    if text is None:
        return True
    try:
        return float(text) <= now
    except ValueError:
        return True  # a bad file is no reason to skip a job forever


class Claimer:
    """Claims jobs for one worker, best first.

    It keeps a sorted snapshot of pending/ between claims (as dirq's iterator does), so
    a loop of claims lists the folder once rather than once per job; the snapshot is
    taken again when used up or older than SNAPSHOT_SECONDS, so a new job of higher
    priority waits at most that long. A one-shot `mp claim` lists the folder once.
    """

    SNAPSHOT_SECONDS = 2.0

    def __init__(self, config: Config, queue: Queue, worker: str, kinds: tuple[str, ...]):
        self.config = config
        self.queue = queue
        self.worker = worker
        self.kinds = kinds
        self._names: list[str] = []
        self._position = 0
        self._taken_at = float("-inf")
        self._scripts: dict[tuple[str, str], bool] = {}

    def _candidates(self):
        stale = time.monotonic() - self._taken_at > self.SNAPSHOT_SECONDS
        if stale or self._position >= len(self._names):
            self._names = sorted(self.queue.names("pending"))
            self._position = 0
            self._taken_at = time.monotonic()
            self._scripts.clear()
        while self._position < len(self._names):
            job = JobName.parse(self._names[self._position])
            self._position += 1
            if job is not None and job.kind in self.kinds:
                yield job

    def claim_next(self, *, dry_run: bool = False) -> tuple[JobName | None, str | None, list[str]]:
        """Claim the best job this worker may run now. Returns (job, its running folder,
        kinds left pending because this host lacks their script)."""
        limit = self.config.workers[self.worker].max_running
        missing_scripts: list[str] = []
        if sum(1 for entry in self.queue.running() if entry.worker == self.worker) >= limit:
            return None, None, []
        now = time.time()
        for job in self._candidates():
            ready = self._scripts.get((job.kind, job.item_type))
            if ready is None:
                ready = self._scripts[job.kind, job.item_type] = _script_ready(self.config, job)
            if not ready:
                missing_scripts.append(f"{job.kind} ({job.item_type})")
                continue
            if not _due(self.queue, job, now):
                continue
            if dry_run:
                return job, None, missing_scripts
            crash_point("claim:chosen")
            folder = self.queue.claim(job.job_id, self.worker, os.getpid())
            if folder is not None:
                crash_point("claim:claimed")
                return job, folder, missing_scripts
        return None, None, missing_scripts


def _environment(spec: JobSpec) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MP_JOB_ID": spec.job_id,
            "MP_ITEM_TYPE": spec.key.type,
            "MP_ITEM_TITLE": spec.key.title,
            "MP_DISC_LABEL": spec.key.disc_label,
            "MP_INPUT_DIR": spec.input_dir,
            "MP_OUTPUT_DIR": spec.output_dir,
            "MP_DESTINATION": spec.destination,
        }
    )
    return env


def _finish(
    config: Config,
    queue: Queue,
    folder: str,
    spec: JobSpec,
    outcome: RunOutcome,
    worker: str,
) -> ClaimResult:
    from media_pipeline.jobs.verify import measure_bytes, verify_outputs

    job_id = spec.job_id
    if outcome.stopped == "taken back":
        return ClaimResult(
            f"job {job_id} was taken back as stale while it ran; its script was stopped",
            job_id,
            "failed",
        )
    if outcome.stopped == "cancelled":
        write_json(
            os.path.join(folder, RESULT_FILE),
            {
                "status": "cancelled",
                "exit_code": outcome.exit_code,
                "worker": worker,
                "finished_at": now_text(),
                "log_tail": log_tail(folder),
            },
        )
        queue.move(folder, "cancelled", job_id)
        return ClaimResult(f"job {job_id} cancelled; its scripts were stopped", job_id, "cancelled")
    if outcome.stopped == "interrupted":
        # The worker itself is being stopped (shutdown): not the job's fault, no attempt.
        write_json(os.path.join(folder, SPEC_FILE), {**spec.raw, "not_before": 0})
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, NOT_BEFORE_FILE))
        queue.move(folder, "pending", job_id)
        return ClaimResult(
            f"job {job_id} put back in the queue: worker stopped", job_id, "interrupted"
        )
    if outcome.stopped == "timeout":
        script = config.script_for(spec.kind, spec.key.type)
        reason = f"timed out after {script.timeout_seconds} s"
    elif outcome.exit_code != 0:
        reason = f"script exited with {outcome.exit_code}"
    elif not os.path.exists(spec.marker_path):
        reason = f"script exited 0 but did not write {spec.marker_path}"
    elif (problem := verify_outputs(spec)) is not None:
        reason = f"outputs failed verification: {problem}"
    else:
        bytes_in, bytes_out = measure_bytes(spec)
        write_json(
            os.path.join(folder, RESULT_FILE),
            {
                "status": "completed",
                "exit_code": 0,
                "worker": worker,
                "seconds": round(outcome.seconds, 3),
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                "finished_at": now_text(),
            },
        )
        crash_point("claim:moving")
        queue.move(folder, "completed", job_id)
        return ClaimResult(
            f"job {job_id} completed in {outcome.seconds:.1f} s", job_id, "completed"
        )
    went = record_failure(
        config, queue, folder, job_id, spec.raw, reason, exit_code=outcome.exit_code, worker=worker
    )
    if went == "pending":
        return ClaimResult(f"job {job_id} failed ({reason}); it will be retried", job_id, "retry")
    return ClaimResult(f"job {job_id} failed for good ({reason})", job_id, "failed")


def run_claim(config: Config, worker: str | None = None, *, dry_run: bool = False) -> ClaimResult:
    worker = worker or default_worker()
    if worker not in config.workers:
        known = ", ".join(sorted(config.workers))
        raise UsageError(
            f"worker '{worker}' is not under 'workers' in {config.source} (known: {known}); "
            "pass --worker NAME"
        )
    check_staging_root(config.staging_root)
    if is_drained(config, worker):
        return ClaimResult(
            f"worker {worker} is drained: claims nothing ('mp worker resume {worker}')"
        )
    queue = Queue(config.queue_dir)
    minute = datetime.now().hour * 60 + datetime.now().minute
    kinds = tuple(
        kind
        for kind in config.workers[worker].kinds
        if window_open(config.windows.get(kind), minute)
    )
    if not kinds:
        return ClaimResult(f"worker {worker}: every kind it runs is outside its time window")
    with local_lock(_local_lock_path(worker), config.lock_timeout_seconds):
        claimer = Claimer(config, queue, worker, kinds)
        job, folder, missing = claimer.claim_next(dry_run=dry_run)
    if job is None:
        if missing:
            raise PipelineError(
                f"worker {worker} has no executable script for {', '.join(sorted(set(missing)))}"
                f" on this host; those jobs stay in pending/ for another worker"
            )
        closed = [kind for kind in config.workers[worker].kinds if kind not in kinds]
        note = f" ({', '.join(closed)}: outside its time window)" if closed else ""
        return ClaimResult(f"worker {worker}: no job to run{note}")
    if dry_run:
        return ClaimResult(f"would claim {job.job_id}", job.job_id)
    return _run_claimed(config, queue, folder, job, worker)


def _run_claimed(
    config: Config, queue: Queue, folder: str, job: JobName, worker: str
) -> ClaimResult:
    write_atomic(os.path.join(folder, "claimed_by"), worker + "\n")
    write_atomic(os.path.join(folder, "claimed_at"), now_text() + "\n")
    with open(os.path.join(folder, HEARTBEAT_FILE), "a"):
        pass
    spec_data = read_json(os.path.join(folder, SPEC_FILE))
    try:
        spec = parse_spec(spec_data, job, config)
        if spec.kind not in config.workers[worker].kinds:
            raise SpecError(f"worker {worker} does not run {spec.kind} jobs")
    except SpecError as error:
        write_json(
            os.path.join(folder, RESULT_FILE),
            {
                "status": "failed",
                "reason": f"refused: {error}",
                "worker": worker,
                "finished_at": now_text(),
                "exit_code": None,
            },
        )
        queue.move(folder, "failed", job.job_id)
        raise PipelineError(f"job {job.job_id} refused, nothing was run: {error}") from None

    script = config.script_for(spec.kind, spec.key.type)
    fields = spec.template_fields()
    argv = [script.path, *(template.format(**fields) for template in script.args)]
    log.info(
        "running %s: %s",
        job.job_id,
        script.path,
        extra={"event": "job_start", "job": job.job_id, "worker": worker, "item": spec.key.name},
    )
    # Loaded only now: a claim that finds no job (most of them) never needs subprocess.
    from media_pipeline.jobs.runner import run_script

    crash_point("claim:starting")
    outcome = run_script(
        argv,
        _environment(spec),
        folder,
        heartbeat_seconds=config.jobs.heartbeat_seconds,
        timeout_seconds=script.timeout_seconds,
        grace_seconds=config.jobs.cancel_grace_seconds,
    )
    crash_point("claim:exited")
    try:
        result = _finish(config, queue, folder, spec, outcome, worker)
    except FileNotFoundError:
        # Reconcile judged this job stale and took it back while it ran (a heartbeat
        # that could not reach the share); the queue already has it elsewhere.
        return ClaimResult(
            f"job {job.job_id} was taken back as stale while it ran; outcome not recorded",
            job.job_id,
            "failed",
        )
    level = logging.INFO if not result.failed else logging.WARNING
    log.log(
        level,
        "%s",
        result.message,
        extra={
            "event": "job_" + (result.outcome or "done"),
            "job": job.job_id,
            "worker": worker,
            "item": spec.key.name,
        },
    )
    return result
