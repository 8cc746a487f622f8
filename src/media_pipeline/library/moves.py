"""Moving files an item has filed to other places in the library, never over another file.

What `mp refile` does to a filed item, and dispatch to what a half-filed item had filed
before its destination was decided again. Every step is below library_root with no link
followed. A file moves by a new name made with link(2), which fails rather than replace
anything there, and its old name is then removed: a rename that never overwrites.
Where the two places are on different filesystems (a folder of the library mounted from
elsewhere), or hard links are not to be had (some CIFS mounts), the file is copied to a
hidden name beside its new place, compared byte for byte with the original, given its
new name, and only then is the old one removed. Folders a move leaves empty go; nothing
else is ever removed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from media_pipeline.items.names import printable
from media_pipeline.share.files import BadEntry, Folder, open_below, open_regular

CHUNK = 1 << 20
# link(2) refused for what the filesystem is, not for the names given: copy instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}


class MoveRefused(Exception):
    """A move that must not happen; the message is one sentence naming the file."""


@dataclass(frozen=True)
class Move:
    """One file: from its place in the library to its new one (both absolute paths)."""

    source: str
    target: str

    def shown(self) -> str:
        return f"{printable(self.source)} -> {printable(self.target)}"


def in_order(moves: Iterable[Move]) -> list[Move]:
    """The moves in an order that frees each new place before a file moves into it, as
    renumbering in one folder needs (e01-e02 as e02-e03: e02 moves on first). Moves that
    go round in a circle (e01 and e02 swapped) are broken by one file moving first to a
    hidden name in its own folder; a name taken there is refused as any taken place is."""
    waiting, done = list(moves), []
    while waiting:
        sources = {move.source for move in waiting}
        ready = [move for move in waiting if move.target not in sources]
        if not ready:
            first = waiting[0]
            aside = os.path.join(
                os.path.dirname(first.source), f".mp-move.{os.path.basename(first.source)}"[:200]
            )
            done.append(Move(first.source, aside))
            waiting[0] = Move(aside, first.target)
            continue
        done.extend(ready)
        waiting = [move for move in waiting if move not in ready]
    return done


def move_problem(library_root: str, moves: Iterable[Move]) -> str | None:
    """Why these moves cannot all be made as the library stands now, or None: a file to
    move is not there (or is not a plain file), two go to one place, or a new place is
    taken by a file that is not itself moving away. Reads only."""
    moves = list(moves)
    leaving = {move.source for move in moves}
    going_to: dict[str, str] = {}
    for move in moves:
        if move.target in going_to:
            return (
                f"{printable(going_to[move.target])} and {printable(move.source)} would both "
                f"be moved to {printable(move.target)}; nothing moved"
            )
        going_to[move.target] = move.source
    # A file set aside under a hidden name (in_order) is there only once moved there.
    aside = {move.target for move in moves} & leaving
    for move in moves:
        try:
            source_kind = "file" if move.source in aside else _kind(library_root, move.source)
            target_kind = _kind(library_root, move.target)
        except BadEntry as error:
            return f"{error}; nothing moved"
        if source_kind != "file":
            return f"{printable(move.source)} is not in the library as a file; nothing moved"
        if target_kind is not None and move.target not in leaving:
            return (
                f"{printable(move.target)} is in the library already; mp never overwrites "
                "a file: move it aside first (nothing moved)"
            )
    return None


def _kind(library_root: str, path: str) -> str | None:
    """'file', 'other' or None (nothing there) for path, its folders checked for links."""
    try:
        with open_below(library_root, os.path.dirname(path)) as folder:
            status = folder.lstat(os.path.basename(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    if status is None:
        return None
    return "file" if stat.S_ISREG(status.st_mode) else "other"


def apply_moves_in_library(library_root: str, moves: Iterable[Move]) -> list[Move]:
    """Make the moves, in the order given (in_order's); the ones made. MoveRefused
    (nothing of that file changed) when a new place is taken or a copy does not match:
    the moves before it stay made, and a run again goes on from there."""
    made = []
    emptied: set[str] = set()
    for move in moves:
        _move_one(library_root, move)
        made.append(move)
        emptied.add(os.path.dirname(move.source))
    for folder in sorted(emptied, key=len, reverse=True):
        _remove_if_empty(library_root, folder)
    return made


def _move_one(library_root: str, move: Move) -> None:
    source_name, target_name = os.path.basename(move.source), os.path.basename(move.target)
    try:
        with (
            open_below(library_root, os.path.dirname(move.source)) as source_folder,
            open_below(library_root, os.path.dirname(move.target), create=True) as target_folder,
        ):
            try:
                os.link(
                    source_name,
                    target_name,
                    src_dir_fd=source_folder.fd,
                    dst_dir_fd=target_folder.fd,
                    follow_symlinks=False,
                )
            except FileExistsError:
                raise MoveRefused(
                    f"{printable(move.target)} is in the library already; mp never "
                    "overwrites a file: move it aside first"
                ) from None
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
                _copy_verified(source_folder, source_name, target_folder, target_name, move)
            source_folder.unlink(source_name)
    except BadEntry as error:
        raise MoveRefused(f"{error}; not moved") from None
    except OSError as error:
        raise MoveRefused(f"{move.shown()}: {error.strerror or error}; not moved") from None


def _copy_verified(
    source_folder: Folder, source_name: str, target_folder: Folder, target_name: str, move: Move
) -> None:
    """Copy to a hidden name beside the target, compare, then give it its name (link(2),
    or where there are no links a rename made only while the name is free)."""
    part = target_folder.free_name(f".mp-move.{target_name}"[:200], ".part")
    source = open_regular(source_name, os.O_RDONLY, dir_fd=source_folder.fd, shown=move.source)
    try:
        copy = open_regular(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                            dir_fd=target_folder.fd)  # fmt: skip
        try:
            while chunk := os.read(source, CHUNK):
                os.write(copy, chunk)
            os.fsync(copy)
        finally:
            os.close(copy)
        if not _same_bytes(source, target_folder, part):
            target_folder.unlink(part)
            raise MoveRefused(f"the copy of {printable(move.source)} does not match it; not moved")
    finally:
        os.close(source)
    try:
        os.link(part, target_name, src_dir_fd=target_folder.fd, dst_dir_fd=target_folder.fd)
        target_folder.unlink(part)
    except FileExistsError:
        target_folder.unlink(part)
        raise MoveRefused(
            f"{printable(move.target)} is in the library already; mp never overwrites a file"
        ) from None
    except OSError as error:
        if error.errno not in _NO_LINK:
            raise
        if target_folder.exists(target_name):
            target_folder.unlink(part)
            raise MoveRefused(
                f"{printable(move.target)} is in the library already; mp never overwrites a file"
            ) from None
        target_folder.rename(part, target_folder, target_name)


def _same_bytes(source: int, folder: Folder, name: str) -> bool:
    os.lseek(source, 0, os.SEEK_SET)
    other = open_regular(name, os.O_RDONLY, dir_fd=folder.fd)
    try:
        while True:
            one, two = os.read(source, CHUNK), os.read(other, CHUNK)
            if one != two:
                return False
            if not one:
                return True
    finally:
        os.close(other)


def same_file_bytes(first: str, second: str) -> bool:
    """Whether two regular files (no link followed at their last step) hold the same
    bytes: a file filed and the staged file it was filed from."""
    try:
        one = open_regular(first, os.O_RDONLY)
    except (OSError, BadEntry):
        return False
    try:
        if os.fstat(one).st_size != _size(second):
            return False
        with Folder.open_root(os.path.dirname(second)) as folder:
            return _same_bytes(one, folder, os.path.basename(second))
    except (OSError, BadEntry):
        return False
    finally:
        os.close(one)


def _size(path: str) -> int | None:
    try:
        return os.lstat(path).st_size
    except OSError:
        return None


def _remove_if_empty(library_root: str, folder: str) -> None:
    """Remove folder, then its parent, while they are empty and below a top folder of
    the library (Movies, TV Shows stay)."""
    parts = os.path.relpath(folder, library_root).split(os.sep)
    while len(parts) > 1:
        try:
            with open_below(library_root, os.path.join(library_root, *parts[:-1])) as parent:
                parent.rmdir(parts[-1])
        except (OSError, BadEntry):
            return
        parts = parts[:-1]
