"""Text for people and for records: times, durations, sizes, and how wide text shows on
a terminal."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime

from media_pipeline.items.names import printable


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


# Scripts whose letters look like Latin ones: 'Mаtrix' with a Cyrillic а shows as
# 'Matrix' and is another item.
LOOK_ALIKE_SCRIPTS = ("CYRILLIC", "GREEK")


def mixed_scripts(text: str) -> str | None:
    """A note for a person when text mixes Latin letters with Cyrillic or Greek ones
    (look-alikes that make two items look like one), naming the letters that are not
    Latin; None otherwise. Text in one script alone is any title (a Russian film)."""
    scripts: dict[str, list[str]] = {}
    for character in text:
        if character.isalpha():
            script = unicodedata.name(character, "").split(" ")[0]
            scripts.setdefault(script, []).append(character)
    others = [script for script in LOOK_ALIKE_SCRIPTS if script in scripts]
    if "LATIN" not in scripts or not others:
        return None
    letters = [ch for script in others for ch in dict.fromkeys(scripts[script])][:6]
    shown = ", ".join(f"'{ch}' U+{ord(ch):04X}" for ch in letters)
    kinds = " and ".join(script.title() for script in others)
    return (
        f"its name mixes Latin letters with {kinds} ones ({shown}): it may look like "
        "another title and is not the same"
    )


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


def json_text(data: object) -> str:
    """data as indented JSON that is safe on a terminal and still exact for a program:
    json.dumps escapes the C0 controls, but with ensure_ascii=False (titles stay
    readable) it writes DEL, C1 controls, direction marks and lone surrogates as they
    are. Those are escaped as \\uXXXX too, which any JSON reader reads back as the same
    text. Outside strings json.dumps writes only spaces and line breaks, so every other
    character that is not printable is inside a string."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(
        character if character.isprintable() or character == "\n" else _json_escape(character)
        for character in text
    )


def _json_escape(character: str) -> str:
    code = ord(character)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: a surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


NOT_A_TIME = "(not a time)"


def utc_now(*, precise: bool = False) -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds" if precise else "seconds")


def name_stamp(moment: str | None = None) -> str:
    """A UTC time (now, or moment as utc_now gave it) as a file name takes it, for what
    is set aside: '2026-12-07T171900Z0000', no ':' (SMB refuses it) and no '+'."""
    return (moment or utc_now()).replace(":", "").replace("+", "Z")


def local_time(timestamp: str | None) -> str:
    """A stored UTC timestamp as local 'YYYY-MM-DD HH:MM' for people to read, or NOT_A_TIME
    when it is none: a time read from the share (a job's claimed_at) may be any text,
    and is not shown as it is."""
    if not timestamp:
        return ""
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError):  # OverflowError: year 1 moved to a zone before it
        return NOT_A_TIME


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
        # With tenths, judged as shown: 119.96 s is "2.0 min", not "120.0 s".
        if (round(seconds / size, 1) * size if tenths else seconds) < limit:
            amount = f"{seconds / size:.1f}" if tenths else str(int(seconds) // size)
            return amount + (short_unit if short else long_unit)
    return ""


def size_text(count: int) -> str:
    """Bytes for people: 512 B, 3.4 MiB, 1.2 TiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        # Judged as it will be shown: 1,048,575 bytes is "1.0 MiB", not "1024.0 KiB".
        if round(size, 0 if unit == "B" else 1) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def encodable(text: str) -> bool:
    """Whether text has UTF-8 bytes: a lone surrogate ("\\udc80" in JSON or YAML) has
    none, so no file name, unit line or SQLite text can hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
