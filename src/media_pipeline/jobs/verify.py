"""A job is done only when its outputs are there: present, not empty and, where ffprobe
is installed, media that is readable to the end it declares and lasts about as long as
what went in."""

from __future__ import annotations

import contextlib
import os
import shutil

from media_pipeline.approve.probe import MEDIA_SUFFIXES, probe, probe_to_end
from media_pipeline.jobs.spec import JobSpec
from media_pipeline.share import BadEntry, Folder, open_below, relative_parts

# An output lasts "as long" as an input within this share of it, or this many seconds
# (container and codec frame boundaries move short titles by a fraction of a second).
TOLERANCE_SHARE = 0.05
TOLERANCE_SECONDS = 0.5


class Outputs:
    """The visible regular files of a job's folder (or the one file a filing job made),
    each open by descriptor: found without following a link (share.py), sized and
    probed through that descriptor, so nothing planted there is read outside the roots.
    A context manager: the descriptors are closed on leaving it."""

    def __init__(self, roots: tuple[str, str], path: str):
        self.path = path
        self.files: list[tuple[str, int]] = []  # (path, descriptor)
        root = next((r for r in roots if relative_parts(r, path) is not None), None)
        if root is None:
            return
        try:
            with open_below(root, path) as folder:
                for name in sorted(folder.names()):
                    if not name.startswith("."):
                        self._open(folder, name, os.path.join(path, name))
        except FileNotFoundError:
            return
        except BadEntry:  # a file, not a folder: a filing job's destination
            try:
                with open_below(root, os.path.dirname(path)) as folder:
                    self._open(folder, os.path.basename(path), path)
            except (FileNotFoundError, BadEntry):
                return

    def _open(self, folder: Folder, name: str, path: str) -> None:
        # A folder, a link, a FIFO: not an output file.
        with contextlib.suppress(FileNotFoundError, BadEntry):
            self.files.append((path, folder.open_file(name, os.O_RDONLY)))

    def sizes(self) -> list[int]:
        return [os.fstat(descriptor).st_size for _path, descriptor in self.files]

    def media(self) -> list[tuple[str, int]]:
        return [(path, fd) for path, fd in self.files if path.lower().endswith(MEDIA_SUFFIXES)]

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *_exception) -> None:
        for _path, descriptor in self.files:
            os.close(descriptor)
        self.files = []


def output_place(spec: JobSpec) -> str:
    return (spec.destination or spec.output_dir) if spec.kind == "filebot" else spec.output_dir


def measure_bytes(spec: JobSpec) -> tuple[int, int]:
    """Bytes that went in and came out, for `mp stats` (the input folder is measured after
    the job, so a filing script that moved its input reports 0 in)."""
    with (
        Outputs(spec.roots, spec.input_dir) as inputs,
        Outputs(spec.roots, output_place(spec)) as outputs,
    ):
        return sum(inputs.sizes()) if spec.input_dir else 0, sum(outputs.sizes())


def verify_outputs(spec: JobSpec) -> str | None:
    """None when the job's outputs check out, else the reason they do not."""
    where = output_place(spec)
    # The filing script moved its inputs: nothing is left to compare with.
    compare = bool(spec.input_dir) and spec.kind != "filebot"
    with (
        Outputs(spec.roots, spec.input_dir if compare else "") as inputs,
        Outputs(spec.roots, where) as outputs,
    ):
        if not outputs.files:
            return f"no output files in {where}"
        for (path, _descriptor), size in zip(outputs.files, outputs.sizes(), strict=True):
            if size == 0:
                return f"output {path} is empty"
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return None
        input_durations = [
            duration
            for _path, descriptor in inputs.media()
            if (duration := probe(ffprobe, descriptor).get("duration"))
        ]
        for path, descriptor in outputs.media():
            problem = _media_problem(ffprobe, descriptor, input_durations)
            if problem is not None:
                return f"output {path} {problem}"
    return None


def _media_problem(ffprobe: str, source: str | int, input_durations: list[float]) -> str | None:
    """Why one media output is not a whole file as long as an input, as words to follow
    its name; None if it is."""
    # The header's duration is only what the writer meant to write (ffmpeg puts its
    # input's duration there before the first packet): the file's end must reach it.
    described, problem = probe_to_end(ffprobe, source)
    if problem is not None and not described:
        return problem  # ffprobe could not run, finish or read the file at all
    if not (described.get("video") or described.get("audio") or described.get("subtitles")):
        return "is not readable media (ffprobe finds no tracks in it)"
    if problem is not None:
        return problem
    duration = described["duration"]  # probe_to_end fails a file declaring none
    if input_durations and not any(
        abs(duration - source) <= max(source * TOLERANCE_SHARE, TOLERANCE_SECONDS)
        for source in input_durations
    ):
        lengths = ", ".join(f"{source:.1f}" for source in input_durations)
        return f"lasts {duration:.1f} s; no input lasts about as long ({lengths} s)"
    return None
