"""The `.pipeline/` folder of an item's stage folder: reading its markers, writing ours.

Scripts write `<stage>.done` and `<stage>.timestamp`; the controller writes `state`,
`metadata.json` and `approval.<gate>.json`, always atomically. Everything read here came
from a shared folder, so it is parsed defensively: a bad file is reported, not trusted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from media_pipeline.fsutil import read_text, write_atomic

PIPELINE_DIR = ".pipeline"
STATE_FILE = "state"
METADATA_FILE = "metadata.json"
DONE_SUFFIX = ".done"
APPROVAL_PREFIX = "approval."


@dataclass
class FolderMarkers:
    """What one item folder's `.pipeline/` holds, as read."""

    folder: str
    done: frozenset[str] = frozenset()
    state_text: str | None = None
    metadata_text: str | None = None
    approval_texts: dict[str, str] = field(default_factory=dict)

    @property
    def metadata(self) -> dict | None:
        return parse_json_object(self.metadata_text)


def parse_json_object(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read_folder_markers(folder: str) -> FolderMarkers:
    """Read the markers of one item folder. A folder without `.pipeline/` has none."""
    pipeline = os.path.join(folder, PIPELINE_DIR)
    done = set()
    markers = FolderMarkers(folder)
    try:
        entries = list(os.scandir(pipeline))
    except (FileNotFoundError, NotADirectoryError):
        return markers
    for entry in entries:
        name = entry.name
        if name.endswith(DONE_SUFFIX):
            done.add(name[: -len(DONE_SUFFIX)])
        elif name == STATE_FILE:
            markers.state_text = read_text(entry.path, limit=4096)
        elif name == METADATA_FILE:
            markers.metadata_text = read_text(entry.path)
        elif name.startswith(APPROVAL_PREFIX) and name.endswith(".json"):
            gate = name[len(APPROVAL_PREFIX) : -len(".json")]
            text = read_text(entry.path)
            if text is not None:
                markers.approval_texts[gate] = text
    markers.done = frozenset(done)
    return markers


def state_text(state: str) -> str:
    return f"{state}\n"


def metadata_text(metadata: dict) -> str:
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_controller_file(folder: str, name: str, text: str) -> bool:
    """Atomically write one of the controller's files into folder/.pipeline/. False, and
    nothing written, when folder itself is gone: a script moved the item on meanwhile,
    and recreating the folder would leave a ghost of the item behind."""
    pipeline = os.path.join(folder, PIPELINE_DIR)
    try:
        write_atomic(os.path.join(pipeline, name), text)
    except FileNotFoundError:
        # Most folders already have .pipeline/ (the scripts' markers live there), so it is
        # made only when the first try finds it missing; mkdir, never makedirs.
        try:
            os.mkdir(pipeline)
        except FileExistsError:
            pass
        except FileNotFoundError:
            return False
        write_atomic(os.path.join(pipeline, name), text)
    return True
