"""Telling a person: an approval waits, a job failed for good, an item reached the
library, reconcile keeps failing. ntfy and a JSON webhook.

Every kind of event is made here, one function each (KINDS lists the kinds), so what
`mp notify test` sends is what the pipeline sends. Each event has a key recorded in the
`notifications` table, so timers that run every minute send it once (reconcile's own
failures are counted outside the database, which may be what fails:
reconcile/failures.py). A notification that fails is logged and tried again on a later
run (up to MAX_ATTEMPTS); it never fails the command that raised the event. Tokens,
passwords, header values, the ntfy topic and the webhook's path are sent, never logged
nor stored: an error names the service's scheme://host[:port] only.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.config.settings import Config, NotifySettings
from media_pipeline.items.names import page_anchor
from media_pipeline.logs import HIDDEN, redact
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Event:
    key: str  # unique per event: approval:<uid>:<gate>:<requested_at>, job_failed:<job>
    kind: str  # one of KINDS
    title: str
    message: str
    item: str
    high_priority: bool = False
    # The one item it is about, if one: its Click opens that item's own section.
    uid: str = ""


# Each kind, what it is called where a person reads it, and the section of the status
# page its notification opens (ntfy's Click): the page's own anchors (reports/page.py).
APPROVAL_OPENED = "approval_opened"
JOB_FAILED = "job_failed"
IN_LIBRARY = "in_library"
RECONCILE_FAILING = "reconcile_failing"
KINDS = {
    APPROVAL_OPENED: ("gate waiting", "approvals"),
    JOB_FAILED: ("failure", "failures"),
    IN_LIBRARY: ("in library", "items"),
    RECONCILE_FAILING: ("reconcile failing", ""),
}
HIGH_PRIORITY = {JOB_FAILED, RECONCILE_FAILING}

# More events of a kind than this in one run (a first reconcile over a full staging
# area, a season filed at once) make one notification that says how many, not a flood.
NOTIFY_EACH_UP_TO = 3


def approval_event(uid: str, gate: str, requested_at: str, name: str) -> Event:
    return Event(
        key=f"{APPROVAL_OPENED}:{uid}:{gate}:{requested_at}",
        kind=APPROVAL_OPENED,
        title=f"Approval needed: {name}",
        message=f"{name} waits for {gate.replace('_', ' ')}. Run 'mp approve' on the controller.",
        item=name,
        uid=uid,
    )


def approvals_event(opened: list[tuple[str, str, str, str]]) -> Event:
    """One event for many approvals: (uid, gate, requested_at, name) each."""
    names = ", ".join(name for *_rest, name in opened[:3])
    return Event(
        key=f"{APPROVAL_OPENED}:{len(opened)}:{opened[0][0]}:{opened[0][2]}",
        kind=APPROVAL_OPENED,
        title=f"{len(opened)} approvals needed",
        message=f"{len(opened)} items wait for a person ({names}, ...). "
        "Run 'mp approve' on the controller.",
        item=names,
    )


def job_failed_event(job_id: str, name: str, reason: str, uid: str = "") -> Event:
    """reason: the item's, which ends with what the script said last ("(it said: ...)")."""
    return Event(
        key=f"{JOB_FAILED}:{job_id}",
        kind=JOB_FAILED,
        title=f"Failed: {name}",
        item=name,
        uid=uid,
        high_priority=True,
        message=f"{name}: {reason}. 'mp why' explains, 'mp retry' retries.",
    )


def failures_event(failed: list[Event]) -> Event:
    """One event for many jobs that failed for good in one run (a disc image gone bad
    under a whole season, a script broken for all)."""
    names = ", ".join(event.item for event in failed[:3])
    return Event(
        key=f"{JOB_FAILED}:{len(failed)}:{failed[0].key.split(':', 1)[1]}",
        kind=JOB_FAILED,
        title=f"{len(failed)} items failed",
        message=f"{len(failed)} items failed for good ({names}, ...). 'mp status' lists them, "
        "'mp why ITEM' says why.",
        item=names,
        high_priority=True,
    )


def in_library_event(uid: str, name: str, at: str) -> Event:
    return Event(
        key=f"{IN_LIBRARY}:{uid}:{at}",
        kind=IN_LIBRARY,
        title=f"In the library: {name}",
        message=f"{name} is in the library.",
        item=name,
        uid=uid,
    )


def in_library_many_event(reached: list[tuple[str, str]], at: str) -> Event:
    """One event for many items filed in one run: (uid, name) each."""
    names = ", ".join(name for _uid, name in reached[:3])
    return Event(
        key=f"{IN_LIBRARY}:{len(reached)}:{reached[0][0]}:{at}",
        kind=IN_LIBRARY,
        title=f"{len(reached)} items in the library",
        message=f"{len(reached)} items reached the library ({names}, ...).",
        item=names,
    )


def reconcile_failing_event(failures: int, since: str, error: str) -> Event:
    return Event(
        key=f"{RECONCILE_FAILING}:{since}",
        kind=RECONCILE_FAILING,
        title="Reconcile keeps failing",
        message=f"mp reconcile failed {failures} runs in a row (since {since}); the last "
        f"said: {error}. Nothing moves on until it runs again; see "
        "'journalctl -u mp-reconcile' on the controller.",
        item="",
        high_priority=True,
    )


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    url, basic = _split_credentials(url)
    if basic and not any(name.lower() == "authorization" for name in headers):
        headers = {**headers, "Authorization": basic}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_RefuseRedirects)
    # urllib's timeout is for each wait; a server that sends its answer a byte at a time
    # would never reach it. The whole answer gets timeout too.
    deadline = time.monotonic() + timeout
    with opener.open(request, timeout=timeout) as response:
        while response.read(4096):
            if time.monotonic() > deadline:
                raise TimeoutError("the answer took longer than timeout_seconds")


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


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is reported as the error it is, not followed: urllib would carry the
    Authorization header to wherever it points, another host included, and turn the
    POST into a GET that drops the message."""

    def redirect_request(self, *args, **kwargs):
        return None


def _split_credentials(url: str) -> tuple[str, str | None]:
    """url without its user:password@ part, and that part as a Basic Authorization
    value: urllib cannot send it from the URL (it takes it for part of the host name)."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _colon, password = userinfo.partition(":")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), _basic(
        urllib.parse.unquote(user), urllib.parse.unquote(password)
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def click_url(settings: NotifySettings, event: Event) -> str | None:
    """The status page, at the section the event is about (its item's own, for one
    item), for ntfy's Click header (one line of ASCII: anything else percent-encoded)."""
    if not settings.status_url:
        return None
    # Whoever reads the topic gets the link: never the page's user:password@ or its
    # query (a key), which mp keeps secret everywhere else. The browser asks for them.
    parts = urllib.parse.urlsplit(settings.status_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host + (f":{parts.port}" if parts.port else "")
    url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))
    anchor = KINDS.get(event.kind, ("", ""))[1]
    if event.uid and event.uid != "test":
        anchor = page_anchor(event.uid)
    if anchor and "#" not in url:
        url += f"#{anchor}"
    return urllib.parse.quote(url, safe="%:/?#[]@!$&'()*+,;=~")


def _ntfy_headers(settings: NotifySettings, event: Event) -> dict[str, str]:
    priority = min(5, settings.ntfy_priority + 1) if event.high_priority else settings.ntfy_priority
    headers = {
        # A proxy in front of ntfy may take a body without a charset for Latin-1.
        "Content-Type": "text/plain; charset=utf-8",
        "Title": header_value(event.title),
        "Priority": str(priority),
        "Tags": header_value(
            ",".join(settings.ntfy_tags + (("warning",) if event.high_priority else ()))
        ),
    }
    click = click_url(settings, event)
    if click:
        headers["Click"] = click
    if settings.ntfy_token:
        headers["Authorization"] = f"Bearer {settings.ntfy_token}"
    elif settings.ntfy_username is not None and settings.ntfy_password is not None:
        headers["Authorization"] = _basic(settings.ntfy_username, settings.ntfy_password)
    return headers


def _webhook_body(settings: NotifySettings, event: Event) -> bytes:
    body = {
        "event": event.kind,
        "key": event.key,
        "title": event.title,
        "message": event.message,
        "item": event.item,
        "at": utc_now(),
    }
    click = click_url(settings, event)
    if click:
        body["url"] = click
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


# What a failed POST raises: OSError covers URLError and HTTPError, HTTPException a
# server that answers something other than HTTP, ValueError a URL urllib refuses.
SEND_ERRORS = (OSError, ValueError, http.client.HTTPException)


def channels(settings: NotifySettings) -> list[tuple[str, str]]:
    """(service, scheme://host[:port]) of each configured service: all that may be shown."""
    urls = (("ntfy", settings.ntfy_url), ("webhook", settings.webhook_url))
    return [(service, _split_origin(url)[0]) for service, url in urls if url]


def send(config: Config, event: Event, skip: Collection[str] = ()) -> dict[str, str | None]:
    """Send one event now to every configured service not in skip: service -> None when
    it took it, else the error. Errors name the service's origin only and no secret:
    they are logged and stored."""
    settings = config.notify
    requests = []
    if settings.ntfy_url and "ntfy" not in skip:
        body = event.message.encode("utf-8")
        requests.append(("ntfy", settings.ntfy_url, body, _ntfy_headers(settings, event)))
    if settings.webhook_url and "webhook" not in skip:
        headers = {**settings.webhook_headers, "Content-Type": "application/json"}
        requests.append(("webhook", settings.webhook_url, _webhook_body(settings, event), headers))
    outcomes: dict[str, str | None] = {}
    for service, url, body, headers in requests:
        if _spent[0] >= RUN_BUDGET_TIMEOUTS * settings.timeout_seconds:
            outcomes[service] = (
                f"{service} {_split_origin(url)[0]}: {NOT_TRIED}, this run's time for "
                "notifications is used up (the next run tries again)"
            )
            continue
        started = time.monotonic()
        try:
            _post(url, body, headers, settings.timeout_seconds)
            outcomes[service] = None
        except SEND_ERRORS as error:
            origin, rest = _split_origin(url)
            # urllib's texts may quote the URL, or only its path and query (a short
            # one, "/", is left: hiding it would garble the text, and tells nothing).
            text = redact(
                str(error).replace(url, origin), [*settings.secrets, rest, *rest.split("/")]
            )
            outcomes[service] = f"{service} {origin}: {text}"
        finally:
            _spent[0] += time.monotonic() - started
    return outcomes


def _split_origin(url: str) -> tuple[str, str]:
    """(scheme://host[:port], the rest: path, query and fragment) of url, without its
    user:password@. Only the origin is ever shown: the ntfy topic, or the id in a
    webhook's path, is the secret of most setups (whoever knows it reads the
    notifications, or sends false ones), as much as a token is."""
    scheme, separator, after = url.partition("://")
    authority = re.split(r"[/?#]", after, maxsplit=1)[0]
    rest = after[len(authority) :]
    host = authority.rpartition("@")[2]
    return (f"{scheme}://{host}" if separator else HIDDEN), (rest if separator else url)


# A header value a proxy passes as it is: printable ASCII that does not look encoded.
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]*")
# RFC 2047 keeps an encoded-word within 75 characters: 12 of them are =?utf-8?b?...?=,
# and 45 bytes make 60 characters of base64.
_WORD_BYTES = 45


def header_value(text: str) -> str:
    """text as an HTTP header value on ONE line: as it is when plain ASCII, else as
    RFC 2047 encoded-words (UTF-8, base64), which ntfy decodes.

    A title comes from a folder name on the share and may hold anything. A CR or LF
    would end the header (or fold it, which proxies refuse); Latin-1 bytes come out as
    mojibake. email.header folds long encoded titles with '\\n ', so the words are made
    here and joined by spaces, which decoders drop between encoded-words.
    """
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text)
    if _PLAIN_HEADER.fullmatch(text) and "=?" not in text:
        return text
    words, chunk = [], b""
    for character in text:
        encoded = character.encode("utf-8", "replace")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def notify(config: Config, db: Database, event: Event) -> None:
    """Send an event once. Safe to call on every run for the same event."""
    if not (config.notify.ntfy_url or config.notify.webhook_url):
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


def test_events() -> list[Event]:
    """One event of each kind, as the pipeline makes them, for `mp notify test`."""
    name = "movie/Example (2024)"
    now = utc_now()
    return [
        approval_event("test", "remux_review", now, name),
        job_failed_event(
            "test", name, "transcode failed: script exited with 1 (it said: an example error)"
        ),
        in_library_event("test", name, now),
        reconcile_failing_event(3, now, "an example error"),
    ]


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
