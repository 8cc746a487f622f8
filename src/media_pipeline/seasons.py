"""The discs of one show's season, numbered as one run of episodes.

A disc's episodes come after those of the discs before it in the season (Disc2 starts
at e04 when Disc1 had three), whatever order the discs were ripped or reviewed in. The
numbers are settled when a disc's filing job is dispatched: by then the disc's episode
files are final. A disc whose earlier discs are not yet remuxed waits for them, and
`mp why` says which. Each disc's range is kept on the item (and in its metadata.json,
so it survives losing the database), for the discs after it once its files have left
staging.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.destination import disc_number, season_number
from media_pipeline.item_state import item_name
from media_pipeline.media import MEDIA_SUFFIXES
from media_pipeline.share import BadEntry, open_below
from media_pipeline.states import STOPPED, State, progress

EPISODES = re.compile(r"(\d{1,3})-(\d{1,3})", re.ASCII)
MAX_EPISODE = 999


@dataclass(frozen=True)
class Numbered:
    season: int
    first: int
    count: int

    @property
    def text(self) -> str:
        """How the item records it: 'first-last'."""
        return f"{self.first}-{self.first + self.count - 1}"


@dataclass(frozen=True)
class Waiting:
    reason: str


def recorded_range(text: str | None) -> tuple[int, int] | None:
    """(first, last) from an item's `episodes` field, if it holds a sane one."""
    match = EPISODES.fullmatch(text or "")
    if not match:
        return None
    first, last = int(match[1]), int(match[2])
    return (first, last) if 1 <= first <= last <= MAX_EPISODE else None


def season_of(row: dict) -> int:
    """The disc's season: what its label says, else 1."""
    season = season_number(row["disc_label"])
    return 1 if season is None else season


def episode_files(staging_root: str, folder: str | None) -> int | None:
    """How many episode files (media files) a disc's folder holds, or None if it is not
    there."""
    if not folder:
        return None
    try:
        with open_below(staging_root, folder) as opened:
            names = [e.name for e in opened.entries() if e.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError, BadEntry):
        return None
    return sum(
        1
        for name in names
        if os.path.splitext(name)[1].lower() in MEDIA_SUFFIXES and not name.startswith(".")
    )


def _remuxed(row: dict) -> bool:
    """Whether the disc's episodes are final: it is remuxed, or went on from there."""
    state = State(row["state"])
    stopped_in = State(row["stopped_in"]) if row.get("stopped_in") else None
    if state == State.REJECTED:
        return False  # its remux is rejected: it is made again, maybe with other episodes
    return progress(state, stopped_in) >= progress(State.REMUXED)


def show_discs(db: Database, title: str) -> list[dict]:
    """The tv items of one show (every season)."""
    return list(db.query("SELECT * FROM media_items WHERE type = 'tv' AND title = ?", [title]))


def numbering(staging_root: str, disc: dict, discs: list[dict]) -> Numbered | Waiting | None:
    """Where the episodes of `disc` (a tv item about to be filed) start in its season.
    `discs` are the items of the same show (any season, the disc itself included). None
    when the disc holds no media files to number: its filing job files what it holds
    under its own names (and fails verification if that is nothing)."""
    season = season_of(disc)
    place = disc_number(disc["disc_label"])
    first = 1
    for other in sorted(discs, key=lambda row: disc_number(row["disc_label"])):
        if other["uid"] == disc["uid"] or season_of(other) != season:
            continue
        if disc_number(other["disc_label"]) >= place:
            continue
        name = item_name(other)
        recorded = recorded_range(other.get("episodes"))
        if recorded is not None:
            first = max(first, recorded[1] + 1)
            continue
        if not _remuxed(other):
            state = other["state"]
            hint = " ('mp retry' it)" if State(state) in STOPPED else ""
            return Waiting(f"waits for {name} ({state}{hint}): its episodes are numbered first")
        count = episode_files(staging_root, other.get("folder_path"))
        if count is None:
            return Waiting(f"waits for {name}: its folder is not in staging to count episodes")
        first += count
    count = episode_files(staging_root, disc.get("folder_path")) or 0
    if count == 0:
        return None
    if first + count - 1 > MAX_EPISODE:
        return Waiting(f"{item_name(disc)} would number past episode {MAX_EPISODE}")
    return Numbered(season, first, count)
