"""A job's spec.json: built by the controller, checked by the worker as untrusted input.

A spec comes from a shared folder that any host (or person) can write. A worker runs
nothing until the spec parses, agrees with its own name, names a kind this worker runs
with a script from this host's config, and points only inside the configured roots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from media_pipeline.config import ITEM_TYPES, JOB_KINDS, Config
from media_pipeline.destination import proposed_destination
from media_pipeline.items import ItemKey
from media_pipeline.jobs.queue import JobName, make_job_id

# Where each kind reads from and writes to (stage folders), and which folder gets its
# `.done` marker: the filebot script marks its input, the others their output.
KIND_STAGES = {
    "rip": (None, "1-ripped"),
    "remux": ("1-ripped", "2-remuxed"),
    "transcode": ("2-remuxed", "3-transcoded"),
    "filebot": ("3-transcoded", None),
}
MARKER_IN_INPUT = {"filebot"}


class SpecError(Exception):
    """The spec is not one this worker may run; the message says why."""


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    kind: str
    key: ItemKey
    input_dir: str
    output_dir: str
    destination: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: str
    not_before: float
    raw: dict

    @property
    def marker_path(self) -> str:
        folder = self.input_dir if self.kind in MARKER_IN_INPUT else self.output_dir
        return os.path.join(folder, ".pipeline", f"{self.kind}.done")

    def template_fields(self) -> dict[str, str]:
        return {
            "input_dir": self.input_dir,
            "output_dir": self.output_dir,
            "title": self.key.title,
            "type": self.key.type,
            "disc_label": self.key.disc_label,
            "destination": self.destination,
            "job_id": self.job_id,
        }


def job_dirs(config: Config, kind: str, key: ItemKey) -> tuple[str, str]:
    source, target = KIND_STAGES[kind]
    input_dir = key.folder(config.staging_root, source) if source else ""
    output_dir = key.folder(config.staging_root, target) if target else config.library_root
    return input_dir, output_dir


def build_spec(
    config: Config,
    kind: str,
    key: ItemKey,
    *,
    priority: int,
    now: datetime,
    destination: str | None = None,
) -> dict:
    input_dir, output_dir = job_dirs(config, kind, key)
    if kind == "filebot" and not destination:
        destination = proposed_destination(key, config.library_root)
    return {
        "id": make_job_id(kind, key, priority, now),
        "kind": kind,
        "item": {
            "uid": key.uid,
            "type": key.type,
            "title": key.title,
            "disc_label": key.disc_label,
        },
        "input_dir": input_dir,
        "output_dir": output_dir,
        "destination": destination or "",
        "priority": priority,
        "attempts": 0,
        "max_attempts": config.jobs.max_attempts,
        "created_at": now.isoformat(timespec="seconds"),
        "not_before": 0,
    }


def _text(data: dict, field: str, *, allow_empty: bool = False) -> str:
    value = data.get(field)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise SpecError(f"field '{field}' is missing or not text")
    if "\0" in value:
        raise SpecError(f"field '{field}' holds a NUL character")
    return value


def _whole(data: dict, field: str) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"field '{field}' is not a whole number")
    return value


def _integer(data: dict, field: str) -> int:
    value = data.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"field '{field}' is not a whole number")
    return value


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    """Whether path, with symlinks and '..' resolved, is inside one of roots."""
    resolved = os.path.realpath(path)
    for root in roots:
        real_root = os.path.realpath(root)
        if resolved == real_root or resolved.startswith(real_root.rstrip(os.sep) + os.sep):
            return True
    return False


def parse_spec(data: dict | None, name: JobName, config: Config) -> JobSpec:
    """Check an untrusted spec against its job's name and this host's config."""
    if data is None:
        raise SpecError("spec.json is missing or is not a JSON object")
    job_id = _text(data, "id")
    if job_id != name.job_id:
        raise SpecError(f"spec id '{job_id[:80]}' does not match the job's folder")
    kind = _text(data, "kind")
    if kind not in JOB_KINDS or kind != name.kind:
        raise SpecError(f"kind '{kind[:40]}' is not the job's kind or not a known kind")
    item = data.get("item")
    if not isinstance(item, dict):
        raise SpecError("field 'item' is missing or not an object")
    key = ItemKey(
        _text(item, "type"), _text(item, "title"), _text(item, "disc_label", allow_empty=True)
    )
    if key.type not in ITEM_TYPES or "/" in key.title or "/" in key.disc_label:
        raise SpecError("field 'item' does not name a movie or tv item folder")
    if key.type != name.item_type or key.uid != name.item_uid or item.get("uid") != key.uid:
        raise SpecError("field 'item' does not match the job's name")
    roots = (config.staging_root, config.library_root)
    input_dir = _text(data, "input_dir", allow_empty=kind == "rip")
    output_dir = _text(data, "output_dir")
    destination = _text(data, "destination", allow_empty=True)
    for field, path in (
        ("input_dir", input_dir),
        ("output_dir", output_dir),
        ("destination", destination),
    ):
        if path and (not os.path.isabs(path) or not _inside(path, roots)):
            raise SpecError(f"field '{field}' is outside staging_root and library_root")
    if destination and not _inside(destination, (config.library_root,)):
        raise SpecError("field 'destination' is outside library_root")
    not_before = data.get("not_before", 0)
    if isinstance(not_before, bool) or not isinstance(not_before, int | float):
        raise SpecError("field 'not_before' is not a number")
    return JobSpec(
        job_id=job_id,
        kind=kind,
        key=key,
        input_dir=input_dir,
        output_dir=output_dir,
        destination=destination,
        priority=_integer(data, "priority"),
        attempts=_whole(data, "attempts"),
        max_attempts=max(1, _whole(data, "max_attempts")),
        created_at=_text(data, "created_at"),
        not_before=float(not_before),
        raw=data,
    )
