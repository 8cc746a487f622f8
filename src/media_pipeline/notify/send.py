"""Each event sent once to every configured channel, and tried again on a later run.

Each event's key is recorded in the `notifications` table, so timers that run every
minute send it once (reconcile's own failures are counted outside the database, which
may be what fails: reconcile/failures.py). A notification that fails is logged and
tried again on a later run (up to MAX_ATTEMPTS); it never fails the command that raised
the event. Tokens, passwords, header values, the ntfy topic and the webhook's path are
sent, never logged nor stored: an error names the service's scheme://host[:port] only.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.config.settings import Config, NotifySettings
from media_pipeline.logs import redact
from media_pipeline.notify.channels import configured
from media_pipeline.notify.events import HIGH_PRIORITY, KINDS, Event, test_events
from media_pipeline.notify.post import SEND_ERRORS, post, split_origin
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


# More events of a kind than this in one run (a first reconcile over a full staging
# area, a season filed at once) make one notification that says how many, not a flood.
NOTIFY_EACH_UP_TO = 3


# The most one run (one process) spends on sending, in timeout_seconds: notifications
# are sent while the controller's lock is held, and a server that accepts and never
# answers must not hold `mp approve` and the rest out for events x services x timeout.
# What is not tried is recorded failed, and the next run tries it again.
RUN_BUDGET_TIMEOUTS = 2
# How send() says it did not try a service (no attempt spent: notify() counts none).
NOT_TRIED = "not tried"
_spent = [0.0]


def new_run() -> None:
    """A run begins (a reconcile, a lingering controller's next one, `mp notify test`):
    it has the whole budget again."""
    _spent[0] = 0.0


def channels(settings: NotifySettings) -> list[tuple[str, str]]:
    """(service, scheme://host[:port]) of each configured service: all that may be shown."""
    return [(channel.NAME, split_origin(url)[0]) for channel, url in configured(settings)]


def send(config: Config, event: Event, skip: Collection[str] = ()) -> dict[str, str | None]:
    """Send one event now to every configured service not in skip: service -> None when
    it took it, else the error. Errors name the service's origin only and no secret:
    they are logged and stored."""
    settings = config.notify
    # Every request is made before the first is sent, each as of now.
    requests = [
        (channel.NAME, url, *channel.request(settings, event))
        for channel, url in configured(settings)
        if channel.NAME not in skip
    ]
    outcomes: dict[str, str | None] = {}
    for service, url, body, headers in requests:
        if _spent[0] >= RUN_BUDGET_TIMEOUTS * settings.timeout_seconds:
            outcomes[service] = (
                f"{service} {split_origin(url)[0]}: {NOT_TRIED}, this run's time for "
                "notifications is used up (the next run tries again)"
            )
            continue
        started = time.monotonic()
        try:
            post(url, body, headers, settings.timeout_seconds)
            outcomes[service] = None
        except SEND_ERRORS as error:
            origin, rest = split_origin(url)
            # urllib's texts may quote the URL, or only its path and query (a short
            # one, "/", is left: hiding it would garble the text, and tells nothing).
            text = redact(
                str(error).replace(url, origin), [*settings.secrets, rest, *rest.split("/")]
            )
            outcomes[service] = f"{service} {origin}: {text}"
        finally:
            _spent[0] += time.monotonic() - started
    return outcomes


def notify(config: Config, db: Database, event: Event) -> None:
    """Send an event once. Safe to call on every run for the same event."""
    if not configured(config.notify):
        return
    rows = list(db.query("SELECT * FROM notifications WHERE event = ?", [event.key]))
    row = rows[0] if rows else None
    if row and (row["status"] == "sent" or row["attempts"] >= MAX_ATTEMPTS):
        return
    already = set(filter(None, (row["sent_to"] or "").split(","))) if row else set()
    outcomes = send(config, event, skip=already)
    sent = {service for service, error in outcomes.items() if error is None}
    errors = [error for error in outcomes.values() if error is not None]
    # A service the run had no time left for was not tried: no attempt spent on it.
    tried = any(error is None or NOT_TRIED not in error for error in outcomes.values())
    attempts = (row["attempts"] if row else 0) + (1 if tried else 0)
    db.table("notifications").upsert(
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
    if not configured(config.notify):
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
                row["title"].partition(": ")[2],
                high_priority=kind in HIGH_PRIORITY,
                uid=_uid_in(row["event"]),
            ),
        )


# An event's key names its item: approval_opened:<uid>:..., in_library:<uid>:..., or
# job_failed:<job id>, whose name holds the item's uid after its type.
_UID_IN_KEY = re.compile(
    r"^(?:approval_opened|in_library):([0-9a-f]{12,}):|_(?:movie|tv)_([0-9a-f]{12})_"
)


def _uid_in(key: str) -> str:
    """The uid of the one item an event's key names ('' for an event of many): what a
    retried notification links to, as the first try did."""
    found = _UID_IN_KEY.search(key)
    return (found.group(1) or found.group(2)) if found else ""


def notify_each_or_one(
    config: Config, db: Database, events: list[Event], together: Callable[[], Event]
) -> None:
    """Send each event, or, when there are more than NOTIFY_EACH_UP_TO, the one event
    `together` makes of them all."""
    if len(events) > NOTIFY_EACH_UP_TO:
        events = [together()]
    for event in events:
        notify(config, db, event)


@dataclass
class ChannelReport:
    service: str
    origin: str  # scheme://host[:port]: all of the URL that may be shown
    sent: list[str]  # the kinds it took
    errors: list[str]


def send_tests(config: Config) -> list[ChannelReport]:
    """Send one test notification of each kind to each configured service, now and
    without the database (nothing recorded): what each service did."""
    new_run()
    reports = {
        service: ChannelReport(service, origin, [], [])
        for service, origin in channels(config.notify)
    }
    for event in test_events():
        titled = Event(
            event.key,
            event.kind,
            f"Test: {event.title}",
            f"(A test from 'mp notify test'.) {event.message}",
            event.item,
            event.high_priority,
        )
        for service, error in send(config, titled).items():
            if error is None:
                reports[service].sent.append(KINDS[event.kind][0])
            else:
                # send's errors name the service for the log; the report names it once.
                reports[service].errors.append(
                    error.removeprefix(f"{service} {reports[service].origin}: ")
                )
    return list(reports.values())
