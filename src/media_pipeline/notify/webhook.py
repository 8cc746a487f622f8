"""A webhook (Home Assistant's, say): its settings in the config's notify block, their
checks, and the request that posts an event to it as JSON, with the headers the
config gives (an Authorization, say)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from media_pipeline.config.checks import (
    Setting,
    has_control,
    has_user_info,
    secret_path_url,
    secret_problem,
)
from media_pipeline.text import utc_now

if TYPE_CHECKING:
    from media_pipeline.config.settings import NotifySettings
    from media_pipeline.notify.events import Event

NAME = "webhook"
# The setting that turns the channel on, and where it posts.
URL_KEY = "webhook_url"


# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by mp itself: a webhook header of the same name would break the request.
_RESERVED_HEADERS = ("content-type", "content-length", "transfer-encoding", "host", "connection")


def header_table(value: Any, key: str, problems: list[str]) -> dict[str, str] | None:
    """Header name -> value. Values are secrets (an Authorization header), never echoed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"key '{key}' must be a mapping of header name to value")
        return None
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, text in value.items():
        where = f"{key}.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            problems.append(
                f"key '{key}' has {str(name)[:40]!r}, not a header name "
                "(letters, digits and !#$%&'*+-.^_`|~ only)"
            )
        elif name.lower() in _RESERVED_HEADERS:
            problems.append(f"key '{where}': mp sets {name} itself")
        elif name.lower() in seen:
            problems.append(f"key '{where}' names a header already given (names ignore case)")
        elif not isinstance(text, str) or has_control(text) or not _latin_1(text):
            # CR or LF would start a header of the value's choosing.
            secret_problem(text, where, problems, "text on one line, without control characters")
        else:
            headers[name] = text
        seen.add(str(name).lower())
    return headers


def _latin_1(text: str) -> bool:
    # What HTTP (and Python's http.client) can put in a header.
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "webhook_url",
        "A URL that gets each event as a JSON POST, like "
        "http://homeassistant.lan:8123/api/webhook/media-pipeline. null: off.",
        None,
        secret_path_url,
        default=None,
    ),
    Setting(
        "webhook_headers",
        "Header name -> value sent with each webhook POST, like "
        "{Authorization: Bearer <a long-lived token>}. Values are never logged.",
        {},
        header_table,
        default={},
        secret=True,
    ),
)


def credential_problems(given: set[str], notify: dict[str, Any]) -> list[str]:
    """Credentials given twice (which would be sent is anyone's guess). given: the keys
    the file's notify block sets; notify: the block's values, checked."""
    headers = notify.get("webhook_headers") or {}
    if any(name.lower() == "authorization" for name in headers) and has_user_info(
        notify.get("webhook_url")
    ):
        return [
            "key 'notify.webhook_url' holds a user and password (user:password@) and "
            "webhook_headers has an Authorization header too; give the credentials once"
        ]
    return []


def request(settings: NotifySettings, event: Event) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the POST that tells the webhook of event."""
    from media_pipeline.notify.events import click_url  # only a run that sends needs it

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
    headers = {**settings.webhook_headers, "Content-Type": "application/json"}
    return json.dumps(body, ensure_ascii=False).encode("utf-8"), headers
