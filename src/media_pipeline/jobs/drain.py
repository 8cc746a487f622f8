"""`mp worker drain NAME` / `mp worker resume NAME`: a flag file in the queue folder that
makes a worker finish what it runs and claim no more (before maintenance, say).

The flag is on the share, so it can be set from any host, and the worker reads it on
its next claim without anything else to reach it.
"""

from __future__ import annotations

from media_pipeline.config.settings import Config
from media_pipeline.errors import UsageError
from media_pipeline.jobs.queue import Queue
from media_pipeline.share.identity import check_share
from media_pipeline.text import utc_now

DRAIN_FOLDER = "drained"


def is_drained(queue: Queue, worker: str) -> bool:
    folder = queue.dir(DRAIN_FOLDER)
    return folder is not None and folder.exists(worker)


def drained_workers(config: Config) -> list[str]:
    with Queue.of(config) as queue:
        folder = queue.dir(DRAIN_FOLDER)
        return sorted(name for name in folder.names() if not name.startswith(".")) if folder else []


def set_drained(config: Config, worker: str, drained: bool, *, dry_run: bool = False) -> str:
    if worker not in config.workers:
        raise UsageError(f"worker '{worker}' is not under 'workers' in {config.source}")
    check_share(config.staging_root)
    with Queue.of(config) as queue:
        if dry_run:
            now = is_drained(queue, worker)
            if now == drained:
                return f"worker {worker} is already {'drained' if now else 'claiming jobs'}"
            return f"would {'drain' if drained else 'resume'} worker {worker}"
        return _set_drained(queue, worker, drained)


def _set_drained(queue: Queue, worker: str, drained: bool) -> str:
    if drained:
        folder = queue.need(DRAIN_FOLDER, create=True)
        folder.write_atomic(worker, utc_now() + "\n")
        return (
            f"worker {worker} drained: it finishes its running job and claims no more "
            f"('mp worker resume {worker}' to undo)"
        )
    unset = queue.dir(DRAIN_FOLDER)
    try:
        if unset is None:
            raise FileNotFoundError
        unset.unlink(worker)  # a name mp made (a worker's, checked against the config)
    except FileNotFoundError:
        return f"worker {worker} was not drained"
    return f"worker {worker} resumed: it claims jobs again"
