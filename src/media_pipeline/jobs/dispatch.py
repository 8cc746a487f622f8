"""`mp dispatch`: write a job into the queue for every item that needs one.

Runs on the controller under the database lock. The job is written to the queue before
the item's state changes: if the command dies between the two, the next reconcile sees
a live job for an item that does not know it and moves the item on, instead of a
second job ever being written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlite_utils import Database

from media_pipeline.config import Config
from media_pipeline.fsutil import check_staging_root
from media_pipeline.item_state import change_state, item_name, write_item_files
from media_pipeline.items import ItemKey
from media_pipeline.jobs.queue import LIVE_DIRS, JobName, Queue
from media_pipeline.jobs.spec import build_spec
from media_pipeline.states import State
from media_pipeline.store import controller_database, open_database_readonly, utc_now

log = logging.getLogger(__name__)

# item state -> (job kind, the gate that must approve first, the state while it runs)
NEXT_JOB = {
    State.RIPPED: ("remux", None, State.REMUXING),
    State.REMUXED: ("transcode", "remux_review", State.TRANSCODING),
    State.TRANSCODED: ("filebot", "filebot_confirm", State.FILING),
}
# job kind -> the state an item is in while that job is queued or running
KIND_STATES = {"rip": State.RIPPING, **{kind: s for kind, _g, s in NEXT_JOB.values()}}


@dataclass
class DispatchResult:
    queued: list[tuple[str, str]] = field(default_factory=list)  # (item name, job id)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (item name, gate)
    applied: bool = True


def live_item_uids(queue: Queue) -> set[str]:
    uids = set()
    for state in LIVE_DIRS:
        for name in queue.names(state):
            parsed = JobName.parse(name.partition(".")[0])
            if parsed is not None:
                uids.add(parsed.item_uid)
    return uids


def approved_destinations(db: Database) -> dict[tuple[str, str], str | None]:
    """(item uid, gate) -> destination, for the approvals in force: the latest decision
    at each gate, when it is an approval."""
    latest = {}
    for row in db.query("SELECT * FROM human_approvals ORDER BY id"):
        latest[(row["item_uid"], row["gate"])] = row
    return {key: row["destination"] for key, row in latest.items() if row["status"] == "approved"}


def submit_job(
    config: Config, db: Database, queue: Queue, row: dict, kind: str, *, destination=None
) -> str:
    """Write one job for an item into the queue, record it, and move the item to the
    state it is in while the job is live. Used by dispatch, rip and retry."""
    key = ItemKey(row["type"], row["title"], row["disc_label"])
    now = datetime.now(UTC)
    spec = build_spec(
        config, kind, key, priority=row["priority"] or 0, now=now, destination=destination
    )
    job_id = queue.submit(spec)
    db["jobs"].upsert(
        {
            "id": job_id,
            "item_uid": key.uid,
            "kind": kind,
            "state": "pending",
            "attempts": 0,
            "max_attempts": spec["max_attempts"],
            "priority": spec["priority"],
            "created_at": utc_now(),
        },
        pk="id",
    )
    target = KIND_STATES[kind]
    if row["state"] != target:
        row = change_state(db, row, target, trigger="auto", reason=f"{kind} job queued")
    write_item_files(row)
    log.info(
        "queued %s for %s",
        job_id,
        item_name(row),
        extra={"event": "job_queued", "job": job_id, "item": item_name(row)},
    )
    return job_id


def _plan(config: Config, db: Database | None, queue: Queue):
    if db is None:
        return [], []
    live = live_item_uids(queue)
    approved = approved_destinations(db)
    todo, waiting = [], []
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
                waiting.append((item_name(row), gate))
                continue
            destination = approved[(row["uid"], gate)]
        todo.append((row, kind, destination))
    return todo, waiting


def run_dispatch(config: Config, *, dry_run: bool = False) -> DispatchResult:
    check_staging_root(config.staging_root)
    queue = Queue(config.queue_dir)
    if dry_run:
        db = open_database_readonly(config)
        try:
            todo, waiting = _plan(config, db, queue)
        finally:
            if db is not None:
                db.close()
        queued = [(item_name(row), f"{kind} job") for row, kind, _d in todo]
        return DispatchResult(queued=queued, waiting=waiting, applied=False)
    result = DispatchResult()
    with controller_database(config) as db:
        todo, result.waiting = _plan(config, db, queue)
        for row, kind, destination in todo:
            job_id = submit_job(config, db, queue, row, kind, destination=destination)
            result.queued.append((item_name(row), job_id))
    return result
