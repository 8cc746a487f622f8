"""`mp cancel ITEM`: stop an item's job, pending or running, with a signed cancel."""

from __future__ import annotations

import math
import time

from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import on_controller
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import printable
from media_pipeline.items.state import change_state, item_name, write_item_files
from media_pipeline.jobs.keys import trusted_keys
from media_pipeline.jobs.queue import CANCELLED, LIVE_DIRS, PENDING, RUNNING, Queue
from media_pipeline.jobs.signature import ForgedSpec, check_signature, signed_cancel
from media_pipeline.pipeline import STOPPED, State
from media_pipeline.said import Said
from media_pipeline.text import utc_now


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


def run_cancel(config: Config, item_text: str, *, dry_run: bool = False) -> Said:
    with on_controller(config, dry_run) as (queue, db):
        row = find_item(db, item_text)
        name = item_name(row)
        live = _own_live_job(config, queue, row["uid"])
        if live is None:
            if row["state"] == State.CANCELLED:
                return Said(f"{printable(name)} is already cancelled")
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
            return Said(f"{printable(name)}: would {what}; {then}")
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
    return Said(f"{printable(name)}: {message}")
