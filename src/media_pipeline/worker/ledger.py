"""The jobs this worker host has ended, kept on its own disk: a signed spec put back on
the share after its job ran (its finished folder deleted, which any share writer can
do) is refused here, whatever the share says.

One line per job that ended on this host (completed, failed for good, cancelled):
`<epoch seconds> <job id>`, in `ledger/ran_jobs` beside the trusted keys: a folder of its
own, the one place there the claim unit may write (the keys beside it stay read-only to
the scripts it runs). An earlier release's `ran_jobs` beside the keys is still read. A
job is kept for as long as its spec could verify (`jobs.spec_lifetime_days`); older
lines are dropped when the file grows. A host that cannot write the file still runs
jobs, and says so once a run: the share's finished folders and the controller's record
still refuse a copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from media_pipeline.config.settings import Config

log = logging.getLogger(__name__)

FILE_NAME = "ran_jobs"
FOLDER_NAME = "ledger"
# Past this size the file is rewritten without the lines older than a spec's lifetime.
PRUNE_BYTES = 256 * 1024


def ledger_folder(config: Config) -> str:
    return os.path.join(os.path.dirname(config.trusted_keys), FOLDER_NAME)


def ledger_path(config: Config) -> str:
    return os.path.join(ledger_folder(config), FILE_NAME)


def _earlier_path(config: Config) -> str:
    return os.path.join(os.path.dirname(config.trusted_keys), FILE_NAME)


def _read(path: str) -> str:
    """The whole file (this host's own; a bounded read once missed the newest lines)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    try:
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read().decode("ascii", "replace")
    except OSError:
        return ""


def ran_here(config: Config, job_id: str) -> bool:
    """Whether this host has ended job_id before."""
    return any(
        line.endswith(" " + job_id)
        for path in (ledger_path(config), _earlier_path(config))
        for line in _read(path).splitlines()
    )


def record_end(config: Config, job_id: str) -> None:
    """Note that job_id ended on this host (never raises: see the module's note)."""
    path = ledger_path(config)
    now = time.time()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "a") as handle:
            handle.write(f"{int(now)} {job_id}\n")
        if os.path.getsize(path) > PRUNE_BYTES:
            _prune(config, path, now)
    except OSError as error:
        log.warning(
            "cannot note job %s in %s (%s): a copy of its spec put back on the share is "
            "refused by the share's record only",
            job_id,
            path,
            error.strerror or error,
        )


def _prune(config: Config, path: str, now: float) -> None:
    oldest = now - config.jobs.spec_lifetime_days * 86400
    kept = []
    for line in _read(path).splitlines():
        stamp, _, job_id = line.partition(" ")
        if stamp.isdigit() and int(stamp) >= oldest and job_id:
            kept.append(line + "\n")
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "x") as handle:
            handle.writelines(kept)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
