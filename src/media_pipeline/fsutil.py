"""Filesystem helpers every writer uses: atomic writes and errors that mean 'share gone'."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator

from media_pipeline.errors import SafetyRefusal

# errno values that mean the share is not there (unmounted, stale NFS handle, server gone),
# as opposed to a missing file: these make a command refuse rather than act.
SHARE_GONE_ERRNOS = frozenset(
    {errno.ESTALE, errno.ENOTCONN, errno.EIO, errno.EHOSTDOWN, errno.ETIMEDOUT}
)


def write_atomic(path: str, content: str | bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part.

    The temporary file sits in the same folder so that the rename stays on one filesystem
    (rename is atomic there, on NFS too), starts with a dot so scanners pass it over, and
    is named for this process and thread so no other writer shares it. It is created
    with the usual 0666-minus-umask mode (not mkstemp's 0600): other hosts and people
    read these files.
    """
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = content.encode("utf-8") if isinstance(content, str) else content
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_text(path: str, limit: int = 1 << 20) -> str | None:
    """A small file's text, or None when it is absent or unreadable as text.

    Marker files come from a shared folder anyone can write, so their size is capped and
    bad encodings are tolerated rather than trusted.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return data.decode("utf-8", errors="replace")


def check_staging_root(staging_root: str) -> None:
    """Refuse (exit 3) unless staging_root is a reachable folder."""
    try:
        os.stat(staging_root)
    except FileNotFoundError:
        raise SafetyRefusal(
            f"staging_root {staging_root} does not exist; is the share mounted?"
        ) from None
    except OSError as error:
        if error.errno in SHARE_GONE_ERRNOS:
            raise SafetyRefusal(
                f"staging_root {staging_root} is unreachable ({error.strerror}); "
                "is the share mounted?"
            ) from None
        raise SafetyRefusal(
            f"staging_root {staging_root} cannot be used ({error.strerror})"
        ) from None
    if not os.path.isdir(staging_root):
        raise SafetyRefusal(f"staging_root {staging_root} is not a folder")


@contextlib.contextmanager
def local_lock(path: str, timeout: float) -> Iterator[None]:
    """An exclusive flock on a local file, given up after timeout seconds (SafetyRefusal).

    For locks among processes of one host only: flock over NFS is not to be trusted.
    Plain fcntl rather than filelock because `mp claim` runs every 30 s on every worker
    and filelock alone costs it a sixth of its start-up time.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SafetyRefusal(
                        f"lock {path} is still held by another process after {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(descriptor)
