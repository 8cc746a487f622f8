"""A job's spec.json: built by the controller, checked by the worker as untrusted input.

A spec comes from a shared folder that any host (or person) can write. A worker runs
nothing until the spec parses, agrees with its own name, names a kind this worker runs
with a script from this host's config, and points only inside the configured roots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from media_pipeline.config.hosts import ITEM_TYPES
from media_pipeline.config.settings import Config
from media_pipeline.items.names import ItemKey, taken_for_an_option
from media_pipeline.jobs.queue import JobName, back_off_time, make_job_id
from media_pipeline.library.destination import disc_season, proposed_destination
from media_pipeline.library.disc import Drive
from media_pipeline.library.file_roles import place_allowed, plain_name
from media_pipeline.library.filing_place import place_problem
from media_pipeline.pipeline import BY_KIND, FILING_STAGE, JOB_KINDS, Stage
from media_pipeline.share.files import link_in_path, relative_parts


class SpecError(Exception):
    """The spec is not one this worker may run; the message says why."""


class UnsignedFieldError(SpecError):
    """A field a retry rewrites (and the signature leaves out) is not as mp writes it."""


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
    roots: tuple[str, str] = ("", "")  # staging_root, library_root: where its paths are
    # A TV disc's filing job: (season, its first episode's number in the season).
    episodes: tuple[int, int] | None = None
    # A filing job's files: (name in its input folder, where it goes below the item's
    # library folder), as dispatch settled them from the roles approved at remux_review.
    files: tuple[tuple[str, str], ...] | None = None
    # A rip started by a disc in a drive (mp rip --device): that drive, /dev/srN, and
    # the host it is in (only that host's worker claims the rip).
    drive: Drive | None = None

    @property
    def stage(self) -> Stage:
        """The pipeline's row of the job's kind (a parsed spec's kind is one of them)."""
        return BY_KIND[self.kind]

    @property
    def marker_folder(self) -> str:
        """The item folder that gets the job's `<kind>.done` marker."""
        return self.input_dir if self.stage.marks_input else self.output_dir

    def template_fields(self) -> dict[str, str]:
        return {
            "input_dir": self.input_dir,
            "output_dir": self.output_dir,
            "title": self.key.title,
            "type": self.key.type,
            "disc_label": self.key.disc_label,
            "destination": self.destination,
            "job_id": self.job_id,
            "season": str(self.episodes[0]) if self.episodes else "",
            "first_episode": str(self.episodes[1]) if self.episodes else "",
        }


def job_dirs(config: Config, kind: str, key: ItemKey) -> tuple[str, str]:
    source, target = BY_KIND[kind].reads, BY_KIND[kind].writes
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
    episodes: tuple[int, int] | None = None,
    drive: Drive | None = None,
) -> dict:
    input_dir, output_dir = job_dirs(config, kind, key)
    if BY_KIND[kind].into_library and not destination:
        destination = proposed_destination(key, config.library_root, config.library_names)
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
        **({"episodes": {"season": episodes[0], "first": episodes[1]}} if episodes else {}),
        **({"device": drive.device} if drive else {}),
        **({"host": drive.host} if drive and drive.host else {}),
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


def folder_name(text: str) -> bool:
    """Whether text can be one item folder's name as the scanner sees them: not empty,
    no '/', not hidden (the scanner passes over dot names; '..' would climb), not taken
    for an option by the script it reaches as "{title}" (the scanner passes those over
    too)."""
    fits = len(text.encode("utf-8", "surrogateescape")) <= 255  # one name on any filesystem
    return (
        bool(text)
        and fits
        and "/" not in text
        and not text.startswith(".")
        and not taken_for_an_option(text)
    )


def _check_paths(config: Config, kind: str, key: ItemKey, data: dict) -> tuple[str, str, str]:
    """A spec's paths must be its item's own folders for its kind, as this host's config
    names them (a forged spec once filed `library/Movies` itself), with no link on the
    way to them, and a filing destination the item's own place (library/filing_place.py)."""
    expected = job_dirs(config, kind, key)
    found = []
    for field, wanted in zip(("input_dir", "output_dir"), expected, strict=True):
        path = _text(data, field, allow_empty=not wanted)
        same = os.path.normpath(path) == os.path.normpath(wanted) if wanted else not path
        if not same:
            raise SpecError(f"field '{field}' is not this item's {field.split('_')[0]} folder")
        root = config.library_root if wanted == config.library_root else config.staging_root
        if wanted and (link := link_in_path(root, wanted)) is not None:
            raise SpecError(f"field '{field}': {link} is a link or not a folder")
        found.append(wanted)
    destination = _text(data, "destination", allow_empty=True)
    if destination and kind != FILING_STAGE.kind:
        raise SpecError(f"field 'destination' is for {FILING_STAGE.kind} jobs, not {kind}")
    if destination:
        parts = relative_parts(config.library_root, destination)
        if not os.path.isabs(destination) or not parts:
            raise SpecError("field 'destination' is not a path inside library_root")
        if (link := link_in_path(config.library_root, destination)) is not None:
            raise SpecError(f"field 'destination': {link} is a link or not a folder")
        if destination.endswith(os.sep):
            destination = os.path.join(config.library_root, *parts) + os.sep
        else:
            destination = os.path.join(config.library_root, *parts)
    if kind == FILING_STAGE.kind and (
        problem := place_problem(config.library_root, key, destination)
    ):
        raise SpecError(f"field 'destination' {problem}")
    return found[0], found[1], destination


def _episodes(data: dict, kind: str, key: ItemKey) -> tuple[int, int] | None:
    """A filing job's episode numbering: a season 0-99 and a first episode 1-999, for a
    TV disc's filing job only."""
    episodes = data.get("episodes")
    if episodes is None:
        return None
    if kind != FILING_STAGE.kind or key.type != "tv" or not isinstance(episodes, dict):
        raise SpecError("field 'episodes' is for the filing job of a tv disc")
    season, first = episodes.get("season"), episodes.get("first")
    if not (type(season) is int and type(first) is int and 0 <= season <= 99 and 1 <= first <= 999):
        raise SpecError("field 'episodes' needs a season 0-99 and a first episode 1-999")
    if season != disc_season(key.disc_label):
        raise SpecError(f"field 'episodes': season {season} is not the one its disc label names")
    return season, first


MAX_FILES = 500


def _files(
    data: dict, kind: str, key: ItemKey, destination: str
) -> tuple[tuple[str, str], ...] | None:
    """A filing job's file list: each a plain file name of its input folder and a place
    of one or two plain names below the item's library folder, never the same twice (a
    forged list may not climb out of the item's folder, nor split the lines the script
    reads)."""
    files = data.get("files")
    if files is None:
        return None
    if kind != FILING_STAGE.kind or not isinstance(files, list) or len(files) > MAX_FILES:
        raise SpecError("field 'files' is for a filing job, a list of [file, place] pairs")
    pairs = []
    for pair in files:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise SpecError("field 'files' holds an entry that is not a [file, place] pair")
        source, target = pair
        parts = target.split("/")
        if not plain_name(source) or len(parts) > 2 or not all(plain_name(p) for p in parts):
            raise SpecError(
                f"field 'files': '{source[:80]}' -> '{target[:80]}' is not a plain name"
            )
        if not place_allowed(key.type, destination, source, target, disc_season(key.disc_label)):
            raise SpecError(
                f"field 'files': '{target[:80]}' is not a name filing gives '{source[:80]}'"
            )
        pairs.append((source, target))
    if len({target for _source, target in pairs}) != len(pairs):
        raise SpecError("field 'files' sends two files to one place")
    return tuple(pairs)


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
    if (
        key.type not in ITEM_TYPES
        or not folder_name(key.title)
        or (not folder_name(key.disc_label) if key.type == "tv" else key.disc_label)
    ):
        raise SpecError("field 'item' does not name a movie or tv item folder")
    if key.type != name.item_type or key.uid != name.item_uid or item.get("uid") != key.uid:
        raise SpecError("field 'item' does not match the job's name")
    input_dir, output_dir, destination = _check_paths(config, kind, key, data)
    try:
        drive = Drive.of_spec(data, kind)
    except ValueError as error:
        raise SpecError(str(error)) from None
    not_before = back_off_time(data.get("not_before", 0))
    if not_before is None:
        raise UnsignedFieldError("field 'not_before' is not a time")
    try:
        attempts = _whole(data, "attempts")
    except SpecError as error:
        raise UnsignedFieldError(str(error)) from None
    return JobSpec(
        job_id=job_id,
        kind=kind,
        key=key,
        input_dir=input_dir,
        output_dir=output_dir,
        destination=destination,
        priority=_integer(data, "priority"),
        attempts=attempts,
        max_attempts=max(1, _whole(data, "max_attempts")),
        created_at=_text(data, "created_at"),
        not_before=float(not_before),
        raw=data,
        roots=(config.staging_root, config.library_root),
        episodes=_episodes(data, kind, key),
        files=_files(data, kind, key, destination),
        drive=drive,
    )
