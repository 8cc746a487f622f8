"""max_running: the jobs a worker runs at once, counted with local lock files.

A worker's claims all start on its own host (its timer's instances), so its running
jobs are counted there. `mp claim` takes one of max_running slots, an flock on
`<lock folder>/media-pipeline-<worker>-<queue>.slot<N>` (queue: a digest of the queue
folder's path, so two pipelines on one host count apart), before it claims. The script
inherits the locked descriptor, so the slot is free again exactly when the last
process of the job has ended, however it ended: a worker killed while its script goes
on still counts, and once both are gone the slot is free at once, not when reconcile
finds the job stale.

Counting the worker's folders in `running/` instead costs a listing of the share per
claim, which contends with every other claimer's renames there: a quarter of the
claim's time with four claimers in benchmarks/job_queue.py.
"""

from __future__ import annotations

import binascii
import contextlib
import fcntl
import functools
import os

from media_pipeline.fsutil import local_lock_folder


class Slot:
    """One held slot; released by release() or when the process exits."""

    def __init__(self, descriptor: int, path: str):
        self.descriptor = descriptor
        self.path = path

    def release(self) -> None:
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1
            _remove_if_free(self.path)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_exception) -> None:
        self.release()


@functools.cache
def _slot_prefix(queue_dir: str, worker: str) -> str:
    # crc32, not a cryptographic digest: this only tells a host's few queues apart, and
    # hashlib alone would add a tenth to the start-up of every claim.
    queue = f"{binascii.crc32(os.path.realpath(queue_dir).encode()):08x}"
    return os.path.join(local_lock_folder(), f"media-pipeline-{worker}-{queue}.slot")


def take_slot(queue_dir: str, worker: str, max_running: int) -> Slot | None:
    """A free slot of worker's max_running, or None when all are held."""
    prefix = _slot_prefix(queue_dir, worker)
    for number in range(max_running):
        path = f"{prefix}{number}"
        while True:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            held = hold(descriptor, path)
            if held is None:  # removed by its last holder meanwhile: open it anew
                continue
            if held:
                return Slot(descriptor, path)
            break
    return None


def hold(descriptor: int, path: str) -> bool | None:
    """Lock an open slot file: True when held, False when another holds it (the
    descriptor is then closed), None when the file was removed between its open and
    this lock (closed too: a lock on a removed file counts for nobody)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return False
    try:
        current = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        current = None
    opened = os.fstat(descriptor)
    if current is None or (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
        os.close(descriptor)
        return None
    return True


def _remove_if_free(path: str) -> None:
    """Remove a released slot's file when nothing holds it any more, so a host keeps no
    file per queue it ever served (every `mp demo`, every test has one). A process the
    job left running still holds it through its inherited descriptor: the file then
    stays, and goes with the release of the next claim that takes it. Removing it only
    while holding its lock, and takers checking after their lock that the file is still
    the one at its path (hold), is what keeps two claims from both holding one slot."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return  # removed already, or not ours to open
    if hold(descriptor, path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(descriptor)
