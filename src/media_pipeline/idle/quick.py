"""Timer runs with nothing to do, answered before anything but `os` is imported (and
the job-id parser, jobs/job_id.py, which imports nothing).

Claim timers fire every 15 s on every worker, and the controller's as often; nearly
every run finds nothing to do. Python starts in about 20 ms of CPU, and importing click,
yaml and the commands costs three to four times that again. So a full run leaves a note
in its unit's runtime folder ($RUNTIME_DIRECTORY: systemd makes it for the unit, only
the service's user may write there, and it is gone at reboot): the config file and the
folders it read, as stat() saw them. The next run stats them again: when nothing
differs and the note says there is nothing to do, it says so and stops.

A note is only ever a reason to skip work that would find nothing. Anything else (no
note, one another user wrote, a config edited, a share remounted or replaced, a job of
this worker's kinds, a drained worker, any error) goes to the full command, which
decides and says why, as it always did. The controller makes a full run at least every
5 minutes anyway (while a job runs, every minute or half its stale_after_seconds): some
things change with time alone (a heartbeat going stale, a backoff ending, a
notification to retry), and a folder's mtime can miss a change made within the same
clock tick as the last one.
"""

from __future__ import annotations

import os
import time

from media_pipeline.jobs.job_id import job_kind

NOTE_LIMIT = 4 << 20
# The most seconds a timer's run may linger (--linger), as the full commands take it.
LINGER_MOST = 3600
# A controller note is trusted this long; while a job runs, this long at most (less
# when the config's stale_after_seconds is short: reconcile/watch.py).
FULL_RUN_EVERY = 300
FULL_RUN_EVERY_BUSY = 60


def runtime_folder() -> str | None:
    folder = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return folder or None


def signature(path: str | bytes) -> str:
    """What stat() says of path, in one word; '-' when it cannot be stat()ed. A folder
    is not followed when it is a link: a folder replaced by a link reads as changed."""
    try:
        st = os.lstat(path)
    except OSError:
        return "-"
    seen = (st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_size)
    return ":".join(map(str, (*seen, st.st_mtime_ns, st.st_ctime_ns)))


def content_signature(path: str | bytes) -> str:
    """For a file that readers create empty and remove again (SQLite's -wal beside a
    database in WAL mode): '-' while it holds nothing, else its signature."""
    try:
        if os.lstat(path).st_size == 0:
            return "-"
    except OSError:
        return "-"
    return signature(path)


def identity(path: str | bytes) -> str:
    """Which folder path is (not what it holds): for a folder whose every change the
    run reads anyway, like the queue's pending/."""
    try:
        st = os.lstat(path)
    except OSError:
        return "-"
    return f"{st.st_dev}:{st.st_ino}:{st.st_mode}"


def config_signature(path: str) -> str:
    """The config may be a link (to a file in a repository, say): followed."""
    try:
        return signature(os.path.realpath(path))
    except (OSError, ValueError):
        return "-"


# -- notes ---------------------------------------------------------------------------


def _note_path(name: str) -> str | None:
    folder = runtime_folder()
    if folder is None or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return None
    return os.path.join(folder, f"{name}.note")


def read_note(name: str) -> dict[str, list[str]] | None:
    """The note's lines as key -> values (a key may repeat), or None when there is no
    note this user wrote."""
    path = _note_path(name)
    data = None if path is None else _read(path, NOTE_LIMIT + 1, own=True)
    if data is None or len(data) > NOTE_LIMIT:
        return None
    note: dict[str, list[str]] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, _space, value = line.partition(" ")
        note.setdefault(key, []).append(value)
    return note


def write_note(name: str, lines: list[tuple[str, str]]) -> None:
    """Replace the note, whole or not at all. Nothing happens outside a unit (no
    runtime folder) or when a value cannot be kept on one line."""
    path = _note_path(name)
    if path is None or any("\n" in key + value or " " in key for key, value in lines):
        return
    text = "".join(f"{key} {value}\n" for key, value in lines).encode("utf-8", "surrogateescape")
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError:
        forget_note_file(temporary)


def forget_note(name: str) -> None:
    path = _note_path(name)
    if path is not None:
        forget_note_file(path)


def forget_note_file(path: str) -> None:
    # Not contextlib.suppress: importing contextlib would cost a quarter of a quick run.
    try:  # noqa: SIM105
        os.unlink(path)
    except OSError:
        pass


def _one(note: dict[str, list[str]], key: str) -> str | None:
    values = note.get(key)
    return values[0] if values and len(values) == 1 else None


def _watched_unchanged(note: dict[str, list[str]], config_path: str) -> bool:
    """The note is about this config, unedited, and every folder it watches is as it
    was."""
    if _one(note, "config") != os.path.abspath(config_path):
        return False
    if _one(note, "config_stat") != config_signature(config_path):
        return False
    for key, see in (("watch", signature), ("content", content_signature), ("same", identity)):
        for entry in note.get(key, ()):
            hexed, _space, seen = entry.partition(" ")
            try:
                path = bytes.fromhex(hexed)
            except ValueError:
                return False
            if not path or see(path) != seen:
                return False
    return True


def watch_lines(
    paths: list[str], *, content: tuple[str, ...] = (), same: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """Lines for a note: each of paths as it is now, each of content as what it holds,
    and which folder each of same is."""
    # A path as the hex of its bytes: a folder name may hold a newline or bytes that are
    # not UTF-8 (an SMB client's), and must still read back as itself.
    return [
        *(("watch", f"{_hex(path)} {signature(path)}") for path in dict.fromkeys(paths)),
        *(("content", f"{_hex(path)} {content_signature(path)}") for path in content),
        *(("same", f"{_hex(path)} {identity(path)}") for path in same),
    ]


def _hex(path: str) -> str:
    return os.fsencode(path).hex()


def config_lines(config_path: str) -> list[tuple[str, str]]:
    return [
        ("config", os.path.abspath(config_path)),
        ("config_stat", config_signature(config_path)),
    ]


# -- the claim -----------------------------------------------------------------------


def claim_note_name(worker: str) -> str:
    return f"claim-{worker}"


def idle_claim(config_path: str, worker: str, *, linger: bool = False) -> str | None:
    """'no job' for a worker whose note holds and whose kinds have no pending job (and,
    for a claim that may linger, no job of an earlier kind under way); None when the
    full command must look."""
    note = read_note(claim_note_name(worker))
    if note is None or not _watched_unchanged(note, config_path):
        return None
    share_file, share_id = _one(note, "share_file"), _one(note, "share_id")
    pending, kinds = _one(note, "pending"), _one(note, "kinds")
    if share_file is None or share_id is None or pending is None or kinds is None:
        return None
    if read_small(share_file) != share_id:
        return None
    if linger:
        running, upstream = _one(note, "running"), _one(note, "upstream")
        if running is None or upstream is None:
            return None
        if under_way(pending, running, upstream.split()) is not False:
            return None
    try:
        names = os.listdir(pending)
    except FileNotFoundError:
        names = []  # a queue never made has no job; the watched parent says it is gone
    except OSError:
        return None
    mine = kinds.split()
    for name in names:
        if name.startswith("."):
            continue  # a backoff's wait, not a job
        kind = job_kind(name)
        if kind is None or kind in mine:
            return None
    return f"worker {worker}: no job to run"


def read_small(path: str) -> str | None:
    data = _read(path, 256)
    return None if data is None else data.decode("ascii", "replace").strip()


def _read(path: str, limit: int, *, own: bool = False) -> bytes | None:
    """Up to limit bytes of a file, never through a link (a FIFO does not hang it);
    with own, only of a regular file this user owns. None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if own:
            st = os.fstat(fd)
            if not (st.st_mode & 0o170000 == 0o100000 and st.st_uid == os.geteuid()):
                return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


# -- the controller ------------------------------------------------------------------

CONTROLLER_NOTE = "controller"


# A pending job queued this recently is about to be claimed: a lingering controller
# stays to see it end. One that waits longer (for a drained or powered-off worker) does
# not keep it up.
JUST_QUEUED_SECONDS = 60


def jobs_in(
    folder: str, kinds: set[str] | list[str] | None = None, *, missing: set[str] | None = None
) -> set[str] | None:
    """The names in a queue folder of jobs (of kinds, when given: a running job's
    folder name starts with its job's); missing when there is no such folder; None when
    it cannot be listed."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return missing
    except OSError:
        return None
    return {name for name in names
            if not name.startswith(".") and (kinds is None or job_kind(name) in kinds)}  # fmt: skip


def under_way(
    pending: str, running: str, kinds: set[str] | list[str] | None = None, now: float | None = None
) -> bool | None:
    """Whether a job (of kinds, when given) is under way: running, or pending with
    pending/ changed in the last JUST_QUEUED_SECONDS (one that waits longer, for a ripper
    that is off or a backoff, keeps no timer run up). What keeps a lingering controller
    watching (reconcile/watch.py) and a lingering claim waiting for an earlier kind's job
    (worker/linger.py). None when a folder cannot be listed."""
    now = time.time() if now is None else now
    for folder in (running, pending):
        found = jobs_in(folder, kinds, missing=set())
        if found is None:
            return None
        if not found:
            continue
        if folder == running:
            return True
        try:
            if now - os.lstat(folder).st_mtime < JUST_QUEUED_SECONDS:
                return True
        except OSError:
            return None
    return False


def queue_under_way(queue_dir: str, now: float | None = None) -> bool | None:
    """under_way for any job of the queue at queue_dir."""
    return under_way(
        os.path.join(queue_dir, "pending"), os.path.join(queue_dir, "running"), now=now
    )


def controller_unchanged(
    config_path: str, now: float | None = None, *, dispatch: bool = True, linger: bool = False
) -> str | None:
    """A sentence when nothing the controller reads changed since its last full run (one
    that dispatched too, when this one would) and that run is recent enough, and (for a
    run that may linger) no job is under way; None when it must run."""
    note = read_note(CONTROLLER_NOTE)
    if note is None or not _watched_unchanged(note, config_path):
        return None
    if dispatch and _one(note, "dispatched") != "1":
        return None
    if linger:
        queue = _one(note, "queue")
        if queue is None or queue_under_way(queue, now):
            return None
    try:
        at, until = float(_one(note, "at") or ""), float(_one(note, "until") or "")
    except ValueError:
        return None
    now = time.time() if now is None else now
    if not at <= now < until:
        return None
    since = time.strftime("%H:%M:%S", time.localtime(at))
    return f"reconcile: nothing changed since the full run at {since}"
