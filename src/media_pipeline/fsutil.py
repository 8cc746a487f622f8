"""Filesystem helpers every writer uses: atomic writes and errors that mean 'share gone'."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile

# errno values that mean the share is not there (unmounted, stale NFS handle, server gone),
# as opposed to a missing file: these make a command refuse rather than act.
SHARE_GONE_ERRNOS = frozenset(
    {errno.ESTALE, errno.ENOTCONN, errno.EIO, errno.EHOSTDOWN, errno.ETIMEDOUT}
)


def write_atomic(path: str, content: str | bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part.

    The temporary file sits in the same folder so that the rename stays on one filesystem
    (rename is atomic there, on NFS too); it starts with a dot so scanners pass it over.
    """
    folder = os.path.dirname(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
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
