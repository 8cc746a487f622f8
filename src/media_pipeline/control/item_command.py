"""What every command about one item shares (mp rip, cancel, retry, forget, priority,
rename, refile): the controller's database and queue opened for it, a key from what a
person typed, the result it prints, and the few changes more than one of them makes.

Each runs on the controller under the database lock, changes the item through
`items/state.py` (so the change reaches the item's own files) and moves jobs only by
rename.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from sqlite_utils import Database

from media_pipeline.approve.gates import archive_decision, supersede_decisions
from media_pipeline.config.settings import Config
from media_pipeline.errors import UsageError
from media_pipeline.items.names import (
    OPTION_LIKE,
    ItemKey,
    normal_name,
    printable,
    taken_for_an_option,
)
from media_pipeline.jobs.live import publish
from media_pipeline.jobs.queue import LIVE_DIRS, Queue
from media_pipeline.library.destination import library_name
from media_pipeline.library.disc import Drive
from media_pipeline.pipeline import DISC_STAGE
from media_pipeline.share.files import open_below
from media_pipeline.share.identity import ensure_share
from media_pipeline.store import (
    controller_database,
    migrate,
    open_database_readonly,
    require_database,
)

log = logging.getLogger(__name__)


# The gate's approval is opened by reconcile, not here: say so, or 'mp approve' finds none.
ASKS_AGAIN = "asks again once 'mp reconcile' has run (then 'mp approve')"


@contextlib.contextmanager
def on_controller(config: Config, dry_run: bool = False) -> Iterator[tuple[Queue, Database]]:
    """What each of these commands works with: the database under its lock (refused
    where there is none: only reconcile makes it), the share checked to be the one this
    controller knows, the queue open. A dry run checks the same, takes no lock and opens
    the database only to read: it writes nothing."""
    if not dry_run:
        # The database first: the share's id is remembered beside it, which must not
        # make a folder where a mistyped `database` points.
        with controller_database(config) as db:
            ensure_share(config)
            with Queue.of(config) as queue:
                yield queue, db
                publish(config, db, queue)  # a job cancelled, retried or queued
        return
    require_database(config)
    for note in ensure_share(config, dry_run=True):
        log.info("would: %s", note)
    reading = open_database_readonly(config)
    if reading is None:  # removed since it was checked: an empty one, nothing is found
        reading = Database(memory=True)
        migrate(reading)
    try:
        with Queue.of(config) as queue:
            yield queue, reading
    finally:
        reading.close()


# A title's longest name in the library, 'Title (1999) {edition-NAME}.mkv' with an edition
# of up to 48 bytes, then fits in the 255 bytes of a file name.
MAX_TITLE_BYTES = 180


def key_from_parts(item_type: str, title: str, disc_label: str) -> ItemKey:
    title, disc_label = normal_name(title), normal_name(disc_label)
    for label, value in (("title", title), ("disc label", disc_label)):
        # isprintable() is False for control characters and for the surrogates that
        # stand for bytes that are not UTF-8 (a title typed as $'\xff').
        if not value.isprintable():
            raise UsageError(
                f"the {label} '{printable(value)}' holds characters that are not printable "
                "text; a folder named so would be unreadable"
            )
        if "/" in value or "\0" in value or value.startswith("."):
            hint = (
                f"; give '{printable(library_name(value))}'"
                if "/" in value and library_name(value) and not value.startswith(".")
                else ""
            )
            raise UsageError(f"the {label} '{printable(value)}' cannot be a folder name{hint}")
        if taken_for_an_option(value):
            raise UsageError(f"the {label} '{printable(value)}' {OPTION_LIKE}")
    if not title.strip():
        raise UsageError("the title is empty")
    if len(title.encode("utf-8", "surrogateescape")) > MAX_TITLE_BYTES:
        raise UsageError(
            f"the title is longer than {MAX_TITLE_BYTES} bytes: with a year, an edition and "
            "an episode number, its names in the library would pass the 255 a file name has"
        )
    if item_type == "tv" and not disc_label:
        raise UsageError("a tv rip needs --disc-label (for example 'S01 Disc1')")
    return ItemKey(item_type, title, disc_label)


def set_folder_aside(config: Config, folder: str, tail: str) -> str:
    """Rename a folder in staging to a hidden name beside it, '.<name><tail>' (kept,
    never deleted; reconcile and the scripts pass dot names by). Returns the new path."""
    parent, name = os.path.split(folder)
    try:
        with open_below(config.staging_root, parent) as holder:
            aside = holder.free_name(f".{name}", tail)
            holder.rename(name, holder, aside)
    except FileNotFoundError:
        raise UsageError(f"{printable(folder)} is not there to set aside") from None
    return os.path.join(parent, aside)


def forget_decisions(
    config: Config, db: Database, row: dict, status: str, only_gate: str | None = None
) -> None:
    """The item's decisions of this status (at one gate, or all) stop counting:
    superseded in the database, their files moved aside (kept). A retried rejection asks
    the person again rather than keep the old 'no'; --ask-again does the same for an
    approval (to choose another destination, say)."""
    key = ItemKey.of(row)
    where = "item_uid = ? AND status = ?" + (" AND gate = ?" if only_gate else "")
    params = [row["uid"], status, *([only_gate] if only_gate else [])]
    gates = db.execute(f"SELECT DISTINCT gate FROM human_approvals WHERE {where}", params)
    for (gate,) in gates.fetchall():
        archive_decision(config, key, gate)
    supersede_decisions(db, where, params, f"{status} set aside by mp retry")


def live_rip_in(queue: Queue, drive: Drive) -> tuple[str, str] | None:
    """(state, folder name) of a pending or running rip of the disc in drive (one drive
    holds one disc)."""
    for state, name, job in queue.jobs(LIVE_DIRS):
        if job.kind == DISC_STAGE.kind:
            spec = queue.read_spec(state, name) or {}
            if Drive.named_in(spec) == drive:
                return state, name
    return None
