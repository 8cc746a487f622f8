"""`mp claim`: choose and take at most one job this worker may run; running it is in
`worker/run_job.py`, loaded only when there is a job.

Runs on every worker host; it never opens the database. The queue folder is the only
thing it shares with the controller, and every move it makes there is one rename.
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import time
from datetime import datetime
from typing import TYPE_CHECKING

from media_pipeline.config.hosts import host_name, window_open
from media_pipeline.config.settings import Config
from media_pipeline.errors import PipelineError, UsageError
from media_pipeline.faults import crash_point
from media_pipeline.jobs.drain import is_drained
from media_pipeline.jobs.outcome import ClaimResult
from media_pipeline.jobs.queue import (
    PENDING,
    JobName,
    Queue,
)
from media_pipeline.library.disc import Drive
from media_pipeline.pipeline import DISC_STAGE
from media_pipeline.share.fsutil import SHARE_GONE_ERRNOS
from media_pipeline.share.identity import check_share
from media_pipeline.worker.slots import take_slot

if TYPE_CHECKING:
    from media_pipeline.jobs.live import LiveList

log = logging.getLogger(__name__)

# A claim that refuses this many bad jobs in a row stops until its next timer run.
MAX_REJECTED_PER_CLAIM = 20
# Rename errors that are the share's, not one job's: a claim stops on them.
STOPPING_ERRNOS = SHARE_GONE_ERRNOS | {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES}


def _script_ready(config: Config, job: JobName) -> bool:
    script = config.script_for(job.kind, job.item_type)
    return script is not None and os.access(script.path, os.X_OK)


class Claimer:
    """Claims jobs for one worker, best first.

    It keeps a sorted snapshot of pending/ between claims (as dirq's iterator does), so
    a loop of claims lists the folder once rather than once per job; the snapshot is
    taken again when used up or older than SNAPSHOT_SECONDS, so a new job of higher
    priority waits at most that long. A one-shot `mp claim` lists the folder once.

    Claimers sharing a snapshot would otherwise race for every job in turn (with four of
    them, each losing three races in four, and a lost race costs a rename and a stat).
    So a claimer that loses steps a few places ahead, by an amount that differs between
    processes, but never past the jobs of the priority it lost at. The jobs it passes
    are the ones the others are taking; any they leave are first in the next snapshot.
    """

    SNAPSHOT_SECONDS = 2.0

    def __init__(self, config: Config, queue: Queue, worker: str, kinds: tuple[str, ...]):
        self.config = config
        self.queue = queue
        self.worker = worker
        self.kinds = kinds
        self._names: list[str] = []
        self._waits: dict[str, int] = {}
        self._position = 0
        self._losses = 0
        self._pid = os.getpid()
        self._taken_at = float("-inf")
        self._scripts: dict[tuple[str, str], bool] = {}
        self.host = host_name()
        self._live: LiveList | None = None  # read once per snapshot, when first needed
        # Jobs left pending because no fresh live list names them (jobs/live.py).
        self.unlisted: set[str] = set()

    def _candidates(self):
        stale = time.monotonic() - self._taken_at > self.SNAPSHOT_SECONDS
        if stale or self._position >= len(self._names):
            names, self._waits = self.queue.pending()
            self._names = sorted(names)
            self._position = 0
            self._taken_at = time.monotonic()
            self._scripts.clear()
            self._live = None
        while self._position < len(self._names):
            job = JobName.parse(self._names[self._position], check_date=False)
            self._position += 1
            if job is not None and job.kind in self.kinds:
                yield job

    def claim_next(self, *, dry_run: bool = False) -> tuple[JobName | None, str | None, list[str]]:
        """Claim the best job this worker may run now. Returns (job, its running folder,
        kinds left pending because this host lacks their script). The caller holds a slot
        of the worker's max_running (slots.take_slot)."""
        missing_scripts: list[str] = []
        now = time.time()
        for job in self._candidates():
            ready = self._scripts.get((job.kind, job.item_type))
            if ready is None:
                ready = self._scripts[job.kind, job.item_type] = _script_ready(self.config, job)
            if not ready:
                missing_scripts.append(f"{job.kind} ({job.item_type})")
                continue
            if self._waits.get(job.job_id, 0) > now:
                continue  # backing off after a failure
            if job.kind == DISC_STAGE.kind and not self._disc_here(job):
                continue  # its disc is in another ripper's drive
            if not self._wanted(job):
                self.unlisted.add(job.job_id)
                continue  # not, or no longer, a job the controller wants run
            if dry_run:
                return job, None, missing_scripts
            crash_point("claim:chosen")
            try:
                folder = self.queue.claim(job.job_id, self.worker, self._pid)
            except OSError as error:
                if error.errno in STOPPING_ERRNOS:
                    raise  # the share itself: for the user to see, not one bad job
                # This one job cannot move (a name too long for running/, a file where a
                # folder should be): the next one may. Reconcile rejects it.
                log.warning(
                    "job %s cannot be claimed (%s); taking the next",
                    job.job_id,
                    error.strerror or error,
                )
                continue
            if folder is not None:
                crash_point("claim:claimed")
                self._losses = 0
                return job, folder, missing_scripts
            self._step_aside(job)
        return None, None, missing_scripts

    def _wanted(self, job: JobName) -> bool:
        """Whether a fresh live list of the controller's names the job; a rip a ripper
        signed for its own drive needs none (jobs/live.py)."""
        # Loaded only now: a claim with no job of its kinds (most) needs none of it.
        from media_pipeline.jobs.keys import CONTROLLER
        from media_pipeline.jobs.live import LiveList
        from media_pipeline.jobs.signature import SIGNED_BY

        if self._live is None:
            self._live = LiveList(self.config, self.queue)
        if self._live.names(job.job_id) or self._live.stops(job.job_id):
            return True  # to run, or (cancelled by a person) to be refused
        # Read before the claim, unverified: run_job verifies who signed it. A job not
        # the controller's is claimed (a ripper's rip of its own drive runs; anything
        # else is refused into rejected/ with its reason), unless the list was put back
        # or taken away; one of the controller's only once a list made after it leaves
        # it out (then to be refused), else it waits.
        spec = self.queue.read_spec(PENDING, job.job_id) or {}
        if spec.get("id") != job.job_id:
            return True  # a spec under another job's name is refused whatever the list
        if spec.get(SIGNED_BY) != CONTROLLER:
            return not self._live.tampered
        if self.queue.finished_as(job.job_id) is not None:
            return True  # a copy of a job that ran: refused whatever the list
        return self._live.left_out(job.job_id, spec)

    @property
    def live(self) -> LiveList | None:
        return self._live

    @property
    def live_problem(self) -> str | None:
        return None if self._live is None else self._live.problem

    def _disc_here(self, job: JobName) -> bool:
        """Whether a rip is this host's to run: one a disc started names the host whose
        drive holds the disc. (A spec that names no drive as a job may is claimed, and
        refused by run_job: it must not wait for ever.)"""
        spec = self.queue.read_spec(PENDING, job.job_id) or {}
        drive = Drive.named_in(spec)
        return drive is None or drive.host in ("", self.host)

    def _step_aside(self, lost: JobName) -> None:
        self._losses += 1
        skip = self._losses * (1 + self._pid % 4) - 1
        rank = lost.job_id[:8]  # "job_pNNN": the priority part of the sorted names
        end = bisect.bisect_left(self._names, rank + "\x7f", self._position)
        self._position = min(self._position + skip, max(self._position, end - 1))


def run_claim(config: Config, worker: str | None = None, *, dry_run: bool = False) -> ClaimResult:
    worker = worker or host_name()
    if worker not in config.workers:
        known = ", ".join(sorted(config.workers))
        raise UsageError(
            f"worker '{worker}' is not under 'workers' in {config.source} (known: {known}); "
            "pass --worker NAME"
        )
    check_share(config.staging_root)
    with Queue.of(config) as queue:
        if is_drained(queue, worker):
            return ClaimResult(
                f"worker {worker} is drained: claims nothing ('mp worker resume {worker}')"
            )
        minute = datetime.now().hour * 60 + datetime.now().minute
        kinds = tuple(
            kind
            for kind in config.workers[worker].kinds
            if window_open(config.windows.get(kind), minute)
        )
        if not kinds:
            return ClaimResult(f"worker {worker}: every kind it runs is outside its time window")
        limit = config.workers[worker].max_running
        slot = take_slot(config.queue_dir, worker, limit)
        if slot is None:
            return ClaimResult(f"worker {worker}: no job to run (it runs max_running = {limit})")
        with slot:  # held while the job runs
            return _claim_and_run(config, Claimer(config, queue, worker, kinds), slot, dry_run)


def _claim_and_run(config: Config, claimer: Claimer, slot, dry_run: bool) -> ClaimResult:
    """Claim the best job and run it; a job refused (it ran nothing) is kept in rejected/
    and the next one is taken: one bad entry never stops a claim."""
    worker = claimer.worker
    refused: list[str] = []
    for _attempt in range(MAX_REJECTED_PER_CLAIM):
        job, folder, missing = claimer.claim_next(dry_run=dry_run)
        if job is None:
            break
        if dry_run:
            return ClaimResult(f"would claim {job.job_id}", job.job_id)
        # Loaded only now: a claim that finds no job (most of them) needs none of it.
        from media_pipeline.worker.run_job import run_claimed_job

        assert folder is not None  # claim_next names the folder of the job it claimed

        result = run_claimed_job(
            config, claimer.queue, folder, job, worker, slot.descriptor, claimer.live
        )
        if result.outcome != "rejected":
            return result
        refused.append(result.message)
    else:
        return ClaimResult(f"worker {worker}: refused {MAX_REJECTED_PER_CLAIM} jobs in a row")
    if missing:
        kinds_missing = ", ".join(sorted(set(missing)))
        raise PipelineError(
            f"worker {worker} has no executable script for {kinds_missing} on this "
            "host; those jobs stay in pending/ for another worker"
        )
    closed = [kind for kind in config.workers[worker].kinds if kind not in claimer.kinds]
    note = f" ({', '.join(closed)}: outside its time window)" if closed else ""
    if claimer.unlisted:
        why = claimer.live_problem or "it names none of them: cancelled, or not yet listed"
        note += (
            f" ({len(claimer.unlisted)} pending job(s) of its kinds wait for the "
            f"controller's live list: {why})"
        )
    before = "".join(f"{message}\n" for message in refused)
    return ClaimResult(f"{before}worker {worker}: no job to run{note}")
