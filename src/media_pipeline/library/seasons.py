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

import re
from dataclasses import dataclass

from sqlite_utils import Database

from media_pipeline.items.names import ItemKey
from media_pipeline.items.state import item_name
from media_pipeline.library.destination import (
    bonus_disc,
    disc_number,
    disc_season,
    season_unreadable,
)
from media_pipeline.library.file_roles import Roles, media_names
from media_pipeline.pipeline import EPISODE_FOLDERS, SORT_STAGE, STOPPED, State, progress
from media_pipeline.share.files import BadEntry, open_below

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
    return disc_season(row["disc_label"])


def folder_files(staging_root: str, folder: str | None) -> list[str] | None:
    """The names of the regular files in an item's folder, or None if it is not there."""
    if not folder:
        return None
    try:
        with open_below(staging_root, folder) as opened:
            return [e.name for e in opened.entries() if e.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError, BadEntry):
        return None


def folder_media(staging_root: str, folder: str | None) -> list[str] | None:
    """The media files of an item's folder (file_roles.media_names), or None if the
    folder is not there."""
    names = folder_files(staging_root, folder)
    return None if names is None else media_names(names)


def episode_files(staging_root: str, folder: str | None) -> int | None:
    """How many episode files a disc's folder holds, or None if it is not there: the
    `*.mkv` the filing script files, and only those, so the two never count apart."""
    names = folder_media(staging_root, folder)
    return None if names is None else len(names)


def _earlier_count(staging_root: str, row: dict) -> int | None:
    """An earlier disc's episodes, counted where they still are: each stage folder from
    its remuxed one to the last before filing (filing empties that). None when none
    holds any."""
    key = ItemKey.of(row)
    counts = [episode_files(staging_root, key.folder(staging_root, stage)) or 0 for stage in
              EPISODE_FOLDERS]  # fmt: skip
    return max(counts) or None


def _settled(row: dict, reviewed: bool) -> bool:
    """Whether the disc's episodes are final: remuxed and, with remux_review on, past it
    (a rejected remux is made again, maybe with other episodes)."""
    state = State(row["state"])
    stopped_in = State(row["stopped_in"]) if row.get("stopped_in") else None
    if state == State.REJECTED:
        return False
    done = progress(state, stopped_in)
    sorted_at = progress(SORT_STAGE.done)
    return done > sorted_at if reviewed else done >= sorted_at


_SHOW_YEAR = re.compile(r"^(.*?)\s*\(((?:18|19|20)\d\d)\)$")


def show_of(title: str) -> tuple[str, str | None]:
    """A show's name as its discs' titles give it, and its year if given: 'Lost' and
    'Lost (2004)' are one show (a disc renamed to add the year stays in its group);
    'Shameless (2004)' and 'Shameless (2011)' are two."""
    found = _SHOW_YEAR.match(title.strip())
    base, year = (found[1], found[2]) if found else (title.strip(), None)
    return base.casefold(), year


def same_show(title: str, other: str) -> bool:
    (base, year), (other_base, other_year) = show_of(title), show_of(other)
    return base == other_base and (year is None or other_year is None or year == other_year)


def show_discs(db: Database, title: str) -> list[dict]:
    """The tv items of one show (every season): those whose title names the same show
    (same_show), not only the same text."""
    found = _SHOW_YEAR.match(title.strip())
    base = found[1] if found else title.strip()
    # A first cut in SQL (LIKE is case-blind for ASCII letters only: the text as
    # given, not casefolded), the rule in Python.
    pattern = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = db.query(
        "SELECT * FROM media_items WHERE type = 'tv' AND title LIKE ? ESCAPE '\\'", [pattern]
    )
    return [row for row in rows if same_show(title, row["title"])]


def numbering(
    staging_root: str,
    disc: dict,
    discs: list[dict],
    *,
    reviewed: bool = False,
    roles: dict[str, Roles] | None = None,
) -> Numbered | Waiting | None:
    """Where the episodes of `disc` (a tv item about to be filed) start in its season.
    `discs` are the items of the same show (any season, the disc itself included);
    `reviewed`: remux_review is on, so an earlier disc counts once it has passed it;
    `roles`: item uid -> the file roles a person approved, which say how many episodes a
    disc holds (a double counts two; specials, extras and dropped files none) and may
    set its first episode. None when the disc holds no episodes to number."""
    roles = roles or {}
    name = item_name(disc)
    if season_unreadable(disc["disc_label"]):
        return Waiting(
            "its label names a season mp cannot read (seasons are 0-99); 'mp forget' it and "
            "rip it again with a label like 'S02 Disc1'"
        )
    season = season_of(disc)
    place = disc_number(disc["disc_label"])
    same = [d for d in discs if d["uid"] != disc["uid"] and season_of(d) == season]
    twin = next((d for d in same if disc_number(d["disc_label"]) == place), None)
    if twin is not None:
        return Waiting(
            f"it and {item_name(twin)} are both disc {place} of season {season}: their order "
            "is unknown; 'mp forget' one and rip it again with its disc number in the label"
        )
    own = roles.get(disc["uid"])
    if own is None and bonus_disc(disc["disc_label"]):
        return None  # the show's extras: no episodes to number, no disc to wait for
    # A first episode a person set stands on its own: no earlier disc is waited for.
    set_first = own.first_episode if own is not None else None
    first = set_first or 1
    earlier = [] if set_first else [d for d in same if disc_number(d["disc_label"]) <= place]
    seen = {disc_number(d["disc_label"]) for d in earlier}
    missing = next((n for n in range(1, place) if n not in seen), None)
    if missing is not None and not set_first:
        # Numbered after disc 1 alone, disc 3 would take disc 2's episodes.
        return Waiting(
            f"waits for disc {missing} of season {season}, which mp has not seen: rip it "
            "first, or give this disc's first episode at the gate (--first-episode N; "
            "'mp retry --ask-again' it if it was approved)"
        )
    for other in sorted(earlier, key=lambda row: disc_number(row["disc_label"])):
        recorded = recorded_range(other.get("episodes"))
        if recorded is not None:
            first = max(first, recorded[1] + 1)
            continue
        given = roles.get(other["uid"])
        if given is not None and given.first_episode:
            first = max(first, given.first_episode + given.episode_count)
            continue
        if not _settled(other, reviewed):
            state = other["state"]
            hint = " ('mp retry' it, or 'mp forget' it)" if State(state) in STOPPED else ""
            return Waiting(
                f"waits for {item_name(other)} ({state}{hint}): its episodes are numbered first"
            )
        if given is not None:
            count: int | None = given.episode_count
        elif bonus_disc(other["disc_label"]):
            count = 0  # the show's extras, unless a person said otherwise at the gate
        else:
            count = _earlier_count(staging_root, other)
        if count is None:
            return Waiting(
                f"waits for {item_name(other)}: its episode numbers are not recorded and its "
                "folders hold no episodes to count"
            )
        first += count
    if own is not None:
        count = own.episode_count
    else:
        count = episode_files(staging_root, disc.get("folder_path")) or 0
    if count == 0:
        return None
    last = first + count - 1
    if last > MAX_EPISODE:
        return Waiting(f"{name} would number past episode {MAX_EPISODE}")
    clash = overlap(disc, discs, first, count)
    if clash is not None:
        return Waiting(
            f"its episodes {clash}; if its first episode is known, 'mp retry --ask-again' it "
            "and give it at the gate"
        )
    return Numbered(season, first, count)


def overlap(disc: dict, discs: list[dict], first: int, count: int) -> str | None:
    """How episodes first.. of disc would overlap those recorded for another disc of its
    season, in words; None when they do not."""
    last = first + count - 1
    season = season_of(disc)
    for other in discs:
        if other["uid"] == disc["uid"] or season_of(other) != season:
            continue
        taken = recorded_range(other.get("episodes"))
        if taken is not None and taken[0] <= last and first <= taken[1]:
            return (
                f"e{first:02d}-e{last:02d} would overlap those of {item_name(other)} "
                f"(e{taken[0]:02d}-e{taken[1]:02d})"
            )
    return None
