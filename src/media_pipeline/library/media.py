"""What is in an item's folder, for a person deciding at a gate: files, sizes and, when
ffprobe is on this host, duration, video and each audio and subtitle track; and whether
a media file really reaches the end it declares."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess

from media_pipeline.share.files import BadEntry, open_below

# The demuxers of the containers in MEDIA_SUFFIXES, and no others: ffprobe takes a file by
# its contents, and a text file named x.mkv that is an HLS playlist would make it open
# any file on this host that the playlist names.
DEMUXERS = "matroska,mov,mpegts,mpeg,avi"
MEDIA_SUFFIXES = (".mkv", ".mp4", ".m4v", ".m2ts", ".ts", ".avi", ".mov", ".webm", ".mpg")
PROBE_SECONDS = 30

# The end check seeks far past any real end (about 115 days) and reads the packets from
# where the demuxer lands: on its last index entry (MKV cues, MP4 moov, AVI idx1: the
# last keyframe) or, in TS and MPEG-PS, near the last timestamp by bisection. A file
# without an index (a truncated MKV has no cues: ffmpeg writes them last) is scanned to
# its end first, bounded by END_READ_SECONDS. Seeking to "just before the declared end"
# lands on the same keyframe, but needs the declared duration first: a second ffprobe
# process, and starting one (~0.1 s) is most of the cost of the whole check.
FAR_SECONDS = 10_000_000.0
# At most this much of the file's time is read after the point the seek landed on, so
# ffprobe's output stays small even where a seek lands far from the end.
END_WINDOW_SECONDS = 120.0
# A file is truncated when its last packet ends more than this before its declared end.
# Healthy files end within a frame of it; the allowance covers streams that stop a
# little apart and containers that round (ffmpeg's own MKV, MP4, TS, AVI, MPEG-PS: all
# within 0.1 s in our measurements).
END_TOLERANCE_SECONDS = 2.0
END_TOLERANCE_SHARE = 0.005
# Reading the end takes a fraction of a second where the file has an index or can be
# bisected; this bounds the scan of a file without one.
END_READ_SECONDS = 60
# Tracks whose packets say how far a file reaches. Attached pictures (cover art) are one
# packet at 0, and data tracks (MP4 timecode) carry no media.
TIMED_TRACKS = ("video", "audio", "subtitle")


# A gate shows a disc's titles; a folder filled with junk must not hold the database lock
# for minutes while each file is probed.
MAX_LISTED = 500
MAX_PROBED = 60


def describe_files(root: str, folder: str) -> list[dict]:
    """One entry per visible regular file in folder (not recursive), which must be below
    root, media files probed. The folder is opened step by step below root and each file
    by descriptor (share/files.py: never through a symbolic link), and ffprobe reads that
    descriptor: a link planted in an item folder is neither listed nor followed."""
    try:
        opened = open_below(root, folder)
    except (BadEntry, OSError):
        return []
    ffprobe = shutil.which("ffprobe")
    files: list[dict] = []
    probed = 0
    with opened:
        for name in sorted(opened.names()):
            status = opened.lstat(name) if not name.startswith(".") else None
            if status is None or not stat.S_ISREG(status.st_mode):
                continue
            if len(files) == MAX_LISTED:
                files.append({"name": "(more files not listed)", "size": 0})
                break
            # A name that is not UTF-8 is shown with U+FFFD: it must fit the database.
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            described = {"name": shown, "size": status.st_size}
            media = name.lower().endswith(MEDIA_SUFFIXES)
            if ffprobe and media and probed < MAX_PROBED:
                probed += 1
                with contextlib.suppress(BadEntry, OSError):
                    descriptor = opened.open_file(name, os.O_RDONLY)
                    try:
                        described.update(probe(ffprobe, descriptor))
                    finally:
                        os.close(descriptor)
            files.append(described)
    return files


def _run_ffprobe(
    ffprobe: str, options: list[str], source: str | int, timeout: float
) -> subprocess.CompletedProcess:
    """ffprobe with options on source: a path, or an open descriptor, which ffprobe reads
    through /proc/self/fd (so the file opened, with O_NOFOLLOW say, is the file read, not
    whatever the path names by then). Raises subprocess.TimeoutExpired and OSError."""
    keep: tuple[int, ...] = ()
    if isinstance(source, int):
        target, keep = f"/proc/self/fd/{source}", (source,)
    else:
        target = os.fspath(source)
    return subprocess.run(
        [ffprobe, "-v", "error", "-format_whitelist", DEMUXERS, *options, "--", target],
        capture_output=True,
        timeout=timeout,
        check=False,
        pass_fds=keep,
    )


def probe(ffprobe: str, source: str | int) -> dict:
    """Duration and tracks of one file (a path or an open descriptor), from its header;
    {} if ffprobe cannot run on it."""
    try:
        run = _run_ffprobe(
            ffprobe,
            ["-print_format", "json", "-show_format", "-show_streams"],
            source,
            PROBE_SECONDS,
        )
        return describe(json.loads(run.stdout or b"{}"))
    except (subprocess.TimeoutExpired, OSError, ValueError):
        return {}


def describe(probed: dict) -> dict:
    """Duration and tracks from ffprobe's JSON of -show_format -show_streams."""
    described: dict = {"audio": [], "subtitles": []}
    duration = (probed.get("format") or {}).get("duration")
    if duration is not None:
        with contextlib.suppress(ValueError):
            described["duration"] = round(float(duration), 3)
    for stream in probed.get("streams") or []:
        tags = stream.get("tags") or {}
        disposition = stream.get("disposition") or {}
        track = {
            "codec": stream.get("codec_name"),
            "language": tags.get("language") or tags.get("LANGUAGE") or "und",
            "default": bool(disposition.get("default")),
        }
        kind = stream.get("codec_type")
        if kind == "video" and "video" not in described and not disposition.get("attached_pic"):
            described["video"] = {
                "codec": track["codec"],
                "width": stream.get("width"),
                "height": stream.get("height"),
            }
        elif kind == "audio":
            described["audio"].append(track)
        elif kind == "subtitle":
            described["subtitles"].append(track)
    return described


def _seconds(text: str | float | None) -> float | None:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def packets_reach(probed: dict) -> tuple[float, float] | None:
    """From ffprobe's JSON of a read of packets: where the first packet read starts and
    where the last one ends, in seconds from the file's start (its start_time, which a
    TS file sets anywhere), counting only media tracks; None if no such packet was read."""
    timed = {
        stream.get("index")
        for stream in probed.get("streams") or []
        if stream.get("codec_type") in TIMED_TRACKS
        and not (stream.get("disposition") or {}).get("attached_pic")
    }
    starts, ends = [], []
    for packet in probed.get("packets") or []:
        if packet.get("stream_index") not in timed:
            continue
        at = _seconds(packet.get("pts_time"))
        if at is None:
            at = _seconds(packet.get("dts_time"))
        if at is None:
            continue
        starts.append(at)
        ends.append(at + (_seconds(packet.get("duration_time")) or 0.0))
    if not ends:
        return None
    origin = _seconds((probed.get("format") or {}).get("start_time")) or 0.0
    return min(starts) - origin, max(ends) - origin


def end_problem(declared: float | None, reach: tuple[float, float] | None) -> str | None:
    """Why a file whose packets read from near its end span `reach` (see packets_reach)
    does not really end where it declares, as words to follow its name; None if it does."""
    if declared is None:
        # A muxer that finishes writes the duration (ffmpeg, mkvmerge, MakeMKV; TS, PS
        # and fragmented MP4 get one from their timestamps): a file without one was not
        # finished, typically a writer killed before its trailer (MKV without a duration
        # hint, AVI without its index). There is no end to compare with, but its end is
        # still read, by the same bounded read as any file (a far seek, then at most
        # END_WINDOW_SECONDS of packets within END_READ_SECONDS), to say whether it is
        # readable at all and how far it goes.
        if reach is None:
            return "declares no duration and no packet could be read from it"
        landed, reached = reach
        how_far = "reach at least" if reached - landed >= END_WINDOW_SECONDS - 1 else "end at"
        return (
            f"declares no duration (its writer did not finish it?); "
            f"its packets {how_far} {reached:.1f} s"
        )
    if reach is None:
        return f"is truncated: it declares {declared:.1f} s but no packet near its end can be read"
    landed, reached = reach
    if declared - reached <= max(END_TOLERANCE_SECONDS, declared * END_TOLERANCE_SHARE):
        return None
    if reached - landed >= END_WINDOW_SECONDS - 1:
        # The read stopped at its window, not at the end of the file: the seek landed
        # far before the end (a file without an index), so nothing is known of the end.
        return (
            f"cannot be checked: it declares {declared:.1f} s but seeking near its end "
            f"landed at {landed:.1f} s"
        )
    return f"is truncated: it declares {declared:.1f} s but its last packet ends at {reached:.1f} s"


def _read_end(ffprobe: str, source: str | int) -> tuple[dict, str | None]:
    """ffprobe's JSON of a file's format, streams and last packets, from one run; or {}
    and why ffprobe could not run, finish or read the file at all."""
    try:
        run = _run_ffprobe(
            ffprobe,
            [
                # "+" makes the seek relative to the file's start_time.
                "-read_intervals",
                f"+{FAR_SECONDS:.0f}%+{END_WINDOW_SECONDS:.0f}",
                "-show_format",
                "-show_streams",
                "-show_entries",
                "packet=stream_index,pts_time,dts_time,duration_time",
                "-print_format",
                "json",
            ],
            source,
            END_READ_SECONDS,
        )
        probed = json.loads(run.stdout or b"{}")
    except subprocess.TimeoutExpired:
        return {}, f"could not be read to its end within {END_READ_SECONDS} s"
    except OSError as error:
        return {}, f"could not be read: {error.strerror or error}"
    except ValueError:
        return {}, "could not be read: ffprobe wrote no JSON"
    if run.returncode != 0 and not probed.get("packets"):
        # ffprobe stops before printing streams and format when it cannot open the file
        # or read any packet from where it landed: its last line says why.
        return {}, f"is not readable media (ffprobe: {_last_error(run.stderr, source)})"
    return probed, None


def _last_error(stderr: bytes, source: str | int) -> str:
    """ffprobe's last line of complaint, without the input's name it starts with."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    if not lines:
        return "it failed and said nothing"
    target = f"/proc/self/fd/{source}" if isinstance(source, int) else os.fspath(source)
    return lines[-1].strip().removeprefix(f"{target}: ")[:200]


def probe_to_end(ffprobe: str, source: str | int) -> tuple[dict, str | None]:
    """probe()'s description of a file (a path or an open descriptor), and whether it
    really reaches the duration it declares (None if it does, else why not, as words to
    follow the file's name), from one ffprobe run that reads its last packets, not its
    header. The description is {} when ffprobe could not run, finish or read the file at
    all, and the verdict says why.

    A container declares its duration up front or in an index, and ffmpeg writes its
    input's duration into an MKV header before the first packet, so an encode killed
    after 3 s of 120 still declares 120 s. Only the packets at the end show the truth."""
    probed, failure = _read_end(ffprobe, source)
    if failure is not None:
        return {}, failure
    described = describe(probed)
    return described, end_problem(described.get("duration"), packets_reach(probed))
