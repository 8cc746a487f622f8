"""Writing one job for an item: into the queue first, then into the database, then the
item's state. Used by dispatch, rip and retry.

The order is what makes a crash harmless: a job the database does not know is found by
the next reconcile, which moves the item on instead of a second job ever being written.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlite_utils import Database

from media_pipeline.approve.gates import approval_digest, approval_in_force
from media_pipeline.approve.signing import decision_key, sign_text
from media_pipeline.config.settings import Config
from media_pipeline.faults import crash_point
from media_pipeline.items.names import ItemKey
from media_pipeline.items.state import change_state, item_name, write_item_files
from media_pipeline.jobs.queue import (
    PENDING,
    Queue,
)
from media_pipeline.jobs.signature import signed
from media_pipeline.jobs.spec import build_spec
from media_pipeline.library.disc import Drive
from media_pipeline.library.seasons import Numbered
from media_pipeline.pipeline import DESTINATION_GATE, FILING_STAGE, KIND_STATES
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)


def submit_job(
    config: Config,
    db: Database,
    queue: Queue,
    row: dict,
    kind: str,
    *,
    destination: str | None = None,
    episodes: Numbered | None = None,
    files: list[tuple[str, str]] | None = None,
    drive: Drive | None = None,
) -> str:
    """Write one job for an item into the queue, record it, and move the item to the
    state it is in while the job is live. Used by dispatch, rip and retry."""
    key = ItemKey.of(row)
    now = datetime.now(UTC)
    spec = build_spec(
        config,
        kind,
        key,
        priority=row["priority"] or 0,
        now=now,
        destination=destination,
        episodes=(episodes.season, episodes.first) if episodes else None,
        drive=drive,
    )
    if files is not None:
        # Where each file goes; reconcile holds a pending spec to what dispatch would
        # write now (library/filing.py), so a list changed on the share never runs.
        spec["files"] = [list(pair) for pair in files]
    if kind == FILING_STAGE.kind and DESTINATION_GATE in config.gates:
        # Signed with the rest: the job says which decision it follows from, and
        # reconcile holds a pending one to the decision in force (approve/gates.py).
        approval = approval_in_force(db, key.uid, DESTINATION_GATE)
        spec["approval"] = approval_digest(approval) if approval else None
    job_id = queue.submit(signed(config, spec))
    crash_point("dispatch:submitted")  # the job is pending; the database does not know it
    db.table("jobs").upsert(
        {
            "id": job_id,
            "item_uid": key.uid,
            "kind": kind,
            "state": PENDING,
            "attempts": 0,
            "max_attempts": spec["max_attempts"],
            "priority": spec["priority"],
            "created_at": utc_now(),
        },
        pk="id",
    )
    crash_point("dispatch:recorded")
    if episodes is not None:
        # Kept on the item (and so in its metadata.json): the discs after it are
        # numbered from it once its files have left staging.
        signature = sign_text(f"{key.uid} {episodes.text}", decision_key(config))
        recorded = {"episodes": episodes.text, "episodes_signature": signature}
        db.table("media_items").update(row["id"], recorded)
        row = {**row, **recorded}
    target = KIND_STATES[kind]
    if row["state"] != target:
        row = change_state(db, row, target, trigger="auto", reason=f"{kind} job queued")
    write_item_files(config.staging_root, row)
    log.info(
        "queued %s for %s",
        job_id,
        item_name(row),
        extra={"event": "job_queued", "job": job_id, "item": item_name(row)},
    )
    return job_id
