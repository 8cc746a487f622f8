"""The one place mp opens files on the share (DESIGN section 10).

Three hosts, their scripts and anyone with access write the share, and mp runs as root:
every folder below a configured root is opened relative to its parent's descriptor
with O_NOFOLLOW, so a symbolic link planted anywhere (a job's `log`, an item folder,
`jobs/tmp`) is refused instead of followed out of the roots. Files must be regular
(a FIFO would block a reader forever), are read up to a size limit, and JSON is read
to a bounded depth. New files are made with O_EXCL; a file is replaced only by a rename
of a temporary file mp made itself in the same folder. Deleting goes through
descriptors too (shutil.rmtree with dir_fd never follows a link).

The configured roots themselves (staging_root, library_root) are the administrator's
paths and are opened as given, links and all.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import threading

from media_pipeline.text import encodable

# Files mp reads on the share are small: specs, results, markers, decisions.
MAX_FILE_BYTES = 1 << 20
MAX_JSON_DEPTH = 12
NAME_MAX_BYTES = 255  # one path component, on every filesystem mp runs on
# errno values from opening with O_NOFOLLOW (and O_DIRECTORY) at a symbolic link or at
# something that is not a folder.
_REFUSED = (errno.ELOOP, errno.ENOTDIR)


class BadEntry(Exception):
    """An entry on the share that mp will not use: a link, not a regular file or folder,
    too large, or not the JSON it should be. str() is one sentence naming it."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path} {problem}")
        self.path = path
        self.problem = problem


def _describe(folder_fd: int, name: str, wanted: str) -> str:
    """Why name in folder is not the wanted kind of entry ('folder' or 'regular file')."""
    try:
        mode = os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode
    except OSError:
        return f"is not a {wanted}"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    return f"is not a {wanted}"


def check_name(name: str) -> str:
    """A single path component: never empty, '.', '..', or holding '/' or NUL."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise BadEntry(repr(name), "is not a file name")
    return name


class Folder:
    """A folder held open by its descriptor; every method works relative to it."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str):
        self.fd = fd
        self.path = path  # for messages only: nothing is opened by it

    @classmethod
    def open_root(cls, path: str) -> Folder:
        """A configured root (trusted: the administrator's path, links and all)."""
        return cls(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), path)

    def _join(self, name: str) -> str:
        return os.path.join(self.path, name)

    # -- folders -----------------------------------------------------------------------

    def child(self, name: str, *, create: bool = False) -> Folder:
        """The sub-folder name: FileNotFoundError if absent (unless create), BadEntry if
        it is a link or not a folder."""
        check_name(name)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return Folder(os.open(name, flags, dir_fd=self.fd), self._join(name))
        except FileNotFoundError:
            if not create:
                raise
        except OSError as error:
            if error.errno in _REFUSED:
                raise BadEntry(self._join(name), _describe(self.fd, name, "folder")) from None
            raise
        # Made meanwhile by another host, maybe: then opened with the same checks.
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o777, dir_fd=self.fd)
        return self.child(name)

    def walk(self, *names: str, create: bool = False) -> Folder:
        """The folder at names below this one, each step checked as child() does."""
        folder = self
        for name in names:
            inner = folder.child(name, create=create)
            if folder is not self:
                folder.close()
            folder = inner
        return folder if folder is not self else Folder(os.dup(self.fd), self.path)

    def mkdir(self, name: str) -> None:
        """Make a new sub-folder; FileExistsError if the name is taken."""
        os.mkdir(check_name(name), 0o777, dir_fd=self.fd)

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def entries(self) -> list[os.DirEntry]:
        """The folder's entries; is_dir(follow_symlinks=False) tells a real folder."""
        with os.scandir(self.fd) as found:
            return list(found)

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a link is not followed); None if absent."""
        try:
            return os.stat(check_name(name), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def is_folder(self, name: str) -> bool:
        status = self.lstat(name)
        return status is not None and stat.S_ISDIR(status.st_mode)

    def exists(self, name: str) -> bool:
        return self.lstat(name) is not None

    def free_name(self, stem: str, tail: str) -> str:
        """A name not taken in this folder for something set aside: stem (cut short to
        fit, a long title being up to 255 bytes itself), then tail, then "-2", "-3"...
        when taken (two set asides in one second). Checked, then used by the caller:
        a name made meanwhile makes its rename fail, never replace a folder's content."""
        for number in range(1, 1000):
            end = tail if number == 1 else f"{tail}-{number}"
            room = NAME_MAX_BYTES - len(end.encode("utf-8", "surrogateescape"))
            short = stem.encode("utf-8", "surrogateescape")[:room]
            name = short.decode("utf-8", "ignore") + end  # no letter cut in two
            if not self.exists(name):
                return name
        raise BadEntry(self._join(stem), "has a thousand copies set aside already")

    def identity(self) -> tuple[int, int]:
        status = os.fstat(self.fd)
        return status.st_dev, status.st_ino

    # -- files -------------------------------------------------------------------------

    def open_file(self, name: str, flags: int, mode: int = 0o666) -> int:
        """A descriptor for a regular file in this folder, never through a link; BadEntry
        for a link, a FIFO, a device, a folder or a hard link (open_regular)."""
        return open_regular(check_name(name), flags, mode, dir_fd=self.fd, shown=self._join(name))

    def read_tail(self, name: str, limit: int) -> bytes | None:
        """The last limit bytes of a file (a log that grows), or None if absent; BadEntry
        if it is not a regular file."""
        try:
            descriptor = self.open_file(name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(descriptor).st_size
            return os.pread(descriptor, limit, max(0, size - limit))
        finally:
            os.close(descriptor)

    def read_bytes(self, name: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        """A file's bytes, or None if absent; BadEntry if it is not a regular file or is
        larger than limit."""
        try:
            descriptor = self.open_file(name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(descriptor, min(1 << 16, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(descriptor)
        if size > limit:
            raise BadEntry(self._join(name), f"is larger than {limit} bytes")
        return b"".join(chunks)

    def read_text(self, name: str, limit: int = MAX_FILE_BYTES) -> str | None:
        data = self.read_bytes(name, limit)
        return None if data is None else data.decode("utf-8", errors="replace")

    def read_json(self, name: str, limit: int = MAX_FILE_BYTES) -> dict | None:
        """A JSON object from a file, or None if absent; BadEntry if it is anything else."""
        data = self.read_bytes(name, limit)
        if data is None:
            return None
        value = parse_json_object(data)
        if value is None:
            raise BadEntry(
                self._join(name), f"is not a JSON object (of at most {MAX_JSON_DEPTH} levels)"
            )
        return value

    def write_atomic(self, name: str, data: str | bytes, mode: int | None = None) -> None:
        """Replace name with data so that readers see the old content or the new, never
        a part: a temporary file in this folder, then a rename (atomic on NFS too).

        The temporary name starts with a dot (scanners pass it over) and is this
        process's and thread's own; one left by a crash of an earlier process with the
        same pid is removed first (mp's own name, and unlinking a link removes the link).
        """
        check_name(name)
        temporary = f".{name[:200]}.{os.getpid()}.{threading.get_ident()}.tmp"
        payload = _encoded(data)
        # O_EXCL makes a new regular file or fails (it never opens a link, a FIFO or
        # anything that was there), so none of open_file's checks are needed: they
        # cost a third of a first reconcile's writes.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(temporary, flags, 0o666, dir_fd=self.fd)
        except FileExistsError:
            try:
                os.unlink(temporary, dir_fd=self.fd)
            except OSError as error:
                raise _in_the_way(self._join(temporary), error) from None
            descriptor = os.open(temporary, flags, 0o666, dir_fd=self.fd)
        try:
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(descriptor, view) :]
                if mode is not None:  # before the rename: never seen without it
                    os.fchmod(descriptor, mode)
            finally:
                os.close(descriptor)
            try:
                os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except OSError as error:
                raise _in_the_way(self._join(name), error) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=self.fd)
            raise

    def create(self, name: str, data: str | bytes = b"") -> None:
        """A new file (FileExistsError if the name is taken, whatever it is)."""
        payload = _encoded(data)
        descriptor = self.open_file(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(descriptor, payload)
        finally:
            os.close(descriptor)

    def open_append(self, name: str) -> int:
        """A descriptor appending to name (made if absent), readable too: for a job's
        log, whose guard rereads its tail to keep it within its cap."""
        return self.open_file(name, os.O_RDWR | os.O_APPEND | os.O_CREAT)

    def touch(self, name: str) -> None:
        """Set name's time to now, making it if absent; through a descriptor checked as
        open_file does, so no link's target gets the time. utime(None) asks the file
        server for its own time, so hosts whose clocks disagree are judged on one clock."""
        descriptor = self.open_file(name, os.O_WRONLY | os.O_CREAT)
        try:
            os.utime(descriptor, None)
        finally:
            os.close(descriptor)

    # -- moving and removing -----------------------------------------------------------

    def rename(self, name: str, target: Folder, target_name: str) -> None:
        """Rename an entry (a link moves as a link) into target; never replaces a
        non-empty folder there."""
        os.rename(
            check_name(name), check_name(target_name), src_dir_fd=self.fd, dst_dir_fd=target.fd
        )

    def unlink(self, name: str) -> None:
        os.unlink(check_name(name), dir_fd=self.fd)

    def rmdir(self, name: str) -> None:
        """Remove an empty sub-folder (OSError if anything is in it)."""
        os.rmdir(check_name(name), dir_fd=self.fd)

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_exception) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


def open_regular(
    name: str, flags: int, mode: int = 0o666, *, dir_fd: int | None = None, shown: str = ""
) -> int:
    """A descriptor for the regular file at name (below dir_fd, if given), with flags;
    BadEntry (naming it as shown) for a link, a FIFO, a device, a folder or a hard link.

    Its type is looked at before it is opened: an O_PATH descriptor opens nothing (a
    device's driver would run on open, a FIFO could block), and the file is then opened
    through that descriptor's /proc/self/fd entry, so the file opened is the one looked
    at even if the name is swapped meanwhile. O_CREAT makes a new file with O_EXCL
    (nothing there to look at), else opens what is there as above."""
    shown = shown or name
    extra = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    while True:
        try:
            path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            try:
                return os.open(name, flags | os.O_EXCL | extra, mode, dir_fd=dir_fd)
            except FileExistsError:
                if flags & os.O_EXCL:
                    raise
                continue  # made meanwhile: look at it
        except OSError as error:
            if error.errno in _REFUSED:
                raise BadEntry(shown, "is not a regular file") from None
            raise
        try:
            if flags & os.O_EXCL and flags & os.O_CREAT:
                raise FileExistsError(errno.EEXIST, "file exists", shown)
            status = os.fstat(path_fd)
            if stat.S_ISLNK(status.st_mode):
                raise BadEntry(shown, "is a symbolic link")
            if not stat.S_ISREG(status.st_mode):
                raise BadEntry(shown, "is not a regular file")
            if status.st_nlink > 1:
                # A hard link to a file elsewhere (root on an NFS client may make one to
                # anything on that filesystem): writing or reading it reaches that file.
                raise BadEntry(shown, f"is a hard link ({status.st_nlink} names share it)")
            # The /proc entry is a link by its nature: followed, to this very inode.
            reopen = (flags & ~(os.O_CREAT | os.O_NOFOLLOW)) | os.O_NONBLOCK | os.O_CLOEXEC
            return os.open(f"/proc/self/fd/{path_fd}", reopen)
        finally:
            os.close(path_fd)


def _in_the_way(path: str, error: OSError) -> Exception:
    """BadEntry, naming the file mp meant to write, when a folder (planted on the share)
    stands where it goes; any other error as it was (a full disk, a lost mount)."""
    if error.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
        return BadEntry(path, "is a folder where mp writes a file; move it away")
    return error


def _encoded(data: str | bytes) -> bytes:
    # A lone surrogate (from a name that is not UTF-8) is written as U+FFFD, not refused.
    return data.encode("utf-8", errors="replace") if isinstance(data, str) else data


def parse_json_object(data: str | bytes | None) -> dict | None:
    """A JSON object of bounded depth from untrusted text, or None. Text that no UTF-8
    can hold (JSON's "\udc80", a lone surrogate) is refused too: it would fail later,
    in SQLite or in a write, far from where it came in."""
    if not data:
        return None
    try:
        # Strict UTF-8 first: json.loads would let encoded surrogates through from bytes.
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if isinstance(data, str):
            text.encode("utf-8")
        value = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return None
    if not isinstance(value, dict):
        return None
    # Now only an escape can make a lone surrogate, and each level needs its own open
    # bracket: the walk (most of a spec's read time) is for the text that could fail it.
    suspect = "\\u" in text or text.count("{") + text.count("[") > MAX_JSON_DEPTH
    if suspect and _unusable(value):
        return None
    return value


def _unusable(value) -> bool:
    """Whether value nests deeper than MAX_JSON_DEPTH or holds text no UTF-8 can hold
    (checked iteratively: no recursion to blow)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((inner, depth + 1) for inner in item.values())
            stack.extend((key, depth + 1) for key in item)
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str) and not encodable(item):
            return True
    return False


def relative_parts(root: str, path: str) -> list[str] | None:
    """path's components below root, or None when path is not inside root (after
    normalising '..'; links are not resolved here: the walk refuses them)."""
    root, path = os.path.normpath(root), os.path.normpath(path)
    if path == root:
        return []
    if not path.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return path[len(root.rstrip(os.sep)) + 1 :].split(os.sep)


def open_below(root: str | Folder, path: str, *, create: bool = False) -> Folder:
    """The folder at path, which must be inside root (a path, or a root already open),
    each step below root checked for links. FileNotFoundError if a step is missing,
    BadEntry if one is a link."""
    root_path = root.path if isinstance(root, Folder) else root
    parts = relative_parts(root_path, path)
    if parts is None:
        raise BadEntry(path, f"is not inside {root_path}")
    if isinstance(root, Folder):
        return root.walk(*parts, create=create)
    with Folder.open_root(root) as top:
        return top.walk(*parts, create=create)


def is_folder(root: str, path: str) -> bool:
    """Whether path is a real folder inside root (every step a folder, none a link)."""
    try:
        with open_below(root, path):
            return True
    except (FileNotFoundError, NotADirectoryError, BadEntry):
        return False


def link_in_path(root: str, path: str) -> str | None:
    """The first step of path below root that exists and is not a real folder (a link,
    a file), or None when every existing step is a folder. For paths a script will be
    given: it would follow a link there out of the roots."""
    parts = relative_parts(root, path)
    if parts is None:
        return path
    try:
        folder = Folder.open_root(root)
    except OSError:
        return None  # the root itself is checked by the command, not here
    try:
        for index, name in enumerate(parts):
            try:
                inner = folder.child(name)
            except FileNotFoundError:
                return None  # the script makes the rest; nothing there to follow
            except OSError:  # a name too long for the filesystem, say: nothing to give
                return os.path.join(root, *parts[: index + 1])
            except BadEntry:
                status = folder.lstat(name)
                last = index == len(parts) - 1
                if last and status is not None and stat.S_ISREG(status.st_mode):
                    return None  # an existing file at the end: a destination's own file
                return os.path.join(root, *parts[: index + 1])
            folder.close()
            folder = inner
        return None
    finally:
        folder.close()


# An item folder holds a few dozen files; a scan that meets more stops and says so.
HAZARD_SCAN_LIMIT = 10_000


# What a playlist or concat list starts with: ffmpeg reads such a file by its contents
# whatever its name, and then opens every file it names, anywhere on the host.
PLAYLIST_STARTS = (b"#EXTM3U", b"ffconcat", b"#EXT-X-", b"<?xml")


# The reference filing script hands FileBot a second name of each file it files, in
# `.pipeline/filing/`, named `.mp-part.*`; one left by a run that was killed is no hazard
# (the next run removes it).
FILING_LINKS = (".pipeline", "filing")
FILING_LINK_PREFIX = ".mp-part."


def _filing_links(top: Folder) -> set[tuple[int, int]]:
    """(device, inode) of the regular files the filing script linked in `top`'s
    `.pipeline/filing/`, if any."""
    try:
        with top.walk(*FILING_LINKS) as filing:
            found = set()
            for entry in filing.entries():
                status = entry.stat(follow_symlinks=False)
                if entry.name.startswith(FILING_LINK_PREFIX) and stat.S_ISREG(status.st_mode):
                    found.add((status.st_dev, status.st_ino))
            return found
    except (FileNotFoundError, NotADirectoryError, BadEntry, OSError):
        return set()


def _unsafe_file(
    folder: Folder, name: str, status: os.stat_result, linked: set[tuple[int, int]]
) -> bool:
    if not stat.S_ISREG(status.st_mode):
        return True
    if status.st_nlink > 1 and not (
        status.st_nlink == 2 and (status.st_dev, status.st_ino) in linked
    ):
        return True
    return _is_playlist(folder, name)


def _is_playlist(folder: Folder, name: str) -> bool:
    try:
        # Not open_file: a file with the filing script's second name is read here too.
        descriptor = os.open(
            check_name(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            dir_fd=folder.fd,
        )  # fmt: skip
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            return True
    except (OSError, BadEntry):
        return True  # changed since it was listed: not a file to hand over either
    try:
        start = os.read(descriptor, 16).lstrip(b"\xef\xbb\xbf \t\r\n")
    finally:
        os.close(descriptor)
    return start.startswith(PLAYLIST_STARTS)


def hazard_in(root: str, path: str) -> str | None:
    """The first entry in the folder at path (recursively) that a script run as root
    must not be handed: a symbolic link, a FIFO or device, a file with a second name
    (a hard link), or a playlist. Scripts follow links, block on FIFOs and write
    through hard links (`date > .pipeline/x.timestamp` once overwrote a file outside the
    roots through a planted link), and ffmpeg follows a playlist named title.mkv to any
    file on the host. None when the folder is clean or absent."""
    try:
        top = open_below(root, path)
    except FileNotFoundError:
        return None
    except (BadEntry, OSError):
        return path
    linked = _filing_links(top)
    pending, seen = [(top, path)], 0
    try:
        while pending:
            folder, where = pending.pop()
            with folder:
                for entry in folder.entries():
                    seen += 1
                    if seen > HAZARD_SCAN_LIMIT:
                        return f"{where} (more than {HAZARD_SCAN_LIMIT} entries)"
                    inside = os.path.join(where, entry.name)
                    status = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(status.st_mode):
                        pending.append((folder.child(entry.name), inside))
                    elif _unsafe_file(folder, entry.name, status, linked):
                        return inside
    except FileNotFoundError:
        return None  # moved on while being looked at: the run finds out
    except (BadEntry, OSError):
        return path
    finally:
        for folder, _where in pending:
            folder.close()
    return None
