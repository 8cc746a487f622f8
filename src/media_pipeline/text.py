"""Text for people and for records: times, durations, sizes, and how wide text shows on
a terminal."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from media_pipeline.items import printable


def display_width(text: str) -> int:
    """Columns text takes on a terminal: wide (CJK) characters take two, combining marks
    none. len() counts characters, and a Japanese title then made `mp status` 84
    columns wide."""
    width = 0
    for character in text:
        if unicodedata.combining(character):
            continue
        width += 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
    return width


def shorten(text: str, width: int) -> str:
    """printable(text), cut with an ellipsis to at most width columns."""
    text = printable(text)
    if display_width(text) <= width:
        return text
    kept, used = [], 0
    for character in text:
        step = display_width(character)
        if used + step > width - 1:
            break
        kept.append(character)
        used += step
    return "".join(kept) + "…"


def utc_now(*, precise: bool = False) -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds" if precise else "seconds")


def local_time(timestamp: str | None) -> str:
    """A stored UTC timestamp as local 'YYYY-MM-DD HH:MM' for people to read."""
    if not timestamp:
        return ""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def duration_text(seconds: float | None, *, short: bool = False, tenths: bool = False) -> str:
    """A duration for people: '45 s', '12 min', '5 h', '3 days' (or 45s, 12m, 5h, 3d);
    with tenths, '4.5 s', '12.3 min' (a chart of fast stages)."""
    if seconds is None:
        return ""
    for limit, size, long_unit, short_unit in (
        (120, 1, " s", "s"),
        (7200, 60, " min", "m"),
        (172800, 3600, " h", "h"),
        (float("inf"), 86400, " days", "d"),
    ):
        if seconds < limit:
            amount = f"{seconds / size:.1f}" if tenths else str(int(seconds) // size)
            return amount + (short_unit if short else long_unit)
    return ""


def size_text(count: int) -> str:
    """Bytes for people: 512 B, 3.4 MiB, 1.2 TiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
