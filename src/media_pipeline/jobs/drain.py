"""`mp worker drain NAME` / `mp worker resume NAME`: a flag file in the queue folder that
makes a worker finish what it runs and claim nothing more (before maintenance, say).

The flag is on the share, so it can be set from any host, and the worker reads it on
its next claim without anything else to reach it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from media_pipeline.config import Config
from media_pipeline.errors import UsageError
from media_pipeline.fsutil import check_staging_root, write_atomic

DRAIN_FOLDER = "drained"


def drain_flag(config: Config, worker: str) -> str:
    return os.path.join(config.queue_dir, DRAIN_FOLDER, worker)


def is_drained(config: Config, worker: str) -> bool:
    return os.path.exists(drain_flag(config, worker))


def drained_workers(config: Config) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(config.queue_dir, DRAIN_FOLDER)))
    except FileNotFoundError:
        return []


def set_drained(config: Config, worker: str, drained: bool) -> str:
    if worker not in config.workers:
        raise UsageError(f"worker '{worker}' is not under 'workers' in {config.source}")
    check_staging_root(config.staging_root)
    flag = drain_flag(config, worker)
    if drained:
        os.makedirs(os.path.dirname(flag), exist_ok=True)
        write_atomic(flag, datetime.now(UTC).isoformat(timespec="seconds") + "\n")
        return (
            f"worker {worker} drained: it finishes its running job and claims no more "
            f"('mp worker resume {worker}' to undo)"
        )
    try:
        os.unlink(flag)
    except FileNotFoundError:
        return f"worker {worker} was not drained"
    return f"worker {worker} resumed: it claims jobs again"
