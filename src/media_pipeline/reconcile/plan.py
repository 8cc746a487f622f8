"""Decide what reconcile must change, from a scan and the database rows. Pure: no I/O.

The plan is what `--dry-run` prints and what a real run applies, so the two can never
disagree about what would happen.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field

from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import METADATA_FIELDS, metadata_for
from media_pipeline.library.seasons import recorded_range
from media_pipeline.pipeline import (
    FILING_STAGE,
    MARKER_STATES,
    State,
    marker_state,
    parse_state,
    settle_state,
)
from media_pipeline.reconcile.scan import ScannedItem
from media_pipeline.share.markers import METADATA_FILE, STATE_FILE, metadata_text, state_text

# The item fields reconcile owns; a difference in any of them is an update.
ITEM_FIELDS = (*METADATA_FIELDS, "folder_path", "missing_since")


@dataclass
class Transition:
    item_uid: str
    item_name: str
    from_state: str | None
    to_state: str
    trigger: str
    reason: str

    def describe(self) -> str:
        where = printable(self.item_name)
        if self.from_state is None:
            return f"{where}: new item, {self.to_state} ({self.reason})"
        return f"{where}: {self.from_state} -> {self.to_state} ({self.reason})"


@dataclass
class FileWrite:
    folder: str
    name: str
    text: str

    def describe(self) -> str:
        return f"write {printable(self.folder)}/.pipeline/{self.name}"


@dataclass
class ReconcilePlan:
    new_items: list[dict] = field(default_factory=list)
    updated_items: list[tuple[int, dict]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    writes: list[FileWrite] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [transition.describe() for transition in self.transitions]
        lines.extend(self.notes)
        lines.extend(write.describe() for write in self.writes)
        return lines


def _marker_reason(state: State) -> str:
    marker = next(name for name, proven in MARKER_STATES if proven == state)
    return f"{marker}.done seen"


def _restored(
    item: ScannedItem, warnings: list[str], trusted: Callable[[str, str, object], bool]
) -> tuple[dict, State | None]:
    """What the item's own `.pipeline/` files say, for an item the database lacks."""
    holder = item.latest_with("state_text")
    if holder is None:
        return {}, None
    recorded = parse_state(holder.state_text)
    if recorded is None:
        warnings.append(
            f"{printable(holder.folder)}/.pipeline/state holds no known state "
            f"({printable((holder.state_text or '').strip()[:40])!s}); going by the markers"
        )
        return {}, None
    metadata = holder.metadata or {}
    # A folder copied under another name carries the other item's metadata: ignore it.
    if metadata.get("uid") != item.key.uid:
        metadata = {}
    sane = _sane(metadata)
    if "episodes" in sane and not trusted(
        item.key.uid, sane["episodes"], sane.get("episodes_signature")
    ):
        warnings.append(
            f"{printable(holder.folder)}/.pipeline/metadata.json: its episode range is not "
            "one this controller signed; not restored (the disc is numbered again when filed)"
        )
        sane.pop("episodes")
        sane.pop("episodes_signature", None)
    return sane, recorded


def _sane(metadata: dict) -> dict:
    """The fields of a metadata.json (a file on the share) that are what mp would have
    written: a priority in range, times that are times, a reason of bounded length.
    Anything else is dropped (a priority of 10**26 once stopped every reconcile)."""
    sane: dict = {}
    priority = metadata.get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool) and abs(priority) < 500:
        sane["priority"] = priority
    for name in ("created_at", "updated_at"):
        value = metadata.get(name)
        if isinstance(value, str) and len(value) <= 40 and _is_time(value):
            sane[name] = value
    if recorded_range(metadata.get("episodes")) is not None:
        sane["episodes"] = metadata["episodes"]
        sane["episodes_signature"] = metadata.get("episodes_signature")
    for name in ("reason", "stopped_in"):
        value = metadata.get(name)
        if isinstance(value, str):
            sane[name] = value[:500]
    return sane


def _is_time(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _plan_scanned_item(
    item: ScannedItem,
    row: dict | None,
    last_recorded: dict[str, str],
    now: str,
    plan: ReconcilePlan,
    warnings: list[str],
    held: frozenset[str] | set[str] = frozenset(),
    trusted: Callable[[str, str, object], bool] = lambda _uid, _text, _signature: False,
) -> None:
    key: ItemKey = item.key
    proven = marker_state(item.done - held)
    if row is not None:
        known = dict(row)
        recorded = parse_state(row["state"])
        stopped_in = parse_state(row.get("stopped_in"))
        origin = None
    else:
        known, recorded = _restored(item, warnings, trusted)
        stopped_in = parse_state(known.get("stopped_in"))
        origin = "restored from .pipeline/state" if recorded else None

    state, stopped_in = settle_state(recorded, stopped_in, proven)
    if state is None:
        return  # a folder with no marker yet (a rip still writing, say): not an item yet

    changed = state != recorded
    desired: dict = {
        "uid": key.uid,
        "type": key.type,
        "title": key.title,
        "disc_label": key.disc_label,
        "state": str(state),
        "stopped_in": str(stopped_in) if stopped_in else None,
        "reason": None if changed else known.get("reason"),
        "priority": known.get("priority") or 0,
        "episodes": known.get("episodes"),
        "episodes_signature": known.get("episodes_signature"),
        "created_at": known.get("created_at") or now,
        "updated_at": now if changed else (known.get("updated_at") or now),
        "folder_path": item.current.folder,
        "missing_since": None,
    }

    if row is None:
        plan.new_items.append(desired)
        # A restored item whose history already ends in this state needs no new row.
        if last_recorded.get(key.uid) != desired["state"] or changed:
            reason = _marker_reason(state) if changed else (origin or "restored")
            plan.transitions.append(
                Transition(key.uid, key.name, None, desired["state"], "auto", reason)
            )
    else:
        updates = {name: desired[name] for name in ITEM_FIELDS if row.get(name) != desired[name]}
        if updates:
            plan.updated_items.append((row["id"], updates))
        if changed:
            plan.transitions.append(
                Transition(
                    key.uid, key.name, row["state"], desired["state"], "auto", _marker_reason(state)
                )
            )
        if row.get("missing_since"):
            plan.notes.append(f"{printable(key.name)}: its folder is back, no longer missing")

    current = item.current
    wanted_state = state_text(desired["state"])
    if current.state_text != wanted_state:
        plan.writes.append(FileWrite(current.folder, STATE_FILE, wanted_state))
    wanted_metadata = metadata_text(metadata_for(desired))
    if current.metadata_text != wanted_metadata:
        plan.writes.append(FileWrite(current.folder, METADATA_FILE, wanted_metadata))


def plan_items(
    items: dict[ItemKey, ScannedItem],
    rows: dict[str, dict],
    last_recorded: dict[str, str],
    now: str,
    held: dict[str, set[str]] | None = None,
    trusted: Callable[[str, str, object], bool] = lambda _uid, _text, _signature: False,
) -> tuple[ReconcilePlan, list[str]]:
    """What reconcile would change for these scanned items. `rows` are the database's
    rows for them by uid; `last_recorded` the last state in the history of those being
    restored; `held` the kinds of each item's live jobs, whose markers do not count until
    the job ends (its worker has not verified the outputs yet). Returns the plan and
    warnings about what was read."""
    plan = ReconcilePlan()
    warnings: list[str] = []
    held = held or {}
    for key in sorted(items):
        _plan_scanned_item(
            items[key],
            rows.get(key.uid),
            last_recorded,
            now,
            plan,
            warnings,
            held.get(key.uid, frozenset()),
            trusted,
        )
    return plan, warnings


def plan_missing(rows: Iterable[dict], listed: Container[ItemKey], now: str) -> ReconcilePlan:
    """Items the database has in staging whose folder was not listed: kept, as missing."""
    plan = ReconcilePlan()
    for row in rows:
        key = ItemKey.of(row)
        if key in listed or not row.get("folder_path") or row.get("missing_since"):
            continue
        # Staging is cleaned up once an item is filed; only earlier items are missed.
        if row["state"] == FILING_STAGE.done:
            continue
        plan.updated_items.append((row["id"], {"missing_since": now}))
        plan.notes.append(
            f"{printable(key.name)}: its folder is gone from staging; kept as missing "
            f"(state {row['state']})"
        )
    return plan
