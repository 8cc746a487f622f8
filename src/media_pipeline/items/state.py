"""Changing an item's state by hand or by decision, and keeping its own files in step.

Reconcile moves states from markers; commands such as cancel, retry and approve move
them on a person's word. Both record the change the same way: the row, one
`state_transitions` row with its trigger, then the item's `.pipeline/state` and
`metadata.json` (so that the change survives losing the database).
"""

from __future__ import annotations

import logging

from sqlite_utils import Database

from media_pipeline.items.names import ItemKey
from media_pipeline.pipeline import DISC_STAGE, STOPPED, State
from media_pipeline.share.files import BadEntry
from media_pipeline.share.markers import (
    METADATA_FILE,
    STATE_FILE,
    metadata_text,
    state_text,
    write_controller_files,
)
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

# The item fields kept in .pipeline/metadata.json, from which a lost database is rebuilt.
METADATA_FIELDS = (
    "uid",
    "type",
    "title",
    "disc_label",
    "state",
    "stopped_in",
    "reason",
    "priority",
    "created_at",
    "updated_at",
    "episodes",
    "episodes_signature",
)


class Logged(str):
    """A change sentence already logged where it was made, with its structured fields:
    reconcile does not log it a second time."""


class Transitioned(Logged):
    """A change of an item's state, logged by change_state: counted in the summary."""


def metadata_for(row: dict) -> dict:
    return {name: row.get(name) for name in METADATA_FIELDS}


def item_name(row: dict) -> str:
    """A row's item as `mp` accepts it for ITEM: type/title[/disc_label]."""
    return ItemKey.of(row).name


def transition_row(
    uid: str, from_state: str | None, to_state: str, trigger: str, reason: str | None, at: str
) -> dict:
    """One row of state_transitions, the item's history."""
    return {
        "item_uid": uid,
        "from_state": from_state,
        "to_state": str(to_state),
        "trigger": trigger,
        "reason": reason,
        "at": at,
    }


def change_state(
    db: Database,
    row: dict,
    to_state: State,
    *,
    trigger: str,
    reason: str | None = None,
) -> dict:
    """Move an item to to_state in the database, with its transition row; returns the new
    row. A stopped state (FAILED, REJECTED, CANCELLED) remembers the state it stopped in."""
    now = utc_now()
    # The history's time to the microsecond: reconcile tells a job made before a
    # person's retry or cancel from one made after it, often in the same second.
    at = utc_now(precise=True)
    stopped_in = None
    if to_state in STOPPED:
        stopped_in = row["stopped_in"] if row["state"] in STOPPED else row["state"]
    updates = {
        "state": str(to_state),
        "stopped_in": stopped_in,
        "reason": reason,
        "updated_at": now,
    }
    with db.atomic():
        db.table("media_items").update(row["id"], updates)
        db.table("state_transitions").insert(
            transition_row(row["uid"], row["state"], to_state, trigger, reason, at)
        )
    log.info(
        "%s: %s -> %s (%s)",
        item_name(row),
        row["state"],
        to_state,
        reason or trigger,
        extra={
            "event": "transition",
            "item": item_name(row),
            "from": row["state"],
            "to": str(to_state),
        },
    )
    return {**row, **updates}


def stopped_ripping(row: dict) -> bool:
    """Failed or cancelled in its rip: its disc, put into a drive again, retries it."""
    return row["state"] in STOPPED and row["stopped_in"] == DISC_STAGE.running


def create_item(
    db: Database,
    key: ItemKey,
    state: State,
    *,
    trigger: str,
    reason: str,
    priority: int = 0,
    drive: str | None = None,
) -> dict:
    """Add an item no marker has shown yet (a rip queued, an item restored from the queue),
    with its first transition and the drive its disc is in, if a disc started it;
    returns its row."""
    now = utc_now()
    db.table("media_items").insert(
        {
            "uid": key.uid,
            "type": key.type,
            "title": key.title,
            "disc_label": key.disc_label,
            "state": str(state),
            "priority": priority,
            "created_at": now,
            "updated_at": now,
            "drive": drive,
        }
    )
    db.table("state_transitions").insert(transition_row(key.uid, None, state, trigger, reason, now))
    return next(db.query("SELECT * FROM media_items WHERE uid = ?", [key.uid]))


def write_item_files(staging_root: str, row: dict) -> bool:
    """Write the item's `state` and `metadata.json` into its current folder, if it has
    one on this host. Returns whether they were written; reconcile retries otherwise
    (and says why, when a step to the folder is a link mp will not follow)."""
    folder = row.get("folder_path")
    if not folder:
        return False
    files = [
        (STATE_FILE, state_text(row["state"])),
        (METADATA_FILE, metadata_text(metadata_for(row))),
    ]
    try:
        return write_controller_files(staging_root, folder, files)
    except BadEntry as error:
        log.warning("%s; the item's files were not written", error)
        return False
