"""What is in an item's folder, for a person deciding at a gate: files, sizes and, when
ffprobe is on this host, duration, video and each audio and subtitle track."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess

MEDIA_SUFFIXES = (".mkv", ".mp4", ".m4v", ".m2ts", ".ts", ".avi", ".mov", ".webm", ".mpg")
PROBE_SECONDS = 30


def describe_files(folder: str) -> list[dict]:
    """One entry per visible file in folder (not recursive), media files probed."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    ffprobe = shutil.which("ffprobe")
    files = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        described = {"name": entry.name, "size": entry.stat().st_size}
        if ffprobe and entry.name.lower().endswith(MEDIA_SUFFIXES):
            described.update(probe(ffprobe, entry.path))
        files.append(described)
    return files


def probe(ffprobe: str, path: str) -> dict:
    """Duration and tracks of one file; {} if ffprobe cannot read it."""
    try:
        run = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                "--",
                path,
            ],
            capture_output=True,
            timeout=PROBE_SECONDS,
            check=False,
        )
        data = json.loads(run.stdout or b"{}")
    except (subprocess.TimeoutExpired, OSError, ValueError):
        return {}
    described: dict = {"audio": [], "subtitles": []}
    duration = (data.get("format") or {}).get("duration")
    if duration is not None:
        with contextlib.suppress(ValueError):
            described["duration"] = round(float(duration), 3)
    for stream in data.get("streams") or []:
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


def summarize_file(described: dict) -> str:
    """One line for a terminal: name, size, duration, video, tracks."""
    parts = [described["name"], size_text(described.get("size", 0))]
    if "duration" in described:
        minutes, seconds = divmod(int(described["duration"]), 60)
        parts.append(f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}")
    video = described.get("video")
    if video:
        parts.append(f"{video.get('codec')} {video.get('width')}x{video.get('height')}")
    for label, tracks in (("audio", described.get("audio")), ("subs", described.get("subtitles"))):
        if tracks:
            shown = ", ".join(
                f"{t['language']} {t['codec']}" + (" (default)" if t["default"] else "")
                for t in tracks
            )
            parts.append(f"{label}: {shown}")
    return "  ".join(parts)


def size_text(count: int) -> str:
    """Bytes for people: 512 B, 3.4 MiB, 1.2 TiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
