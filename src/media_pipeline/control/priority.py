"""`mp priority ITEM N`: reorder an item's pending job (signed again under a new id)."""

from __future__ import annotations

import time

from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import on_controller
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import item_name, write_item_files
from media_pipeline.jobs.keys import trusted_keys
from media_pipeline.jobs.queue import (
    PENDING,
    TMP,
    JobName,
    back_off_time,
    clamp_priority,
    make_job_id,
)
from media_pipeline.jobs.signature import ForgedSpec, signed, verified_by
from media_pipeline.jobs.spec import SpecError
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry


def run_priority(config: Config, item_text: str, priority: int, *, dry_run: bool = False) -> Said:
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
            return Said(message)
        db.table("media_items").update(row["id"], {"priority": priority})
        row = {**row, "priority": priority}
        write_item_files(config.staging_root, row)
        live = queue.live_job_for(row["uid"])
        message = f"{printable(item_name(row))}: priority {priority}"
        if live is None or live[0] != PENDING:
            return Said(message + ("; its running job keeps its place" if live else ""))
        old_id = live[1]
        try:
            queue.move(PENDING, old_id, TMP)
        except FileNotFoundError:
            return Said(message + "; its job was claimed meanwhile")
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
                return Said(
                    message + f"; its pending job {old_id} was not one this controller "
                    "signed: moved to rejected/, and reconcile queues the item again"
                )
            holding.write_spec(signed(config, {**spec, "id": new_id, "priority": priority}))
        not_before = back_off_time(spec.get("not_before"))
        if not_before is not None and not_before > time.time():
            queue.hold(new_id, not_before)  # the new name keeps the job's back-off
        queue.move(TMP, old_id, PENDING, new_id)
        db.execute("UPDATE jobs SET id = ?, priority = ? WHERE id = ?", [new_id, priority, old_id])
    return Said(message + f"; job re-queued as {new_id}")
