"""Telling a person: an approval waits, a job failed for good. ntfy and a JSON webhook.

Each event has a key recorded in the `notifications` table, so timers that run every
minute send it once. A notification that fails is logged and tried again on a later
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
import urllib.parse
import urllib.request
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.config import Config, NotifySettings
from media_pipeline.logs import HIDDEN, redact
from media_pipeline.text import utc_now

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
    url, basic = _split_credentials(url)
    if basic and not any(name.lower() == "authorization" for name in headers):
        headers = {**headers, "Authorization": basic}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_RefuseRedirects)
    with opener.open(request, timeout=timeout) as response:
        response.read()


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
    if settings.ntfy_token:
        headers["Authorization"] = f"Bearer {settings.ntfy_token}"
    elif settings.ntfy_username is not None and settings.ntfy_password is not None:
        headers["Authorization"] = _basic(settings.ntfy_username, settings.ntfy_password)
    return headers


def _webhook_body(event: Event) -> bytes:
    return json.dumps(
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


# What a failed POST raises: OSError covers URLError and HTTPError, HTTPException a
# server that answers something other than HTTP, ValueError a URL urllib refuses.
SEND_ERRORS = (OSError, ValueError, http.client.HTTPException)


def _send(config: Config, event: Event, skip: set[str]) -> tuple[set[str], list[str]]:
    """Send one event to every configured service not in skip; (services that took it,
    errors). Errors show URLs redacted and no secret: they are logged and stored."""
    settings = config.notify
    requests = []
    if settings.ntfy_url and "ntfy" not in skip:
        body = event.message.encode("utf-8")
        requests.append(("ntfy", settings.ntfy_url, body, _ntfy_headers(settings, event)))
    if settings.webhook_url and "webhook" not in skip:
        headers = {**settings.webhook_headers, "Content-Type": "application/json"}
        requests.append(("webhook", settings.webhook_url, _webhook_body(event), headers))
    errors = []
    sent = set()
    for service, url, body, headers in requests:
        try:
            _post(url, body, headers, settings.timeout_seconds)
            sent.add(service)
        except SEND_ERRORS as error:
            origin, rest = _split_origin(url)
            # urllib's texts may quote the URL, or only its path and query (a short
            # one, "/", is left: hiding it would garble the text, and tells nothing).
            text = redact(
                str(error).replace(url, origin), [*settings.secrets, rest, *rest.split("/")]
            )
            errors.append(f"{service} {origin}: {text}")
    return sent, errors


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
    sent, errors = _send(config, event, skip=already)
    attempts = (row["attempts"] if row else 0) + 1
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
                "",
                high_priority=kind == "job_failed",
            ),
        )
