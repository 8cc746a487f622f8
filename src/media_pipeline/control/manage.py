"""`mp rip`, `mp cancel`, `mp retry`, `mp priority`, `mp forget`: a person's changes to
items and jobs.

Each runs on the controller under the database lock, changes the item through
`item_state` (so the change reaches the item's own files) and moves jobs only by rename.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.approve.gates import (
    approved_destinations,
    archive_decision,
    supersede_decisions,
)
from media_pipeline.config import Config
from media_pipeline.control.submit import submit_job
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import (
    OPTION_LIKE,
    ItemKey,
    normal_name,
    printable,
    taken_for_an_option,
)
from media_pipeline.items.state import (
    change_state,
    create_item,
    item_name,
    stopped_ripping,
    transition_row,
    write_item_files,
)
from media_pipeline.jobs.keys import trusted_keys
from media_pipeline.jobs.live import publish
from media_pipeline.jobs.queue import (
    CANCELLED,
    LIVE_DIRS,
    PENDING,
    RUNNING,
    TMP,
    JobName,
    Queue,
    back_off_time,
    clamp_priority,
    make_job_id,
)
from media_pipeline.jobs.signature import (
    ForgedSpec,
    check_signature,
    signed,
    signed_cancel,
    verified_by,
)
from media_pipeline.jobs.spec import SpecError
from media_pipeline.library.destination import check_edition, library_name
from media_pipeline.library.disc import Drive
from media_pipeline.pipeline import GATE_STATES, REDO, RETRY_TARGET, STAGE_FOLDERS, STOPPED, State
from media_pipeline.share.files import BadEntry, is_folder, open_below
from media_pipeline.share.identity import ensure_share
from media_pipeline.store import (
    controller_database,
    migrate,
    open_database_readonly,
    require_database,
)
from media_pipeline.text import name_stamp, utc_now

log = logging.getLogger(__name__)


# The gate's approval is opened by reconcile, not here: say so, or 'mp approve' finds none.
ASKS_AGAIN = "asks again once 'mp reconcile' has run (then 'mp approve')"


@dataclass
class ManageResult:
    message: str


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


def run_rip(
    config: Config,
    item_type: str,
    title: str,
    disc_label: str = "",
    *,
    edition: str = "",
    drive: Drive | None = None,
    dry_run: bool = False,
) -> ManageResult:
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
                return ManageResult(f"would retry the rip of {printable(key.name)} from {drive}")
            return ManageResult(f"would queue a rip job for {printable(key.name)}")
        if row is None:
            row = create_item(
                db,
                key,
                State.RIPPING,
                trigger="manual",
                reason="mp rip",
                drive=str(drive) if drive else None,
            )
            job_id = submit_job(config, db, queue, row, "rip", drive=drive)
            return ManageResult(f"queued {job_id} for {printable(key.name)}")
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
    if row["state"] == State.RIPPING:
        return "its rip is queued, running or has just ended ('mp why' says which)"
    again = "'mp retry' it" if row["state"] in STOPPED else "'mp forget' it first"
    return f"{again}, or rip another copy or cut as an edition (--edition NAME)"


def _drive_said(drive: Drive | None) -> str:
    return f"{drive} again" if drive else "the rip script's own drive: none is recorded"


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


def _own_live_job(config: Config, queue: Queue, item_uid: str) -> tuple[str, str] | None:
    """(state, folder name) of the item's pending or running job whose spec this
    controller (or a ripper it trusts) signed for that very job: a folder named like
    one of the item's jobs, planted in pending/, once drew 'mp cancel' away from the job
    that ran on."""
    trusted = trusted_keys(config)
    for state, name, job in queue.jobs(LIVE_DIRS):
        if job.item_uid != item_uid:
            continue
        spec = queue.read_spec(state, name) or {}
        try:
            check_signature(spec, trusted, time.time(), math.inf)
        except ForgedSpec:
            continue
        if spec.get("id") == job.job_id:
            return state, name
    return None


def run_cancel(config: Config, item_text: str, *, dry_run: bool = False) -> ManageResult:
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        name = item_name(row)
        live = _own_live_job(config, queue, row["uid"])
        if live is None:
            if row["state"] == State.CANCELLED:
                return ManageResult(f"{printable(name)} is already cancelled")
            raise UsageError(
                f"{printable(name)} has no pending or running job to cancel (state {row['state']})"
            )
        state, folder_name = live
        if dry_run:
            what = (
                f"cancel pending job {folder_name}"
                if state == PENDING
                else f"ask the worker running {folder_name.partition('.')[0]} to stop it"
            )
            then = (
                "it is CANCELLED already"
                if row["state"] == State.CANCELLED
                else "the item becomes CANCELLED"
            )
            return ManageResult(f"{printable(name)}: would {what}; {then}")
        message = None
        cancel = signed_cancel(config, folder_name.partition(".")[0])
        if state == PENDING:
            try:
                # Signed, so that reconcile believes the move (and a worker that claims
                # it first stops it).
                with queue.open_job(PENDING, folder_name) as job:
                    job.write_cancel(cancel)
                queue.move(PENDING, folder_name, CANCELLED)
                message = f"cancelled pending job {folder_name}"
            except FileNotFoundError:
                # A worker claimed it between our look and our rename: cancel it running.
                live = _own_live_job(config, queue, row["uid"])
                if live is None:
                    raise UsageError(
                        f"the job of {printable(name)} finished meanwhile; nothing to cancel"
                    ) from None
                state, folder_name = live
        if state == RUNNING:
            try:
                with queue.open_job(RUNNING, folder_name) as job:
                    job.write_cancel(cancel)
            except FileNotFoundError:
                raise UsageError(
                    f"the job of {printable(name)} finished meanwhile; nothing to cancel"
                ) from None
            message = (
                f"asked the worker running {folder_name.partition('.')[0]} to stop "
                "it; the job moves to cancelled/ when it has"
            )
        # Whoever signed it (a ripper signs its own rips), a copy put back is refused.
        db.table("stopped_jobs").insert(
            {"id": folder_name.partition(".")[0], "item_uid": row["uid"], "stopped_at": utc_now()},
            replace=True,
        )
        if row["state"] not in STOPPED:
            write_item_files(
                config.staging_root,
                change_state(db, row, State.CANCELLED, trigger="manual", reason="mp cancel"),
            )
    return ManageResult(f"{printable(name)}: {message}")


def run_retry(
    config: Config,
    item_text: str,
    *,
    redo: bool = False,
    ask_again: bool = False,
    dry_run: bool = False,
) -> ManageResult:
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        name = item_name(row)
        waiting_gate = _approved_gate_waiting(config, db, row) if ask_again else None
        if waiting_gate is not None and queue.live_job_for(row["uid"]) is None:
            # Approved, and waiting for dispatch (an earlier disc, a file gone): nothing
            # to stop, so the decision is set aside (kept) and the gate asked again.
            if dry_run:
                return ManageResult(f"{printable(name)}: {waiting_gate} would ask again")
            forget_decisions(config, db, row, "approved", waiting_gate)
            return ManageResult(f"{printable(name)}: {waiting_gate} {ASKS_AGAIN}")
        if ask_again and _past_review_without_filing_gate(config, row):
            raise UsageError(
                f"{printable(name)}: its files' roles were set at remux_review, which it has "
                "passed, and no filing gate is on to set them again: add filebot_confirm to "
                "'gates' in the config, then 'mp retry --ask-again' opens it"
            )
        if row["state"] not in STOPPED:
            raise UsageError(
                f"{printable(name)} is {row['state']}; only FAILED, REJECTED or "
                "CANCELLED items can be retried"
            )
        if queue.live_job_for(row["uid"]) is not None:
            raise UsageError(
                f"{printable(name)} still has a live job; wait for its cancel to finish"
            )
        stopped_in = State(row["stopped_in"]) if row["stopped_in"] else None
        target = RETRY_TARGET.get(stopped_in) if stopped_in else None
        if target is None:
            raise UsageError(
                f"{printable(name)} does not record where it stopped; run "
                "'mp reconcile' and look at 'mp history'"
            )
        moved = None
        if redo:
            if row["state"] != State.REJECTED or stopped_in not in REDO:
                raise UsageError(
                    f"--redo is for an item rejected at a gate; {printable(name)} is "
                    f"{row['state']} in {row['stopped_in'] or '?'}: 'mp retry' without it"
                )
            stage, target = REDO[stopped_in]
            if dry_run:
                folder = ItemKey.of(row).folder(config.staging_root, stage)
                if not is_folder(config.staging_root, folder):
                    raise UsageError(f"{printable(folder)} is not there to set aside")
                return ManageResult(
                    f"{printable(name)}: would set {printable(folder)} aside (kept) and go "
                    f"back to {target}, for 'mp dispatch' to make it again"
                )
            moved = _set_output_aside(config, row, stage)
        gate = next((g for g, state in GATE_STATES.items() if state == target), None)
        gate = gate if gate in config.gates else None
        if ask_again and gate is None:
            raise UsageError(
                f"--ask-again: {printable(name)} goes back to {target}, where no gate is on"
            )
        asks = gate is not None and (
            ask_again or row["state"] == State.REJECTED or not _approved(db, row, gate)
        )
        drive = _retry_drive(queue, row) if target == State.RIPPING else None
        if dry_run:
            again = f"; {gate} would ask again" if asks else ""
            if row["state"] == State.REJECTED or ask_again:
                again += " (its decision is kept, set aside)"
            if target == State.RIPPING:
                again += f"; its rip reads {_drive_said(drive)}"
            return ManageResult(f"{printable(name)}: would go back to {target}{again}")
        # Decisions set aside (kept): a rejection always; with --ask-again, the approval
        # at the gate it goes back to.
        forget_decisions(config, db, row, "rejected")
        if ask_again and gate is not None:
            forget_decisions(config, db, row, "approved", gate)
        flags = " --redo" if redo else " --ask-again" if ask_again else ""
        reason = f"mp retry{flags} ({row['state']})"
        row = change_state(db, row, target, trigger="manual", reason=reason)
        write_item_files(config.staging_root, row)
        if target == State.RIPPING:
            job_id = submit_job(config, db, queue, row, "rip", drive=drive)
            return ManageResult(
                f"{printable(name)}: back to RIPPING, queued {job_id} "
                f"(reading {_drive_said(drive)})"
            )
    if moved:
        return ManageResult(
            f"{printable(name)}: its rejected output was set aside as {printable(moved)} "
            f"(kept); back to {target}, and 'mp dispatch' queues the job that makes it again"
        )
    if asks:
        return ManageResult(f"{printable(name)}: back to {target}; {gate} {ASKS_AGAIN}")
    return ManageResult(f"{printable(name)}: back to {target}; 'mp dispatch' queues its job")


def live_rip_in(queue: Queue, drive: Drive) -> tuple[str, str] | None:
    """(state, folder name) of a pending or running rip of the disc in drive (one drive
    holds one disc)."""
    for state, name, job in queue.jobs(LIVE_DIRS):
        if job.kind == "rip":
            spec = queue.read_spec(state, name) or {}
            if Drive.named_in(spec) == drive:
                return state, name
    return None


def _retry_drive(queue: Queue, row: dict) -> Drive | None:
    """The drive a retried rip reads: the one its disc was in when the disc started the
    rip (as the controller first saw it; a failed rip leaves its disc in), unless another
    disc's rip has that drive now."""
    drive = Drive.parse(row.get("drive"))
    busy = live_rip_in(queue, drive) if drive else None
    if busy is not None:
        raise UsageError(
            f"{printable(item_name(row))}: its drive {drive} is ripping another disc now "
            f"({busy[1]}); retry it once that rip ends, with this disc back in"
        )
    return drive


def _approved_gate_waiting(config: Config, db: Database, row: dict) -> str | None:
    """The approved gate of an item's state, which it waits past for its next job to be
    queued (an earlier disc, a file gone), if any."""
    gate = next((g for g, state in GATE_STATES.items() if state == row["state"]), None)
    if gate is not None and gate in config.gates and _approved(db, row, gate):
        return gate
    return None


def _past_review_without_filing_gate(config: Config, row: dict) -> bool:
    """A transcoded (or stopped in filing) item whose roles only remux_review could set."""
    stopped = row.get("stopped_in") or row["state"]
    filing = stopped in (State.TRANSCODED, State.FILING)
    return filing and "remux_review" in config.gates and "filebot_confirm" not in config.gates


def _approved(db: Database, row: dict, gate: str) -> bool:
    return (row["uid"], gate) in approved_destinations(db, [row["uid"]])


def _set_output_aside(config: Config, row: dict, stage: str) -> str:
    """Rename the item's folder in stage to a hidden name beside it (kept, never
    deleted): its job then runs again into a fresh folder. Returns the new path."""
    folder = ItemKey.of(row).folder(config.staging_root, stage)
    stamp = name_stamp()
    return _set_folder_aside(config, folder, f".rejected-{stamp}")


def _set_folder_aside(config: Config, folder: str, tail: str) -> str:
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


def run_forget(config: Config, item_text: str, *, dry_run: bool = False) -> ManageResult:
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
            return ManageResult(
                f"{name} ({row['state']}): would forget it and set aside {shown} (hidden, "
                "kept); its files in the library stay"
            )
        now = utc_now()
        stamp = name_stamp(now)
        # The old disc's titles must not meet a new rip's: the rip copies beside them
        # (cp -n keeps the old), the remux keeps a finished file of the same name. Only
        # forget knows they belong to nothing now; a rip or reconcile cannot tell them
        # from a rip under way or files a person put there.
        aside = [_set_folder_aside(config, folder, f".forgotten-{stamp}") for folder in present]
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
    return ManageResult(
        f"{name}: forgotten; its stage folders were set aside as {shown} (kept), and its "
        "files in the library stay"
    )


def run_priority(
    config: Config, item_text: str, priority: int, *, dry_run: bool = False
) -> ManageResult:
    """Set an item's priority; a job still pending is re-queued under a name that sorts by
    the new priority. The old name is first taken out of pending/ by rename, so the job is
    never claimable under two names."""
    priority = clamp_priority(priority)
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        if dry_run:
            live = queue.live_job_for(row["uid"])
            message = f"{printable(item_name(row))}: would set priority {priority}"
            if live is not None and live[0] == PENDING:
                message += f" and re-queue its pending job {live[1]} to sort by it"
            elif live is not None:
                message += "; its running job keeps its place"
            return ManageResult(message)
        db.table("media_items").update(row["id"], {"priority": priority})
        row = {**row, "priority": priority}
        write_item_files(config.staging_root, row)
        live = queue.live_job_for(row["uid"])
        message = f"{printable(item_name(row))}: priority {priority}"
        if live is None or live[0] != PENDING:
            return ManageResult(message + ("; its running job keeps its place" if live else ""))
        old_id = live[1]
        try:
            queue.move(PENDING, old_id, TMP)
        except FileNotFoundError:
            return ManageResult(message + "; its job was claimed meanwhile")
        job = JobName.parse(old_id)
        assert job is not None  # live_job_for finds only jobs' names
        new_id = make_job_id(
            job.kind,
            ItemKey.of(row),
            priority,
            job.created,
        )
        with queue.open_job(TMP, old_id) as holding:
            try:
                spec = holding.spec() or {}
                # Signed again below (the id is in the signature): only a spec this
                # controller signed, or signing would make a forged one good.
                verified_by(config, spec, trusted_keys(config))
                if spec.get("id") != old_id:
                    raise ForgedSpec("its spec is another job's")
            except (BadEntry, SpecError) as error:
                queue.reject(TMP, old_id, f"not re-queued by mp priority: {error}")
                return ManageResult(
                    message + f"; its pending job {old_id} was not one this controller "
                    "signed: moved to rejected/, and reconcile queues the item again"
                )
            holding.write_spec(signed(config, {**spec, "id": new_id, "priority": priority}))
        not_before = back_off_time(spec.get("not_before"))
        if not_before is not None and not_before > time.time():
            queue.hold(new_id, not_before)  # the new name keeps the job's back-off
        queue.move(TMP, old_id, PENDING, new_id)
        db.execute("UPDATE jobs SET id = ?, priority = ? WHERE id = ?", [new_id, priority, old_id])
    return ManageResult(message + f"; job re-queued as {new_id}")
