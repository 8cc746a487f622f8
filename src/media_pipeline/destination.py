"""Where an item goes in the library, in Plex's naming. Pure: a person may edit it."""

from __future__ import annotations

import os
import re

from media_pipeline.items import ItemKey

_SEASON = re.compile(r"(?:^|[^A-Za-z0-9])(?:S|Season[ _.-]?)(\d{1,2})(?![0-9])", re.IGNORECASE)


def season_number(disc_label: str) -> int | None:
    """The season a disc label names ('S02 Disc1', 'Season 3 Disc 2'), if any."""
    match = _SEASON.search(disc_label)
    return int(match.group(1)) if match else None


def proposed_destination(key: ItemKey, library_root: str) -> str:
    """`Movies/<Title>/<Title>.mkv`, or `TV Shows/<Show>/Season NN/` (Season 01 when the
    disc label does not say)."""
    if key.type == "movie":
        return os.path.join(library_root, "Movies", key.title, f"{key.title}.mkv")
    season = season_number(key.disc_label) or 1
    return os.path.join(library_root, "TV Shows", key.title, f"Season {season:02d}") + os.sep
