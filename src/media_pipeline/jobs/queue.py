"""The job queue: folders on the share, moved between by rename (DESIGN section 6).

    <queue_dir>/tmp/ pending/ running/ completed/ failed/ cancelled/ rejected/

A rename within one filesystem is atomic, on NFS too, so whichever process's rename
succeeds owns the job. The folder a job is in is its state; no file inside repeats it
(a copy could only disagree with the folder after a crash between two writes).
Everything a claimer needs to choose a job (priority, age, kind, item type) is in the
job's name, so choosing reads one folder listing, not every spec.

This module knows a job folder's layout; its files are opened only through
`share.Folder`, so no link planted in the queue is ever followed. Entries that are not
jobs (a link, a plain file, a name no dispatch makes) are moved to rejected/ with the
reason, never deleted: mp deletes only job folders it can name, and its own back-off
files.
"""

from __future__ import annotations

import binascii
import contextlib
import errno
import functools
import json
import math
import os
import re
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple, TypeVar

from media_pipeline.errors import SafetyRefusal
from media_pipeline.faults import crash_point
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.jobs.job_id import job_id_parts, make_job_id_text
from media_pipeline.pipeline import JOB_KINDS
from media_pipeline.share.files import BadEntry, Folder, relative_parts
from media_pipeline.share.fsutil import LOCAL_FILESYSTEMS, filesystem_type

T = TypeVar("T")
# A job's file that is gone, or not safe to read: passed over where a job is looked at.
GONE = (FileNotFoundError, NotADirectoryError, BadEntry)


class QueueFolder(StrEnum):
    """The queue's folders. A job's folder is its state; the values are the folders'
    names (and what the database's jobs.state holds), so each compares equal to them.
    Only the idle shortcut (idle/) spells pending and running out: it imports nothing."""

    TMP = "tmp"
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


TMP, PENDING, RUNNING = QueueFolder.TMP, QueueFolder.PENDING, QueueFolder.RUNNING
COMPLETED, FAILED, CANCELLED = QueueFolder.COMPLETED, QueueFolder.FAILED, QueueFolder.CANCELLED
REJECTED_DIR = QueueFolder.REJECTED
QUEUE_DIRS = (TMP, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
LIVE_DIRS = (PENDING, RUNNING)
FINISHED_DIRS = (COMPLETED, FAILED, CANCELLED)
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
CANCEL_FILE = "cancel"
HEARTBEAT_FILE = "heartbeat"
LOG_FILE = "log"
PID_FILE = "pid"
CLAIMED_BY_FILE = "claimed_by"
CLAIMED_AT_FILE = "claimed_at"
REASON_FILE = "reason"
# A line per take-back the job's worker lived to see (its running name): that take-back
# was no failed attempt (outcome.record_failure).
ANSWERED_FILE = "taken_back_alive"
# Every file mp writes in a job folder: nothing else is ever deleted with one.
JOB_FILES = frozenset(
    {
        SPEC_FILE,
        RESULT_FILE,
        CANCEL_FILE,
        HEARTBEAT_FILE,
        LOG_FILE,
        PID_FILE,
        CLAIMED_BY_FILE,
        CLAIMED_AT_FILE,
        ANSWERED_FILE,
    }
)
REJECTED_ENTRY = "entry"
# A job put back with a back-off also gets an empty file `pending/.wait.UNTIL.ID` (UNTIL in
# whole epoch seconds), written before the job is moved in. The back-offs then come with
# the one listing a claimer reads anyway, where reading each candidate's spec (or any
# file inside it) would cost an open per job. The spec's not_before says the same.
WAIT_PREFIX = ".wait."
# The longest back-off mp gives (outcome.backoff_until caps it); a later one is forged.
MAX_WAIT_SECONDS = 86400

# Priorities run from -499 to 499; the name holds 500 - priority so that a plain sort
# puts the highest priority first, then the oldest.
PRIORITY_LIMIT = 499
SLUG_LENGTH = 40
# Bounded in every part: a name that passes is short enough to take `.WORKER.PID` in
# running/ (a 250-character name once made every claim fail with "File name too long").
_NAME = re.compile(
    r"^job_p(?P<rank>\d{3})_(?P<created>\d{8}T\d{12})_(?P<kind>"
    + "|".join(JOB_KINDS)
    + r")_(?P<type>movie|tv)_(?P<uid>[0-9a-f]{12})(?:_[A-Za-z0-9-]{0,"
    + str(SLUG_LENGTH)
    + r"})?\Z"
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
        """When the job was made. A name parsed without check_date may hold no real
        date: such a job sorts as made at the epoch."""
        return _created(self.made) or datetime.fromtimestamp(0, UTC)

    @property
    def made(self) -> str:
        """The time in the name, as written there (YYYYMMDDTHHMMSSffffff): such texts
        sort as the times do."""
        parts = job_id_parts(self.job_id)
        return "" if parts is None else parts[1]

    @classmethod
    def parse(cls, job_id: str, *, check_date: bool = True) -> JobName | None:
        """The job a name names, or None. check_date=False leaves out the check that its
        digits are a real date: a claimer choosing among pending names needs only the
        kind and item, and the check is over half the parse (it is made again on the
        job it takes, in run_job)."""
        # The regular expression checks every part; job_id.py takes them apart, as the
        # idle shortcut does.
        parts = job_id_parts(job_id) if _NAME.match(job_id) else None
        if parts is None or (check_date and _created(parts[1]) is None):
            return None
        return cls(job_id, parts[2], parts[3], parts[4])


def _created(text: str) -> datetime | None:
    """The time in a job name, or None when the digits are no date (month 13)."""
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            int(text[15:21]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def back_off_time(value) -> float | None:
    """A spec's not_before (a file on the share) if it is a time mp could have written:
    a finite number of epoch seconds before the year 2286; else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < 1e10 else None


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
    return make_job_id_text(rank, created, kind, key.type, key.uid, words)


class RunningName(NamedTuple):
    """`running/ID.WORKER.PID.tCLAIMED`: a name unique to its claimer, which also says
    when it claimed (epoch seconds, by the claimer's clock).

    The claim time is in the name because the controller must be able to read it the
    moment it sees the claim: a file written after the rename may not be visible to it
    yet (NFS caches attributes for up to a minute), and the folder's mtime is the one
    it had in pending/, since a rename keeps it. A name without it (`ID.WORKER.PID`) is
    a claim by a worker of an earlier release."""

    job_id: str
    worker: str
    pid: int
    claimed: int | None = None

    @property
    def folder_name(self) -> str:
        name = f"{self.job_id}.{self.worker}.{self.pid}"
        return name if self.claimed is None else f"{name}.t{self.claimed}"

    @property
    def job(self) -> JobName:
        job = JobName.parse(self.job_id, check_date=False)
        assert job is not None  # parse() makes a RunningName only of a job's name
        return job

    @classmethod
    def parse(cls, name: str) -> RunningName | None:
        job_id, _, rest = name.partition(".")
        claimed = None
        head, _, last = rest.rpartition(".")
        # A worker's name may hold dots, but a pid is digits alone: a last part of "t"
        # and digits is the claim time.
        if last[:1] == "t" and _DIGITS.match(last[1:]):
            rest, claimed = head, int(last[1:])
        worker, _, pid = rest.rpartition(".")
        # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
        if not worker or not _DIGITS.match(pid) or JobName.parse(job_id) is None:
            return None
        entry = cls(job_id, worker, int(pid), claimed)
        # Only the form a claim writes: every reader acts on folder_name, and a name
        # that reads back otherwise ("01", "t017") would name a folder nobody finds.
        return entry if entry.folder_name == name else None


def parse_entry(queue_folder: str, name: str) -> JobName | None:
    """The job a queue entry's name names, in the form its folder gives names."""
    if queue_folder == "running":
        running = RunningName.parse(name)
        return None if running is None else JobName.parse(running.job_id)
    return JobName.parse(name)


class Rejected(NamedTuple):
    """An entry moved to rejected/: `rejected/<UTC time>.<its name>/{entry,reason}`."""

    name: str
    job: JobName | None
    reason: str


class JobFolder:
    """One job's folder, opened with no link followed. Every file of a job is read and
    written through here, so a job folder's layout is known in this module alone."""

    def __init__(self, folder: Folder):
        self.folder = folder

    def __enter__(self) -> JobFolder:
        return self

    def __exit__(self, *_exception) -> None:
        self.folder.close()

    def close(self) -> None:
        self.folder.close()

    @property
    def path(self) -> str:
        return self.folder.path

    def identity(self) -> tuple[int, int]:
        return self.folder.identity()

    # What the job is, and how it ended.
    def spec(self) -> dict | None:
        return self.folder.read_json(SPEC_FILE)

    def write_spec(self, spec: dict) -> None:
        write_json(self.folder, SPEC_FILE, spec)

    def result(self) -> dict | None:
        return self.folder.read_json(RESULT_FILE)

    def write_result(self, result: dict) -> None:
        write_json(self.folder, RESULT_FILE, result)

    # A person's cancel: the controller's signature of the job id (jobs/signature.py).
    def cancel(self) -> str:
        return self.folder.read_text(CANCEL_FILE, 1024) or ""

    def has_cancel(self) -> bool:
        return self.folder.exists(CANCEL_FILE)

    def write_cancel(self, text: str) -> None:
        self.folder.write_atomic(CANCEL_FILE, text)

    # The claim and the signs of life of the worker that runs it.
    def record_claim(self, worker: str, at: str) -> None:
        self.folder.write_atomic(CLAIMED_BY_FILE, worker + "\n")
        self.folder.write_atomic(CLAIMED_AT_FILE, at + "\n")
        self.beat()

    def claimed_at(self, limit: int = 64) -> str:
        return (self.folder.read_text(CLAIMED_AT_FILE, limit) or "").strip()

    def beat(self) -> None:
        self.folder.touch(HEARTBEAT_FILE)

    def write_pids(self, worker_pid: int, script_pid: int) -> None:
        self.folder.write_atomic(PID_FILE, f"{worker_pid} {script_pid}\n")

    # The script's output.
    def open_log_to_append(self) -> int:
        return self.folder.open_append(LOG_FILE)

    def log_head(self, limit: int) -> str:
        return self.folder.read_text(LOG_FILE, limit) or ""

    def log_tail(self, limit: int) -> str:
        return (self.folder.read_tail(LOG_FILE, limit) or b"").decode("utf-8", "replace")

    # The take-backs its worker lived to see (outcome.record_failure).
    def answered_take_backs(self) -> bytes:
        return self.folder.read_tail(ANSWERED_FILE, 64 * 1024) or b""

    def open_answered_to_append(self) -> int:
        return self.folder.open_append(ANSWERED_FILE)


class Queue:
    """One queue folder. Methods that touch the share say what they move."""

    def __init__(self, queue_dir: str, staging_root: str | None = None):
        self.root = queue_dir
        # Below staging_root the queue folder is the share's: each step to it is checked
        # for links. A queue_dir elsewhere is the administrator's own path.
        self._staging_root = staging_root
        self._top: Folder | None = None
        self._folders: dict[str, Folder] = {}

    @classmethod
    def of(cls, config) -> Queue:
        return cls(config.queue_dir, config.staging_root)

    @functools.cached_property
    def renames_are_exact(self) -> bool:
        """Whether a rename that reports ENOENT surely did not happen (a local disk)."""
        return filesystem_type(self.root) in LOCAL_FILESYSTEMS

    def folder(self, queue_folder: str, name: str = "") -> str:
        """A path, for messages and people: nothing in mp opens a job by its path."""
        return (
            os.path.join(self.root, queue_folder, name)
            if name
            else os.path.join(self.root, queue_folder)
        )

    # -- the queue's own folders -------------------------------------------------------

    def _refuse(self, problem: str):
        return SafetyRefusal(
            f"queue folder {problem}; refusing to use a queue that could lead outside the "
            "share (put a real folder there)"
        )

    def _open_top(self, create: bool) -> Folder | None:
        if self._top is not None:
            return self._top
        staging_root = self._staging_root
        parts = relative_parts(staging_root, self.root) if staging_root else None
        try:
            if staging_root and parts is not None:
                with Folder.open_root(staging_root) as staging:
                    self._top = staging.walk(*parts, create=create)
            else:
                if create:
                    os.makedirs(self.root, exist_ok=True)
                self._top = Folder.open_root(self.root)
        except FileNotFoundError:
            if create:
                raise
            return None
        except BadEntry as error:
            raise self._refuse(str(error)) from None
        return self._top

    def read_top_json(self, name: str) -> dict | None:
        """A JSON object at the top of the queue (beside its folders), or None when
        there is none; BadEntry when it is anything else."""
        top = self._open_top(create=False)
        return None if top is None else top.read_json(name)

    def write_top_json(self, name: str, data: dict) -> None:
        top = self._open_top(create=True)
        assert top is not None  # made when missing
        write_json(top, name, data)

    def dir(self, queue_folder: str, *, create: bool = False) -> Folder | None:
        """The queue's state folder, or None if it does not exist yet (and not create).
        A link there refuses the command (SafetyRefusal): deleting or writing through
        it would reach outside the share."""
        folder = self._folders.get(queue_folder)
        if folder is not None:
            return folder
        top = self._open_top(create)
        if top is None:
            return None
        try:
            folder = top.child(queue_folder, create=create)
        except FileNotFoundError:
            return None
        except BadEntry as error:
            raise self._refuse(str(error)) from None
        self._folders[queue_folder] = folder
        return folder

    def need(self, queue_folder: str, *, create: bool = False) -> Folder:
        """The queue's state folder, which must be there (or is made, with create):
        FileNotFoundError if it is not."""
        folder = self.dir(queue_folder, create=create)
        if folder is None:
            raise FileNotFoundError(errno.ENOENT, "no such queue folder", self.folder(queue_folder))
        return folder

    def ensure_layout(self) -> None:
        for state in (*QUEUE_DIRS, REJECTED_DIR):
            self.dir(state, create=True)

    def close(self) -> None:
        """Close the queue's folders. Commands close them when done: a descriptor kept
        open (by a traceback, say) would keep the share busy for an unmount."""
        for folder in self._folders.values():
            folder.close()
        self._folders.clear()
        if self._top is not None:
            self._top.close()
            self._top = None

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *_exception) -> None:
        self.close()

    # -- listing -----------------------------------------------------------------------

    def _entries(self, queue_folder: str) -> list[str]:
        folder = self.dir(queue_folder)
        return folder.names() if folder is not None else []

    def names(self, queue_folder: str) -> list[str]:
        return [name for name in self._entries(queue_folder) if not name.startswith(".")]

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

    def running(self) -> list[RunningName]:
        found = (RunningName.parse(name) for name in self.names("running"))
        return [entry for entry in found if entry is not None]

    def jobs(self, queue_folders=(*LIVE_DIRS, *FINISHED_DIRS)) -> list[tuple[str, str, JobName]]:
        """(state, folder name, job) of every entry whose name is a job's."""
        found = []
        for state in queue_folders:
            for name in self.names(state):
                job = parse_entry(state, name)
                if job is not None:
                    found.append((state, name, job))
        return found

    def live_job_for(self, item_uid: str) -> tuple[str, str] | None:
        """(state, folder name) of the item's pending or running job, if it has one."""
        for state, name, job in self.jobs(LIVE_DIRS):
            if job.item_uid == item_uid:
                return state, name
        return None

    def live_kinds(self) -> dict[str, set[str]]:
        """item uid -> the kinds of its pending or running jobs."""
        found: dict[str, set[str]] = {}
        for _state, _name, job in self.jobs(LIVE_DIRS):
            found.setdefault(job.item_uid, set()).add(job.kind)
        return found

    def live_item_uids(self) -> set[str]:
        return {job.item_uid for _state, _name, job in self.jobs(LIVE_DIRS)}

    # -- one job's folder --------------------------------------------------------------

    def open_job(self, queue_folder: str, name: str) -> JobFolder:
        """A job's folder: FileNotFoundError if gone, BadEntry if it is a link or a file."""
        folder = self.dir(queue_folder)
        if folder is None:
            raise FileNotFoundError(errno.ENOENT, "no such queue folder", self.folder(queue_folder))
        return JobFolder(folder.child(name))

    def _peek(
        self,
        queue_folder: str,
        name: str,
        read: Callable[[JobFolder], T],
        absent: T,
        passed_over: tuple[type[Exception], ...] = GONE,
    ) -> T:
        """What read finds in a job's folder: absent when the folder or the file is gone
        or is not safe to read (a link, a FIFO, too large). Any other error (EIO or
        ESTALE of a share going away, EACCES) is raised: reconcile decides by these
        files, and one it cannot read is no missing one (a genuine failed job would be
        rejected as forged). Only what is merely shown passes over every OSError."""
        try:
            with self.open_job(queue_folder, name) as job:
                return read(job)
        except passed_over:
            return absent

    def read_spec(self, queue_folder: str, name: str) -> dict | None:
        return self._peek(queue_folder, name, JobFolder.spec, None)

    def read_result(self, queue_folder: str, name: str) -> dict | None:
        return self._peek(queue_folder, name, JobFolder.result, None)

    def read_cancel(self, queue_folder: str, name: str) -> str:
        return self._peek(queue_folder, name, JobFolder.cancel, "")

    def read_claimed_at(self, queue_folder: str, name: str, limit: int = 64) -> str:
        return self._peek(queue_folder, name, lambda job: job.claimed_at(limit), "")

    def read_log_head(self, queue_folder: str, name: str, limit: int) -> str:
        return self._peek(queue_folder, name, lambda job: job.log_head(limit), "")

    def read_log_tail(self, queue_folder: str, name: str, limit: int) -> str:
        """The end of a job's log, for showing: '' also when this user may not read it."""
        return self._peek(
            queue_folder, name, lambda job: job.log_tail(limit), "", (OSError, BadEntry)
        )

    def heartbeat_age(self, queue_folder: str, name: str, now: float) -> float | None:
        """Seconds since a job's last heartbeat; None when it has none (or is gone)."""
        return _age(self.modified_at(queue_folder, name, HEARTBEAT_FILE), now)

    def result_age(self, queue_folder: str, name: str, now: float) -> float | None:
        """Seconds since a job's result was written (when it ended)."""
        return _age(self.modified_at(queue_folder, name, RESULT_FILE), now)

    def folder_age(self, queue_folder: str, name: str, now: float) -> float | None:
        """Seconds since a job's folder changed."""
        return _age(self.modified_at(queue_folder, name, None), now)

    def silent_seconds(self, entry: RunningName, now: float, stale_after: float):
        """How long the running job has been silent (see liveness)."""
        return self.liveness(entry, now, stale_after)[1]

    def liveness(
        self, entry: RunningName, now: float, stale_after: float
    ) -> tuple[float | None, float | None]:
        """(seconds since its heartbeat, seconds of silence), from one look at the
        heartbeat. Silence counts from the later of the job's claim and its last
        heartbeat, never from before its claim; both None once the job is gone.
        A time further ahead of now than stale_after is no sign of life (no honest host
        is that far ahead; a forged one would keep the job for ever): with none left,
        the job has been silent as long as can be told (infinity). A name without a
        claim time (a worker of an earlier release) with no heartbeat yet falls back to
        the folder's own time."""
        beat = self.modified_at("running", entry.folder_name, HEARTBEAT_FILE)
        signs = [moment for moment in (beat, entry.claimed) if moment is not None]
        if beat is None:  # no heartbeat yet, or no job any more
            folder = self.modified_at("running", entry.folder_name, None)
            if folder is None:
                return None, None
            signs = signs or [folder]
        believed = [moment for moment in signs if moment - now <= stale_after]
        silence = max(0.0, now - max(believed)) if believed else math.inf
        return (None if beat is None else max(0.0, now - beat)), silence

    def modified_at(self, queue_folder: str, name: str, file_name: str | None) -> float | None:
        """The mtime of a job's file (or of its folder); None if gone."""
        folder = self.dir(queue_folder)
        if folder is None:
            return None
        try:
            if file_name is None:
                status = folder.lstat(name)
            else:
                with folder.child(name) as job:
                    status = job.lstat(file_name)
        except (FileNotFoundError, BadEntry):
            return None
        return None if status is None else status.st_mtime

    def other_runs(self, item_uid: str, name: str) -> list[str]:
        """Claims in running/ other than name of a job of the item. Only a claim's own
        form counts: a script runs only from a folder of that name, and anything else
        with the item's uid in its name is a share writer's (see run_job.other_runs)."""
        others = []
        for other in self._entries("running"):
            claim = RunningName.parse(other) if item_uid in other else None
            if claim is not None and claim.job.item_uid == item_uid and other != name:
                others.append(other)
        return others

    def still_holds(self, name: str, job: JobFolder) -> bool:
        """Whether running/name is still the folder job (not taken back as stale)."""
        try:
            status = self.need("running").lstat(name)
        except OSError:
            return True  # the share hiccuped; the next look decides
        return status is not None and (status.st_dev, status.st_ino) == job.identity()

    def finished_as(self, job_id: str) -> str | None:
        """The finished folder (completed, failed, cancelled) that holds job_id, if any:
        a spec put back in pending/ after its job ran is not to run again."""
        for state in FINISHED_DIRS:
            folder = self.dir(state)
            if folder is not None and folder.lstat(job_id) is not None:
                return state
        return None

    # -- writing jobs ------------------------------------------------------------------

    def submit(self, spec: dict) -> str:
        """Build the job in tmp/, then rename it into pending/: never half a job there."""
        self.ensure_layout()
        job_id = spec["id"]
        building = self.need("tmp")
        building.mkdir(job_id)
        with building.child(job_id) as job:
            write_json(job, SPEC_FILE, spec)
        crash_point("dispatch:built")  # a whole job, still in tmp/
        building.rename(job_id, self.need("pending"), job_id)
        return job_id

    def hold(self, job_id: str, until: float) -> None:
        """Record that job_id is not to be claimed before until; call before moving it into
        pending/, so that no claimer sees the job without its back-off."""
        with contextlib.suppress(FileExistsError):
            self.need("pending", create=True).create(f"{WAIT_PREFIX}{math.ceil(until)}.{job_id}")

    def remove_expired_waits(self, now: float) -> int:
        """Delete back-off files whose time has passed (they no longer hold anything back,
        whether or not their job is still pending); how many."""
        folder = self.dir("pending")
        if folder is None:
            return 0
        removed = 0
        for name in folder.names():
            wait = _wait(name)
            # A wait beyond any back-off mp gives was not written by mp: it would hold
            # its job back for ever. Both kinds go; a folder of that name is left alone.
            if wait is not None and (wait[1] < now or wait[1] > now + MAX_WAIT_SECONDS):
                try:
                    folder.unlink(name)
                except (FileNotFoundError, IsADirectoryError, PermissionError):
                    continue
                removed += 1
        return removed

    def claim(self, job_id: str, worker: str, pid: int, now: float | None = None) -> str | None:
        """Rename pending/ID to running/ID.WORKER.PID.tNOW; the running name if this
        process won. Raises OSError for anything but a lost race (the caller decides
        whether one job that cannot move stops the claim)."""
        claimed = int(time.time() if now is None else now)
        target = RunningName(job_id, worker, pid, claimed).folder_name
        pending, running = self.need("pending"), self.need("running", create=True)
        try:
            os.rename(job_id, target, src_dir_fd=pending.fd, dst_dir_fd=running.fd)
        except FileNotFoundError:
            # Lost the race. Or, on a network filesystem, the server replied ENOENT to a
            # retransmitted rename it had in fact done: there the target, ours alone,
            # decides. On a local disk the stat would only slow every lost race.
            if self.renames_are_exact:
                return None
            return target if running.is_folder(target) else None
        except OSError:
            # A timeout or I/O error may also hide a rename that happened.
            if running.is_folder(target):
                return target
            raise
        return target

    def move(self, queue_folder: str, name: str, to_folder: str, to_name: str | None = None) -> str:
        """Rename a job folder into to_state/ (as to_name, by default its job id);
        FileNotFoundError if it is no longer there.

        A job folder is never empty (it holds spec.json), and rename never replaces a
        non-empty folder, so a job already at the target makes this fail, not clobber.
        """
        to_name = to_name or name.partition(".")[0]
        try:
            self.need(queue_folder).rename(name, self.need(to_folder, create=True), to_name)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(self.folder(to_folder, to_name)) from None
            raise
        return to_name

    def remove(self, queue_folder: str, name: str) -> None:
        """Delete a finished or half-built job's folder: logs and specs, never media.
        Only a folder with a job's name holding nothing but the files mp writes in a job
        folder; anything else (an item folder renamed to look like a job, a folder
        inside) raises BadEntry, and the caller moves it to rejected/ instead."""
        if queue_folder not in (*FINISHED_DIRS, "tmp"):
            raise ValueError(f"jobs in {queue_folder}/ are never removed")
        if parse_entry(queue_folder, name) is None:
            raise ValueError(f"{name!r} is not a job's name; only jobs are removed")
        folder = self.need(queue_folder)
        with folder.child(name) as job:
            _empty_job_folder(job)
        # Fails (ENOTEMPTY) if something was put in meanwhile: left for the next run.
        folder.rmdir(name)

    def reject(self, queue_folder: str, name: str, reason: str) -> str:
        """Move an entry that is not a job mp can use into rejected/, with a reason file.
        `mp jobs` and `mp status` show it; after retention_days it goes if it holds
        nothing anyone could miss (remove_rejected). Returns its new name."""
        rejected = self.need(REJECTED_DIR, create=True)
        for attempt in range(100):
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            holder = f"{stamp}{'-' + str(attempt) if attempt else ''}.{_safe_name(name)}"
            try:
                rejected.mkdir(holder)
                break
            except FileExistsError:
                continue  # the same name rejected in the same microsecond (or planted)
        else:
            raise FileExistsError(
                errno.EEXIST, "no free name in rejected/", self.folder(queue_folder)
            )
        with rejected.child(holder) as folder:
            folder.create(REASON_FILE, f"{queue_folder}/{printable(name)[:300]}: {reason}\n")
            try:
                self.need(queue_folder).rename(name, folder, REJECTED_ENTRY)
            except FileNotFoundError:
                # The entry moved on meanwhile: no reason without its entry is left.
                folder.unlink(REASON_FILE)
                rejected.rmdir(holder)
                raise
        return holder

    def rejected(self, *, newest: int | None = None, reasons: bool = True) -> list[Rejected]:
        """What rejected/ holds, oldest first: all of it, or the newest ones. Without
        reasons, no file is read (a flood of 100,000 entries is a listing, not 100,000
        reads); rejected_reason reads one."""
        folder = self.dir(REJECTED_DIR)
        if folder is None:
            return []
        holders = sorted(folder.names())
        if newest is not None:
            holders = holders[-newest:] if newest > 0 else []
        found = []
        for holder in holders:
            _stamp, _, original = holder.partition(".")
            job = parse_entry("running", original) or JobName.parse(original)
            found.append(Rejected(holder, job, self.rejected_reason(holder) if reasons else ""))
        return found

    def rejected_count(self) -> int:
        folder = self.dir(REJECTED_DIR)
        return 0 if folder is None else len(folder.names())

    def rejected_reason(self, holder: str) -> str:
        """The first line of a rejected entry's reason file."""
        folder = self.dir(REJECTED_DIR)
        try:
            if folder is None:
                raise FileNotFoundError(holder)
            with folder.child(holder) as inside:
                reason = (inside.read_text(REASON_FILE, 4096) or "").strip()
        except (OSError, BadEntry):
            return "(no reason file)"
        return reason.splitlines()[0] if reason else ""

    def rejected_at(self, holder: str) -> float | None:
        """When an entry was moved to rejected/: the time its holder's name begins with
        (mp's own), else the holder's mtime."""
        made = _created(holder.partition(".")[0].partition("-")[0])
        if made is not None:
            return made.timestamp()
        folder = self.dir(REJECTED_DIR)
        status = folder.lstat(holder) if folder is not None else None
        return None if status is None else status.st_mtime

    def remove_rejected(self, holder: str) -> None:
        """Delete a rejected entry past its time, when it holds nothing anyone could miss:
        a link, a FIFO or device node, an empty file, or a folder of the files mp writes
        in a job folder. Anything else (a file with content, an item folder moved into
        the queue) raises BadEntry and is kept: mp never deletes media."""
        folder = self.need(REJECTED_DIR)
        with folder.child(holder) as inside:
            for entry in inside.entries():
                if entry.name not in (REASON_FILE, REJECTED_ENTRY):
                    raise BadEntry(inside.path, f"holds {printable(entry.name)[:80]!r}")
            status = inside.lstat(REJECTED_ENTRY)
            if status is not None and stat.S_ISDIR(status.st_mode):
                with inside.child(REJECTED_ENTRY) as job:
                    _empty_job_folder(job)
                inside.rmdir(REJECTED_ENTRY)
            elif status is not None:
                empty = stat.S_ISREG(status.st_mode) and status.st_size == 0
                if stat.S_ISREG(status.st_mode) and not empty:
                    raise BadEntry(inside.path, "holds a file with content; kept")
                inside.unlink(REJECTED_ENTRY)  # a link goes, never what it names
            with contextlib.suppress(FileNotFoundError):
                inside.unlink(REASON_FILE)
        folder.rmdir(holder)


def _age(moment: float | None, now: float) -> float | None:
    """Seconds since moment, never negative (another host's clock may be ahead); None
    when there was none."""
    return None if moment is None else max(0.0, now - moment)


def _empty_job_folder(job: Folder) -> None:
    """Delete the files of a job's folder, which must hold only files mp writes there;
    BadEntry (nothing deleted) for anything else: an item folder renamed to look like a
    job, a folder inside."""
    entries = job.entries()
    for entry in entries:
        ours = entry.name in JOB_FILES or (
            entry.name.startswith(".") and entry.name.endswith(".tmp")
        )
        if not ours or not entry.is_file(follow_symlinks=False):
            raise BadEntry(
                job.path,
                f"holds {printable(entry.name)[:80]!r}, which mp never writes in a job folder",
            )
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            job.unlink(entry.name)


def _wait(name: str) -> tuple[str, int] | None:
    """(job id, epoch second) of a back-off file's name, None for any other name."""
    if not name.startswith(WAIT_PREFIX):
        return None
    until, _, job_id = name[len(WAIT_PREFIX) :].partition(".")
    return (job_id, int(until)) if _DIGITS.match(until) else None


# \Z, not $: "$" also matches before a final newline, and a name with one would parse.
_DIGITS = re.compile(r"\A[0-9]{1,18}\Z")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


def _safe_name(name: str) -> str:
    """name if it is short and plain, else a stand-in that cannot hurt a listing."""
    if _SAFE.match(name):
        return name
    return f"entry-{binascii.crc32(name.encode('utf-8', 'surrogateescape')):08x}"


def write_json(folder: Folder, name: str, data: dict) -> None:
    folder.write_atomic(name, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
