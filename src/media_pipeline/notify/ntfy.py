"""ntfy (ntfy.sh, or a server of your own): its settings in the config's notify block,
their checks, and the request that tells the topic of an event.

The message is the body; its title, priority, tags, Click link and credentials (a
token, or a user and password) are headers.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from media_pipeline.config.checks import (
    Setting,
    has_control,
    has_user_info,
    secret_path_url,
    secret_problem,
    text_list,
    whole_number_in,
)

if TYPE_CHECKING:
    from media_pipeline.config.settings import NotifySettings
    from media_pipeline.notify.events import Event

NAME = "ntfy"
# The setting that turns the channel on, and where it posts.
URL_KEY = "ntfy_url"


def token_text(value: Any, key: str, problems: list[str]) -> str | None:
    """A secret sent in a header as it is: one word of printable ASCII."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[\x21-\x7e]+", value):
        secret_problem(value, key, problems, "text in quotes, one word of printable ASCII")
        return None
    return value


def user_name_text(value: Any, key: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or ":" in value or has_control(value):
        secret_problem(value, key, problems, "text in quotes, without ':' or control characters")
        return None
    return value


def password_text(value: Any, key: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    # In quotes: YAML reads an unquoted 012345 as the number 5349.
    if not isinstance(value, str) or not value or has_control(value):
        secret_problem(value, key, problems, "text in quotes, without control characters")
        return None
    return value


priority_1_to_5 = whole_number_in(1, 5)

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "ntfy_url",
        "An ntfy topic URL, like https://ntfy.sh/<a topic only you know> or your own "
        "server's. null: off.",
        None,
        secret_path_url,
        default=None,
    ),
    Setting("ntfy_priority", "ntfy priority, 1 (min) to 5 (max).", 3, priority_1_to_5, default=3),
    Setting(
        "ntfy_tags",
        "ntfy tags (emoji short codes shown beside the title).",
        ["film_projector"],
        text_list,
        default=["film_projector"],
    ),
    Setting(
        "ntfy_token",
        "An ntfy access token (tk_...), sent as 'Authorization: Bearer <token>', for a "
        "server or topic that needs one. null: none. It is never logged.",
        None,
        token_text,
        default=None,
        secret=True,
    ),
    Setting(
        "ntfy_username",
        "An ntfy user, with ntfy_password (both or neither; or a token): sent with "
        "HTTP Basic auth. null: none.",
        None,
        user_name_text,
        default=None,
    ),
    Setting(
        "ntfy_password",
        "That user's password, in quotes. null: none. It is never logged.",
        None,
        password_text,
        default=None,
        secret=True,
    ),
)


def credential_problems(given: set[str], notify: dict[str, Any]) -> list[str]:
    """Credentials that cannot go together: a user without a password, two ways to
    authenticate (which one would be sent is anyone's guess). given: the keys the
    file's notify block sets; notify: the block's values, checked."""
    problems = []
    if ("ntfy_username" in given) != ("ntfy_password" in given):
        missing = "ntfy_username" if "ntfy_password" in given else "ntfy_password"
        problems.append(
            f"key 'notify.{missing}' is missing: ntfy_username and ntfy_password go together"
        )
    if "ntfy_token" in given and given & {"ntfy_username", "ntfy_password"}:
        problems.append(
            "key 'notify.ntfy_token' is set with ntfy_username/ntfy_password; give one: "
            "a token, or a user name and password"
        )
    if given & {"ntfy_token", "ntfy_username"} and has_user_info(notify.get("ntfy_url")):
        problems.append(
            "key 'notify.ntfy_url' holds a user and password (user:password@) and "
            "ntfy_token or ntfy_username is set too; give the credentials once"
        )
    return problems


def request(settings: NotifySettings, event: Event) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the POST that tells the topic of event."""
    # Only a run that sends needs them (post.py imports urllib.request).
    from media_pipeline.notify.events import click_url
    from media_pipeline.notify.post import basic_authorization

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
        headers["Authorization"] = basic_authorization(
            settings.ntfy_username, settings.ntfy_password
        )
    return event.message.encode("utf-8"), headers


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
