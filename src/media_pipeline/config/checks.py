"""A setting of the config file, and the checkers of values.

A `Setting` is one key of the file: its help text, its example, its checker and its
default (REQUIRED when the file must give it). Each checker takes (value, key,
problems) and returns the clean value, or None after appending one sentence to
problems; `key` is the dotted path of the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from media_pipeline.logs import HIDDEN, redact_url
from media_pipeline.pipeline import GATES
from media_pipeline.text import encodable

REQUIRED = object()


class Setting(NamedTuple):
    key: str
    help: str
    example: Any
    check: Callable[[Any, str, list[str]], Any] | None = None
    default: Any = REQUIRED
    children: tuple[Setting, ...] = ()
    # Never shown (a token, a password): hidden in a repr, and hidden from every log
    # line; of a mapping (headers), each value is, and its last word too (the token
    # of 'Bearer <token>').
    secret: bool = False


def checked_default(setting: Setting, key: str, problems: list[str]) -> Any:
    """A setting's default as the code gets it: through its checker, as if the file
    said it (the file's ["film_projector"] is the code's ("film_projector",)); no
    default (None) stays None."""
    if setting.default is None or setting.check is None:
        return None
    return setting.check(setting.default, key, problems)


def type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def absolute_path(value: Any, key: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"key '{key}' must be a path, not {type_name(value)}")
        return None
    if unwritable_in_unit(value):
        # A newline in a root would start a line of its own in the systemd units
        # (ExecStartPre=+... runs as root); no quoting holds it in every setting.
        problems.append(
            f"key '{key}' holds a control character (a newline, a tab, an escape): "
            f"{value!r}; a path with one cannot be written safely into a systemd unit, "
            "rename the folder"
        )
        return None
    if not os.path.isabs(value):
        problems.append(f"key '{key}' must be an absolute path, got {value!r}")
        return None
    return os.path.normpath(value)


# C0 and C1 control characters and DEL (NUL included).
_UNWRITABLE_IN_UNIT = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def unwritable_in_unit(text: str) -> bool:
    """Whether text cannot be written safely into a systemd unit, quoted or not."""
    return _UNWRITABLE_IN_UNIT.search(text) is not None or not encodable(text)


def path_list(value: Any, key: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        problems.append(f"key '{key}' must be a list of paths, not {type_name(value)}")
        return None
    found = [absolute_path(item, f"{key}[{n}]", problems) for n, item in enumerate(value)]
    return tuple(path for path in found if path is not None)


def positive_int(value: Any, key: str, problems: list[str]) -> int | None:
    # bool is an int in Python; `max_attempts: yes` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"key '{key}' must be a whole number of at least 1, got {value!r}")
        return None
    return value


_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def account_name(value: Any, key: str, problems: list[str]) -> str | None:
    """A user or group name as useradd takes it."""
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        problems.append(f"key '{key}' must be a user or group name like 'media', got {value!r}")
        return None
    return value


def whole_number_in(low: int, high: int, what: str = "a number"):
    """A checker of a whole number from low to high (true/false is no number)."""

    def check(value: Any, key: str, problems: list[str]) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"key '{key}' must be {what} from {low} to {high}, got {value!r}")
            return None
        return value

    return check


nice_value = whole_number_in(0, 19, "a nice level")


def io_class(value: Any, key: str, problems: list[str]) -> str | None:
    if value not in ("idle", "best-effort"):
        problems.append(f"key '{key}' must be 'idle' or 'best-effort', got {value!r}")
        return None
    return value


def library_names_rule(value: Any, key: str, problems: list[str]) -> str | None:
    if value not in ("smb", "as-is"):
        problems.append(f"key '{key}' must be 'smb' or 'as-is', got {value!r}")
        return None
    return value


def gate_list(value: Any, key: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        problems.append(f"key '{key}' must be a list of gates ({', '.join(GATES)})")
        return None
    unknown = [gate for gate in value if gate not in GATES]
    if unknown:
        problems.append(
            f"key '{key}' names unknown gate(s) {', '.join(map(repr, unknown))}; "
            f"known gates are {', '.join(GATES)}"
        )
        return None
    return tuple(dict.fromkeys(value))


def check_keys(mapping: dict, allowed: tuple[str, ...], key: str, problems: list[str]) -> bool:
    good = True
    for name in mapping:
        if name not in allowed:
            where = f"{key}.{name}" if key else str(name)
            import difflib  # only on a mistake

            hint = difflib.get_close_matches(str(name), allowed, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(f"unknown key '{where}'{suggestion}")
            good = False
    return good


_HTTP_URL = re.compile(r"^https?://[^/?#]+")
_PORT = re.compile(r":(\d+)$")


def http_url(value: Any, key: str, problems: list[str]) -> str | None:
    return _http_url(value, key, problems, path_is_secret=False)


def secret_path_url(value: Any, key: str, problems: list[str]) -> str | None:
    """An http(s) URL whose path is the secret (an ntfy topic, a webhook's id): a
    problem shows its host only."""
    return _http_url(value, key, problems, path_is_secret=True)


def _http_url(value: Any, key: str, problems: list[str], path_is_secret: bool) -> str | None:
    if value is None:
        return None
    # A URL may carry a password or a token (user:password@, ?auth=): never echoed whole.
    shown = redact_url(value) if isinstance(value, str) else type_name(value)
    if isinstance(value, str) and path_is_secret:
        origin = re.match(r"([^:/?#]*://)([^/?#]*)", value)
        shown = (origin.group(1) + origin.group(2).rpartition("@")[2] if origin else "") + "/..."
    if not isinstance(value, str) or not _HTTP_URL.match(value):
        problems.append(f"key '{key}' must be an http:// or https:// URL, got {shown!r}")
        return None
    if re.search(r"[\x00-\x20\x7f]", value):
        problems.append(f"key '{key}' holds a space or a control character: {shown!r}")
        return None
    matched = _HTTP_URL.match(value)
    host = matched.group(0).split("://", 1)[1].rpartition("@")[2] if matched else ""
    if not host or host.startswith(":"):
        problems.append(f"key '{key}' names no host: {shown!r}")
        return None
    port = _PORT.search(host)
    if port and not 1 <= int(port.group(1)) <= 65535:
        problems.append(f"key '{key}' has port {port.group(1)}; a port is 1 to 65535")
        return None
    # Only here: a config with no URL in it (every idle claim's) needs none of it.
    import urllib.parse

    try:
        urllib.parse.urlsplit(value).port  # noqa: B018 - read for the ValueError it raises
    except ValueError:
        # ':abc' passed the digits check above, and made every notification that links
        # to the status page fail as it was built.
        problems.append(f"key '{key}' has a port that is not a number from 1 to 65535: {shown!r}")
        return None
    return value


def secret_problem(value: Any, key: str, problems: list[str], rule: str) -> None:
    # The value is a secret: the message says what is wrong, never what it is.
    problems.append(f"key '{key}' must be {rule}, got {HIDDEN} ({type_name(value)})")


def has_control(text: str) -> bool:
    return re.search(r"[\x00-\x1f\x7f]", text) is not None


def umask_text(value: Any, key: str, problems: list[str]) -> int | None:
    """An octal umask in quotes, "022" or "0002", as its number."""
    # Unquoted, YAML reads 022 as the number 18 and 22 as 22: the two cannot be told
    # apart, so only text is accepted.
    if isinstance(value, str) and re.fullmatch(r"[0-7]{1,4}", value) and int(value, 8) <= 0o777:
        return int(value, 8)
    # YAML's yes and no are booleans, which are ints to Python: not "the number True".
    numeric = isinstance(value, int) and not isinstance(value, bool)
    shown = f"the number {value}" if numeric else repr(value)
    problems.append(
        f"key '{key}' must be an octal umask in quotes from '000' to '777', like '022', got {shown}"
    )
    return None


def text_list(value: Any, key: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"key '{key}' must be a list of words")
        return None
    return tuple(value)


def has_user_info(url: str | None) -> bool:
    """Whether an http(s) URL holds a user:password@ part."""
    matched = _HTTP_URL.match(url) if url else None
    return matched is not None and "@" in matched.group(0)
