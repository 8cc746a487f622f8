"""A job is done only when its outputs are there: present, not empty and, where ffprobe
is installed, media that is readable to the end it declares and lasts about as long as
what went in."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from media_pipeline.items.names import printable
from media_pipeline.jobs.spec import JobSpec
from media_pipeline.library.destination import item_folder
from media_pipeline.library.media import MEDIA_SUFFIXES, probe, probe_to_end
from media_pipeline.pipeline import BY_KIND
from media_pipeline.share.files import BadEntry, Folder, open_below, relative_parts

# An output lasts "as long" as an input within this share of it, or this many seconds
# (container and codec frame boundaries move short titles by a fraction of a second).
TOLERANCE_SHARE = 0.05
TOLERANCE_SECONDS = 0.5


class Outputs:
    """The visible regular files of a job's folder (or the one file a filing job made),
    found without following a link (share/files.py), and probed one at a time through a
    descriptor, so nothing planted there is read outside the roots and a folder of
    thousands of files needs no more than one descriptor. A context manager: the folder
    is closed on leaving it."""

    def __init__(self, roots: tuple[str, str], path: str):
        self.path = path
        self.folder: Folder | None = None
        self.files: list[tuple[str, str, int]] = []  # (name, path, size)
        root = next((r for r in roots if relative_parts(r, path) is not None), None)
        if root is None:
            return
        try:
            self.folder = open_below(root, path)
            names, where = sorted(self.folder.names()), path
        except FileNotFoundError:
            return
        except BadEntry:  # a file, not a folder: a filing job's destination
            try:
                self.folder = open_below(root, os.path.dirname(path))
            except (FileNotFoundError, BadEntry):
                return
            names, where = [os.path.basename(path)], os.path.dirname(path)
        for name in names:
            status = None if name.startswith(".") else self.folder.lstat(name)
            if status is not None and stat.S_ISREG(status.st_mode):
                # Shown in reasons and logs: a name that is not UTF-8 is shown escaped.
                self.files.append((name, printable(os.path.join(where, name)), status.st_size))

    def sizes(self) -> list[int]:
        return [size for _name, _path, size in self.files]

    def media(self) -> Iterator[tuple[str, int | str]]:
        """(path, descriptor) of each media file in turn, the descriptor open only until
        the next is asked for; (path, why) for one that cannot be opened safely (a hard
        link, or replaced by a link since the listing): never passed over unread."""
        if self.folder is None:
            return
        for name, path, _size in self.files:
            if not name.lower().endswith(MEDIA_SUFFIXES):
                continue
            try:
                descriptor = self.folder.open_file(name, os.O_RDONLY)
            except FileNotFoundError:
                yield path, "is gone since it was listed"
                continue
            except BadEntry as error:
                yield path, error.problem
                continue
            try:
                yield path, descriptor
            finally:
                os.close(descriptor)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *_exception) -> None:
        if self.folder is not None:
            self.folder.close()


def _files_into_library(spec: JobSpec) -> bool:
    return BY_KIND[spec.kind].into_library


def output_place(spec: JobSpec) -> str:
    return (spec.destination or spec.output_dir) if _files_into_library(spec) else spec.output_dir


def measure_bytes(spec: JobSpec) -> tuple[int, int]:
    """Bytes that went in and came out, for `mp stats` (the input folder is measured after
    the job, so a filing script that moved its input reports 0 in)."""
    places = (
        filed_places(spec) if _files_into_library(spec) and spec.files else [output_place(spec)]
    )
    with Outputs(spec.roots, spec.input_dir) as inputs:
        bytes_in = sum(inputs.sizes()) if spec.input_dir else 0
    bytes_out = 0
    for place in places:
        with Outputs(spec.roots, place) as outputs:
            bytes_out += sum(outputs.sizes())
    return bytes_in, bytes_out


def filed_places(spec: JobSpec) -> list[str]:
    """Where a filing job with a file list put each file."""
    base = item_folder(spec.key.type, spec.destination)
    return [os.path.join(base, place) for _source, place in spec.files or ()]


def verify_outputs(spec: JobSpec) -> str | None:
    """None when the job's outputs check out, else the reason they do not. A filing job
    with a file list: each file it was to file (episodes, specials and extras alike)."""
    if _files_into_library(spec) and spec.files:
        for place in filed_places(spec):
            problem = _verify_place(spec, place, compare=False)
            if problem is not None:
                return problem
        return None
    # The filing script moved its inputs: nothing is left to compare with.
    compare = bool(spec.input_dir) and not _files_into_library(spec)
    return _verify_place(spec, output_place(spec), compare=compare)


def _verify_place(spec: JobSpec, where: str, *, compare: bool) -> str | None:
    with (
        Outputs(spec.roots, spec.input_dir if compare else "") as inputs,
        Outputs(spec.roots, where) as outputs,
    ):
        if not outputs.files:
            return f"no output files in {where}"
        for _name, path, size in outputs.files:
            if size == 0:
                return f"output {path} is empty"
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return None
        # Each ffprobe is mostly its own start-up: the inputs are probed on a thread
        # while the outputs are read to their end, so the two overlap.
        with ThreadPoolExecutor(max_workers=1) as pool:
            durations = pool.submit(_durations, ffprobe, inputs)
            probed = []
            for path, descriptor in outputs.media():
                if isinstance(descriptor, str):
                    return f"output {path} {descriptor}"
                described, problem = probe_to_end(ffprobe, descriptor)
                problem = _media_problem(described, problem)
                if problem is not None:
                    return f"output {path} {problem}"
                probed.append((path, described["duration"]))
            input_durations = durations.result()
        for path, duration in probed:
            if input_durations and not any(
                abs(duration - source) <= max(source * TOLERANCE_SHARE, TOLERANCE_SECONDS)
                for source in input_durations
            ):
                lengths = ", ".join(f"{source:.1f}" for source in input_durations)
                return (
                    f"output {path} lasts {duration:.1f} s; no input lasts about as long "
                    f"({lengths} s)"
                )
    return None


def _durations(ffprobe: str, inputs: Outputs) -> list[float]:
    return [
        duration
        for _path, descriptor in inputs.media()
        if isinstance(descriptor, int) and (duration := probe(ffprobe, descriptor).get("duration"))
    ]


def _media_problem(described: dict, problem: str | None) -> str | None:
    """Why one media output, as probe_to_end read it, is not a whole readable file, as
    words to follow its name; None if it is."""
    # The header's duration is only what the writer meant to write (ffmpeg puts its
    # input's duration there before the first packet): the file's end must reach it.
    if problem is not None and not described:
        return problem  # ffprobe could not run, finish or read the file at all
    if not (described.get("video") or described.get("audio") or described.get("subtitles")):
        return "is not readable media (ffprobe finds no tracks in it)"
    return problem  # probe_to_end fails a file declaring no duration
