"""Telling a person: an approval waits, a job failed for good. ntfy and a JSON webhook.

Each event has a key recorded in the `notifications` table, so timers that run every
minute send it once. A notification that fails is logged and tried again on a later
run (up to MAX_ATTEMPTS); it never fails the command that raised the event.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.config import Config
from media_pipeline.store import utc_now

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Event:
    key: str  # unique per event: approval:<uid>:<gate>:<requested_at>, job_failed:<job>
    kind: str  # approval_opened, job_failed
    title: str
    message: str
    item: str
    high_priority: bool = False


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def _send(config: Config, event: Event, skip: set[str]) -> tuple[set[str], list[str]]:
    """Send one event to every configured service not in skip; (services that took it,
    errors)."""
    settings = config.notify
    errors = []
    sent = set()
    if settings.ntfy_url and "ntfy" not in skip:
        priority = (
            min(5, settings.ntfy_priority + 1) if event.high_priority else settings.ntfy_priority
        )
        headers = {
            # HTTP headers are Latin-1; ntfy reads RFC 2047 for anything else.
            "Title": _header_safe(event.title),
            "Priority": str(priority),
            "Tags": ",".join(settings.ntfy_tags + (("warning",) if event.high_priority else ())),
        }
        try:
            _post(
                settings.ntfy_url, event.message.encode("utf-8"), headers, settings.timeout_seconds
            )
            sent.add("ntfy")
        except (urllib.error.URLError, OSError, ValueError) as error:
            errors.append(f"ntfy {settings.ntfy_url}: {error}")
    if settings.webhook_url and "webhook" not in skip:
        body = json.dumps(
            {
                "event": event.kind,
                "key": event.key,
                "title": event.title,
                "message": event.message,
                "item": event.item,
                "at": utc_now(),
            },
            ensure_ascii=False,
        ).encode("utf-8")
        try:
            _post(
                settings.webhook_url,
                body,
                {"Content-Type": "application/json"},
                settings.timeout_seconds,
            )
            sent.add("webhook")
        except (urllib.error.URLError, OSError, ValueError) as error:
            errors.append(f"webhook {settings.webhook_url}: {error}")
    return sent, errors


def _header_safe(text: str) -> str:
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        from email.header import Header

        return Header(text, "utf-8").encode()


def notify(config: Config, db: Database, event: Event) -> None:
    """Send an event once. Safe to call on every run for the same event."""
    if not (config.notify.ntfy_url or config.notify.webhook_url):
        return
    rows = list(db.query("SELECT * FROM notifications WHERE event = ?", [event.key]))
    row = rows[0] if rows else None
    if row and (row["status"] == "sent" or row["attempts"] >= MAX_ATTEMPTS):
        return
    already = set(filter(None, (row["sent_to"] or "").split(","))) if row else set()
    sent, errors = _send(config, event, skip=already)
    attempts = (row["attempts"] if row else 0) + 1
    db["notifications"].upsert(
        {
            "event": event.key,
            "title": event.title,
            "message": event.message,
            "status": "failed" if errors else "sent",
            "sent_to": ",".join(sorted(already | sent)),
            "attempts": attempts,
            "last_error": "; ".join(errors)[:500] if errors else None,
            "created_at": row["created_at"] if row else utc_now(),
            "sent_at": None if errors else utc_now(),
        },
        pk="event",
    )
    for error in errors:
        log.warning("notification not sent (attempt %d of %d): %s", attempts, MAX_ATTEMPTS, error)


def retry_failed(config: Config, db: Database) -> None:
    """Try again the notifications that failed on an earlier run (call it before this
    run raises new events, so a failure is not retried within the same run)."""
    if not (config.notify.ntfy_url or config.notify.webhook_url):
        return
    for row in list(
        db.query(
            "SELECT * FROM notifications WHERE status = 'failed' AND attempts < ?", [MAX_ATTEMPTS]
        )
    ):
        kind = row["event"].split(":", 1)[0]
        notify(
            config,
            db,
            Event(
                row["event"],
                kind,
                row["title"],
                row["message"],
                "",
                high_priority=kind == "job_failed",
            ),
        )
