"""Running a job this worker has claimed: check its spec, run its script, record the
outcome in the queue. Loaded only by a claim that found a job."""

from __future__ import annotations

import logging
import os

from media_pipeline.config import Config
from media_pipeline.errors import PipelineError
from media_pipeline.faults import crash_point
from media_pipeline.fsutil import write_atomic
from media_pipeline.jobs.claim import ClaimResult
from media_pipeline.jobs.outcome import log_tail, now_text, record_failure
from media_pipeline.jobs.queue import (
    HEARTBEAT_FILE,
    RESULT_FILE,
    SPEC_FILE,
    JobName,
    Queue,
    read_json,
    write_json,
)
from media_pipeline.jobs.runner import RunOutcome, run_script
from media_pipeline.jobs.spec import JobSpec, SpecError, parse_spec
from media_pipeline.jobs.verify import measure_bytes, verify_outputs

log = logging.getLogger(__name__)


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
        # Any back-off file of the job has expired: it was claimed after it.
        write_json(os.path.join(folder, SPEC_FILE), {**spec.raw, "not_before": 0})
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


def run_claimed_job(
    config: Config, queue: Queue, folder: str, job: JobName, worker: str, slot_fd: int
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
    crash_point("claim:starting")
    outcome = run_script(
        argv,
        _environment(spec),
        folder,
        heartbeat_seconds=config.jobs.heartbeat_seconds,
        timeout_seconds=script.timeout_seconds,
        grace_seconds=config.jobs.cancel_grace_seconds,
        slot_fd=slot_fd,
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
