"""Running a job this worker has claimed: check its spec, run its script, record the
outcome in the queue. Loaded only by a claim that found a job."""

from __future__ import annotations

import contextlib
import logging
import os

from media_pipeline.config.hosts import host_name
from media_pipeline.config.settings import Config
from media_pipeline.errors import SafetyRefusal
from media_pipeline.faults import crash_point
from media_pipeline.items.names import printable
from media_pipeline.jobs.keys import CONTROLLER, trusted_keys
from media_pipeline.jobs.live import LiveList
from media_pipeline.jobs.outcome import (
    ClaimResult,
    answer_take_back,
    log_tail,
    record_failure,
    write_outcome,
)
from media_pipeline.jobs.queue import (
    CANCELLED,
    COMPLETED,
    PENDING,
    RUNNING,
    JobFolder,
    JobName,
    Queue,
    RunningName,
)
from media_pipeline.jobs.signature import SIGNED_BY, ForgedSpec, cancel_verifies, verified_by
from media_pipeline.jobs.spec import JobSpec, SpecError, UnsignedFieldError, parse_spec
from media_pipeline.library.disc import eject
from media_pipeline.share.files import BadEntry, Folder, hazard_in, open_below, relative_parts
from media_pipeline.share.markers import has_marker, set_marker_aside
from media_pipeline.text import utc_now
from media_pipeline.worker.confine import writable_folders
from media_pipeline.worker.ledger import ran_here, record_end
from media_pipeline.worker.runner import RunOutcome, run_script
from media_pipeline.worker.verify import measure_bytes, verify_outputs

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
    if spec.episodes is not None:
        env["MP_SEASON"], env["MP_FIRST_EPISODE"] = (str(n) for n in spec.episodes)
    env.pop("MP_DEVICE", None)  # only a rip a disc started names a drive
    env.pop("MP_INPUT_OPENED", None)  # only the worker says where the script starts
    if spec.drive:
        env["MP_DEVICE"] = spec.drive.device
    if spec.files is not None:
        # One "file<TAB>place" line each: the names hold neither (spec.py checks).
        env["MP_FILES"] = "".join(f"{source}\t{target}\n" for source, target in spec.files)
    return env


def _failure_reason(config: Config, spec: JobSpec, outcome: RunOutcome) -> str | None:
    """Why a finished run did not do its job, or None when it did: exit 0, its marker
    written, and its outputs verified."""
    if outcome.stopped == "timeout":
        script = config.script_for(spec.kind, spec.key.type)
        limit = config.timeout_for(script, spec.kind) if script else "?"
        return f"timed out after {limit} s"
    if outcome.exit_code != 0:
        return f"script exited with {outcome.exit_code}"
    if not has_marker(config.staging_root, spec.marker_folder, spec.kind):
        return f"script exited 0 but did not write {spec.marker_folder}/.pipeline/{spec.kind}.done"
    problem = verify_outputs(spec)
    return None if problem is None else f"outputs failed verification: {problem}"


def _finish(
    config: Config,
    queue: Queue,
    running_name: str,
    job: JobFolder,
    spec: JobSpec,
    outcome: RunOutcome,
    worker: str,
) -> ClaimResult:
    job_id = spec.job_id
    if outcome.stopped == "taken back":
        answer_take_back(job, running_name)
        return ClaimResult(
            f"job {job_id} was taken back as stale while it ran; its script was stopped",
            job_id,
            "failed",
        )
    stopped = outcome.stopped in ("cancelled", "interrupted")
    reason = None if stopped else _failure_reason(config, spec, outcome)
    if stopped or reason:
        # A marker from a run that did not succeed must not move the item on: reconcile
        # would take the unreadable file for a finished stage (and file it).
        set_marker_aside(config.staging_root, spec.marker_folder, spec.kind, f"failed-{job_id}")
    if outcome.stopped == "cancelled":
        write_outcome(
            config,
            job,
            job_id,
            {
                "status": "cancelled",
                "exit_code": outcome.exit_code,
                "worker": worker,
                "finished_at": utc_now(),
                "log_tail": log_tail(job),
            },
        )
        queue.move(RUNNING, running_name, CANCELLED, job_id)
        record_end(config, job_id)
        return ClaimResult(f"job {job_id} cancelled; its scripts were stopped", job_id, "cancelled")
    if outcome.stopped == "interrupted":
        # The worker itself is being stopped (shutdown): not the job's fault, no attempt.
        # Any back-off file of the job has expired: it was claimed after it.
        job.write_spec({**spec.raw, "not_before": 0})
        queue.move(RUNNING, running_name, PENDING, job_id)
        return ClaimResult(
            f"job {job_id} put back in the queue: worker stopped", job_id, "interrupted"
        )
    if reason is None:
        bytes_in, bytes_out = measure_bytes(spec)
        write_outcome(
            config,
            job,
            job_id,
            {
                "status": "completed",
                "exit_code": 0,
                "worker": worker,
                "seconds": round(outcome.seconds, 3),
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                "finished_at": utc_now(),
            },
        )
        crash_point("claim:moving")
        queue.move(RUNNING, running_name, COMPLETED, job_id)
        record_end(config, job_id)
        said = f"job {job_id} completed in {outcome.seconds:.1f} s"
        if spec.drive and config.workers[worker].eject:
            said += "; " + _eject(spec.job_id, spec.drive.device)
        return ClaimResult(said, job_id, "completed")
    went = record_failure(
        config,
        queue,
        job,
        RUNNING,
        running_name,
        job_id,
        spec.raw,
        reason,
        exit_code=outcome.exit_code,
        worker=worker,
    )
    if went == PENDING:
        return ClaimResult(f"job {job_id} failed ({reason}); it will be retried", job_id, "retry")
    record_end(config, job_id)
    return ClaimResult(f"job {job_id} failed for good ({reason})", job_id, "failed")


def _eject(job_id: str, device: str) -> str:
    """Open the tray of the drive whose disc this rip read (the worker's eject setting):
    once the job is completed, so a drive that will not open never fails a rip. A rip
    that failed keeps its disc in, for the retry."""
    problem = eject(device)
    if problem is None:
        return f"ejected the disc from {device}"
    log.warning(
        "job %s: could not eject %s: %s",
        job_id,
        device,
        problem,
        extra={"event": "eject_failed", "job": job_id},
    )
    return f"the disc stays in {device} (could not eject: {problem})"


def _reject(queue: Queue, running_name: str, job_id: str, problem: str) -> ClaimResult:
    """A job that is not one this worker may run goes to rejected/, and nothing runs.
    Reconcile sends its item back to be queued again, from the controller's own spec."""
    problem = printable(problem)
    queue.reject(RUNNING, running_name, f"refused, nothing was run: {problem}")
    log.warning(
        "job %s refused, nothing was run: %s",
        job_id,
        problem,
        extra={"event": "job_rejected", "job": job_id},
    )
    return ClaimResult(f"job {job_id} refused, nothing was run: {problem}", job_id, "rejected")


def _checked_spec(
    config: Config,
    queue: Queue,
    job: JobFolder,
    name: JobName,
    worker: str,
    trusted: dict,
    live: LiveList | None = None,
) -> JobSpec:
    try:
        spec_data = job.spec()
    except BadEntry as error:
        raise ForgedSpec(f"spec.json {error.problem}") from None
    if spec_data is None:
        raise ForgedSpec("spec.json is missing or is not a JSON object")
    # Before anything in it is believed: who wrote it, for which job, and when.
    verified_by(config, spec_data, trusted)
    if spec_data.get("id") != name.job_id:
        # Another job's genuine spec: not a refusal of this item's own job.
        other_id = str(spec_data.get("id"))[:80]
        raise ForgedSpec(f"spec id '{other_id}' does not match the job's folder")
    if (finished := queue.finished_as(name.job_id)) is not None:
        raise ForgedSpec(f"this job ran already (it is in {finished}/): a copy put back")
    if ran_here(config, name.job_id):
        raise ForgedSpec("this job ran on this host already: a copy put back")
    # A job a person cancelled never runs, whoever signed it; the controller's jobs run
    # only while it still wants them (jobs/live.py).
    if live is not None and live.stops(name.job_id):
        raise ForgedSpec(live.cancelled_refusal())
    if spec_data.get(SIGNED_BY) == CONTROLLER and (live is None or not live.names(name.job_id)):
        raise ForgedSpec(
            live.refusal()
            if live is not None and live.left_out(name.job_id, spec_data)
            else "no fresh list of live jobs from the controller names it"
        )
    try:
        spec = parse_spec(spec_data, name, config)
    except UnsignedFieldError as error:
        # What a retry rewrites, changed on the share: not the controller's doing.
        raise ForgedSpec(str(error)) from None
    if spec.kind not in config.workers[worker].kinds:
        raise SpecError(f"worker {worker} does not run {spec.kind} jobs")
    if spec.drive and spec.drive.host not in ("", host_name()):
        raise SpecError(
            f"its disc is in {spec.drive.device} of {spec.drive.host}, not of this host"
        )
    # The item's folders in staging (a filing job's output is the library itself, where
    # only the way to the destination is checked, by parse_spec).
    for folder in (spec.input_dir, spec.output_dir):
        if not folder or relative_parts(config.staging_root, folder) is None:
            continue
        if (found := hazard_in(config.staging_root, folder)) is not None:
            raise SpecError(f"{found} is a link, a FIFO or device, a hard link or a playlist")
    return spec


def other_runs(
    config: Config, queue: Queue, item_uid: str, running_name: str, trusted: dict
) -> list[str]:
    """Other claims in running/ of a job of this item whose spec verifies: what may be a
    second script of the item. A folder a share writer made, empty or with a spec no
    trusted host signed, runs nothing; counted, it would stop this job and set the
    item's marker aside."""
    found = []
    for other in queue.other_runs(item_uid, running_name):
        claim = RunningName.parse(other)
        try:
            with queue.open_job(RUNNING, other) as job:
                spec_data = job.spec() or {}
            verified_by(config, spec_data, trusted)
        except (OSError, BadEntry, ForgedSpec):
            continue
        if claim is not None and spec_data.get("id") == claim.job_id:
            found.append(other)
    return found


def _opened_input(config: Config, spec: JobSpec) -> Folder | None:
    """The job's input folder in staging, opened with no link followed; None for a job
    that reads none (a rip)."""
    if not spec.input_dir or relative_parts(config.staging_root, spec.input_dir) is None:
        return None
    return open_below(config.staging_root, spec.input_dir)


def run_claimed_job(
    config: Config,
    queue: Queue,
    running_name: str,
    name: JobName,
    worker: str,
    slot_fd: int,
    live: LiveList | None = None,
) -> ClaimResult:
    if JobName.parse(name.job_id) is None:  # the claimer did not look at its date
        return _reject(queue, running_name, name.job_id, "its name holds no real date")
    try:
        trusted = trusted_keys(config)
    except SafetyRefusal:
        # This host's trust file is wrong, not the job: it goes back for a worker that
        # can check it, and the refusal reaches the person who runs this one.
        queue.move(RUNNING, running_name, PENDING, name.job_id)
        raise
    try:
        job = queue.open_job(RUNNING, running_name)
    except BadEntry as error:
        return _reject(queue, running_name, name.job_id, f"{error.problem} (not a job folder)")
    with job:
        try:
            spec = _checked_spec(config, queue, job, name, worker, trusted, live)
            # One item never has two scripts at once (a copy of its job made on the share):
            # both copies may see each other and refuse; reconcile then queues the item
            # again. Each looks after its own rename into running/, and again every poll.
            if others := other_runs(config, queue, name.item_uid, running_name, trusted):
                raise SpecError(f"another job of this item is running ({others[0]})")
            job.record_claim(worker, utc_now())
        except (SpecError, BadEntry) as error:
            return _reject(queue, running_name, name.job_id, str(error))
        crash_point("claim:beating")
        # The claim and its first heartbeat are on the share: from here reconcile counts
        # this job's life from them. Were it taken back before (a controller that judged
        # it by an older sign of life), another worker may have it now: not ours to run.
        if not queue.still_holds(running_name, job):
            answer_take_back(job, running_name)
            return ClaimResult(
                f"job {name.job_id} was taken back before its script started; nothing was run",
                name.job_id,
                "failed",
            )
        return _run(config, queue, running_name, job, spec, worker, slot_fd, trusted)


def _run(config, queue, running_name, job, spec: JobSpec, worker, slot_fd, trusted) -> ClaimResult:
    script = config.script_for(spec.kind, spec.key.type)
    fields = spec.template_fields()
    argv = [script.path, *(template.format(**fields) for template in script.args)]
    log.info(
        "running %s: %s",
        spec.job_id,
        script.path,
        extra={"event": "job_start", "job": spec.job_id, "worker": worker, "item": spec.key.name},
    )
    environment = _environment(spec)
    with contextlib.ExitStack() as opened_folders:
        try:
            # The script starts in its input folder, opened now, step by step with no
            # link followed: what it reaches from there stays that folder's even if a
            # folder above it is swapped for a link on the share while it runs.
            opened = _opened_input(config, spec)
            if opened is not None:
                opened_folders.enter_context(opened)
            # And it writes only below its item's own folders, opened the same way.
            writable = writable_folders(config, spec, opened_folders)
        except (OSError, BadEntry) as error:
            return _reject(queue, running_name, spec.job_id, f"its folders: {error}")
        if opened is not None:
            environment["MP_INPUT_OPENED"] = "1"
        crash_point("claim:starting")
        try:
            outcome = run_script(
                argv,
                environment,
                queue,
                running_name,
                job,
                lambda: other_runs(config, queue, spec.key.uid, running_name, trusted),
                heartbeat_seconds=config.jobs.heartbeat_seconds,
                timeout_seconds=config.timeout_for(script, spec.kind),
                grace_seconds=config.jobs.cancel_grace_seconds,
                log_max_bytes=config.jobs.log_max_bytes,
                slot_fd=slot_fd,
                cancel_verifies=lambda text: cancel_verifies(text, spec.job_id, trusted),
                cwd_fd=opened.fd if opened is not None else -1,
                writable=tuple(writable),
            )
            if outcome.stopped == "duplicate":
                set_marker_aside(config.staging_root, spec.marker_folder, spec.kind, "duplicate")
                return _reject(queue, running_name, spec.job_id, "another job of this item ran")
        except BadEntry as error:  # a log that is a link or a FIFO
            return _reject(queue, running_name, spec.job_id, str(error))
    crash_point("claim:exited")
    try:
        result = _finish(config, queue, running_name, job, spec, outcome, worker)
    except BadEntry as error:
        # A folder planted where the outcome is written (result.json): the job goes to
        # rejected/ with why; its marker, if the script wrote one, still tells reconcile.
        record_end(config, spec.job_id)  # it ran here: a copy put back does not run again
        return _reject(queue, running_name, spec.job_id, f"its outcome: {error}")
    except FileNotFoundError:
        # Reconcile judged this job stale and took it back while it ran (a heartbeat
        # that could not reach the share); the queue already has it elsewhere.
        return ClaimResult(
            f"job {spec.job_id} was taken back as stale while it ran; outcome not recorded",
            spec.job_id,
            "failed",
        )
    level = logging.INFO if not result.failed else logging.WARNING
    log.log(
        level,
        "%s",
        result.message,
        extra={
            "event": "job_" + (result.outcome or "done"),
            "job": spec.job_id,
            "worker": worker,
            "item": spec.key.name,
        },
    )
    return result
