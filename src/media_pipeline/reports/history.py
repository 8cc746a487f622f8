"""`mp history ITEM`: an item's state changes, jobs and approvals, oldest first."""

from __future__ import annotations

from dataclasses import dataclass

from media_pipeline.config.settings import Config
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import printable
from media_pipeline.items.state import item_name
from media_pipeline.store import reading_database
from media_pipeline.text import local_time


@dataclass
class HistoryEvent:
    at: str
    kind: str  # transition, job, approval
    text: str


@dataclass
class ItemHistory:
    item: dict
    events: list[HistoryEvent]


def run_history(config: Config, item_text: str) -> ItemHistory:
    with reading_database(config) as db:
        if db is None:
            raise UsageError("no database yet: run 'mp reconcile' first")
        item = find_item(db, item_text)
        uid = item["uid"]
        events = [
            HistoryEvent(
                row["at"],
                "state",
                f"{row['from_state'] or '(new)'} -> {row['to_state']} "
                f"[{row['trigger']}]" + (f" {row['reason']}" if row["reason"] else ""),
            )
            for row in db.query(
                "SELECT * FROM state_transitions WHERE item_uid = ? ORDER BY id", [uid]
            )
        ]
        for row in db.query("SELECT * FROM jobs WHERE item_uid = ?", [uid]):
            detail = f"{row['kind']} job {row['id']}: {row['state']}"
            if row["attempts"]:
                detail += f", attempt {row['attempts']}"
            if row["reason"]:
                detail += f" ({row['reason']})"
            events.append(HistoryEvent(row["created_at"], "job", detail))
        for row in db.query("SELECT * FROM human_approvals WHERE item_uid = ?", [uid]):
            detail = f"{row['gate']}: {row['status']}"
            if row["decided_by"]:
                detail += f" by {row['decided_by']}"
            if row["reason"]:
                detail += f" ({row['reason']})"
            events.append(
                HistoryEvent(row["decided_at"] or row["requested_at"], "approval", detail)
            )
    # Stable sort: events at the same second keep the order they were recorded in (a
    # state change's time has microseconds; the others' do not).
    events.sort(key=lambda event: event.at[:19])
    return ItemHistory(item=item, events=events)


def format_history(history: ItemHistory) -> str:
    item = history.item
    lines = [
        f"{printable(item_name(item))}  (id {item['id']}, uid {item['uid']}, now {item['state']})"
    ]
    for event in history.events:
        lines.append(f"{local_time(event.at)}  {event.kind:<10} {printable(event.text)}")
    return "\n".join(lines)
