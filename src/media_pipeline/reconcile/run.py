"""`mp reconcile`: scan, plan, and (unless a dry run) apply: database first, then markers.

The database is written first because the controller's own files are derived from it:
if the command dies between the two, the next run sees files that differ from the
database and writes them again. The other way round, a state file could get ahead of
the database and a later run would take it back.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlite_utils import Database

from media_pipeline.approve.gates import open_approvals, restore_decisions
from media_pipeline.config import Config
from media_pipeline.errors import PipelineError, SafetyRefusal
from media_pipeline.fsutil import SHARE_GONE_ERRNOS
from media_pipeline.items import printable
from media_pipeline.jobs.queue import Queue
from media_pipeline.markers import write_controller_file
from media_pipeline.notify import retry_failed as retry_failed_notifications
from media_pipeline.reconcile.plan import FileWrite, ReconcilePlan, plan_reconcile
from media_pipeline.reconcile.queue_sync import (
    recover_stale_jobs,
    remove_expired_jobs,
    sync_jobs,
)
from media_pipeline.reconcile.scan import ScanResult, scan_staging
from media_pipeline.store import (
    controller_database,
    drop_cache_tables,
    open_database_readonly,
    utc_now,
)

log = logging.getLogger(__name__)

WRITE_THREADS = 4
PARALLEL_WRITES_FROM = 32
WRITE_SLICE = 256


@dataclass
class ReconcileResult:
    plan: ReconcilePlan
    applied: bool
    items_seen: int
    warnings: list[str] = field(default_factory=list)
    queue_changes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [*self.plan.describe(), *self.queue_changes]

    def summary(self) -> str:
        plan = self.plan
        if plan.empty and not self.queue_changes:
            return f"reconcile: {self.items_seen} items, nothing to change"
        verb = "applied" if self.applied else "would apply"
        return (
            f"reconcile: {self.items_seen} items; {verb} {len(plan.new_items)} new, "
            f"{len(plan.transitions)} state changes, {len(plan.writes)} files written, "
            f"{len(self.queue_changes)} queue changes"
        )


def load_items(db: Database) -> dict[str, dict]:
    return {row["uid"]: row for row in db.query("SELECT * FROM media_items")}


def last_recorded_states(db: Database) -> dict[str, str]:
    """The last state in each item's history (history outlives the cache tables)."""
    return {
        row["item_uid"]: row["to_state"]
        for row in db.query(
            "SELECT item_uid, to_state FROM state_transitions WHERE id IN "
            "(SELECT max(id) FROM state_transitions GROUP BY item_uid)"
        )
    }


def refuse_if_unmounted(config: Config, scan: ScanResult, rows: dict[str, dict]) -> None:
    """An empty mount point looks like a staging area where every item vanished."""
    if scan.stages_present:
        return
    if any(row.get("folder_path") for row in rows.values()):
        raise SafetyRefusal(
            f"staging_root {config.staging_root} holds none of the stage folders, but the "
            "database knows items there; is the share mounted? Nothing was changed"
        )


def _scan(config: Config, db: Database | None) -> tuple[ScanResult, dict[str, dict]]:
    scan = scan_staging(config.staging_root)
    rows = load_items(db) if db is not None else {}
    refuse_if_unmounted(config, scan, rows)
    return scan, rows


def _plan(db: Database | None, scan: ScanResult, rows: dict[str, dict], rebuild: bool):
    if rebuild:
        rows = {}
    needs_history = db is not None and any(key.uid not in rows for key in scan.items)
    history = last_recorded_states(db) if needs_history else {}
    return plan_reconcile(scan, rows, history, utc_now())


def _write_file(write: FileWrite) -> str | None:
    """Write one controller file; a sentence if it failed, SafetyRefusal if the share went."""
    try:
        if not write_controller_file(write.folder, write.name, write.text):
            log.info("%s: the folder moved on meanwhile; the next run writes it", write.folder)
    except OSError as error:
        if error.errno in SHARE_GONE_ERRNOS:
            raise SafetyRefusal(
                f"{printable(write.folder)} became unreachable while writing "
                f"{write.name} ({error.strerror}); is the share still mounted?"
            ) from None
        return f"{write.describe()} failed ({error.strerror or error})"
    return None


def apply_plan(db: Database, plan: ReconcilePlan) -> list[str]:
    """Write the plan: the database in one transaction, then the controller's files.
    Returns the files that could not be written."""
    with db.atomic():
        if plan.new_items:
            db["media_items"].insert_all(plan.new_items)
        for item_id, updates in plan.updated_items:
            db["media_items"].update(item_id, updates)
        now = utc_now()
        db["state_transitions"].insert_all(
            {
                "item_uid": t.item_uid,
                "from_state": t.from_state,
                "to_state": t.to_state,
                "trigger": t.trigger,
                "reason": t.reason,
                "at": now,
            }
            for t in plan.transitions
        )
    for transition in plan.transitions:
        log.info(
            "%s",
            transition.describe(),
            extra={
                "event": "transition",
                "item": transition.item_name,
                "from": transition.from_state,
                "to": transition.to_state,
            },
        )
    for note in plan.notes:
        log.warning("%s", note)
    if len(plan.writes) < PARALLEL_WRITES_FROM:
        outcomes = [_write_file(write) for write in plan.writes]
    else:
        # Creating a file costs a round trip on NFS (and ~0.5 ms on a local disk); a few
        # threads overlap them, which makes a first or rebuilding run about twice as fast.
        # In slices: Executor.map makes every future at once, which for a first run over
        # 10,000 items was most of its memory.
        outcomes = []
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            for start in range(0, len(plan.writes), WRITE_SLICE):
                slice_ = plan.writes[start : start + WRITE_SLICE]
                outcomes.extend(pool.map(_write_file, slice_))
    failures = [outcome for outcome in outcomes if outcome]
    return failures


def run_reconcile(
    config: Config, *, dry_run: bool = False, rebuild: bool = False
) -> ReconcileResult:
    queue = Queue(config.queue_dir)
    if dry_run:
        db = open_database_readonly(config)
        try:
            scan, rows = _scan(config, db)
            queue_changes = recover_stale_jobs(config, queue, dry_run=True)
            queue_changes += remove_expired_jobs(config, queue, dry_run=True)
            plan, warnings = _plan(db, scan, rows, rebuild)
            queue_changes += sync_jobs(config, db, queue, dry_run=True)
            queue_changes += restore_decisions(config, db, scan, dry_run=True)
            queue_changes += open_approvals(config, db, dry_run=True)
        finally:
            if db is not None:
                db.close()
        return ReconcileResult(plan, False, len(scan.items), warnings, queue_changes)

    with controller_database(config) as db:
        scan, rows = _scan(config, db)
        # Jobs first: a stale job taken back is then seen as pending below.
        queue_changes = recover_stale_jobs(config, queue, dry_run=False)
        queue_changes += remove_expired_jobs(config, queue, dry_run=False)
        plan, warnings = _plan(db, scan, rows, rebuild)
        if rebuild:
            drop_cache_tables(db)
            log.info("cache tables dropped; rebuilding from %s", config.staging_root)
        failures = apply_plan(db, plan)
        retry_failed_notifications(config, db)
        queue_changes += sync_jobs(config, db, queue, dry_run=False)
        queue_changes += restore_decisions(config, db, scan, dry_run=False)
        queue_changes += open_approvals(config, db, dry_run=False)
    for change in queue_changes:
        log.info("%s", change, extra={"event": "queue"})
    if failures:
        raise PipelineError(
            f"{len(failures)} controller file(s) could not be written, first: {failures[0]}; "
            "the database is up to date and the next reconcile tries again"
        )
    return ReconcileResult(plan, True, len(scan.items), warnings, queue_changes)
