"""The controller's signed list of live jobs (`live.json` at the top of the queue).

A signed spec proves the controller wrote a job once, not that it still wants it run. A
share writer who copied a pending job's folder could put it back after a person
cancelled it, or after its item moved on (a retry made a newer job, `mp forget`), and a
worker would run it. So the controller also signs, at every run, the list of jobs it
wants run now: the newest job of each item that is in that job's state, from its own
database (a job moved back into pending/ changes none of that). A worker claims a job
the controller signed only while a list no older than FRESH_SECONDS names it; any other
it leaves where it is, and says why. A rip that a ripper signed for its own drive is the
ripper's to run as it comes (the disc is in its drive now): no list is asked for.

What is left: a list still fresh that named the job (at most FRESH_SECONDS old) can be
put back in place of a newer one. The list is written again when its jobs change and,
while it names any, at least every REFRESH_SECONDS (the controller's full run comes at
least every 5 minutes); an empty one is left as it is, so idling costs nothing more.
A controller that has not run for FRESH_SECONDS starts no new job of its own signing.

The list also names the jobs a person cancelled (`stopped`), for as long as a copy of
their spec could verify: a copy put back is refused whoever signed it, a ripper's own
rip included, which otherwise runs without a list. And each worker host remembers, on
its own disk beside its ledger, the newest list it has read: a list older than that, or
none at all after one, was put back or taken away on the share. Its controller's jobs
then wait as for a stale list, and so do its ripper's rips, until the controller writes
a list again (at its next run). What is left: a host that never read the newer list (it
claimed nothing meanwhile) can still be shown an older one that is fresh.
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from media_pipeline.config.settings import Config
from media_pipeline.idle.quick import read_small
from media_pipeline.jobs.keys import CONTROLLER, this_host_signer, trusted_keys
from media_pipeline.jobs.queue import JobName, Queue
from media_pipeline.jobs.signature import (
    CLOCK_SKEW_SECONDS,
    ISSUED_AT,
    LIVE_JOBS,
    LIVE_MADE,
    LIVE_STOPPED,
    live_problem,
    signed_live,
    stale_problem,
)
from media_pipeline.pipeline import KIND_STATES
from media_pipeline.share.files import BadEntry
from media_pipeline.share.fsutil import write_file_atomic
from media_pipeline.worker.ledger import ledger_folder

if TYPE_CHECKING:
    from sqlite_utils import Database

log = logging.getLogger(__name__)

LIVE_FILE = "live.json"
FRESH_SECONDS = 900
REFRESH_SECONDS = 300
# On each worker host, beside its ledger: the time of the newest list it has read.
NEWEST_SEEN_FILE = "newest_live_list"


def live_job_ids(db: Database) -> list[str]:
    """The newest live job of each item whose state is that job's."""
    newest: dict[str, tuple[str, str]] = {}
    # A job a person cancelled is never live again, whatever the queue shows of it.
    query = (
        "SELECT j.id, j.kind, j.item_uid, i.state FROM jobs j "
        "JOIN media_items i ON i.uid = j.item_uid WHERE j.state IN ('pending', 'running') "
        "AND j.id NOT IN (SELECT id FROM stopped_jobs)"
    )
    for job_id, kind, uid, state in db.execute(query).fetchall():
        job = JobName.parse(job_id, check_date=False)
        if job is None or job.kind != kind or KIND_STATES.get(kind) != state:
            continue
        if uid not in newest or job.made > newest[uid][0]:
            newest[uid] = (job.made, job_id)
    return sorted(job_id for _made, job_id in newest.values())


def stopped_job_ids(config: Config, db: Database, now: float) -> list[str]:
    """The jobs a person cancelled whose spec a copy could still verify by (made within
    spec_lifetime_days)."""
    oldest = datetime.fromtimestamp(now - config.jobs.spec_lifetime_days * 86400, UTC)
    oldest_made = oldest.strftime("%Y%m%dT%H%M%S%f")
    found = []
    for (job_id,) in db.execute("SELECT id FROM stopped_jobs").fetchall():
        job = JobName.parse(job_id, check_date=False)
        if job is not None and job.made >= oldest_made:
            found.append(job_id)
    return sorted(found)


def publish(config: Config, db: Database, queue: Queue, now: float | None = None) -> bool:
    """Sign and write the live list when its jobs changed or it is getting old; whether
    it was written. Only the controller signs one."""
    signer = this_host_signer(config)
    if signer.name != CONTROLLER:
        return False
    now = time.time() if now is None else now
    jobs = live_job_ids(db)
    stopped = stopped_job_ids(config, db, now)
    try:
        current = queue.read_top_json(LIVE_FILE)
    except BadEntry:
        current = None
    if (
        current is not None
        and current.get(LIVE_JOBS) == jobs
        and current.get(LIVE_STOPPED, []) == stopped
    ):
        # An empty list is left however old (it lets no job of the controller's run, and
        # a list left as it is keeps every host's idle note valid: the cost of idling),
        # but only one that verifies: an unsigned copy would stand for it for good.
        age = REFRESH_SECONDS if jobs else math.inf
        if live_problem(current, trusted_keys(config), now, age) is None:
            return False
    try:
        queue.write_top_json(LIVE_FILE, signed_live(signer, jobs, now, stopped))
    except (OSError, BadEntry) as error:
        # Something planted where the list goes: the command's own work stands; the
        # workers start no job of the controller's until the list can be written.
        detail = getattr(error, "strerror", None) or str(error)
        log.warning(
            "the list of live jobs was not written (%s): workers start no new job of the "
            "controller's until it is; move what is in its place away",
            detail,
        )
        return False
    return True


class LiveList:
    """The live list as a worker reads it once per snapshot of pending/.

    A job the controller signed is claimed when the list names it. One it does not name
    is either not listed yet (made after the list: dispatch writes the job, then the
    list) and left to wait, or was not live when the list was made (made before it:
    cancelled, made again since, or a copy put back) and is claimed only to be refused
    into rejected/ with the reason, its script never started."""

    def __init__(self, config: Config, queue: Queue, now: float | None = None):
        self.jobs: frozenset[str] = frozenset()
        self.stopped: frozenset[str] = frozenset()
        self.issued: int | None = None
        self.made = ""  # the time of a list that verifies, stale or not
        self.problem: str | None = None
        # A list older than one this host read, or none (or one that does not verify)
        # after one: not the controller's doing (it only ever writes a newer one). Rips
        # wait then too.
        self.tampered = False
        now = time.time() if now is None else now
        seen_path = os.path.join(ledger_folder(config), NEWEST_SEEN_FILE)
        seen = _newest_seen(seen_path, now)
        try:
            found = queue.read_top_json(LIVE_FILE)
        except BadEntry as error:
            self.problem = str(error)
            self.tampered = seen is not None
            return
        # Whether the controller signed it, whatever its age: a stale list still says
        # which jobs a person cancelled.
        problem = live_problem(found, trusted_keys(config), now, math.inf)
        if found is None or problem is not None:
            self.problem = problem or "there is none yet (the controller writes it at its next run)"
            if seen is not None:
                what = "none" if found is None else "none that verifies"
                self.problem = (
                    f"there is {what}, though this host has read one of {_shown(seen)}: "
                    f"taken away on the share ({self.problem})"
                )
                self.tampered = True
            return
        made = found[LIVE_MADE]
        if seen is not None and made < seen:
            self.problem = (
                f"it is older than the list of {_shown(seen)} this host has read: a list "
                "put back on the share"
            )
            self.tampered = True
            return
        self.made = made
        stopped = found.get(LIVE_STOPPED)
        if isinstance(stopped, list):
            self.stopped = frozenset(job for job in stopped if isinstance(job, str))
        if seen is None or made > seen:
            _remember(seen_path, made)
        self.problem = stale_problem(found, now, FRESH_SECONDS)
        if self.problem is not None:
            return  # the controller's own jobs wait for a fresh one
        self.jobs = frozenset(job for job in found[LIVE_JOBS] if isinstance(job, str))
        self.issued = found[ISSUED_AT]

    def stops(self, job_id: str) -> bool:
        """Whether a person cancelled the job: a copy is refused whoever signed it."""
        return job_id in self.stopped

    def names(self, job_id: str) -> bool:
        return job_id in self.jobs

    def left_out(self, job_id: str, spec: dict) -> bool:
        """Whether the list, made after the job, leaves it out. After: both the time in
        its id (to the microsecond) and the second its spec was signed come before the
        list's (the controller names and signs its jobs and makes its lists under the
        database's lock, with one clock). A job signed again since (`mp priority` gives
        it a new id with its old time) is newer than the list, and waits for the next."""
        job = JobName.parse(job_id, check_date=False)
        issued = spec.get(ISSUED_AT)
        return (
            self.issued is not None
            and job is not None
            and job.made < self.made
            and isinstance(issued, int)
            and not isinstance(issued, bool)
            and issued < self.issued
            and job_id not in self.jobs
        )

    def cancelled_refusal(self) -> str:
        return (
            f"a person cancelled it (the controller's list of live jobs of "
            f"{_shown(self.made)} says so): a copy put back"
        )

    def refusal(self) -> str:
        when = datetime.fromtimestamp(self.issued or 0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"the controller's list of live jobs of {when} does not name it (cancelled, "
            "or made again since: a copy put back)"
        )


def _shown(made: str) -> str:
    """A list's time (YYYYMMDDTHHMMSSffffff) as a person reads it."""
    try:
        when = datetime.strptime(made[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return "an unknown time"
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _newest_seen(path: str, now: float) -> str | None:
    """The time of the newest list this host has read, from its own disk. One later
    than now (by more than the clocks may differ) was read while the clock ran ahead:
    the clock has gone back since, and the controller's lists will be "older" for as
    long; it is forgotten (and said), rather than stop every job for that long."""
    text = read_small(path)
    if text is None or len(text) != 21 or text[8] != "T":
        return None
    latest = datetime.fromtimestamp(now + CLOCK_SKEW_SECONDS, UTC).strftime("%Y%m%dT%H%M%S%f")
    if text > latest:
        log.warning(
            "the newest live list this host has read (%s) is from its future: the clock "
            "has gone back; going on from the controller's next list",
            _shown(text),
        )
        return None
    return text


def _remember(path: str, made: str) -> None:
    """Note a newer list's time; a host that cannot still claims by lists, unguarded
    against one put back, and says so. Looked at again just before: a claim beside this
    one may have noted a newer one meanwhile."""
    current = read_small(path)
    if current is not None and current >= made and len(current) == len(made):
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_file_atomic(path, made + "\n")
    except (OSError, BadEntry) as error:
        log.warning(
            "cannot note the newest live list in %s (%s): an older list put back on the "
            "share is not recognised here",
            path,
            getattr(error, "strerror", None) or error,
        )
