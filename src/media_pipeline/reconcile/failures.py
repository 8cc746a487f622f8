"""Reconcile's failed runs in a row (reconcile and the dispatch the unit runs with it),
counted in a small file, and the notification when they reach FAILING_AFTER: sent once
to each service, until a run succeeds.

The file is in the unit's runtime folder (/run, memory: a full or read-only disk does
not stop the count), or beside the database for a run by hand. Not in the database:
it may be what fails (locked past its timeout, unreadable), and the news that
reconcile keeps failing must not need it. Not on the share either: the share missing
is one of the failures counted. A run that fails once and then succeeds (a lock held a
little long, the share back after a blip) tells nobody anything. Where the count
cannot be kept at all, each failed run from the FAILING_AFTER-th on is told: better
too often than never.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import Iterator

from media_pipeline.config.settings import Config
from media_pipeline.idle.quick import runtime_folder
from media_pipeline.items.names import printable
from media_pipeline.logs import redact
from media_pipeline.notify.events import reconcile_failing_event
from media_pipeline.notify.send import send
from media_pipeline.share.fsutil import write_file_atomic
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)

FAILING_AFTER = 3
STATE_FILE = "reconcile-failures.json"
# Plenty for the four fields; a larger file was not written by this module.
STATE_LIMIT = 4096
ERROR_LIMIT = 300


def state_path(config: Config) -> str:
    return os.path.join(runtime_folder() or os.path.dirname(config.database), STATE_FILE)


def read_streak(config: Config) -> dict | None:
    """The failures recorded since the last run that succeeded, or None."""
    try:
        fd = os.open(state_path(config), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a FIFO or a device planted there: not this module's file
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


def _the_service(config: Config) -> bool:
    """Whether this run is the service's (its user, as the units run it, or as mp run by
    root becomes): a person who runs reconcile as someone else and is refused is told so
    by the command; that is no news of the service's for the phone."""
    import pwd

    try:
        return os.geteuid() == pwd.getpwnam(config.units.user).pw_uid
    except KeyError:
        return False


@contextlib.contextmanager
def counting_failures(config: Config) -> Iterator[None]:
    """Run a reconcile inside: its failure adds one to the count (and, at FAILING_AFTER,
    sends the notification once); its success ends the count. The error goes on as it
    was: counting never changes what the command says or how it exits. Only the
    service's own runs count."""
    if not _the_service(config):
        yield
        return
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
    streak = read_streak(config) or {"failures": 0, "since": utc_now()}
    streak["failures"] += 1
    streak["last_error"] = error
    told = streak.get("told")
    told = [name for name in told if isinstance(name, str)] if isinstance(told, list) else []
    if streak["failures"] >= FAILING_AFTER:
        # Said once a streak to each service: one that failed is asked again on the next
        # failed run, and only it.
        event = reconcile_failing_event(streak["failures"], str(streak.get("since")), error)
        outcomes = send(config, event, skip=told)
        for service, problem in outcomes.items():
            if problem is None:
                told.append(service)
            else:
                log.warning("notification not sent: %s", problem)
    streak["told"] = told
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
        # Its folder may be what is missing or unwritable. Counted again from one next
        # time: a streak that never gets past one would never be told, so it is now.
        log.warning(
            "cannot count the failed reconcile in %s (%s): telling of it now",
            state_path(config),
            getattr(error, "strerror", None) or error,
        )
        if streak["failures"] < FAILING_AFTER:
            event = reconcile_failing_event(
                streak["failures"], str(streak.get("since")), streak["last_error"]
            )
            for problem in send(config, event).values():
                if problem is not None:
                    log.warning("notification not sent: %s", problem)
