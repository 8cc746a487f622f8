"""`mp retry ITEM [--redo | --ask-again]`: send a stopped item back to where it can go on."""

from __future__ import annotations

from sqlite_utils import Database

from media_pipeline.approve.gates import approved_destinations
from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import (
    ASKS_AGAIN,
    forget_decisions,
    live_rip_in,
    on_controller,
    set_folder_aside,
)
from media_pipeline.control.submit import submit_job
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import change_state, item_name, write_item_files
from media_pipeline.jobs.queue import Queue
from media_pipeline.library.disc import Drive
from media_pipeline.pipeline import GATE_STATES, REDO, RETRY_TARGET, STOPPED, State
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
        name = item_name(row)
        waiting_gate = _approved_gate_waiting(config, db, row) if ask_again else None
        if waiting_gate is not None and queue.live_job_for(row["uid"]) is None:
            # Approved, and waiting for dispatch (an earlier disc, a file gone): nothing
            # to stop, so the decision is set aside (kept) and the gate asked again.
            if dry_run:
                return Said(f"{printable(name)}: {waiting_gate} would ask again")
            forget_decisions(config, db, row, "approved", waiting_gate)
            return Said(f"{printable(name)}: {waiting_gate} {ASKS_AGAIN}")
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
                return Said(
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
            return Said(f"{printable(name)}: would go back to {target}{again}")
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
            return Said(
                f"{printable(name)}: back to RIPPING, queued {job_id} "
                f"(reading {_drive_said(drive)})"
            )
    if moved:
        return Said(
            f"{printable(name)}: its rejected output was set aside as {printable(moved)} "
            f"(kept); back to {target}, and 'mp dispatch' queues the job that makes it again"
        )
    if asks:
        return Said(f"{printable(name)}: back to {target}; {gate} {ASKS_AGAIN}")
    return Said(f"{printable(name)}: back to {target}; 'mp dispatch' queues its job")


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
    return set_folder_aside(config, folder, f".rejected-{stamp}")
