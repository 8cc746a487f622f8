"""A job is done only when its outputs are there: present, not empty and, where ffprobe
is installed, media that is readable to the end it declares and lasts about as long as
what went in."""

from __future__ import annotations

import os
import shutil

from media_pipeline.approve.probe import MEDIA_SUFFIXES, probe, probe_to_end
from media_pipeline.jobs.spec import JobSpec

# An output lasts "as long" as an input within this share of it, or this many seconds
# (container and codec frame boundaries move short titles by a fraction of a second).
TOLERANCE_SHARE = 0.05
TOLERANCE_SECONDS = 0.5


def _files(path: str) -> list[str]:
    """The visible regular files of a folder, or the file itself."""
    if os.path.isfile(path):
        return [path]
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [e.path for e in entries if not e.name.startswith(".") and e.is_file()]


def _is_media(path: str) -> bool:
    return path.lower().endswith(MEDIA_SUFFIXES)


def _durations(ffprobe: str, paths: list[str]) -> list[float]:
    found = []
    for path in paths:
        if _is_media(path):
            duration = probe(ffprobe, path).get("duration")
            if duration:
                found.append(duration)
    return found


def output_place(spec: JobSpec) -> str:
    return (spec.destination or spec.output_dir) if spec.kind == "filebot" else spec.output_dir


def measure_bytes(spec: JobSpec) -> tuple[int, int]:
    """Bytes that went in and came out, for `mp stats` (the input folder is measured after
    the job, so a filing script that moved its input reports 0 in)."""
    inputs = _files(spec.input_dir) if spec.input_dir else []
    outputs = _files(output_place(spec))

    def total(paths: list[str]) -> int:
        return sum(os.path.getsize(path) for path in paths if os.path.exists(path))

    return total(inputs), total(outputs)


def verify_outputs(spec: JobSpec) -> str | None:
    """None when the job's outputs check out, else the reason they do not."""
    where = output_place(spec)
    # The filing script moved its inputs: nothing is left to compare with.
    inputs = _files(spec.input_dir) if spec.input_dir and spec.kind != "filebot" else []
    outputs = _files(where)
    if not outputs:
        return f"no output files in {where}"
    for path in outputs:
        if os.path.getsize(path) == 0:
            return f"output {path} is empty"
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    input_durations = _durations(ffprobe, inputs)
    for path in outputs:
        if not _is_media(path):
            continue
        problem = _media_problem(ffprobe, path, input_durations)
        if problem is not None:
            return f"output {path} {problem}"
    return None


def _media_problem(ffprobe: str, path: str, input_durations: list[float]) -> str | None:
    """Why one media output is not a whole file as long as an input, as words to follow
    its name; None if it is."""
    # The header's duration is only what the writer meant to write (ffmpeg puts its
    # input's duration there before the first packet): the file's end must reach it.
    described, problem = probe_to_end(ffprobe, path)
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
