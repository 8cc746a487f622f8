"""Reconcile's side of the job queue: take back orphaned jobs, drop old ones, and bring
the `jobs` table and the items' states in line with the queue folders.

Every function returns one sentence per change; with dry_run they only describe.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from datetime import UTC, datetime

from sqlite_utils import Database

from media_pipeline.approve.gates import (
    approval_digest,
    approvals_in_force,
    approved_destinations,
    filing_destination,
)
from media_pipeline.config.settings import Config
from media_pipeline.faults import crash_point
from media_pipeline.items.names import printable
from media_pipeline.items.state import (
    Transitioned,
    change_state,
    create_item,
    item_name,
    stopped_ripping,
    write_item_files,
)
from media_pipeline.jobs.keys import trusted_keys
from media_pipeline.jobs.outcome import record_failure, write_outcome
from media_pipeline.jobs.queue import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED_DIRS,
    LIVE_DIRS,
    PENDING,
    QUEUE_DIRS,
    RUNNING,
    TMP,
    JobFolder,
    JobName,
    Queue,
    Rejected,
    RunningName,
    parse_entry,
)
from media_pipeline.jobs.signature import (
    FORGED,
    ForgedSpec,
    cancel_verifies,
    check_signature,
    lifetime_seconds,
    result_problem,
    untrusted_refusal,
)
from media_pipeline.jobs.spec import SpecError, parse_spec
from media_pipeline.library.filing import settle_filing
from media_pipeline.library.seasons import Waiting, recorded_range, season_of
from media_pipeline.notify.events import Event, failures_event, job_failed_event
from media_pipeline.notify.send import notify_each_or_one
from media_pipeline.pipeline import (
    DESTINATION_GATE,
    DISC_STAGE,
    FILING_STAGE,
    KIND_STATES,
    REVERT,
    RUNNING_KINDS,
    State,
)
from media_pipeline.reconcile.queue_rules import (
    IN_JOB,
    QueuedJob,
    after_refusal,
    failure_reason,
    newest_jobs,
    orphan_fate,
    rows_out_of_date,
    verdicts,
)
from media_pipeline.share.files import BadEntry
from media_pipeline.share.markers import has_marker, set_marker_aside
from media_pipeline.store import in_slices, rows_by
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)


class _Trust:
    """The keys this controller trusts, read once a run and only when a spec is checked."""

    def __init__(self, config: Config):
        self.config = config

    @functools.cached_property
    def keys(self) -> dict[str, list[bytes]]:
        return trusted_keys(self.config)

    def problem(self, spec: dict | None, job: JobName, *, known: bool) -> str | None:
        """Why spec is not one to act on for the job its folder names, or None. A job
        the database knows was checked when first seen, and may be older than a spec's
        lifetime by now: only its signature counts (a copy of it put back is caught by
        its known state)."""
        if spec is None:
            return f"{FORGED}: no spec.json, or one that is not a JSON object"
        if spec.get("id") != job.job_id:
            # Another job's genuine spec: the folder's name, not the spec, is what the
            # queue's rules read (its kind, item and date).
            return f"{FORGED}: its spec is another job's"
        lifetime = math.inf if known else lifetime_seconds(self.config)
        try:
            check_signature(spec, self.keys, time.time(), lifetime)
        except ForgedSpec as error:
            return str(error)
        return None

    def failure_problem(self, queue: Queue, name: str, job: JobName) -> str | None:
        """Why a job in failed/ did not fail on a host this controller trusts, or None."""
        result = queue.read_result(FAILED, name)
        return result_problem(result, job.job_id, self.keys)

    def cancel_problem(self, queue: Queue, name: str, job: JobName) -> str | None:
        """Why a job in cancelled/ was not cancelled by this controller, or None."""
        text = queue.read_cancel(CANCELLED, name)
        if cancel_verifies(text, job.job_id, self.keys):
            return None
        return f"{FORGED}: no cancel the controller signed ('mp cancel' writes one)"


def reject_strays(queue: Queue, *, dry_run: bool) -> list[str]:
    """Entries of the queue folders that are not jobs mp made (a link, a plain file, a
    name with an unknown kind or a date that is none, a job moved into running/ by hand)
    go to rejected/ with the reason: one bad entry must never stop a run, nor sit in
    pending/ forever without a word."""
    changes = []
    moved = 0
    for state in QUEUE_DIRS:
        folder = queue.dir(state)
        for entry in folder.entries() if folder is not None else []:
            name = entry.name
            if name.startswith("."):
                continue  # back-off files, temporary files, NFS's .nfs files
            problem = None
            if parse_entry(state, name) is None:
                problem = (
                    "not a running job's name (ID.WORKER.PID.tCLAIMED); moved here by hand?"
                    if state == RUNNING and JobName.parse(name) is not None
                    else "not a name mp gives a job"
                )
            elif not entry.is_dir(follow_symlinks=False):
                problem = "a link" if entry.is_symlink() else "not a folder"
                problem = f"is {problem}, not a job folder"
            if problem is None:
                continue
            moved += 1
            if moved <= SAID_EACH_UP_TO:
                changes.append(f"{state}/{printable(name)[:120]}: {problem}; moved to rejected/")
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    queue.reject(state, name, problem)
    if moved > SAID_EACH_UP_TO:
        changes.append(
            f"... and {moved - SAID_EACH_UP_TO} more entries that are no job moved to "
            "rejected/ ('mp jobs --state rejected' lists them)"
        )
    return changes


# A flood of junk in the queue folders is said in this many lines and one that counts.
SAID_EACH_UP_TO = 20


def reject_unapproved_filings(
    config: Config, db: Database | None, queue: Queue, *, dry_run: bool
) -> list[str]:
    """A pending filing job whose destination is not the one this controller approved
    (or proposed) was changed on the share after dispatch wrote it: rejected before a
    worker files the item there. A worker can only check that a destination is inside
    library_root (it holds no key to tell an approval from a forgery); the database can
    tell which destination a person chose."""
    pending = [
        (name, job) for state, name, job in queue.jobs((PENDING,)) if job.kind == FILING_STAGE.kind
    ]
    if db is None or not pending:
        return []
    rows = rows_by(db, "media_items", "uid", [job.item_uid for _name, job in pending])
    approved = approved_destinations(db)
    gated = DESTINATION_GATE in config.gates
    in_force = approvals_in_force(db, list(rows), DESTINATION_GATE) if gated else {}
    changes = []
    for name, job in pending:
        row = rows.get(job.item_uid)
        spec = queue.read_spec(PENDING, name) or {}
        if row is None:
            continue
        if spec.get("destination") != filing_destination(config, approved, row):
            problem = "its destination is not the one approved for its item"
        elif spec.get("episodes") != _numbering_of(row):
            problem = "its episode numbers are not the ones dispatch settled for its item"
        elif (files_problem := _files_problem(config, db, row, approved, spec)) is not None:
            problem = files_problem
        elif gated and spec.get("approval") != _approval_of(in_force.get(row["uid"])):
            problem = f"it does not follow from the {DESTINATION_GATE} approval in force"
        else:
            continue
        changes.append(f"job {job.job_id}: {problem}; moved to rejected/")
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                queue.reject(PENDING, name, problem)
    return changes


def _approval_of(approval: dict | None) -> str | None:
    """The digest a filing spec names for the approval in force, as dispatch writes it."""
    return approval_digest(approval) if approval else None


def _files_problem(config: Config, db: Database, row: dict, approved: dict, spec: dict):
    """Why a pending filing spec's file list is not the one dispatch would write for its
    item now (changed, replayed from another job, or taken out), or None."""
    gated = DESTINATION_GATE in config.gates
    destination = approved.get((row["uid"], DESTINATION_GATE)) if gated else None
    settled = settle_filing(config, db, row, destination)
    if isinstance(settled, Waiting):
        return f"its item is not ready to file ({settled.reason})"
    wanted = [list(pair) for pair in settled.files] if settled.files is not None else None
    if spec.get("files") != wanted:
        return "its file list is not the one dispatch wrote for its item"
    return None


def _numbering_of(row: dict) -> dict | None:
    """The `episodes` a filing spec of this item must carry: as dispatch recorded them."""
    recorded = recorded_range(row.get("episodes"))
    if row["type"] != "tv" or recorded is None:
        return None
    return {"season": season_of(row), "first": recorded[0]}


def _stale_outcome(
    config: Config, trust: _Trust, job: JobFolder, name: JobName
) -> tuple[str | None, str | None]:
    """For a stale job: (reason to reject it, or None; why its finished run does not
    count, or None when its marker is there and its outputs verify)."""
    try:
        spec_data = job.spec()
        if (forged := trust.problem(spec_data, name, known=True)) is not None:
            return forged, None
        spec = parse_spec(spec_data, name, config)
    except (SpecError, BadEntry) as error:
        return f"its spec cannot be used ({error})", None
    if not has_marker(config.staging_root, spec.marker_folder, spec.kind):
        return None, "no marker"
    from media_pipeline.worker.verify import verify_outputs  # probes media: only here

    problem = verify_outputs(spec)
    if problem is not None:
        set_marker_aside(
            config.staging_root, spec.marker_folder, spec.kind, f"failed-{spec.job_id}"
        )
        return None, f"outputs failed verification: {problem}"
    return None, None


def recover_stale_jobs(config: Config, queue: Queue, *, dry_run: bool) -> list[str]:
    """Running jobs silent for more than stale_after_seconds, counted from the later of
    their claim and their last heartbeat, lost their worker (host rebooted, worker
    killed): finish them if their marker shows the script did its
    work and its outputs verify, else put them back (claimable at once) or fail them
    after max_attempts."""
    changes = []
    now = time.time()
    trust = _Trust(config)
    for entry in queue.running():
        running_name = entry.folder_name
        age = queue.silent_seconds(entry, now, config.jobs.stale_after_seconds)
        if age is None or age <= config.jobs.stale_after_seconds:
            continue
        silence = (
            f"no heartbeat for {age:.0f} s"
            if math.isfinite(age)
            else "no heartbeat, claim or folder time that is not in the future"
        )
        vanished = f"worker {entry.worker} vanished ({silence})"
        if dry_run:
            changes.append(f"job {entry.job_id}: {vanished}; would be taken back")
            continue
        try:
            job = queue.open_job(RUNNING, running_name)
        except FileNotFoundError:
            continue  # finished meanwhile
        except BadEntry as error:
            changes.append(f"job {entry.job_id}: {error.problem}; moved to rejected/")
            queue.reject(RUNNING, running_name, error.problem)
            continue
        with job:
            try:
                changes.extend(_recover(config, queue, trust, job, entry, vanished))
            except BadEntry as error:
                # A folder planted where mp writes a file of the job (result.json): the
                # job goes to rejected/, and this run goes on with the others.
                changes.append(f"job {entry.job_id}: {error}; moved to rejected/")
                with contextlib.suppress(FileNotFoundError):
                    queue.reject(RUNNING, running_name, str(error))
    return changes


def _recover(config, queue: Queue, trust: _Trust, job: JobFolder, entry, vanished: str) -> list:
    """What recover_stale_jobs does with one stale job, its folder open."""
    changes: list[str] = []
    running_name = entry.folder_name
    rejected, failure = _stale_outcome(config, trust, job, entry.job)
    if rejected:
        changes.append(f"job {entry.job_id}: {rejected}; moved to rejected/")
        queue.reject(RUNNING, running_name, rejected)
    elif failure is None:
        changes.append(
            f"job {entry.job_id}: worker {entry.worker} vanished after its "
            "script finished; completed"
        )
        write_outcome(
            config,
            job,
            entry.job_id,
            {
                "status": "completed",
                "exit_code": 0,
                "worker": entry.worker,
                "finished_at": utc_now(),
                "note": "recovered by reconcile: the marker was written",
            },
        )
        _move_quietly(queue.move, RUNNING, running_name, COMPLETED)
    else:
        reason = vanished if failure == "no marker" else f"{vanished}; {failure}"
        changes.append(f"job {entry.job_id}: {reason}; taken back")
        try:
            spec_data = job.spec() or {}
        except BadEntry:
            spec_data = {}
        _move_quietly(
            record_failure,
            config,
            queue,
            job,
            RUNNING,
            running_name,
            entry.job_id,
            spec_data,
            reason,
            exit_code=None,
            worker=entry.worker,
            retry_at_once=failure == "no marker",
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
    """Finished job folders older than retention_days (history stays in the database),
    and jobs half-built in tmp/ by a dispatch that died (it builds a new one). Only
    folders named as jobs are removed. Entries of rejected/ go after retention_days too
    when they hold nothing anyone could miss (Queue.remove_rejected); the rest stay."""
    changes = []
    cutoff = config.jobs.retention_days * 86400
    now = time.time()
    for name in queue.names(TMP):
        age = queue.folder_age(TMP, name, now)
        if age is not None and age > HALF_BUILT_SECONDS and JobName.parse(name):
            done = "removed" if dry_run else _remove_quietly(queue, TMP, name)
            changes.append(f"job {name}: half-built in tmp/ {age / 60:.0f} min ago; {done}")
    if not dry_run:
        queue.remove_expired_waits(now)  # housekeeping only: not worth a line of output
    for state in FINISHED_DIRS:
        for name in queue.names(state):
            if JobName.parse(name) is None:
                continue  # not a job: reject_strays moves it to rejected/
            age = queue.result_age(state, name, now)
            if age is None:
                age = queue.folder_age(state, name, now)
            if age is not None and age > cutoff:
                done = "folder removed" if dry_run else _remove_quietly(queue, state, name)
                changes.append(f"job {name}: {state} {age / 86400:.0f} days ago; {done}")
    changes.extend(_remove_expired_rejections(queue, now - cutoff, dry_run=dry_run))
    return changes


def _remove_expired_rejections(queue: Queue, before: float, *, dry_run: bool) -> list[str]:
    """rejected/ entries older than before, removed where nothing is lost (said in one
    line: they may be thousands); those kept are not named again."""
    removed = kept = 0
    for entry in queue.rejected(reasons=False):
        moved_at = queue.rejected_at(entry.name)
        if moved_at is None or moved_at >= before:
            continue
        if dry_run:
            removed += 1
            continue
        try:
            queue.remove_rejected(entry.name)
            removed += 1
        except BadEntry:
            kept += 1  # holds what may be someone's: stays for a person
        except OSError:
            continue  # gone meanwhile, or not ours to remove: the next run tries again
    if not removed:
        return []
    would = "would be removed" if dry_run else "removed"
    rest = f"; {kept} kept (they hold files mp did not write)" if kept else ""
    return [f"rejected/: {removed} entries past retention_days {would}{rest}"]


def _remove_quietly(queue: Queue, queue_folder: str, name: str) -> str:
    """Remove an expired job folder; one that holds what mp never writes there (an item
    folder renamed to look like a job) is moved to rejected/ instead, never deleted.
    Returns what became of it, in words."""
    try:
        queue.remove(queue_folder, name)
    except FileNotFoundError:
        return "gone meanwhile"
    except BadEntry as error:
        with contextlib.suppress(FileNotFoundError):
            queue.reject(queue_folder, name, f"{error.problem}; not removed")
        return f"{printable(error.problem)}: moved to rejected/, not removed"
    except OSError as error:
        return f"not removed ({error.strerror}); the next run tries again"
    return "folder removed"


def _follow_the_disc(config, db, spec: dict, job: JobName, item: dict | None) -> None:
    """A new rip a disc started for an item in its rip (the disc put in again after a
    failed rip, into any drive): the item's drive is now that one, which a retry reads.
    Only from a spec parse_spec accepts (a refused one moves nothing); a valid one forged
    on the share, naming any host, does move it (the note of issue 14 says so)."""
    if item is None or not (item["state"] == DISC_STAGE.running or stopped_ripping(item)):
        return
    try:
        drive = parse_spec(spec, job, config).drive
    except SpecError:
        return
    if drive is not None and item.get("drive") != str(drive):
        db.table("media_items").update(item["id"], {"drive": str(drive)})


def _job_row(queue: Queue, queue_folder: str, name: str, job: JobName, spec: dict) -> dict:
    result = queue.read_result(queue_folder, name) or {}
    running = RunningName.parse(name) if queue_folder == RUNNING else None
    attempts = spec.get("attempts")
    exit_code = result.get("exit_code") if queue_folder in FINISHED_DIRS else None
    finished_at = result.get("finished_at") if queue_folder in FINISHED_DIRS else None
    worker = running.worker if running else result.get("worker")
    claimed_at = _timestamp(queue.read_claimed_at(queue_folder, name))
    return {
        "id": job.job_id,
        "item_uid": job.item_uid,
        "kind": job.kind,
        "state": queue_folder,
        "attempts": _whole(attempts),
        "max_attempts": _whole(spec.get("max_attempts")),
        "priority": job.priority,
        "worker": str(worker)[:100] if worker else None,
        "created_at": job.created.isoformat(timespec="seconds"),
        "claimed_at": claimed_at,
        "finished_at": _timestamp(str(finished_at)) if finished_at else None,
        "exit_code": _whole(exit_code, allow_negative=True),
        "reason": str(result.get("reason"))[:500] if result.get("reason") else None,
        **{
            name: _number(result.get(name), most) if queue_folder == COMPLETED else None
            for name, most in (("seconds", TEN_YEARS), ("bytes_in", 2**62), ("bytes_out", 2**62))
        },
    }


def _timestamp(text: str) -> str | None:
    """A time a worker wrote on the share, if it is one (it is shown, and charted)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.isoformat(timespec="seconds") if moment.tzinfo else None


def _whole(value, *, allow_negative: bool = False) -> int | None:
    """A count from a file anyone may edit, or None if it is not a plain whole number."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if not allow_negative and value < 0:
        return None
    return value if abs(value) < 2**62 else None


# No job runs longer; a result that says so was not written by a worker.
TEN_YEARS = 10 * 365 * 86400


def _number(value, most: float):
    """A measurement from result.json, or None if it is not a plain number from 0 up to
    most (a forged one would otherwise reach sums, charts and time arithmetic)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if 0 <= value < most else None


def _trusted_entries(config, queue: Queue, queue_jobs, jobs: dict, changes, dry_run) -> list:
    """The queue's entries reconcile may act on: those it recorded in the state they are
    in, and those whose spec verifies (a host it trusts wrote it, for now) and that are
    not a finished job put back. The rest go to rejected/ with the reason, changing no
    item: an empty folder in failed/ once failed an honest item."""
    trust = _Trust(config)
    kept = []
    for state, name, job in queue_jobs:
        known = jobs.get(job.job_id)
        if known is not None and known["state"] == state:
            kept.append((state, name, job))
            continue
        problem = None
        if known is not None and known["state"] in FINISHED_DIRS:
            # A job finishes once: seen again anywhere else, it is a copy put back.
            problem = f"{FORGED}: this job {known['state']} already; a copy put back"
        else:
            try:
                with queue.open_job(state, name) as folder:
                    spec = folder.spec()
            except (FileNotFoundError, NotADirectoryError):
                # Moved on since the listing (claimed, finished): where it went is seen
                # by the next run. A live job still counts for its item as listed (were
                # it dropped, its item would look orphaned and be queued again: a soak
                # under load ran scripts twice that way); a finished one decides nothing.
                if state in LIVE_DIRS:
                    kept.append((state, name, job))
                continue
            except BadEntry as error:
                spec, problem = None, f"{FORGED}: spec.json {error.problem}"
            problem = problem or trust.problem(spec, job, known=known is not None)
            if problem is None and state == CANCELLED:
                problem = trust.cancel_problem(queue, name, job)
            if problem is None and state == FAILED:
                problem = trust.failure_problem(queue, name, job)
        if problem is None:
            kept.append((state, name, job))
            continue
        changes.append(f"job {printable(name)[:120]} in {state}/: {problem}; moved to rejected/")
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                queue.reject(state, name, f"{problem}; no item changed")
    return kept


def _record_cancels(
    config: Config, db: Database, queue: Queue, queue_jobs: list[tuple[str, str, JobName]]
) -> None:
    """The jobs in cancelled/ that a person cancelled (their cancel file the controller's
    signature) into stopped_jobs, which the live list names (jobs/live.py): known again
    after the database was lost, or for cancels from before it kept them."""
    cancelled = [(name, job) for state, name, job in queue_jobs if state == CANCELLED]
    if not cancelled:
        return
    known = {row[0] for row in db.execute("SELECT id FROM stopped_jobs").fetchall()}
    keys = None
    for name, job in cancelled:
        if job.job_id in known:
            continue
        keys = keys if keys is not None else trusted_keys(config)
        text = queue.read_cancel(CANCELLED, name)
        if cancel_verifies(text, job.job_id, keys):
            db.execute(
                "INSERT OR IGNORE INTO stopped_jobs (id, item_uid, stopped_at) VALUES (?, ?, ?)",
                [job.job_id, job.item_uid, utc_now()],
            )


def sync_jobs(config: Config, db: Database | None, queue: Queue, *, dry_run: bool) -> list[str]:
    """Record what the queue folders say in the jobs table, and its consequences for the
    items: a job failed for good fails its item; a live job for an item the database
    lacks (after losing it) or has not moved on brings the item to the job's state; an
    item whose job vanished from the queue goes back to be dispatched again."""
    changes: list[str] = []
    queue_jobs = queue.jobs()
    crash_point("reconcile:jobs-listed")  # what moves now is seen here as it was listed
    jobs = rows_by(db, "jobs", "id", [job.job_id for _s, _n, job in queue_jobs])
    queue_jobs = _trusted_entries(config, queue, queue_jobs, jobs, changes, dry_run)
    if db is not None and not dry_run:
        _record_cancels(config, db, queue, queue_jobs)
    listed = [QueuedJob(*entry) for entry in queue_jobs]
    # Asked only of items with an ended job: the live ones decide nothing by it.
    ended = [entry.job.item_uid for entry in listed if entry.state in (FAILED, CANCELLED)]
    latest = newest_jobs(listed, last_manual_change(db, ended))
    # Only the rows these jobs concern: the tables grow with the library and its history,
    # the queue folders only with the retention period.
    items = rows_by(db, "media_items", "uid", list(latest))

    for state, name, job in rows_out_of_date(listed, jobs):
        known = jobs.get(job.job_id)
        spec = queue.read_spec(state, name) or {}
        row = _job_row(queue, state, name, job, spec)
        if not dry_run and db is not None:
            db.table("jobs").upsert(row, pk="id")
            if known is None and job.kind == DISC_STAGE.kind and state in LIVE_DIRS:
                _follow_the_disc(config, db, spec, job, items.get(job.item_uid))
        if known is None or known["state"] != state:
            changes.append(f"job {job.job_id}: {state}")

    # Items, judged by their newest job (retries make newer jobs), in uid order; a live
    # job of an item the database lacks (it was lost) brings the item back.
    failed: list[Event] = []
    judged = {verdict.uid: verdict for verdict in verdicts(latest, items)}
    for uid, (state, name, job) in sorted(latest.items()):
        if uid not in items or db is None:
            if state in LIVE_DIRS:
                changes.extend(_restore_item(config, db, queue, state, name, job, dry_run))
            continue
        if (verdict := judged.get(uid)) is None:
            continue
        item, target, reason = items[uid], verdict.target, verdict.reason
        if target == State.FAILED:
            reason = failure_reason(reason, queue.read_result(state, name) or {})
        shown = "its job is in the queue" if target == KIND_STATES[job.kind] else reason
        changes.append(
            Transitioned(f"{printable(item_name(item))}: {verdict.current} -> {target} ({shown})")
        )
        if dry_run:
            continue
        write_item_files(
            config.staging_root,
            change_state(db, item, target, trigger=verdict.trigger, reason=reason[:500]),
        )
        if target == State.FAILED:
            failed.append(job_failed_event(job.job_id, item_name(item), reason, item["uid"]))
    if failed and db is not None:
        # Each, or one for them all past a few: a season's discs failing together.
        notify_each_or_one(config, db, failed, lambda: failures_event(failed))

    if db is not None:
        refusals = _Refusals(queue)
        in_job_states = [str(state) for state in IN_JOB]
        for marks, states in in_slices(in_job_states):
            query = f"SELECT * FROM media_items WHERE state IN ({marks}) AND missing_since IS NULL"
            for item in list(db.query(query, states)):  # listed: _orphan writes the table
                uid = item["uid"]
                changes.extend(
                    _orphan(config, db, queue, item, latest.get(uid), refusals.of(uid), dry_run)
                )
    return changes


class _Refusals:
    """The newest refusal in rejected/ of each item's job, for the items reconcile asks
    about: rejected/ is listed once, and a reason file read only for those items (it
    may hold a flood of entries that are no job of anyone's)."""

    def __init__(self, queue: Queue):
        self.queue = queue

    @functools.cached_property
    def by_item(self) -> dict[str, list[Rejected]]:
        """rejected/ listed on the first question: most runs find no item orphaned."""
        found: dict[str, list[Rejected]] = {}
        for entry in self.queue.rejected(reasons=False):
            if entry.job is not None:
                found.setdefault(entry.job.item_uid, []).append(entry)
        return found

    def of(self, uid: str) -> Rejected | None:
        for entry in reversed(self.by_item.get(uid, [])):
            reason = self.queue.rejected_reason(entry.name)
            # A worker's refusal of a spec nobody trusted was no refusal of the item's job.
            if not untrusted_refusal(reason):
                return entry._replace(reason=reason)
        return None


def last_manual_change(db: Database | None, uids: list[str]) -> dict[str, datetime]:
    """When a person last changed each item's state (mp retry, mp cancel, ...): a job
    made before it was made for what the item was before."""
    found: dict[str, datetime] = {}
    if db is None:
        return found
    for marks, chunk in in_slices(sorted(set(uids))):
        query = (
            "SELECT item_uid, at FROM state_transitions WHERE id IN (SELECT MAX(id) FROM "
            "state_transitions WHERE trigger = 'manual' AND item_uid IN "
            f"({marks}) GROUP BY item_uid)"
        )
        for row in db.query(query, chunk):
            with contextlib.suppress(TypeError, ValueError):
                at = datetime.fromisoformat(row["at"])
                found[row["item_uid"]] = at if at.tzinfo else at.replace(tzinfo=UTC)
    return found


def _restore_item(config, db, queue, queue_folder, name, job, dry_run) -> list[str]:
    """An item the database lacks but the queue has a live job for (`mp rip` before the
    database was lost): bring it back in the job's state."""
    if job.kind != DISC_STAGE.kind:
        # Reconcile never takes an item in from any other job: that was how a forged
        # filing job reached the library. An item lost with the database comes back
        # from its folder's markers ('mp reconcile --rebuild').
        return []
    spec_data = queue.read_spec(queue_folder, name)
    try:
        spec = parse_spec(spec_data, job, config)
    except SpecError:
        return []
    key = spec.key
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
        drive=str(spec.drive) if spec.drive else None,
    )
    return [change]


def _marker_written(config, queue, queue_folder, name, job) -> bool:
    spec_data = queue.read_spec(queue_folder, name)
    try:
        spec = parse_spec(spec_data, job, config)
    except SpecError:
        return False
    return has_marker(config.staging_root, spec.marker_folder, spec.kind)


def _orphan(config, db, queue, item: dict, latest, refusal: Rejected | None, dry_run) -> list:
    """An item in a job's state whose job is not live, and did not fail or get
    cancelled: the job vanished (a queue folder lost, a job deleted by hand), or a
    worker refused it (a spec changed on the share) and it sits in rejected/."""
    if item.get("missing_since"):
        return []
    current = State(item["state"])
    refused = refusal.job if refusal is not None else None
    fate = orphan_fate(
        current,
        (latest[0], latest[2].kind) if latest is not None else None,
        lambda: _marker_written(config, queue, *latest),
        refused.kind
        if refused is not None and (latest is None or refused.created >= latest[2].created)
        else None,
    )
    if fate == "wait":
        return []
    if fate == "refused":
        assert refusal is not None
        target, reason = _after_refusal(config, db, item, refusal.reason)
    elif fate == "fail":
        target, reason = State.FAILED, "its rip job is gone from the queue; 'mp retry' to rip again"
    else:
        target, reason = REVERT[current], "its job is gone from the queue; will be dispatched again"
    change = Transitioned(f"{printable(item_name(item))}: {current} -> {target} ({reason})")
    if not dry_run and db is not None:
        write_item_files(
            config.staging_root, change_state(db, item, target, trigger="auto", reason=reason)
        )
    return [change]


def _after_refusal(config, db, item: dict, why: str) -> tuple[State, str]:
    """after_refusal, counting the item's refusals since a person last acted on it."""
    current = State(item["state"])
    kind = RUNNING_KINDS[current]
    earlier = 0
    if db is not None:
        earlier = db.execute(
            "SELECT count(*) FROM state_transitions WHERE item_uid = ? AND reason LIKE ? "
            "AND id > coalesce((SELECT max(id) FROM state_transitions WHERE item_uid = ? "
            "AND trigger = 'manual'), 0)",
            [item["uid"], f"its {kind} job was rejected%", item["uid"]],
        ).fetchone()[0]
    return after_refusal(current, kind, earlier, config.jobs.max_attempts, printable(why)[:300])
