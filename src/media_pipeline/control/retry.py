"""`mp retry ITEM [--redo | --ask-again]`: send a stopped item back to where it can go on."""

from __future__ import annotations

from sqlite_utils import Database

from media_pipeline.approve.gates import approved_destinations
from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import (
    forget_decisions,
    live_rip_in,
    on_controller,
    set_folder_aside,
)
from media_pipeline.control.retry_plan import RetryFacts, RetryPlan, done_say, plan_retry, would_say
from media_pipeline.control.submit import submit_job
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import change_state, item_name, write_item_files
from media_pipeline.jobs.queue import Queue
from media_pipeline.library.disc import Drive
from media_pipeline.pipeline import DISC_STAGE
from media_pipeline.said import Said
from media_pipeline.share.files import is_folder
from media_pipeline.text import name_stamp


def run_retry(
    config: Config,
    item_text: str,
    *,
    redo: bool = False,
    ask_again: bool = False,
    dry_run: bool = False,
) -> Said:
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        facts = RetryFacts(
            row,
            config.gates,
            frozenset(gate for uid, gate in approved_destinations(db, [row["uid"]])),
            queue.live_job_for(row["uid"]) is not None,
        )
        plan = plan_retry(facts, redo=redo, ask_again=ask_again)
        if dry_run and plan.redo_stage is not None:
            folder = ItemKey.of(row).folder(config.staging_root, plan.redo_stage)
            if not is_folder(config.staging_root, folder):
                raise UsageError(f"{printable(folder)} is not there to set aside")
            return Said(
                f"{facts.name}: would set {printable(folder)} aside (kept) and go back to "
                f"{plan.target}, for 'mp dispatch' to make it again"
            )
        drive = _retry_drive(queue, row) if plan.rips else None
        if dry_run:
            return Said(would_say(plan, facts.name, _drive_said(drive)))
        return _carry_out(config, db, queue, row, plan, drive)


def _carry_out(
    config: Config, db: Database, queue: Queue, row: dict, plan: RetryPlan, drive: Drive | None
) -> Said:
    """The plan, done: the output set aside (--redo), decisions set aside, the state
    changed (with the item's own files), and a rip queued at once."""
    name = printable(item_name(row))
    moved = _set_output_aside(config, row, plan.redo_stage) if plan.redo_stage else None
    for status, gate in plan.forget:
        forget_decisions(config, db, row, status, gate)
    if plan.target is None:
        return Said(done_say(plan, name))
    row = change_state(db, row, plan.target, trigger="manual", reason=plan.reason)
    write_item_files(config.staging_root, row)
    if plan.rips:
        job_id = submit_job(config, db, queue, row, DISC_STAGE.kind, drive=drive)
        return Said(
            f"{name}: back to {DISC_STAGE.running}, queued {job_id} (reading {_drive_said(drive)})"
        )
    return Said(done_say(plan, name, moved=moved))


def _drive_said(drive: Drive | None) -> str:
    return f"{drive} again" if drive else "the rip script's own drive: none is recorded"


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


def _set_output_aside(config: Config, row: dict, stage: str) -> str:
    """Rename the item's folder in stage to a hidden name beside it (kept, never
    deleted): its job then runs again into a fresh folder. Returns the new path."""
    folder = ItemKey.of(row).folder(config.staging_root, stage)
    stamp = name_stamp()
    return set_folder_aside(config, folder, f".rejected-{stamp}")
