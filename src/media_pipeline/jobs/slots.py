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
import fcntl
import functools
import os

from media_pipeline.fsutil import local_lock_folder


class Slot:
    """One held slot; released by release() or when the process exits."""

    def __init__(self, descriptor: int):
        self.descriptor = descriptor

    def release(self) -> None:
        if self.descriptor >= 0:
            os.close(self.descriptor)
            self.descriptor = -1

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
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return Slot(descriptor)
    return None
