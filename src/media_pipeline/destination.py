"""Where an item goes in the library, in Plex's naming. Pure: a person may edit it."""

from __future__ import annotations

import os
import re

from media_pipeline.items import ItemKey

_SEASON = re.compile(
    r"(?:^|[^A-Za-z0-9])(?:S|Season[ _.-]?|Series[ _.-]?)(\d{1,2})(?![0-9])", re.IGNORECASE
)
# Plex files specials (and a disc of them) in Season 00.
_SPECIALS = re.compile(r"(?:^|[^A-Za-z])(?:Specials?|Extras|Bonus)(?:$|[^A-Za-z])", re.IGNORECASE)
_DISC = re.compile(r"(?:^|[^A-Za-z])(?:Disc|Disk|D)[ _.-]?(\d{1,2})(?![0-9])", re.IGNORECASE)


_YEAR = re.compile(r"\((?:19|20)\d\d\)")


def naming_notes(key: ItemKey) -> list[str]:
    """What in an item's name keeps Plex from matching it, for the person at the gate."""
    if _YEAR.search(key.title):
        return []
    what = "movie" if key.type == "movie" else "show"
    return [
        f"the title has no year: Plex matches a {what} by 'Title (Year)'; edit the "
        f"destination to add it (e.g. '{key.title} (1999)'), and the files are named so"
    ]


def season_number(disc_label: str) -> int | None:
    """The season a disc label names: 'S02 Disc1', 'Season 3 Disc 2', 'Series 3 Disc 1';
    0 for 'Specials Disc1'. None when it names none."""
    if _SPECIALS.search(disc_label):
        return 0
    match = _SEASON.search(disc_label)
    return int(match.group(1)) if match else None


_SEASON_WORD = re.compile(r"season|series", re.IGNORECASE)


def season_unreadable(disc_label: str) -> bool:
    """A label that speaks of a season but names none mp can read ('Season 2019')."""
    return bool(_SEASON_WORD.search(disc_label)) and season_number(disc_label) is None


def disc_season(disc_label: str) -> int:
    """The season a disc goes to: what its label names, else 1."""
    season = season_number(disc_label)
    return 1 if season is None else season


def disc_number(disc_label: str) -> int:
    """The disc's place in its season: 'S01 Disc2' is 2, 'Lost D3' is 3; 1 if unsaid."""
    match = _DISC.search(disc_label)
    return int(match.group(1)) if match else 1


def proposed_destination(key: ItemKey, library_root: str) -> str:
    """`Movies/<Title>/<Title>.mkv`, or `TV Shows/<Show>/Season NN/` (Season 01 when the
    disc label does not say, Season 00 for specials). A TV disc's files are named in
    that folder by its filing job: `<Show> - sNNeMM.mkv`, numbered across the season's
    discs (seasons.py)."""
    if key.type == "movie":
        return os.path.join(library_root, "Movies", key.title, f"{key.title}.mkv")
    season = disc_season(key.disc_label)
    return os.path.join(library_root, "TV Shows", key.title, f"Season {season:02d}") + os.sep
