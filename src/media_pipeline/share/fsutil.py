"""Filesystem facts: errors that mean 'share gone', the staging root's presence, lock
folders and filesystem types. Files on the share are opened only by `share/files.py`."""

from __future__ import annotations

import errno
import os
import re

from media_pipeline.errors import SafetyRefusal
from media_pipeline.share.files import Folder

# errno values that mean the share is not there (unmounted, stale NFS handle, server gone),
# as opposed to a missing file: these make a command refuse rather than act.
SHARE_GONE_ERRNOS = frozenset(
    {errno.ESTALE, errno.ENOTCONN, errno.EIO, errno.EHOSTDOWN, errno.ETIMEDOUT}
)


def _read_local(path: str) -> str | None:
    """A file of this host's own (the kernel's mount table), or None if unreadable."""
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 22).decode("utf-8", errors="replace")
    except OSError:
        return None


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


def local_lock_folder() -> str:
    """Where a host's own lock files go: $MP_LOCK_DIR when it is a folder we may write
    (the tests' own), else the folder systemd makes for the claim units ($RUNTIME_DIRECTORY), else
    /run/lock, else the temp folder (a user without root on a distribution where
    /run/lock is root's)."""
    chosen = os.environ.get("MP_LOCK_DIR", "")
    if chosen and os.access(chosen, os.W_OK):
        return chosen
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime and os.access(runtime, os.W_OK):
        return runtime
    if os.access("/run/lock", os.W_OK):
        return "/run/lock"
    import tempfile  # only where /run/lock is not ours to write

    return tempfile.gettempdir()


# Filesystems on this host's own disks: a rename there that reports ENOENT did not happen.
# On a network filesystem it may have (the server can answer a retransmitted rename with
# ENOENT after doing the first), and so may on anything not listed here.
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "bcachefs", "tmpfs", "overlay"}
)


def filesystem_type(path: str, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem path is on ("ext4", "nfs4"), from the kernel's mount
    table (mountinfo: that table's text, read from /proc when not given); None if it
    cannot be told."""
    if mountinfo is None:
        mountinfo = _read_local("/proc/self/mountinfo")
        if mountinfo is None:
            return None
    target = os.path.realpath(path)
    found, found_length = None, -1
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        parts, kinds = fields.split(), after.split()
        if len(parts) < 5 or not kinds:
            continue
        # Mount points escape space, tab, newline and backslash as octal (\040).
        point = re.sub(r"\\([0-7]{3})", lambda match: chr(int(match[1], 8)), parts[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        # The longest mount point holding the path is its filesystem; of equal ones,
        # the later line, mounted over the earlier.
        if inside and len(point) >= found_length:
            found, found_length = kinds[0], len(point)
    return found


def write_file_atomic(path: str, text: str) -> str:
    """Replace a file of this host (not the share's: share.Folder.write_atomic is for
    those) so that readers see the old text or the new, never a part; the path."""
    folder, name = os.path.split(os.path.abspath(path))
    with Folder.open_root(folder) as target:
        target.write_atomic(name, text)
    return path
