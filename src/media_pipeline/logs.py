"""Logging to stderr (which the journal keeps), as text or as one JSON object per line,
and the one place that says how a secret is shown: as ***."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from media_pipeline.items.names import printable

# Structured fields a log call may pass in `extra=`; JSON lines carry them as keys.
FIELDS = ("event", "item", "job", "from", "to", "worker")

HIDDEN = "***"
# Shorter values are not hidden by `redact`: replacing every "high" would garble every
# line, and such a value is no secret worth the name.
MIN_SECRET_LENGTH = 6

# The authority's user:password@ (up to the last @ before the path), with or without
# a scheme: a URL typed without one still hides its password.
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")

# Secrets the formatters hide in every line, registered once the config is loaded.
_registered: tuple[str, ...] = ()


def redact_url(url: str) -> str:
    """url as it may be shown: its user:password@ part, its query values and its
    fragment become ***. Plain string work, so any text is accepted and nothing raises."""
    rest, hash_mark, _fragment = url.partition("#")
    base, question_mark, query = rest.partition("?")
    base = _USERINFO.sub(lambda match: (match.group(1) or "") + HIDDEN + "@", base, count=1)
    if question_mark:
        base += "?" + "&".join(_redact_parameter(pair) for pair in query.split("&"))
    if hash_mark:
        base += "#" + HIDDEN
    return base


def _redact_parameter(pair: str) -> str:
    if not pair:
        return pair
    name, equals, _value = pair.partition("=")
    return f"{name}={HIDDEN}" if equals else HIDDEN


def url_secrets(url: str) -> list[str]:
    """The parts of url that `redact_url` hides, for hiding them in other texts too (an
    error message quoting only the URL's path and query, say)."""
    rest, _hash_mark, fragment = url.partition("#")
    base, _question_mark, query = rest.partition("?")
    found = [fragment] if fragment else []
    match = _USERINFO.match(base)
    if match:
        userinfo = match.group(0)[len(match.group(1) or "") : -1]
        found.append(userinfo)
        found.append(userinfo.partition(":")[2])
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        found.append(value if equals else name)
    return [secret for secret in found if secret]


def redact(text: str, secrets: Iterable[str]) -> str:
    """text with each of secrets (of MIN_SECRET_LENGTH or more) shown as ***."""
    # Longest first: a password inside a longer header value hides the whole value.
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, HIDDEN)
    return text


def register_secrets(secrets: Iterable[str]) -> None:
    """From now on every log line shows these as ***. Each place that handles a secret
    hides it already; this catches what they did not foresee (a library's exception
    text in a traceback at -v)."""
    global _registered
    _registered = tuple(secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH)


def shown_lines(text: str) -> str:
    """A traceback's lines, each printable: its own line breaks stay (it is read as lines),
    an escape sequence in a name it quotes does not act on the terminal."""
    return "\n".join(printable(line) for line in text.split("\n"))


class TextFormatter(logging.Formatter):
    """Each message on one line, printable: a message quotes names from the share (a
    folder named 'x\nINFO ...' once wrote a forged log line, and an escape sequence in
    a worker's name set the terminal's title), so every one is escaped here rather than
    at each of the calls."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Secrets are hidden first, as they are: escaping could change a secret's text.
        return printable(redact(super().formatMessage(record), _registered))

    def formatException(self, ei) -> str:
        return shown_lines(redact(super().formatException(ei), _registered))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), _registered)


class JsonFormatter(logging.Formatter):
    """One JSON object per line. JSON escapes the C0 controls itself, but not DEL, C1
    (a CSI is one byte there) or direction marks: message and fields are shown as the
    text lines show them, so a log collector's viewer is as safe as a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "message": printable(redact(record.getMessage(), _registered)),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = (
                    printable(redact(value, _registered)) if isinstance(value, str) else value
                )
        if record.exc_info:
            traceback = redact(self.formatException(record.exc_info), _registered)
            entry["traceback"] = shown_lines(traceback)
        return json.dumps(entry, ensure_ascii=False)


# syslog priorities, which journald reads from a "<N>" at the start of a line.
PRIORITIES = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


def stderr_is_journal() -> bool:
    """Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM to its
    "device:inode", and a redirection (`mp ... 2>file` in a unit) makes them differ."""
    device, _colon, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        status = os.fstat(sys.stderr.fileno())
        return (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


def with_priority(text: str, level: str) -> str:
    """text with its syslog priority before each line, for the journal."""
    prefix = f"<{PRIORITIES.get(level, 6)}>"
    return "\n".join(prefix + line for line in text.split("\n"))


class JournalPrefix(logging.Formatter):
    """Another formatter's lines, each with the record's priority (`<4>` a warning), so
    that `journalctl -p warning` finds the warnings."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return with_priority(self.inner.format(record), record.levelname)


def json_logging() -> bool:
    """Whether this command logs JSON lines (--log-format json)."""
    handlers = logging.getLogger("media_pipeline").handlers
    formatters = [getattr(h.formatter, "inner", h.formatter) for h in handlers]
    return any(isinstance(formatter, JsonFormatter) for formatter in formatters)


def log_level(verbosity: int, journal: bool) -> int:
    """What reaches stderr. A command's result is its output, on stdout, said once; its
    log lines (each change as it is made) are for the journal, where a timer's run keeps
    them, and for a person who asks with -v (which shows debug too). Elsewhere only
    warnings and errors: an INFO line beside the result said everything twice, and
    came between approval prompts. -q: warnings and errors only, in the journal too."""
    if verbosity > 0:
        return logging.DEBUG
    return logging.INFO if journal and verbosity == 0 else logging.WARNING


def setup_logging(log_format: str = "text", verbosity: int = 0) -> None:
    """verbosity: -1 quiet, 0 normal, 1 and more debug (see log_level)."""
    journal = stderr_is_journal()
    level = log_level(verbosity, journal)
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter() if log_format == "json" else TextFormatter("%(levelname)s %(message)s")
    )
    handler.setFormatter(JournalPrefix(formatter) if journal else formatter)
    root = logging.getLogger("media_pipeline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
