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
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from media_pipeline.config import Config
from media_pipeline.jobs.keys import CONTROLLER, this_host_signer, trusted_keys
from media_pipeline.jobs.queue import JobName, Queue
from media_pipeline.jobs.signature import (
    ISSUED_AT,
    LIVE_JOBS,
    LIVE_MADE,
    live_problem,
    signed_live,
)
from media_pipeline.share import BadEntry
from media_pipeline.states import KIND_STATES

if TYPE_CHECKING:
    from sqlite_utils import Database

log = logging.getLogger(__name__)

LIVE_FILE = "live.json"
FRESH_SECONDS = 900
REFRESH_SECONDS = 300


def live_job_ids(db: Database) -> list[str]:
    """The newest live job of each item whose state is that job's."""
    newest: dict[str, tuple[str, str]] = {}
    query = (
        "SELECT j.id, j.kind, j.item_uid, i.state FROM jobs j "
        "JOIN media_items i ON i.uid = j.item_uid WHERE j.state IN ('pending', 'running')"
    )
    for job_id, kind, uid, state in db.execute(query).fetchall():
        job = JobName.parse(job_id, check_date=False)
        if job is None or job.kind != kind or KIND_STATES.get(kind) != state:
            continue
        if uid not in newest or job.made > newest[uid][0]:
            newest[uid] = (job.made, job_id)
    return sorted(job_id for _made, job_id in newest.values())


def publish(config: Config, db: Database, queue: Queue, now: float | None = None) -> bool:
    """Sign and write the live list when its jobs changed or it is getting old; whether
    it was written. Only the controller signs one."""
    signer = this_host_signer(config)
    if signer.name != CONTROLLER:
        return False
    now = time.time() if now is None else now
    jobs = live_job_ids(db)
    try:
        current = queue.read_top_json(LIVE_FILE)
    except BadEntry:
        current = None
    if current is not None and current.get(LIVE_JOBS) == jobs:
        if not jobs:
            # Nothing to claim by it: its age and signature change nothing, and a list
            # left as it is keeps every host's idle note valid (the queue's folder
            # unchanged), the cost of idling.
            return False
        if live_problem(current, trusted_keys(config), now, REFRESH_SECONDS) is None:
            return False
    try:
        queue.write_top_json(LIVE_FILE, signed_live(signer, jobs, now))
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
        self.issued: int | None = None
        self.problem: str | None
        try:
            found = queue.read_top_json(LIVE_FILE)
        except BadEntry as error:
            self.problem = str(error)
            return
        now = time.time() if now is None else now
        self.problem = live_problem(found, trusted_keys(config), now, FRESH_SECONDS)
        if found is not None and self.problem is None:
            self.jobs = frozenset(job for job in found[LIVE_JOBS] if isinstance(job, str))
            self.issued = found[ISSUED_AT]
            self.made: str = found[LIVE_MADE]

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

    def refusal(self) -> str:
        when = datetime.fromtimestamp(self.issued or 0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"the controller's list of live jobs of {when} does not name it (cancelled, "
            "or made again since: a copy put back)"
        )
