"""Text for a terminal: how wide it shows, and cutting it to a width."""

from __future__ import annotations

import unicodedata

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
