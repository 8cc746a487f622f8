"""`mp rename ITEM TITLE`: fix an item's title (a typo, a missing year) everywhere mp
keeps it.

The title names the item's folder in every stage and its uid is made from its key, so a
rename moves the stage folders (by rename, the media inside untouched), moves the item's
rows in the database to the new uid, signs its episode range and its decision files
again for the new uid, and sends a filing approval back to its gate (its destination was
made from the old title). Refused while a job of the item is live: its script holds the
old folders. Files already in the library keep their names: mp never moves them.
"""

from __future__ import annotations

import json
import logging
import os

from sqlite_utils import Database

from media_pipeline.approve.gates import retired
from media_pipeline.approve.signing import decision_key, sign, sign_text, verifies
from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import (
    forget_decisions,
    key_from_parts,
    on_controller,
)
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import item_name, transition_row, write_item_files
from media_pipeline.library.seasons import recorded_range
from media_pipeline.pipeline import (
    DESTINATION_GATE,
    FILING_STAGE,
    GATE_STAGES,
    STAGE_FOLDERS,
    State,
)
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry, is_folder, open_below, parse_json_object
from media_pipeline.share.markers import PIPELINE_DIR, approval_file, write_decision
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

# Tables whose rows name an item by its uid.
ITEM_TABLES = ("state_transitions", "human_approvals", "jobs")


def run_rename(config: Config, item_text: str, title: str, *, dry_run: bool = False):
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        old = ItemKey.of(row)
        name = printable(old.name)
        if title != title.strip():
            raise UsageError(
                f"the title '{printable(title)}' begins or ends with a space: its folder would "
                "look like another's; leave the spaces out"
            )
        new = key_from_parts(old.type, title, old.disc_label)
        if new == old:
            raise UsageError(f"{name} is already called '{printable(title)}'")
        if next(db.query("SELECT id FROM media_items WHERE uid = ?", [new.uid]), None):
            raise UsageError(f"{printable(new.name)} is tracked already; pick another title")
        if queue.live_job_for(row["uid"]) is not None:
            raise UsageError(f"{name} has a live job; wait for it or 'mp cancel' it first")
        moves = _folder_moves(config, old, new)
        shown = ", ".join(stage for stage, _old, _new in moves) or "no stage folder"
        filed = State(row["state"]) == FILING_STAGE.done
        note = "; its files in the library keep their names" if filed else ""
        if dry_run:
            return Said(
                f"{name} would be renamed {printable(new.name)}: its folders in {shown} move{note}"
            )
        for _stage, old_folder, new_folder in moves:
            _move_folder(config.staging_root, old_folder, new_folder)
        row = _move_rows(config, db, row, new)
        asked = _carry_decisions(config, db, row, old, new)
        write_item_files(config.staging_root, row)
        others = [
            printable(item_name(other))
            for other in db.query(
                "SELECT * FROM media_items WHERE type = 'tv' AND title = ?", [old.title]
            )
        ] if old.type == "tv" else []  # fmt: skip
    log.info(
        "%s renamed %s", old.name, new.name, extra={"event": "renamed", "item": item_name(row)}
    )
    again = f"; {', '.join(asked)} asks again (its destination had the old title)" if asked else ""
    rest = f"; the show's other discs keep the old title: {', '.join(others)}" if others else ""
    return Said(
        f"{name} renamed {printable(new.name)}: its folders in {shown} moved{again}{note}{rest}"
    )


def _folder_moves(config: Config, old: ItemKey, new: ItemKey) -> list[tuple[str, str, str]]:
    """(stage, old folder, new folder) for each stage that holds the item; refused when a
    new folder is there already (the two would have to be merged, and mp never does)."""
    moves = []
    for stage in STAGE_FOLDERS:
        old_folder = old.folder(config.staging_root, stage)
        new_folder = new.folder(config.staging_root, stage)
        if not is_folder(config.staging_root, old_folder):
            continue
        try:
            with open_below(config.staging_root, os.path.dirname(new_folder)) as parent:
                taken = parent.exists(os.path.basename(new_folder))
        except (FileNotFoundError, NotADirectoryError):
            taken = False
        except BadEntry as error:
            raise UsageError(f"{error}; nothing renamed") from None
        if taken:
            raise UsageError(
                f"{printable(new_folder)} is there already; mp never merges folders: move one "
                "of them away first (nothing renamed)"
            )
        moves.append((stage, old_folder, new_folder))
    return moves


def _move_folder(staging_root: str, old_folder: str, new_folder: str) -> None:
    """Rename one stage folder; a tv disc's new show folder is made first. Both paths are
    opened step by step below staging_root (never through a link)."""
    old_parent, old_name = os.path.split(old_folder)
    new_parent, new_name = os.path.split(new_folder)
    with (
        open_below(staging_root, old_parent) as source,
        open_below(staging_root, new_parent, create=True) as target,
    ):
        if target.exists(new_name):  # made since the check: still never merged
            raise UsageError(f"{printable(new_folder)} appeared meanwhile; stopped there")
        source.rename(old_name, target, new_name)
    if old_parent != new_parent:  # a tv disc: its old show folder may be empty now
        _remove_if_empty(staging_root, old_parent)


def _remove_if_empty(staging_root: str, folder: str) -> None:
    """A tv disc's old show folder, once its last disc moved out: removed only if empty
    (rmdir removes nothing else)."""
    parent, name = os.path.split(folder)
    try:
        with open_below(staging_root, parent) as holder:
            holder.rmdir(name)
    except (OSError, BadEntry):
        pass  # another disc is still in it, or it is gone already


def _move_rows(config: Config, db: Database, row: dict, new: ItemKey) -> dict:
    """The item's row under its new key and uid, its other rows following the uid; its
    episode range signed again (the signature covers the uid)."""
    old_uid, now = row["uid"], utc_now()
    changes: dict = {"uid": new.uid, "title": new.title, "updated_at": now}
    if row.get("folder_path"):
        stage = _stage_of(config, row)
        changes["folder_path"] = new.folder(config.staging_root, stage) if stage else None
    if recorded_range(row.get("episodes")) is not None:
        text = f"{new.uid} {row['episodes']}"
        changes["episodes_signature"] = sign_text(text, decision_key(config))
    with db.atomic():
        # What was retired stays so under the new uid. Then the old title's decisions
        # end, under the old uid: their signed files, put back in folders of the old
        # title, would pass its gates for an item a share writer makes. Those carried
        # over to the new title are signed anew (_carry_decisions).
        db.execute(
            "INSERT OR IGNORE INTO retired_decisions (item_uid, gate, decided_at, retired_at, "
            "why) SELECT ?, gate, decided_at, retired_at, why FROM retired_decisions "
            "WHERE item_uid = ?",
            [new.uid, old_uid],
        )
        db.execute(
            "INSERT OR IGNORE INTO retired_decisions (item_uid, gate, decided_at, retired_at, "
            "why) SELECT item_uid, gate, decided_at, ?, 'mp rename' FROM human_approvals "
            "WHERE item_uid = ? AND decided_at IS NOT NULL",
            [now, old_uid],
        )
        db.table("media_items").update(row["id"], changes)
        for table in ITEM_TABLES:
            db.execute(f"UPDATE {table} SET item_uid = ? WHERE item_uid = ?", [new.uid, old_uid])
        db.table("state_transitions").insert(
            transition_row(
                new.uid, row["state"], row["state"], "manual", f"mp rename from {row['title']}", now
            )
        )
    return {**row, **changes}


def _stage_of(config: Config, row: dict) -> str | None:
    """The stage whose folder the row's folder_path is."""
    key = ItemKey.of(row)
    for stage in STAGE_FOLDERS:
        if os.path.normpath(key.folder(config.staging_root, stage)) == os.path.normpath(
            row["folder_path"]
        ):
            return stage
    return None


def _carry_decisions(
    config: Config, db: Database, row: dict, old: ItemKey, new: ItemKey
) -> list[str]:
    """Each decision file this controller signed for this item at this gate, signed
    again for the new key; a filing approval, whose destination was made from the old
    title, set aside (its gate asks again). Any other file is left as it is, never
    signed: another item's decision copied here, one for the other gate, one retired."""
    key = decision_key(config)
    asked = []
    for gate, stage in GATE_STAGES.items():
        folder = new.folder(config.staging_root, stage)
        decision = _read_decision(config.staging_root, folder, gate)
        if decision is None or not _ours(db, decision, key, old, gate, new.uid):
            continue
        filed = State(row["state"]) == FILING_STAGE.done
        if gate == DESTINATION_GATE and decision.get("status") == "approved" and not filed:
            forget_decisions(config, db, row, "approved", gate)
            asked.append(gate)
            continue
        item = {"uid": new.uid, "type": new.type, "title": new.title, "disc_label": old.disc_label}
        signed = sign({**decision, "item": item}, key)  # the old signature is replaced
        write_decision(
            config.staging_root,
            folder,
            gate,
            json.dumps(signed, indent=2, ensure_ascii=False) + "\n",
        )
    # A pending approval's prompt shows the old folders and destination: opened again.
    db.execute(
        "UPDATE human_approvals SET status = 'superseded' WHERE item_uid = ? AND "
        "status = 'pending'",
        [new.uid],
    )
    return asked


def _ours(db: Database, decision: dict, key: bytes, old: ItemKey, gate: str, uid: str) -> bool:
    """Whether a decision file is this item's own decision at this gate, in force: what
    rename may sign again. (The rows have the new uid already.)"""
    item = decision.get("item")
    return (
        verifies(decision, key)
        and decision.get("gate") == gate
        and isinstance(item, dict)
        and item.get("uid") == old.uid
        and not retired(db, uid, gate, decision.get("at"))
    )


def _read_decision(staging_root: str, folder: str, gate: str) -> dict | None:
    try:
        with open_below(staging_root, folder) as item, item.child(PIPELINE_DIR) as pipeline:
            return parse_json_object(pipeline.read_text(approval_file(gate)))
    except (FileNotFoundError, NotADirectoryError, BadEntry):
        return None
