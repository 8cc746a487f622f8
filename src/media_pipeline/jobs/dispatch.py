"""`mp dispatch`: write a job into the queue for every item that needs one.

Runs on the controller under the database lock. The job is written to the queue before
the item's state changes: if the command dies between the two, the next reconcile sees
a live job for an item that does not know it and moves the item on, instead of a
second job ever being written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlite_utils import Database

from media_pipeline.config import Config
from media_pipeline.filing import settle_filing
from media_pipeline.filing_place import link_problem, place_problem
from media_pipeline.fsutil import check_staging_root
from media_pipeline.gates import approved_destinations, supersede_decisions
from media_pipeline.identity import ensure_share
from media_pipeline.item_state import item_name
from media_pipeline.items import ItemKey, printable
from media_pipeline.jobs.live import publish
from media_pipeline.jobs.queue import Queue
from media_pipeline.jobs.submit import submit_job
from media_pipeline.seasons import Waiting
from media_pipeline.states import NEXT_JOB, State
from media_pipeline.store import controller_database, open_database_readonly, require_database

log = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    queued: list[tuple[str, str]] = field(default_factory=list)  # (item name, job id)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (item name, what for)
    refused: list[str] = field(default_factory=list)  # approvals asked again, and why


def _plan(config: Config, db: Database | None, queue: Queue):
    if db is None:
        return [], [], []
    live = queue.live_item_uids()
    approved = approved_destinations(db)
    todo, waiting, refused = [], [], []
    rows = db.query(
        "SELECT * FROM media_items WHERE state IN (?, ?, ?) AND missing_since IS NULL "
        "ORDER BY priority DESC, updated_at",
        [str(state) for state in NEXT_JOB],
    )
    for row in rows:
        kind, gate, _running_state = NEXT_JOB[State(row["state"])]
        if row["uid"] in live:
            continue
        destination = None
        if gate in config.gates:
            if (row["uid"], gate) not in approved:
                waiting.append((item_name(row), f"needs {gate} approval ('mp approve')"))
                continue
            destination = approved[(row["uid"], gate)]
            problem = (
                place_problem(config.library_root, ItemKey.of(row), destination)
                or link_problem(config.library_root, destination)
                if destination
                else None
            )
            if problem:
                # Not one a person could approve now (library_root changed since, a shape
                # the gate took before, a link put in the library since, or the database
                # was edited): ask again rather than queue a job its worker refuses.
                refused.append((row, gate, destination, problem))
                continue
        filing = None
        if kind == "filebot":
            filing = settle_filing(config, db, row, destination)
            if isinstance(filing, Waiting):
                waiting.append((item_name(row), filing.reason))
                continue
        todo.append((row, kind, destination, filing))
    return todo, waiting, refused


def _ask_again(db: Database, row: dict, gate: str, destination: str, problem: str) -> str:
    """Supersede an approval whose destination is not the item's place in library_root:
    the next reconcile opens the gate again. Returns the sentence that says so."""
    supersede_decisions(
        db,
        "item_uid = ? AND gate = ? AND status = 'approved'",
        [row["uid"], gate],
        f"destination {problem}"[:200],
    )
    message = (
        f"{printable(item_name(row))}: its approved destination {printable(destination)} "
        f"{problem}; not dispatched, {gate} asks again"
    )
    log.warning("%s", message, extra={"event": "approval_refused", "item": item_name(row)})
    return message


def run_dispatch(config: Config, *, dry_run: bool = False) -> DispatchResult:
    with Queue.of(config) as queue:
        if dry_run:
            require_database(config)
            check_staging_root(config.staging_root)
            db = open_database_readonly(config)
            try:
                todo, waiting, refused = _plan(config, db, queue)
            finally:
                if db is not None:
                    db.close()
            queued = [
                (
                    item_name(row),
                    f"{kind} job" + (f", episodes {f.episodes.text}" if f and f.episodes else ""),
                )
                for row, kind, _d, f in todo
            ]
            return DispatchResult(
                queued=queued, waiting=waiting, refused=[item_name(row) for row, *_ in refused]
            )
        result = DispatchResult()
        with controller_database(config) as db:
            ensure_share(config)
            todo, result.waiting, refused = _plan(config, db, queue)
            for row, gate, destination, problem in refused:
                result.refused.append(_ask_again(db, row, gate, destination, problem))
            for row, kind, destination, filing in todo:
                job_id = submit_job(
                    config,
                    db,
                    queue,
                    row,
                    kind,
                    destination=destination,
                    episodes=filing.episodes if filing else None,
                    files=filing.files if filing else None,
                )
                result.queued.append((item_name(row), job_id))
            publish(config, db, queue)
        return result
