"""`mp dispatch`: write a job into the queue for every item that needs one.

Runs on the controller under the database lock. The job is written to the queue before
the item's state changes: if the command dies between the two, the next reconcile sees
a live job for an item that does not know it and moves the item on, instead of a
second job ever being written.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from sqlite_utils import Database

from media_pipeline.approve.gates import approved_destinations, supersede_decisions
from media_pipeline.config.settings import Config
from media_pipeline.control.submit import submit_job
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import item_name, transition_row
from media_pipeline.jobs.keys import trusted_keys
from media_pipeline.jobs.live import publish
from media_pipeline.jobs.queue import FINISHED_DIRS, Queue
from media_pipeline.jobs.signature import ForgedSpec, check_signature
from media_pipeline.library.filing import EarlierFiling, settle_filing
from media_pipeline.library.filing_place import link_problem, place_problem
from media_pipeline.library.moves import Move, MoveRefused, apply_moves_in_library
from media_pipeline.library.seasons import Waiting
from media_pipeline.pipeline import FILING_STAGE, NEXT_JOB, State
from media_pipeline.share.fsutil import check_staging_root
from media_pipeline.share.identity import ensure_share
from media_pipeline.store import controller_database, open_database_readonly, require_database
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    queued: list[tuple[str, str]] = field(default_factory=list)  # (item name, job id)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (item name, what for)
    refused: list[str] = field(default_factory=list)  # approvals asked again, and why
    moved: list[tuple[str, str]] = field(default_factory=list)  # (item name, a move)


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
        moves: list[Move] = []
        if kind == FILING_STAGE.kind:
            earlier = earlier_filings(config, queue, row)
            filing = settle_filing(config, db, row, destination, earlier)
            if isinstance(filing, Waiting):
                waiting.append((item_name(row), filing.reason))
                continue
            moves = list(filing.moves)
        todo.append((row, kind, destination, filing, moves))
    return todo, waiting, refused


def earlier_filings(config: Config, queue: Queue, row: dict) -> list[EarlierFiling]:
    """(destination, file list) of the item's finished filing jobs, from their specs
    in the queue that this controller signed: what each was told to file, and where."""
    found: list[EarlierFiling] = []
    jobs = [(state, name, job) for state, name, job in queue.jobs(FINISHED_DIRS)
            if job.item_uid == row["uid"] and job.kind == FILING_STAGE.kind]  # fmt: skip
    if not jobs:
        return found
    keys = trusted_keys(config)
    for state, name, job in jobs:
        spec = queue.read_spec(state, name)
        if spec is None or spec.get("id") != job.job_id:
            continue
        try:
            check_signature(spec, keys, time.time(), math.inf)
        except ForgedSpec:
            continue
        destination, files = spec.get("destination"), spec.get("files")
        if not isinstance(destination, str) or not isinstance(files, list):
            continue
        pairs = [(pair[0], pair[1]) for pair in files if isinstance(pair, list) and len(pair) == 2
                 and all(isinstance(part, str) for part in pair)]  # fmt: skip
        found.append((destination, pairs))
    return found


def _move_earlier(config: Config, db: Database, row: dict, moves: list[Move]) -> list[str]:
    """Move what the item had filed at an earlier destination to its new places, with a
    line in its history; the moves made, as text. MoveRefused when one cannot be."""
    made = apply_moves_in_library(config.library_root, moves)
    shown = [move.shown() for move in made]
    reason = ("moved what it had filed to its new destination: " + "; ".join(shown))[:2000]
    db.table("state_transitions").insert(
        transition_row(row["uid"], row["state"], row["state"], "auto", reason, utc_now())
    )
    log.info(
        "%s: %s", item_name(row), reason, extra={"event": "filed_moved", "item": item_name(row)}
    )
    return shown


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
                for row, kind, _d, f, _m in todo
            ]
            moved = [(item_name(row), move.shown()) for row, *_r, moves in todo for move in moves]
            return DispatchResult(
                queued=queued,
                waiting=waiting,
                refused=[item_name(row) for row, *_ in refused],
                moved=moved,
            )
        result = DispatchResult()
        with controller_database(config) as db:
            ensure_share(config)
            todo, result.waiting, refused = _plan(config, db, queue)
            for row, gate, destination, problem in refused:
                result.refused.append(_ask_again(db, row, gate, destination, problem))
            for row, kind, destination, filing, moves in todo:
                if moves:
                    try:
                        shown = _move_earlier(config, db, row, moves)
                    except MoveRefused as error:
                        result.waiting.append((item_name(row), f"{error}; not queued"))
                        continue
                    result.moved.extend((item_name(row), move) for move in shown)
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
