"""What a filing job is told, settled from the database and the item's folder: the
disc's episode numbers in its season and where each of its files goes in the library.
Dispatch writes it into the job; reconcile holds a pending job to it, so a list changed
on the share (or taken out of the spec) never runs."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlite_utils import Database

from media_pipeline.approve.gates import approved_roles
from media_pipeline.config.settings import Config
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.library.destination import (
    disc_number,
    disc_season,
    item_folder,
    proposed_destination,
)
from media_pipeline.library.file_roles import (
    Roles,
    media_names,
    numbered_specials,
    roles_to_follow,
    special_numbers,
    targets,
    unplain_media,
)
from media_pipeline.library.moves import Move, in_order, same_file_bytes
from media_pipeline.library.seasons import (
    Numbered,
    Waiting,
    episode_files,
    folder_files,
    numbering,
    recorded_range,
    season_of,
    show_discs,
)
from media_pipeline.pipeline import REVIEW_GATE
from media_pipeline.share.files import relative_parts


@dataclass(frozen=True)
class Filing:
    """What a filing job is told: the disc's episode numbers (None for a movie, or a disc
    with no episodes) and where each file goes below the item's library folder."""

    episodes: Numbered | None
    files: list[tuple[str, str]] | None
    # What the item had filed at other places (an earlier filing, then decided again),
    # to move to its new places before the job runs; not part of what the job is told.
    moves: tuple[Move, ...] = field(default=(), compare=False)


# An earlier filing job of the item: its destination and file list, from its signed spec.
EarlierFiling = tuple[str, list[tuple[str, str]]]


def settle_filing(
    config: Config,
    db: Database,
    row: dict,
    destination: str | None,
    earlier: Sequence[EarlierFiling] = (),
) -> Filing | Waiting:
    """Settle an item's filing: its files' roles (as a person approved them at a gate,
    else the defaults), its episode numbers in its season, and each file's name in the
    library; with `earlier`, the moves of what those jobs had filed to its new places.
    A place that holds a file of the item's own that moves away first is not taken."""
    key = ItemKey.of(row)
    reviewed = REVIEW_GATE in config.gates
    discs = show_discs(db, row["title"]) if row["type"] == "tv" else [row]
    exact: set[str] = set()
    roles = approved_roles(db, discs, config.gates, exact=exact)
    settled: Numbered | None = None
    if row["type"] == "tv":
        numbered = numbering(config.staging_root, row, discs, reviewed=reviewed, roles=roles)
        if isinstance(numbered, Waiting):
            return numbered
        settled = numbered
    listed = folder_files(config.staging_root, row.get("folder_path")) or []
    names = media_names(listed)
    if unplain_media(listed):
        shown = printable(unplain_media(listed)[0])
        return Waiting(
            f"its media files' names hold a tab or newline ('{shown}'), which filing cannot "
            "pass on; rename them in staging"
        )
    chosen = roles.get(row["uid"])
    if chosen is None or row["uid"] not in exact:
        chosen = roles_to_follow(chosen, key.type, key.title, names, key.disc_label)
    missing = [r.file for r in chosen.files if r.role != "drop" and r.file not in names]
    if missing:
        return Waiting(
            f"its files given roles at a gate are not all in its folder (no "
            f"'{printable(missing[0])}'); 'mp retry --ask-again' it to review what is there"
        )
    season = settled.season if settled else disc_season(key.disc_label)
    first = settled.first if settled else 1
    place = destination or proposed_destination(key, config.library_root, config.library_names)
    taken = _specials_before(config, row, discs, roles) if key.type == "tv" else frozenset()
    files = targets(chosen, key.type, place, season, first, taken)
    too_long = next(
        (
            part
            for part in [*place.split(os.sep), *(p for _s, f in files for p in f.split("/"))]
            if len(part.encode("utf-8", "surrogateescape")) > 255
        ),
        None,
    )
    if too_long is not None:
        return Waiting(
            f"its name in the library would be longer than a file name can be "
            f"('{printable(too_long[:60])}...'); 'mp rename' it to a shorter title"
        )
    base = item_folder(key.type, place)
    moves = earlier_filed(config, row, base, files, earlier)
    leaving = {move.source for move in moves}
    occupied = _taken_in_library(base, files, row.get("folder_path"), leaving)
    if occupied is not None:
        other = (
            "another destination at the gate"
            if key.type == "movie"
            else "other numbers at the gate (--first-episode N, or N:special=M)"
        )
        return Waiting(
            f"{printable(occupied)} is in the library already, another file than its own; "
            f"'mp retry --ask-again' it and give it {other}, or move that file aside if "
            "this one is to take its place"
        )
    if not files:
        # No media file: the script files what the folder holds (and fails verification
        # if that is nothing), as before roles were.
        return Filing(settled, None)
    clash = _clash(files)
    if clash:
        return Waiting(
            f"two of its files would be filed as {printable(clash)}; give one another "
            "number at the gate (3:special=2) with 'mp retry --ask-again'"
        )
    return Filing(settled, files, tuple(moves))


def _clash(files: list[tuple[str, str]]) -> str | None:
    seen: set[str] = set()
    for _source, place in files:
        if place in seen:
            return place
        seen.add(place)
    return None


def _specials_before(
    config: Config, row: dict, discs: list[dict], roles: dict[str, Roles]
) -> frozenset[int]:
    """The Season 00 numbers the show's discs before this one take: a specials disc's
    episodes, and the specials marked on any disc, discs taken specials first, then by
    season and disc number. A disc's own specials are numbered after them, so two discs
    never both file an s00e01."""

    def order(disc: dict) -> tuple[int, int, int]:
        season = season_of(disc)
        return (season != 0, season, disc_number(disc["disc_label"]))

    taken: set[int] = set()
    for disc in sorted(discs, key=order):
        if disc["uid"] == row["uid"]:
            break
        given = roles.get(disc["uid"])
        if season_of(disc) == 0:
            # A specials disc's episodes: as numbered, else as many as it holds from 1.
            recorded = recorded_range(disc.get("episodes"))
            if recorded is None:
                count = given.episode_count if given is not None else None
                if count is None:
                    count = episode_files(config.staging_root, disc.get("folder_path")) or 0
                recorded = (1, count)
            taken.update(range(recorded[0], recorded[1] + 1))
        if given is not None:
            taken |= special_numbers(given, frozenset(taken))
    return frozenset(taken)


def disc_specials(config: Config, db: Database, row: dict) -> dict[str, int]:
    """file -> the Season 00 number a tv disc's special is filed as: as its roles number
    it, else as dispatch numbers it (after the specials of the show's discs before it)."""
    discs = show_discs(db, row["title"])
    roles = approved_roles(db, discs, config.gates)
    given = roles.get(row["uid"])
    if given is None:
        return {}
    taken = _specials_before(config, row, discs, roles)
    return {role.file: role.number for role in numbered_specials(given, taken) if role.number}


def _taken_in_library(
    base: str, files: list[tuple[str, str]], folder: str | None, leaving: set[str]
) -> str | None:
    """The first place of files that holds another file already (a special numbered
    before a disc that arrived late, a file put there by hand), or None. A file there of
    the same size as its source is taken as this item's own, filed by a run that stopped
    (the filing script compares the bytes before it files anything); one of the item's
    own that moves on first (`leaving`, renumbered) frees its place."""
    for source, place in files:
        path = os.path.normpath(os.path.join(base, place))
        if path in leaving:
            continue
        try:
            there = os.lstat(path)
        except OSError:
            continue
        try:
            size = os.lstat(os.path.join(folder, source)).st_size if folder else None
        except OSError:
            size = None
        if size is None:
            continue  # its source is gone: the filing script judges that one
        if there.st_size != size or not stat.S_ISREG(there.st_mode):
            return os.path.join(base, place)
    return None


def earlier_filed(
    config: Config,
    row: dict,
    base: str,
    files: list[tuple[str, str]],
    earlier: Sequence[EarlierFiling],
) -> list[Move]:
    """What an item had filed before its destination (or numbers) were decided again,
    to move to where the new filing puts the same file (`files`, below `base`): for each
    file of the new list, the place an earlier filing job of the item was told (its
    destination and file list, from the job's signed spec) when that place is another
    and holds a copy of the file, byte for byte the one in staging (the filing script
    removes staged files only once all are filed, so a half-filed item's are all there).
    A new place may hold one of these files that moves on itself (renumbered in its own
    folder: e02 to e03, then e01 to e02; apply_moves_in_library orders them); a new place
    taken by any other file is left to settle_filing, which makes the item wait."""
    if not files or not row.get("folder_path"):
        return []
    new_places = {source: os.path.normpath(os.path.join(base, place)) for source, place in files}
    moves: dict[str, Move] = {}
    targets_taken: set[str] = set()
    for old_destination, old_files in earlier:
        old_base = item_folder(row["type"], old_destination)
        for source, old_place in old_files:
            if source not in new_places:
                continue
            old_path = os.path.normpath(os.path.join(old_base, old_place))
            new_path = new_places[source]
            if old_path == new_path or old_path in moves or new_path in targets_taken:
                continue
            if not relative_parts(config.library_root, old_path):
                continue
            if same_file_bytes(old_path, os.path.join(row["folder_path"], source)):
                moves[old_path] = Move(old_path, new_path)
                targets_taken.add(new_path)
    kept = list(moves.values())
    while True:
        sources = {move.source for move in kept}
        free = [m for m in kept if m.target in sources or not os.path.lexists(m.target)]
        if len(free) == len(kept):
            return in_order(free)
        kept = free
