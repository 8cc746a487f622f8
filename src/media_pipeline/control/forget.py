"""`mp forget ITEM`: stop tracking an item; its stage folders are set aside, never deleted."""

from __future__ import annotations

import logging

from media_pipeline.approve.gates import supersede_decisions
from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import on_controller, set_folder_aside
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import item_name, transition_row
from media_pipeline.pipeline import STAGE_FOLDERS
from media_pipeline.said import Said
from media_pipeline.share.files import is_folder
from media_pipeline.text import name_stamp, utc_now

log = logging.getLogger(__name__)


def run_forget(config: Config, item_text: str, *, dry_run: bool = False) -> Said:
    """Stop tracking an item: its row leaves the database and each of its stage folders,
    media, markers and decisions, is renamed to a hidden name beside it (kept, never
    deleted), so no reconcile brings it back and a new rip of the same title starts from
    clean folders. Its files in the library stay; its history stays in the database.
    Refused while it has a live job (cancel it first)."""
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        name = printable(item_name(row))
        if queue.live_job_for(row["uid"]) is not None:
            raise UsageError(f"{name} has a live job; 'mp cancel' it first")
        key = ItemKey.of(row)
        folders = [key.folder(config.staging_root, stage) for stage in STAGE_FOLDERS]
        present = [folder for folder in folders if is_folder(config.staging_root, folder)]
        shown = ", ".join(printable(folder) for folder in present) or "no folder in staging"
        if dry_run:
            return Said(
                f"{name} ({row['state']}): would forget it and set aside {shown} (hidden, "
                "kept); its files in the library stay"
            )
        now = utc_now()
        stamp = name_stamp(now)
        # The old disc's titles must not meet a new rip's: the rip copies beside them
        # (cp -n keeps the old), the remux keeps a finished file of the same name. Only
        # forget knows they belong to nothing now; a rip or reconcile cannot tell them
        # from a rip under way or files a person put there.
        aside = [set_folder_aside(config, folder, f".forgotten-{stamp}") for folder in present]
        with db.atomic():
            db.table("state_transitions").insert(
                transition_row(row["uid"], row["state"], "FORGOTTEN", "manual", "mp forget", now)
            )
            # Its decisions end with it: a new item of the same title (a new disc, a
            # folder anyone makes) is asked again, and the files set aside stay aside.
            supersede_decisions(db, "item_uid = ?", [row["uid"]], "mp forget")
            db.table("media_items").delete(row["id"])
    log.info("%s: forgotten", name, extra={"event": "forgotten", "item": item_name(row)})
    shown = ", ".join(printable(folder) for folder in aside) or "no folder in staging"
    return Said(
        f"{name}: forgotten; its stage folders were set aside as {shown} (kept), and its "
        "files in the library stay"
    )
