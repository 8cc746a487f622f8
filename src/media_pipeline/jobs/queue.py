"""The job queue: folders on the share, moved between by rename (DESIGN section 6).

    <queue_dir>/tmp/ pending/ running/ completed/ failed/ cancelled/

A rename within one filesystem is atomic, on NFS too, so whichever process's rename
succeeds owns the job. The folder a job is in is its state; no file inside repeats it
(a copy could only disagree with the folder after a crash between two writes).
Everything a claimer needs to choose a job (priority, age, kind, item type) is in the
job's name, so choosing reads one folder listing, not every spec.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import re
from datetime import UTC, datetime
from typing import NamedTuple

from media_pipeline.fsutil import LOCAL_FILESYSTEMS, filesystem_type, read_text, write_atomic
from media_pipeline.items import ItemKey
from media_pipeline.markers import parse_json_object

QUEUE_DIRS = ("tmp", "pending", "running", "completed", "failed", "cancelled")
LIVE_DIRS = ("pending", "running")
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
CANCEL_FILE = "cancel"
HEARTBEAT_FILE = "heartbeat"
LOG_FILE = "log"
# A job put back with a back-off also gets an empty file `pending/.wait.UNTIL.ID` (UNTIL in
# whole epoch seconds), written before the job is moved in. The back-offs then come with
# the one listing a claimer reads anyway, where reading each candidate's spec (or any
# file inside it) would cost an open per job. The spec's not_before says the same.
WAIT_PREFIX = ".wait."

# Priorities run from -499 to 499; the name holds 500 - priority so that a plain sort
# puts the highest priority first, then the oldest.
PRIORITY_LIMIT = 499
SLUG_LENGTH = 40
_NAME = re.compile(
    r"^job_p(?P<rank>\d{3})_(?P<created>\d{8}T\d{12})_(?P<kind>[a-z]+)_(?P<type>movie|tv)_"
    r"(?P<uid>[0-9a-f]{12})(?:_[A-Za-z0-9-]*)?$"
)


class JobName(NamedTuple):
    """What a job's folder name says: sorting JobNames sorts by priority, then age.

    A NamedTuple, not a dataclass: a claimer makes one per pending job it looks at."""

    job_id: str
    kind: str
    item_type: str
    item_uid: str

    @property
    def priority(self) -> int:
        return 500 - int(self.job_id[5:8])

    @property
    def created(self) -> datetime:
        return datetime.strptime(self.job_id.split("_")[2], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)

    @classmethod
    def parse(cls, job_id: str) -> JobName | None:
        match = _NAME.match(job_id)
        if match is None:
            return None
        return cls(job_id, match["kind"], match["type"], match["uid"])


def clamp_priority(priority: int) -> int:
    return max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, priority))


def slug(text: str) -> str:
    """A readable, safe fragment of a title for a job name (only [A-Za-z0-9-])."""
    ascii_text = text.encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:SLUG_LENGTH].strip("-")


def make_job_id(kind: str, key: ItemKey, priority: int, now: datetime) -> str:
    rank = 500 - clamp_priority(priority)
    created = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    words = slug(key.title + (" " + key.disc_label if key.disc_label else ""))
    return f"job_p{rank:03d}_{created}_{kind}_{key.type}_{key.uid}" + (f"_{words}" if words else "")


class RunningName(NamedTuple):
    """`running/ID.WORKER.PID`: a name unique to its claimer."""

    job_id: str
    worker: str
    pid: int

    @property
    def folder_name(self) -> str:
        return f"{self.job_id}.{self.worker}.{self.pid}"

    @classmethod
    def parse(cls, name: str) -> RunningName | None:
        job_id, _, rest = name.partition(".")
        worker, _, pid = rest.rpartition(".")
        if not worker or not pid.isdigit() or JobName.parse(job_id) is None:
            return None
        return cls(job_id, worker, int(pid))


class Queue:
    """One queue folder. Methods that touch the share say what they move."""

    def __init__(self, queue_dir: str):
        self.root = queue_dir
        # Claims build their two paths from these, the one place that is per job.
        self._pending = os.path.join(queue_dir, "pending", "")
        self._running = os.path.join(queue_dir, "running", "")

    @functools.cached_property
    def renames_are_exact(self) -> bool:
        """Whether a rename that reports ENOENT surely did not happen (a local disk)."""
        return filesystem_type(self.root) in LOCAL_FILESYSTEMS

    def folder(self, state: str, name: str = "") -> str:
        return os.path.join(self.root, state, name) if name else os.path.join(self.root, state)

    def ensure_layout(self) -> None:
        for state in QUEUE_DIRS:
            os.makedirs(self.folder(state), exist_ok=True)

    def _entries(self, state: str) -> list[str]:
        try:
            return os.listdir(self.folder(state))
        except FileNotFoundError:
            return []

    def names(self, state: str) -> list[str]:
        return [name for name in self._entries(state) if not name.startswith(".")]

    def pending(self) -> tuple[list[str], dict[str, int]]:
        """Pending job names and, for those backing off, the epoch second they wait for:
        one listing."""
        names = []
        waits: dict[str, int] = {}
        for name in self._entries("pending"):
            if not name.startswith("."):
                names.append(name)
            elif (wait := _wait(name)) is not None:
                job_id, until = wait
                waits[job_id] = max(waits.get(job_id, 0), until)
        return names, waits

    def hold(self, job_id: str, until: float) -> None:
        """Record that job_id is not to be claimed before until; call before moving it into
        pending/, so that no claimer sees the job without its back-off."""
        with open(self.folder("pending", f"{WAIT_PREFIX}{math.ceil(until)}.{job_id}"), "ab"):
            pass

    def remove_expired_waits(self, now: float) -> int:
        """Delete back-off files whose time has passed (they no longer hold anything back,
        whether or not their job is still pending); how many."""
        removed = 0
        for name in self._entries("pending"):
            wait = _wait(name)
            if wait is not None and wait[1] < now:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder("pending", name))
                removed += 1
        return removed

    def running(self) -> list[RunningName]:
        found = (RunningName.parse(name) for name in self.names("running"))
        return [entry for entry in found if entry is not None]

    def live_job_for(self, item_uid: str) -> tuple[str, str] | None:
        """(state, folder name) of the item's pending or running job, if it has one."""
        for state in LIVE_DIRS:
            for name in self.names(state):
                parsed = JobName.parse(name.partition(".")[0])
                if parsed is not None and parsed.item_uid == item_uid:
                    return state, name
        return None

    # -- writing jobs ----------------------------------------------------------------

    def submit(self, spec: dict) -> str:
        """Build the job in tmp/, then rename it into pending/: never half a job there."""
        self.ensure_layout()
        job_id = spec["id"]
        building = self.folder("tmp", job_id)
        os.makedirs(building)
        write_json(os.path.join(building, SPEC_FILE), spec)
        os.rename(building, self.folder("pending", job_id))
        return job_id

    def claim(self, job_id: str, worker: str, pid: int) -> str | None:
        """Rename pending/ID to running/ID.WORKER.PID; the path if this process won."""
        target = f"{self._running}{job_id}.{worker}.{pid}"  # RunningName.folder_name
        try:
            os.rename(f"{self._pending}{job_id}", target)
        except FileNotFoundError:
            # Lost the race. Or, on a network filesystem, the server replied ENOENT to a
            # retransmitted rename it had in fact done: there the target, ours alone,
            # decides. On a local disk the stat would only slow every lost race.
            if self.renames_are_exact:
                return None
            return target if os.path.isdir(target) else None
        except OSError:
            # A timeout or I/O error may also hide a rename that happened; anything else
            # (a read-only or full share) is for the user to see, not a lost race.
            if os.path.isdir(target):
                return target
            raise
        return target

    def move(self, source: str, state: str, job_id: str) -> str:
        """Rename a job folder into state/ID; FileNotFoundError if it is no longer there.

        A job folder is never empty (it holds spec.json), and rename never replaces a
        non-empty folder, so a job already at the target makes this fail, not clobber.
        """
        target = self.folder(state, job_id)
        try:
            os.rename(source, target)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(target) from None
            raise
        return target

    def remove(self, state: str, name: str) -> None:
        """Delete a finished or half-built job's folder: logs and specs, never media."""
        if state not in ("completed", "cancelled", "failed", "tmp"):
            raise ValueError(f"jobs in {state}/ are never removed")
        import shutil

        shutil.rmtree(self.folder(state, name))


def _wait(name: str) -> tuple[str, int] | None:
    """(job id, epoch second) of a back-off file's name, None for any other name."""
    if not name.startswith(WAIT_PREFIX):
        return None
    until, _, job_id = name[len(WAIT_PREFIX) :].partition(".")
    return (job_id, int(until)) if until.isdigit() else None


def write_json(path: str, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str) -> dict | None:
    """A JSON object from the share, or None if absent or not a JSON object."""
    return parse_json_object(read_text(path))


def age_seconds(path: str, now: float) -> float | None:
    """Seconds since path was modified, never negative: another host's clock may be ahead."""
    try:
        return max(0.0, now - os.stat(path).st_mtime)
    except FileNotFoundError:
        return None
