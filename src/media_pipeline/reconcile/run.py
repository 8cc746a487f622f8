"""`mp reconcile`: scan, plan, and (unless a dry run) apply: database first, then markers.

The database is written first because the controller's own files are derived from it:
if the command dies between the two, the next run sees files that differ from the
database and writes them again. The other way round, a state file could get ahead of
the database and a later run would take it back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlite_utils import Database

from media_pipeline.approve.gates import open_approvals, restore_decisions
from media_pipeline.approve.signing import text_verifies
from media_pipeline.config.settings import Config
from media_pipeline.errors import PipelineError, SafetyRefusal
from media_pipeline.faults import crash_point
from media_pipeline.items.names import printable
from media_pipeline.items.state import Logged, Transitioned, transition_row
from media_pipeline.jobs.live import publish
from media_pipeline.jobs.queue import Queue
from media_pipeline.notify.events import in_library_event, in_library_many_event
from media_pipeline.notify.send import notify_each_or_one
from media_pipeline.notify.send import retry_failed as retry_failed_notifications
from media_pipeline.pipeline import FILING_STAGE
from media_pipeline.reconcile.plan import FileWrite, ReconcilePlan, plan_items, plan_missing
from media_pipeline.reconcile.queue_sync import (
    recover_stale_jobs,
    reject_strays,
    reject_unapproved_filings,
    remove_expired_jobs,
    sync_jobs,
)
from media_pipeline.reconcile.scan import StagingWalk
from media_pipeline.share.files import BadEntry, Folder
from media_pipeline.share.fsutil import SHARE_GONE_ERRNOS
from media_pipeline.share.identity import ensure_share
from media_pipeline.share.markers import write_controller_files
from media_pipeline.store import (
    controller_database,
    drop_cache_tables,
    existing_key,
    in_slices,
    open_database_readonly,
    rows_by,
)
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

WRITE_THREADS = 4
PARALLEL_WRITES_FROM = 32
WRITE_SLICE = 256


@dataclass
class ReconcileResult:
    applied: bool
    items_seen: int
    new_items: int = 0
    transitions: int = 0
    writes: int = 0
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # each change, kept for a dry run
    queue_changes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # controller files not written
    created_database: str | None = None  # this run made the database, at this path
    # (uid, name) of each item this run moved into IN_LIBRARY, for the notification
    reached_library: list[tuple[str, str]] = field(default_factory=list)

    def add(self, plan: ReconcilePlan, warnings: list[str]) -> None:
        self.new_items += len(plan.new_items)
        self.transitions += len(plan.transitions)
        self.writes += len(plan.writes)
        self.warnings.extend(warnings)
        if not self.applied:
            self.changes.extend(plan.describe())

    def describe(self) -> list[str]:
        return [*self.changes, *self.queue_changes]

    @property
    def changed(self) -> bool:
        return bool(self.new_items or self.transitions or self.writes or self.queue_changes)

    def summary(self) -> str:
        # Said once, here: only reconcile makes a database, and a person should know
        # where (a mistyped `database` shows up at once).
        made = f"created the database {self.created_database}\n" if self.created_database else ""
        if not self.changed:
            return f"{made}reconcile: {self.items_seen} items, nothing to change"
        verb = "applied" if self.applied else "would apply"
        return (
            f"{made}reconcile: {self.items_seen} items; {verb} {self.new_items} new, "
            f"{self.transitions} state changes, {self.writes} files written, "
            f"{sum(not isinstance(c, Transitioned) for c in self.queue_changes)} queue changes"
        )


# Items read, planned and written at a time: memory holds one batch's markers and rows,
# however large the staging area.
BATCH_SIZE = 1000


def last_recorded_states(db: Database, keys) -> dict[str, str]:
    """The last state in each item's history (history outlives the cache tables)."""
    found: dict[str, str] = {}
    for marks, uids in in_slices([key.uid for key in keys]):
        found.update(
            (row["item_uid"], row["to_state"])
            for row in db.query(
                "SELECT item_uid, to_state FROM state_transitions WHERE id IN "
                f"(SELECT max(id) FROM state_transitions WHERE item_uid IN ({marks}) "
                "GROUP BY item_uid)",
                uids,
            )
        )
    return found


def refuse_if_unmounted(config: Config, walk: StagingWalk, db: Database | None) -> None:
    """An empty mount point looks like a staging area where every item vanished."""
    if walk.stages_present or db is None:
        return
    if db.execute("SELECT 1 FROM media_items WHERE folder_path IS NOT NULL LIMIT 1").fetchone():
        raise SafetyRefusal(
            f"staging_root {config.staging_root} holds none of the stage folders, but the "
            "database knows items there; is the share mounted? Nothing was changed"
        )


def _write_files(staging: str | Folder, writes: list[FileWrite]) -> str | None:
    """Write one item folder's controller files; a sentence if it failed, SafetyRefusal
    if the share went."""
    first = writes[0]
    files = [(write.name, write.text) for write in writes]
    try:
        if not write_controller_files(staging, first.folder, files):
            log.info("%s: the folder moved on meanwhile; the next run writes it", first.folder)
    except BadEntry as error:
        return f"{first.describe()} refused ({printable(str(error))})"
    except OSError as error:
        if error.errno in SHARE_GONE_ERRNOS:
            raise SafetyRefusal(
                f"{printable(first.folder)} became unreachable while writing "
                f"{first.name} ({error.strerror}); is the share still mounted?"
            ) from None
        return f"{first.describe()} failed ({error.strerror or error})"
    return None


def apply_plan(db: Database, plan: ReconcilePlan, staging: str | Folder) -> list[str]:
    """Write the plan: the database in one transaction, then the controller's files.
    Returns the files that could not be written."""
    with db.atomic():
        if plan.new_items:
            db.table("media_items").insert_all(plan.new_items)
        for item_id, updates in plan.updated_items:
            db.table("media_items").update(item_id, updates)
        now = utc_now()
        db.table("state_transitions").insert_all(
            transition_row(t.item_uid, t.from_state, t.to_state, t.trigger, t.reason, now)
            for t in plan.transitions
        )
    crash_point("reconcile:batch-stored")  # the database has it, the item's files not yet
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
    # One item's files are written together: its folder is walked to (each step checked
    # for links) once, not once per file.
    by_folder: dict[str, list[FileWrite]] = {}
    for write in plan.writes:
        by_folder.setdefault(write.folder, []).append(write)
    groups = list(by_folder.values())
    write_files = functools.partial(_write_files, staging)
    if len(plan.writes) < PARALLEL_WRITES_FROM:
        outcomes = [write_files(group) for group in groups]
    else:
        # Creating a file costs a round trip on NFS (and ~0.5 ms on a local disk); a few
        # threads overlap them, which makes a first or rebuilding run about twice as fast.
        # In slices: Executor.map makes every future at once, which for a first run over
        # 10,000 items was most of its memory.
        outcomes = []
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            for start in range(0, len(groups), WRITE_SLICE):
                outcomes.extend(pool.map(write_files, groups[start : start + WRITE_SLICE]))
    failures = [outcome for outcome in outcomes if outcome]
    crash_point("reconcile:files-written")
    return failures


def _signed_by_this_controller(config: Config) -> Callable[[str, str, object], bool]:
    """Whether an episode range read from an item's metadata.json is one this controller
    signed. Without a key (none made yet, or a dry run before the first real one) none
    is: nothing was signed here."""
    key = existing_key(config.decision_key) or b""

    def trusted(uid: str, episodes: str, signature: object) -> bool:
        return text_verifies(f"{uid} {episodes}", signature, key)

    return trusted


def run_reconcile(
    config: Config, *, dry_run: bool = False, rebuild: bool = False
) -> ReconcileResult:
    if dry_run:
        db = open_database_readonly(config)
        try:
            result = _reconcile(config, db, dry_run=True, rebuild=rebuild)
        finally:
            if db is not None:
                db.close()
        if db is None:
            result.changes.insert(0, f"create the database {config.database}")
        return result
    created: list[str] = []
    with controller_database(config, on_create=created.append) as db:
        result = _reconcile(config, db, dry_run=False, rebuild=rebuild)
        with Queue.of(config) as queue:
            publish(config, db, queue)
    result.created_database = created[0] if created else None
    if result.failures:
        raise PipelineError(
            f"{len(result.failures)} controller file(s) could not be written, first: "
            f"{result.failures[0]}; the database is up to date and the next reconcile tries "
            "again"
        )
    return result


def _reconcile(
    config: Config, db: Database | None, *, dry_run: bool, rebuild: bool
) -> ReconcileResult:
    queue = Queue.of(config)
    walk = StagingWalk(config.staging_root)
    try:
        return _reconcile_walk(config, db, queue, walk, dry_run=dry_run, rebuild=rebuild)
    finally:
        walk.close()
        queue.close()


def _reconcile_walk(config, db, queue: Queue, walk: StagingWalk, *, dry_run, rebuild):
    refuse_if_unmounted(config, walk, db)
    result = ReconcileResult(applied=not dry_run, items_seen=len(walk.items))
    result.queue_changes += ensure_share(config, dry_run=dry_run)
    crash_point("reconcile:share-known")
    listing_warnings = len(walk.warnings)
    result.warnings.extend(walk.warnings)
    # Jobs first: a stale job taken back is then seen as pending below.
    result.queue_changes += reject_strays(queue, dry_run=dry_run)
    result.queue_changes += reject_unapproved_filings(config, db, queue, dry_run=dry_run)
    result.queue_changes += recover_stale_jobs(config, queue, dry_run=dry_run)
    crash_point("reconcile:stale-recovered")
    result.queue_changes += remove_expired_jobs(config, queue, dry_run=dry_run)
    # A marker whose job is still live does not count yet: the worker verifies the
    # outputs first, and sets the marker aside if they fail.
    held = queue.live_kinds()
    if rebuild and not dry_run:
        drop_cache_tables(db)
        log.info("cache tables dropped; rebuilding from %s", config.staging_root)
    known = db is not None and not rebuild
    now = utc_now()
    notes: dict[tuple[str, str], str] = {}  # for the prompts of gates that ask again
    trusted = _signed_by_this_controller(config)
    # The old uids of jobs made before NFC keys: the queue is listed only if a folder
    # is to be renamed (a no-op reconcile must cost about a bare walk).
    live = functools.cache(lambda: frozenset(queue.live_item_uids()))
    for batch in walk.batches(BATCH_SIZE):
        for renamed in walk.rename_to_normal(batch, dry_run=dry_run, live=live):
            if dry_run:
                result.changes.append(renamed)
            else:
                log.info("%s", renamed, extra={"event": "renamed"})
        rows = rows_by(db, "media_items", "uid", [key.uid for key in batch]) if known else {}
        restoring = [key for key in batch if key.uid not in rows]
        history = last_recorded_states(db, restoring) if db is not None and restoring else {}
        plan, warnings = plan_items(batch, rows, history, now, held, trusted)
        walk.check_unchanged()  # before anything read after the share went is acted on
        _apply(db, plan, result, warnings, dry_run, walk.root_folder)
        result.queue_changes += restore_decisions(config, db, batch, dry_run=dry_run, notes=notes)
    result.warnings.extend(walk.warnings[listing_warnings:])  # from reading the items
    walk.check_unchanged()
    if known:
        in_staging = db.query(
            "SELECT id, type, title, disc_label, state, folder_path, missing_since "
            "FROM media_items WHERE folder_path IS NOT NULL AND missing_since IS NULL"
        )
        plan = plan_missing(in_staging, walk.items, now)
        _apply(db, plan, result, [], dry_run, walk.root_folder)
    if not dry_run:
        retry_failed_notifications(config, db)
        _notify_in_library(config, db, result.reached_library, now)
    result.queue_changes += sync_jobs(config, db, queue, dry_run=dry_run)
    crash_point("reconcile:jobs-synced")
    result.queue_changes += open_approvals(config, db, dry_run=dry_run, notes=notes)
    # State changes made by the queue's side were logged where they were made (with the
    # item and its states) and count as state changes; the rest is logged here, once.
    result.transitions += sum(isinstance(c, Transitioned) for c in result.queue_changes)
    if not dry_run:
        for change in result.queue_changes:
            if not isinstance(change, Logged):
                log.info("%s", change, extra={"event": "queue"})
    return result


def _apply(db, plan: ReconcilePlan, result, warnings, dry_run: bool, staging: Folder) -> None:
    result.add(plan, warnings)
    if not dry_run:
        result.failures.extend(apply_plan(db, plan, staging))
        # An item the database knew, filed now. Not a new item found already filed (a
        # first reconcile over a full share, a rebuild): that is no news to anyone.
        result.reached_library.extend(
            (t.item_uid, t.item_name)
            for t in plan.transitions
            if t.to_state == FILING_STAGE.done and t.from_state is not None
        )


def _notify_in_library(config: Config, db: Database, reached: list[tuple[str, str]], now: str):
    notify_each_or_one(
        config,
        db,
        [in_library_event(uid, name, now) for uid, name in reached],
        lambda: in_library_many_event(reached, now),
    )
