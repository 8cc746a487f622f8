"""Reconcile's failed runs in a row, counted in a small file beside the database, and
the notification when they reach FAILING_AFTER: sent once, until a run succeeds.

Not in the database: it may be what fails (locked past its timeout, unreadable), and
the news that reconcile keeps failing must not need it. Not on the share either: the
share missing is one of the failures counted. A run that fails once and then succeeds
(a lock held a little long, the share back after a blip) tells nobody anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator

from media_pipeline.config import Config
from media_pipeline.fsutil import write_file_atomic
from media_pipeline.items import printable
from media_pipeline.logs import redact
from media_pipeline.notify import reconcile_failing_event, send
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

FAILING_AFTER = 3
STATE_FILE = "reconcile-failures.json"
# Plenty for the four fields; a larger file was not written by this module.
STATE_LIMIT = 4096
ERROR_LIMIT = 300


def state_path(config: Config) -> str:
    return os.path.join(os.path.dirname(config.database), STATE_FILE)


def read_streak(config: Config) -> dict | None:
    """The failures recorded since the last run that succeeded, or None."""
    try:
        fd = os.open(state_path(config), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = os.read(fd, STATE_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        streak = json.loads(data) if len(data) <= STATE_LIMIT else None
    except ValueError:
        return None
    if not isinstance(streak, dict) or not isinstance(streak.get("failures"), int):
        return None
    return streak


@contextlib.contextmanager
def counting_failures(config: Config) -> Iterator[None]:
    """Run a reconcile inside: its failure adds one to the count (and, at FAILING_AFTER,
    sends the notification once); its success ends the count. The error goes on as it
    was: counting never changes what the command says or how it exits."""
    try:
        yield
    except Exception as error:
        _failed(config, _sentence(config, error))
        raise
    _succeeded(config)


def _sentence(config: Config, error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    return redact(printable(text), config.notify.secrets)[:ERROR_LIMIT]


def _failed(config: Config, error: str) -> None:
    streak = read_streak(config) or {"failures": 0, "since": utc_now(), "notified": False}
    streak["failures"] += 1
    streak["last_error"] = error
    if streak["failures"] >= FAILING_AFTER and not streak.get("notified"):
        event = reconcile_failing_event(streak["failures"], str(streak.get("since")), error)
        outcomes = send(config, event)
        errors = [error for error in outcomes.values() if error is not None]
        for problem in errors:
            log.warning("notification not sent: %s", problem)
        # Said once a streak: a service that failed is asked again on the next failed run.
        streak["notified"] = bool(outcomes) and not errors
    _write(config, streak)


def _succeeded(config: Config) -> None:
    streak = read_streak(config)
    if streak is None:
        return
    log.info("reconcile ran again after %d failed runs", streak["failures"])
    with contextlib.suppress(FileNotFoundError):
        os.unlink(state_path(config))


def _write(config: Config, streak: dict) -> None:
    try:
        write_file_atomic(state_path(config), json.dumps(streak, ensure_ascii=False) + "\n")
    except Exception as error:
        # The database's folder itself may be what is missing or unwritable: the run's
        # own error says so; this one only at -v.
        log.debug("cannot record the failed reconcile in %s: %s", state_path(config), error)
