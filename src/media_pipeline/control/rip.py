"""`mp rip`: queue the rip of an item a person names (a stopped one is retried)."""

from __future__ import annotations

from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import key_from_parts, on_controller
from media_pipeline.control.retry import run_retry
from media_pipeline.control.submit import submit_job
from media_pipeline.errors import UsageError
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import create_item, stopped_ripping
from media_pipeline.library.destination import check_edition
from media_pipeline.library.disc import Drive
from media_pipeline.pipeline import DISC_STAGE, STAGE_FOLDERS, STOPPED
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry, open_below
from media_pipeline.store import open_database_readonly


def run_rip(
    config: Config,
    item_type: str,
    title: str,
    disc_label: str = "",
    *,
    edition: str = "",
    drive: Drive | None = None,
    dry_run: bool = False,
) -> Said:
    """Queue a rip job for a new item (from drive, when a disc in it started the rip).
    An edition (a director's cut, a second copy) is a movie of its own, named as Plex
    names editions: 'Title (Year) {edition-Name}'."""
    if item_type == "movie" and disc_label:
        # It used to be dropped without a word: a movie is one folder, named by its title.
        raise UsageError(
            "--disc-label is for tv discs; a second copy or a cut of a movie is an edition: "
            "--edition NAME"
        )
    if edition:
        if item_type != "movie":
            raise UsageError("--edition is for movies (Plex has no editions of tv discs)")
        try:
            edition = check_edition(edition)
        except ValueError as error:
            raise UsageError(str(error)) from None
        title = f"{title} {{edition-{edition}}}"
    key = key_from_parts(item_type, title, disc_label)
    with on_controller(config, dry_run) as (queue, db):
        row = next(db.query("SELECT * FROM media_items WHERE uid = ?", [key.uid]), None)
        # Its disc put in again (into any drive) after its rip failed or was cancelled:
        # the rip is retried from there.
        again = row is not None and drive is not None and stopped_ripping(row)
        if row is not None and not again:
            raise UsageError(
                f"{printable(key.name)} is already tracked (state {row['state']}): "
                + _tracked_hint(row)
            )
        if row is None and (leftover := _leftover_media(config, key)) is not None:
            # An item forgotten by an earlier release left its media in place: a new
            # rip would mix its titles with these (mp forget now sets them aside).
            raise UsageError(
                f"{printable(leftover)} holds media already, of no item mp tracks (a disc "
                "forgotten before?): move that folder aside first, then rip again"
            )
        if dry_run:
            if again:
                return Said(f"would retry the rip of {printable(key.name)} from {drive}")
            return Said(f"would queue a rip job for {printable(key.name)}")
        if row is None:
            row = create_item(
                db,
                key,
                DISC_STAGE.running,
                trigger="manual",
                reason="mp rip",
                drive=str(drive) if drive else None,
            )
            job_id = submit_job(config, db, queue, row, DISC_STAGE.kind, drive=drive)
            return Said(f"queued {job_id} for {printable(key.name)}")
        db.table("media_items").update(row["id"], {"drive": str(drive)})
    return run_retry(config, key.uid)


def _leftover_media(config: Config, key: ItemKey) -> str | None:
    """A stage folder of key that is there with something in it, or None."""
    for stage in STAGE_FOLDERS:
        folder = key.folder(config.staging_root, stage)
        try:
            with open_below(config.staging_root, folder) as item:
                if any(not name.startswith(".") for name in item.names()):
                    return folder
        except (FileNotFoundError, NotADirectoryError, BadEntry):
            continue
    return None


def _tracked_hint(row: dict) -> str:
    if row["state"] == DISC_STAGE.running:
        return "its rip is queued, running or has just ended ('mp why' says which)"
    again = "'mp retry' it" if row["state"] in STOPPED else "'mp forget' it first"
    return f"{again}, or rip another copy or cut as an edition (--edition NAME)"


def rip_stopped(config: Config, key: ItemKey) -> bool:
    """Whether the controller's database has key's item stopped (failed, cancelled) in
    its rip, which its disc put in again retries."""
    db = open_database_readonly(config)
    if db is None:
        return False
    try:
        row = next(db.query("SELECT * FROM media_items WHERE uid = ?", [key.uid]), None)
    finally:
        db.close()
    return row is not None and stopped_ripping(row)
