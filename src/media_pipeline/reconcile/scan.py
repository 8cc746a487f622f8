"""Walk the stage folders under staging_root and read every item's markers.

Reads only, but for one change that a real run asks for: an item folder whose name is
not in NFC is renamed to it (rename_to_normal). The one place reconcile learns what the
filesystem says. One `scandir` per
folder and one per item's `.pipeline/`, so a no-op reconcile costs about a bare walk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from media_pipeline.errors import SafetyRefusal
from media_pipeline.items.names import (
    FOLDER_TYPES,
    OPTION_LIKE,
    TYPE_FOLDERS,
    ItemKey,
    normal_name,
    printable,
    taken_for_an_option,
)
from media_pipeline.pipeline import STAGE_FOLDERS as STAGES
from media_pipeline.share.files import BadEntry, Folder
from media_pipeline.share.fsutil import check_staging_root
from media_pipeline.share.markers import FolderMarkers, read_folder_markers


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


def _subfolders(folder: Folder, warnings: list[str]) -> list[str]:
    """The names of the visible sub-folders of folder. A link is passed over with a
    warning (following it would read, and write, outside the share); so are names that
    are not valid UTF-8, since they cannot be stored or shown faithfully."""
    found = []
    for entry in folder.entries():
        name = entry.name
        # Dot names are ours (.pipeline), NFS's (.nfs1234) or a writer's temporary files.
        if name.startswith("."):
            continue
        try:
            if entry.is_symlink():
                warnings.append(
                    f"{printable(os.path.join(folder.path, name))} is a symbolic link; "
                    "passed over (mp never follows links on the share)"
                )
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            warnings.append(
                f"folder {printable(os.path.join(folder.path, name))} is passed over: its "
                "name is not valid UTF-8"
            )
            continue
        found.append(name)
    return found


def _names(key: ItemKey) -> tuple[str, ...]:
    """The folder names below the type folder that the key gives."""
    return (key.title, key.disc_label) if key.disc_label else (key.title,)


def _rename_item_folder(
    type_folder: Folder, names: tuple[str, ...], normal: tuple[str, ...]
) -> str | None:
    """Rename the item folder at names (below type_folder) to normal; a sentence when it
    was not, and why."""
    source = type_folder.walk(*names[:-1])
    try:
        target = type_folder.walk(*normal[:-1], create=True)
    except BaseException:
        source.close()
        raise
    try:
        there = target.lstat(normal[-1])
        here = source.lstat(names[-1])
        if here is None:
            return None  # moved on meanwhile: the next run sees where
        if there is not None and (there.st_dev, there.st_ino) != (here.st_dev, here.st_ino):
            return (
                f"folder {printable(os.path.join(source.path, names[-1]))} is not renamed to "
                f"its NFC form: {printable(os.path.join(target.path, normal[-1]))} is there"
            )
        if there is None:  # else the filesystem holds one name for both forms already
            source.rename(names[-1], target, normal[-1])
        return None
    finally:
        source.close()
        target.close()


def _option_like(key: ItemKey, type_path: str, warnings: list[str]) -> bool:
    """Whether the item folder's title or disc label begins with '-': it is passed over
    with a warning, never taken in, so no job ever gives it to a script (which would
    read it as an option). A person renames the folder; then it is taken in."""
    names = (key.title, key.disc_label) if key.disc_label else (key.title,)
    if not any(taken_for_an_option(name) for name in names):
        return False
    warnings.append(
        f"folder {printable(os.path.join(type_path, *names))} is passed over: its name "
        f"{OPTION_LIKE}; rename it without the '-' to take it in"
    )
    return True


class StagingWalk:
    """The items under the stage folders: listed first (folder names only), then read a
    batch at a time, so that memory holds every item's name but only one batch of
    markers; a first run over 100,000 items must fit a small container.

    Every folder is opened below its parent's descriptor without following links.
    Raises SafetyRefusal when the share fails under it (stale handle, I/O error) or a
    stage folder is a link, and check_unchanged() does when staging_root or a stage
    folder is no longer the folder it was: a half-read tree must never be taken for a
    tree where items vanished.
    """

    def __init__(self, staging_root: str):
        check_staging_root(staging_root)
        self.root = staging_root
        self.warnings: list[str] = []
        self.stages_present: list[str] = []
        # Each item and the stage folders it has, as bits in STAGES order.
        self.items: dict[ItemKey, int] = {}
        # (item, stage) -> its folder's names on disk, where they are not its key's (not
        # in NFC): few, so this is not a second copy of every name.
        self._disk_names: dict[tuple[ItemKey, str], tuple[str, ...]] = {}
        # (stage, type folder) -> that folder, open for the batches.
        self._type_folders: dict[tuple[str, str], Folder] = {}
        with self._share_errors():
            self._top = Folder.open_root(staging_root)
            self._identities = {"": _identity(staging_root)}
            for index, stage in enumerate(STAGES):
                try:
                    stage_folder = self._top.child(stage)
                except FileNotFoundError:
                    continue
                except BadEntry as error:
                    raise SafetyRefusal(
                        f"{error}; a stage folder must be a real folder on the share, "
                        "refusing to read through it"
                    ) from None
                with stage_folder:
                    self.stages_present.append(stage)
                    self._identities[stage] = stage_folder.identity()
                    self._list_stage(stage_folder, stage, 1 << index)

    def _list_stage(self, stage_folder: Folder, stage: str, bit: int) -> None:
        for type_name in _subfolders(stage_folder, self.warnings):
            item_type = FOLDER_TYPES.get(type_name)
            if item_type is None:
                continue
            try:
                type_folder = stage_folder.child(type_name)
            except (FileNotFoundError, BadEntry):
                continue  # replaced since the listing: the next run sees it
            self._type_folders[stage, type_name] = type_folder
            for title in _subfolders(type_folder, self.warnings):
                if item_type == "movie":
                    found: list[tuple[str, ...]] = [(title,)]
                else:
                    try:
                        with type_folder.child(title) as show:
                            discs = _subfolders(show, self.warnings)
                    except (FileNotFoundError, BadEntry):
                        continue
                    found = [(title, disc) for disc in discs]
                for names in found:
                    key = ItemKey(item_type, *(normal_name(name) for name in names))
                    if not _option_like(key, type_folder.path, self.warnings):
                        self._add(key, stage, bit, names, type_folder.path)

    def _add(self, key: ItemKey, stage: str, bit: int, names: tuple[str, ...], where: str):
        """One item folder, by its names on disk; its key is of their NFC form. Of two
        folders in one stage whose names differ only in form, the one in NFC is the
        item's and the other is passed over (mp never merges folders)."""
        normal = _names(key)
        if self.items.get(key, 0) & bit:
            other = names
            if names == normal:  # this one is the item's; the one seen first is not
                other = self._disk_names.pop((key, stage), normal)
            self.warnings.append(
                f"folder {printable(os.path.join(where, *other))} is passed over: another "
                f"folder there has the same name in another Unicode form (NFC); move what "
                "it holds into that one, or rename it"
            )
            return
        if names != normal:
            self._disk_names[key, stage] = names
        self.items[key] = self.items.get(key, 0) | bit

    def _read(self, key: ItemKey, stage: str) -> FolderMarkers | None:
        """One item folder's markers; None when it is gone or not safe to read."""
        type_folder = self._type_folders.get((stage, TYPE_FOLDERS[key.type]))
        if type_folder is None:
            return None
        names = self._disk_names.get((key, stage), _names(key))
        path = os.path.join(type_folder.path, *names)
        try:
            with type_folder.walk(*names) as item:
                markers = read_folder_markers(item, path)
        except FileNotFoundError:
            return None  # moved on by a script since the listing
        except BadEntry as error:
            self.warnings.append(f"{printable(str(error))}; passed over")
            return None
        self.warnings.extend(printable(problem) for problem in markers.problems)
        return markers

    def batches(self, size: int) -> Iterator[dict[ItemKey, ScannedItem]]:
        """The items with their markers, `size` at a time, in key order."""
        keys = sorted(self.items)
        for start in range(0, len(keys), size):
            batch = {}
            with self._share_errors():
                for key in keys[start : start + size]:
                    item = ScannedItem(key)
                    stages = self.items[key]
                    for index, stage in enumerate(STAGES):
                        if stages & 1 << index and (markers := self._read(key, stage)):
                            item.folders[stage] = markers
                    if item.folders:
                        batch[key] = item
            yield batch

    def rename_to_normal(
        self,
        batch: dict[ItemKey, ScannedItem],
        *,
        dry_run: bool,
        live: Callable[[], AbstractSet[str]] = frozenset,
    ) -> list[str]:
        """Rename the batch's item folders whose names are not in NFC to that form, so that
        the key names the folder in every stage (a job's folders are made from the key).
        Only a folder holding a `.done` marker: its script has ended (the markers are its
        last lines), and none is writing into it by its old name. Returns what was done,
        or with dry_run what would be. A tv disc moves into its show's folder of the NFC
        name (made if absent); the old show folder is left, as mp deletes only what it
        made."""
        done = []
        for key, item in batch.items():
            for stage, markers in item.folders.items():
                names = self._disk_names.get((key, stage))
                if names is None or not markers.done:
                    continue
                if ItemKey(key.type, *names).uid in live():
                    # A job made before titles were taken in as NFC (by the folder's
                    # name on disk) is queued or running: its paths name this folder.
                    self.warnings.append(
                        f"{printable(markers.folder)} is not renamed to its NFC form while a "
                        "job of it is queued or running"
                    )
                    continue
                type_folder = self._type_folders[stage, TYPE_FOLDERS[key.type]]
                said = f"{printable(markers.folder)} to its NFC form, {printable(key.name)}"
                if dry_run:
                    done.append(f"rename {said}")
                    continue
                try:
                    moved = _rename_item_folder(type_folder, names, _names(key))
                except (OSError, BadEntry) as error:
                    # One folder that cannot be renamed (a permission, a link put in
                    # meanwhile) stops nothing else; a share gone is seen by
                    # check_unchanged, next.
                    moved = f"{printable(str(error))}; {printable(markers.folder)} not renamed"
                if moved is not None:
                    self.warnings.append(moved)
                    continue
                del self._disk_names[key, stage]
                markers.folder = key.folder(self.root, stage)
                done.append(f"renamed {said}")
        return done

    def check_unchanged(self) -> None:
        """A folder that vanishes during the walk is an item a script moved, and passed
        over; but if the root or a stage folder went (unmounted, renamed away), all
        that followed was read as empty. So they must be the very folders they were."""
        with self._share_errors():
            changed = [
                stage or self.root
                for stage, before in self._identities.items()
                if (_identity(self.root) if not stage else _stage_identity(self.root, stage))
                != before
            ]
        if changed:
            raise SafetyRefusal(
                f"staging_root {self.root} changed while being read ({', '.join(changed)} "
                "gone or replaced); is the share still mounted? Nothing more was changed"
            )

    @property
    def root_folder(self) -> Folder:
        """staging_root, open: writers walk from it rather than open it again each time."""
        return self._top

    def close(self) -> None:
        for folder in self._type_folders.values():
            folder.close()
        self._type_folders.clear()
        self._top.close()

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


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _stage_identity(root: str, stage: str) -> tuple[int, int] | None:
    """A stage folder's own identity (a link put in its place is not followed)."""
    try:
        status = os.stat(os.path.join(root, stage), follow_symlinks=False)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino
