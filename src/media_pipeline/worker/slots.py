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
import re
import stat
import time

from media_pipeline.share.fsutil import local_lock_folder

# A slot file no claim has made for this long belongs to a queue this host no longer
# serves (a demo, a moved share): removed, if free, when a claim makes a new one.
IDLE_SLOT_SECONDS = 86400


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
    """A free slot of worker's max_running, or None when all are held.

    A slot's file is kept for the next claim (making and removing one per claim cost a
    third of the claim's rate in benchmarks/job_queue.py); when a claim has to make one,
    the free files of queues idle for a day go."""
    prefix = _slot_prefix(queue_dir, worker)
    for number in range(max_running):
        path = f"{prefix}{number}"
        while True:
            descriptor, made = _open_slot(path)
            held = hold(descriptor, path)
            if held is None:  # removed by a pruning claim meanwhile: open it anew
                continue
            if made:
                _prune_idle(os.path.dirname(prefix), os.path.basename(prefix))
            if held:
                return Slot(descriptor)
            break
    return None


def _open_slot(path: str) -> tuple[int, bool]:
    """The slot file's descriptor, and whether this call made the file."""
    flags = os.O_RDWR | os.O_NOFOLLOW
    while True:
        try:
            return os.open(path, flags), False
        except FileNotFoundError:
            pass
        try:
            descriptor = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # made by another claim meanwhile: open that one
        # Past the umask: a file a root run makes must stay usable by the service user.
        os.fchmod(descriptor, 0o666)
        return descriptor, True


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


def _prune_idle(folder: str, ours: str) -> None:
    """Remove the slot files in folder, but this queue's own, made more than
    IDLE_SLOT_SECONDS ago that nothing holds (a busy queue's file may go too: its next
    claim makes it again). Removing one only while holding its lock, and takers
    checking after their lock that the file is still the one at its path (hold), is
    what keeps two claims from both holding one slot. One that cannot be removed (a
    file another user owns) is left."""
    now = time.time()
    for name in os.listdir(folder):
        if not _SLOT_FILE.match(name) or name.startswith(ours):
            continue
        path = os.path.join(folder, name)
        try:
            status = os.stat(path, follow_symlinks=False)
            if not stat.S_ISREG(status.st_mode) or now - status.st_mtime < IDLE_SLOT_SECONDS:
                continue
            descriptor = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue  # removed meanwhile, or not ours to open
        try:
            if hold(descriptor, path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                os.close(descriptor)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(descriptor)
            raise


_SLOT_FILE = re.compile(r"\Amedia-pipeline-.+-[0-9a-f]{8}\.slot[0-9]+\Z")
