"""The `.pipeline/` folder of an item's stage folder: reading its markers, writing ours.

Scripts write `<stage>.done` and `<stage>.timestamp`; the controller writes `state`,
`metadata.json` and `approval.<gate>.json`, always atomically. Everything here is on
the share, so it is read and written only through `share.Folder`: a `.pipeline` or an
item folder that is a link is never followed, and a bad file is reported, not trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from media_pipeline.share.files import BadEntry, Folder, open_below, parse_json_object

PIPELINE_DIR = ".pipeline"
STATE_FILE = "state"
METADATA_FILE = "metadata.json"
DONE_SUFFIX = ".done"
APPROVAL_PREFIX = "approval."
# Controller files are small; anything larger was not written by mp.
CONTROLLER_FILE_BYTES = 64 * 1024


@dataclass
class FolderMarkers:
    """What one item folder's `.pipeline/` holds, as read."""

    folder: str
    done: frozenset[str] = frozenset()
    state_text: str | None = None
    metadata_text: str | None = None
    approval_texts: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files passed over, and why

    @property
    def metadata(self) -> dict | None:
        return parse_json_object(self.metadata_text)


def approval_file(gate: str) -> str:
    return f"{APPROVAL_PREFIX}{gate}.json"


def read_folder_markers(item: Folder, path: str) -> FolderMarkers:
    """Read the markers of one open item folder (path names it in messages). A folder
    without `.pipeline/` has none; BadEntry if `.pipeline` is a link or a file."""
    markers = FolderMarkers(path)
    try:
        pipeline = item.child(PIPELINE_DIR)
    except FileNotFoundError:
        return markers
    done = set()
    with pipeline:
        for entry in pipeline.entries():
            name = entry.name
            try:
                if name.endswith(DONE_SUFFIX):
                    done.add(name[: -len(DONE_SUFFIX)])
                elif name == STATE_FILE:
                    markers.state_text = pipeline.read_text(name, 4096)
                elif name == METADATA_FILE:
                    markers.metadata_text = pipeline.read_text(name, CONTROLLER_FILE_BYTES)
                elif name.startswith(APPROVAL_PREFIX) and name.endswith(".json"):
                    gate = name[len(APPROVAL_PREFIX) : -len(".json")]
                    text = pipeline.read_text(name, CONTROLLER_FILE_BYTES)
                    if text is not None:
                        markers.approval_texts[gate] = text
            except BadEntry as error:
                markers.problems.append(f"{error}; passed over")
    markers.done = frozenset(done)
    return markers


def state_text(state: str) -> str:
    return f"{state}\n"


def metadata_text(metadata: dict) -> str:
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_controller_files(
    staging_root: str | Folder, folder: str, files: list[tuple[str, str]]
) -> bool:
    """Atomically write the controller's files (name, text) into folder/.pipeline/, each
    replaced whole. False, and nothing written, when folder itself is gone: a script
    moved the item on meanwhile, and recreating the folder would leave a ghost of the
    item behind. BadEntry when a step to it is a link."""
    try:
        item = open_below(staging_root, folder)
    except FileNotFoundError:
        return False
    with item, item.child(PIPELINE_DIR, create=True) as pipeline:
        for name, text in files:
            pipeline.write_atomic(name, text)
    return True


def has_marker(staging_root: str, folder: str, kind: str) -> bool:
    """Whether folder's `.pipeline/<kind>.done` exists (read without following links)."""
    try:
        with open_below(staging_root, folder) as item, item.child(PIPELINE_DIR) as pipeline:
            return pipeline.exists(kind + DONE_SUFFIX)
    except (OSError, BadEntry):  # absent, a link, a name too long: no marker mp can use
        return False


def set_marker_aside(staging_root: str, folder: str, kind: str, why: str) -> bool:
    """Rename `<kind>.done` to `<kind>.done.<why>` (kept, no longer a marker): a job whose
    outputs failed must not be taken as done because its script wrote the marker.
    Whether there was one to move."""
    try:
        with open_below(staging_root, folder) as item, item.child(PIPELINE_DIR) as pipeline:
            pipeline.rename(kind + DONE_SUFFIX, pipeline, f"{kind}{DONE_SUFFIX}.{why}")
    except (OSError, BadEntry):
        return False
    return True


def write_decision(staging_root: str, folder: str, gate: str, text: str) -> None:
    """The decision file of a gate, in the item's folder for that gate's stage."""
    with (
        open_below(staging_root, folder) as item,
        item.child(PIPELINE_DIR, create=True) as pipeline,
    ):
        pipeline.write_atomic(approval_file(gate), text)


def archive_decision_file(staging_root: str, folder: str, gate: str, suffix: str) -> bool:
    """Rename a gate's decision file aside (kept) so it is neither in force nor restored;
    whether there was one."""
    name = approval_file(gate)
    try:
        with open_below(staging_root, folder) as item, item.child(PIPELINE_DIR) as pipeline:
            if not pipeline.exists(name):
                return False
            stem = name.removesuffix(".json")
            # Two in one second (a retry, then --ask-again) keep both files.
            aside = pipeline.free_name(stem, f".{suffix}.json")
            pipeline.rename(name, pipeline, aside)
    except (FileNotFoundError, BadEntry):
        return False
    return True
