"""Walk the stage folders under staging_root and read every item's markers.

Reads only; the one place reconcile learns what the filesystem says. One `scandir` per
folder and one per item's `.pipeline/`, so a no-op reconcile costs about a bare walk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from media_pipeline.errors import SafetyRefusal
from media_pipeline.fsutil import check_staging_root
from media_pipeline.items import FOLDER_TYPES, STAGES, ItemKey, printable
from media_pipeline.markers import FolderMarkers, read_folder_markers


@dataclass
class ScannedItem:
    key: ItemKey
    # stage -> that stage's folder for the item, in pipeline order
    folders: dict[str, FolderMarkers] = field(default_factory=dict)

    @property
    def done(self) -> frozenset[str]:
        # A marker counts in whichever of the item's folders it is: a script run by hand
        # may have written it beside its input rather than its output.
        found: frozenset[str] = frozenset()
        for markers in self.folders.values():
            found |= markers.done
        return found

    @property
    def current(self) -> FolderMarkers:
        """The furthest stage folder: where the controller writes the item's files."""
        return self.folders[max(self.folders, key=STAGES.index)]

    def latest_with(self, attribute: str) -> FolderMarkers | None:
        """The furthest folder holding a given controller file, for restoring after a
        database loss."""
        for stage in reversed(STAGES):
            markers = self.folders.get(stage)
            if markers is not None and getattr(markers, attribute) is not None:
                return markers
        return None


@dataclass
class ScanResult:
    items: dict[ItemKey, ScannedItem]
    stages_present: tuple[str, ...]
    warnings: list[str]


def _subfolders(path: str, warnings: list[str]) -> list[tuple[str, str]]:
    """(name, path) of the visible sub-folders of path; names that are not valid UTF-8
    are reported and passed over, since they cannot be stored or shown faithfully."""
    found = []
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        name = entry.name
        # Dot names are ours (.pipeline), NFS's (.nfs1234) or a writer's temporary files.
        if name.startswith("."):
            continue
        try:
            if not entry.is_dir():
                continue
        except OSError:
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            warnings.append(
                f"folder {printable(entry.path)} is passed over: its name is not valid UTF-8"
            )
            continue
        found.append((name, entry.path))
    return found


def _item_folders(stage_path: str, warnings: list[str]):
    for type_folder, type_path in _subfolders(stage_path, warnings):
        item_type = FOLDER_TYPES.get(type_folder)
        if item_type is None:
            continue
        for title, title_path in _subfolders(type_path, warnings):
            if item_type == "movie":
                yield ItemKey("movie", title), title_path
            else:
                for disc_label, disc_path in _subfolders(title_path, warnings):
                    yield ItemKey("tv", title, disc_label), disc_path


class StagingWalk:
    """The items under the stage folders: listed first (folder names only), then read a
    batch at a time, so that memory holds every item's name but only one batch of
    markers; a first run over 100,000 items must fit a small container.

    Raises SafetyRefusal when the share fails under it (stale handle, I/O error), and
    check_unchanged() does when staging_root or a stage folder is no longer the folder
    it was: a half-read tree must never be taken for a tree where items vanished.
    """

    def __init__(self, staging_root: str):
        check_staging_root(staging_root)
        self.root = staging_root
        self.warnings: list[str] = []
        self.stages_present: list[str] = []
        # Each item and the stage folders it has, as bits in STAGES order.
        self.items: dict[ItemKey, int] = {}
        with self._share_errors():
            self._identities = {"": _identity(staging_root)}
            for index, stage in enumerate(STAGES):
                stage_path = os.path.join(staging_root, stage)
                if not os.path.isdir(stage_path):
                    continue
                self.stages_present.append(stage)
                self._identities[stage] = _identity(stage_path)
                for key, _folder in _item_folders(stage_path, self.warnings):
                    self.items[key] = self.items.get(key, 0) | 1 << index

    def batches(self, size: int) -> Iterator[dict[ItemKey, ScannedItem]]:
        """The items with their markers, `size` at a time, in key order."""
        keys = sorted(self.items)
        for start in range(0, len(keys), size):
            batch = {}
            with self._share_errors():
                for key in keys[start : start + size]:
                    item = batch[key] = ScannedItem(key)
                    stages = self.items[key]
                    for index, stage in enumerate(STAGES):
                        if stages & 1 << index:
                            item.folders[stage] = read_folder_markers(key.folder(self.root, stage))
            yield batch

    def check_unchanged(self) -> None:
        """A folder that vanishes during the walk is an item a script moved, and passed
        over; but if the root or a stage folder went (unmounted, renamed away), all
        that followed was read as empty. So they must be the very folders they were."""
        with self._share_errors():
            changed = [
                stage or self.root
                for stage, before in self._identities.items()
                if _identity(os.path.join(self.root, stage)) != before
            ]
        if changed:
            raise SafetyRefusal(
                f"staging_root {self.root} changed while being read ({', '.join(changed)} "
                "gone or replaced); is the share still mounted? Nothing more was changed"
            )

    @contextlib.contextmanager
    def _share_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            where = f": {error.filename}" if error.filename else ""
            raise SafetyRefusal(
                f"staging_root {self.root} failed while being read "
                f"({error.strerror or error}{where}); is the share still mounted?"
            ) from None


def scan_staging(staging_root: str) -> ScanResult:
    """Every item folder under the stage folders, with its markers, all at once."""
    walk = StagingWalk(staging_root)
    items: dict[ItemKey, ScannedItem] = {}
    for batch in walk.batches(len(walk.items) or 1):
        items.update(batch)
    walk.check_unchanged()
    return ScanResult(items, tuple(walk.stages_present), walk.warnings)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino
