"""`mp refile ITEM`: change where an item already in the library is filed (a movie's
year, edition or title as the library names it; a tv disc's show and first episode),
moving its files there.

Filing is a decision like the gates' ones, so it can be made again: the movie's folder
in the library is renamed to the new name (a rename inside the library: its files,
extras included, are never copied or rewritten, and nothing is deleted), its main file
renamed after it, and the new destination recorded as a signed filebot_confirm
decision, the old one retired, with a line in the item's history. Refused when the new
folder is there already (mp never merges or overwrites).

A tv disc's files are its episodes in its season folder, named `<Show> - sNNeMM.mkv` with
the numbers recorded for it (the item's `episodes`, signed, kept on the share): given a
new show title or year they move into the new show's season folder, given a new first
episode they are renumbered (e01-e02 become e04-e05 with --first-episode 4), one file
at a time (library_moves: never over another file, a copy verified before anything is
removed where a rename cannot be made). Its specials (files a person made specials at a
gate, in the show folder's Season 00) go to the new show folder's Season 00 with their
numbers, which the new decision then records. The old season folder, and the show's folder,
go only when that leaves them empty: another disc's episodes, the show's extras and
artwork stay where they are, with the folder. A renumbering that would overlap the
episodes recorded for another disc filed in the same show folder is refused, naming it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re

from media_pipeline.approve.gates import (
    approved_destinations,
    approved_roles,
    gate_folder,
    supersede_decisions,
)
from media_pipeline.approve.session import PendingApproval, decided_by, record_decision
from media_pipeline.approve.signing import decision_key, sign_text
from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import key_from_parts, on_controller
from media_pipeline.errors import UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import item_name, transition_row, write_item_files
from media_pipeline.library.destination import (
    TYPE_LIBRARY_FOLDERS,
    check_edition,
    check_year,
    item_folder,
    item_folder_name,
    proposed_destination,
    with_year_and_edition,
)
from media_pipeline.library.file_roles import MAX_NUMBER, Role, Roles
from media_pipeline.library.filing import disc_specials
from media_pipeline.library.filing_place import link_problem, place_problem
from media_pipeline.library.moves import (
    Move,
    MoveRefused,
    apply_moves_in_library,
    in_order,
    move_problem,
)
from media_pipeline.library.seasons import Numbered, overlap, recorded_range, season_of
from media_pipeline.pipeline import DESTINATION_GATE, FILING_STAGE
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry, is_folder, open_below
from media_pipeline.text import utc_now

GATE = DESTINATION_GATE


def run_refile(
    config: Config,
    item_text: str,
    *,
    title: str | None = None,
    year: str | None = None,
    edition: str | None = None,
    first_episode: int | None = None,
    dry_run: bool = False,
) -> Said:
    if title is None and year is None and edition is None and first_episode is None:
        raise UsageError("say what changes: --title, --year, --edition or --first-episode")
    with on_controller(config, dry_run) as (_queue, db):
        row = find_item(db, item_text)
        name = printable(item_name(row))
        if row["state"] != FILING_STAGE.done:
            raise UsageError(
                f"{name} is {row['state']}, not in the library: its destination is decided "
                f"at {DESTINATION_GATE} ('mp retry --ask-again' asks again)"
            )
        if row["type"] == "tv":
            if edition is not None:
                raise UsageError(f"{name} is a tv disc: an edition is for a movie")
            return _refile_disc(config, db, row, title, year, first_episode, dry_run)
        if first_episode is not None:
            raise UsageError(f"{name} is a movie: --first-episode is for a tv disc")
        key = ItemKey.of(row)
        current = _filed_at(config, db, row)
        new = _new_destination(config, key, current, title, year, edition)
        if new == current:
            raise UsageError(f"{name} is filed as {printable(current)} already")
        problem = place_problem(config.library_root, key, new) or link_problem(
            config.library_root, new
        )
        if problem is not None:
            raise UsageError(f"{printable(new)} {problem}")
        moved = f"{printable(os.path.dirname(current))} to {printable(os.path.dirname(new))}"
        if dry_run:
            return Said(f"{name}: would move its folder in the library from {moved}")
        _move(config, current, new)
        _record(config, db, row, current, new)
    return Said(f"{name}: moved in the library from {moved}")


def _filed_at(config: Config, db, row: dict) -> str:
    """Where the item was filed: the filing decision in force (a refile's, or the
    gate's), else where filing proposed it. Refused when its folder in staging, which
    keeps that decision, is gone (a refile could not be kept)."""
    key = ItemKey.of(row)
    if not is_folder(config.staging_root, gate_folder(config, key, GATE)):
        raise UsageError(
            f"{printable(item_name(row))}: its folder in staging, where its filing decision "
            f"is kept ({printable(gate_folder(config, key, GATE))}), is gone; nothing moved"
        )
    approved = approved_destinations(db, [key.uid]).get((key.uid, GATE))
    return approved or proposed_destination(key, config.library_root, config.library_names)


def _new_destination(config, key: ItemKey, current: str, title, year, edition) -> str:
    try:
        found_year = check_year(year) if year is not None else None
        found_edition = check_edition(edition) if edition is not None else None
    except ValueError as error:
        raise UsageError(str(error)) from None
    start = current
    if title is not None:
        # Checked as `mp rip` and `mp rename` check a title.
        retitled = key_from_parts(key.type, title.strip(), key.disc_label)
        start = proposed_destination(retitled, config.library_root, config.library_names)
    return with_year_and_edition(key.type, start, found_year, found_edition)


def _move(config: Config, current: str, new: str) -> None:
    """Rename the movie's folder (and its file named after it) inside the library's
    Movies folder, step by step below library_root with no link followed."""
    movies_path = os.path.join(config.library_root, TYPE_LIBRARY_FOLDERS["movie"])
    old_name, new_name = (os.path.basename(os.path.dirname(p)) for p in (current, new))
    old_file, new_file = os.path.basename(current), os.path.basename(new)
    try:
        with open_below(config.library_root, movies_path) as movies:
            if not movies.is_folder(old_name):
                raise UsageError(
                    f"{printable(os.path.dirname(current))} is not in the library as a folder "
                    "(moved by hand?); nothing moved"
                )
            if movies.exists(new_name):
                raise UsageError(
                    f"{printable(os.path.dirname(new))} is there already; mp never merges or "
                    "overwrites: move one of them away first (nothing moved)"
                )
            movies.rename(old_name, movies, new_name)
            with movies.child(new_name) as folder:
                if old_file != new_file and folder.exists(old_file):
                    if folder.exists(new_file):
                        raise UsageError(
                            f"{printable(new_file)} is in the moved folder already; its file "
                            f"keeps its name {printable(old_file)}"
                        )
                    folder.rename(old_file, folder, new_file)
    except BadEntry as error:
        raise UsageError(f"{error}; nothing moved") from None
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise UsageError(
                f"{printable(os.path.dirname(new))} is on another filesystem than the movie's "
                "folder; mp moves only by renaming: move it by hand"
            ) from None
        raise


def _record(
    config: Config,
    db,
    row: dict,
    current: str,
    new: str,
    roles: Roles | None = None,
    reason: str | None = None,
) -> None:
    """The new destination (and a disc's roles, with its new first episode) as a
    decision at filebot_confirm, signed like a person's at the gate; the old one
    retired; a line in the history."""
    now = utc_now()
    reason = (reason or f"mp refile: from {current}")[:500]
    supersede_decisions(db, f"item_uid = ? AND gate = '{GATE}'", [row["uid"]], "mp refile")
    prompt = {"destination": new, "notes": [reason]}
    approval_id = (
        db.table("human_approvals")
        .insert(
            {
                "item_uid": row["uid"],
                "gate": GATE,
                "status": "pending",
                "prompt": json.dumps(prompt, ensure_ascii=False),
                "requested_at": now,
            }
        )
        .last_pk
    )
    pending = PendingApproval(approval_id, GATE, now, row, prompt)
    record_decision(
        config,
        db,
        pending,
        approved=True,
        by=decided_by(),
        reason=reason,
        destination=new,
        roles=roles,
    )
    db.table("state_transitions").insert(
        transition_row(row["uid"], row["state"], row["state"], "manual", reason, now)
    )


def _refile_disc(
    config: Config,
    db,
    row: dict,
    title: str | None,
    year: str | None,
    first_episode: int | None,
    dry_run: bool,
) -> Said:
    """A filed tv disc's episodes moved to another show folder, or renumbered, or both."""
    key = ItemKey.of(row)
    name = printable(item_name(row))
    current = _filed_at(config, db, row)
    new = _new_destination(config, key, current, title, year, None)
    recorded = recorded_range(row.get("episodes"))
    if recorded is None:
        raise UsageError(
            f"{name} has no episode numbers recorded (a disc of extras, or filed by hand): "
            "mp cannot tell its files in the library; nothing moved"
        )
    count = recorded[1] - recorded[0] + 1
    first = recorded[0] if first_episode is None else first_episode
    if not 1 <= first <= MAX_NUMBER - count + 1:
        raise UsageError(
            f"--first-episode {first}: its {count} episode(s) must be numbered 1-{MAX_NUMBER}"
        )
    if new == current and first == recorded[0]:
        raise UsageError(
            f"{name} is filed as {printable(current)}, episodes e{recorded[0]:02d}-"
            f"e{recorded[1]:02d}, already"
        )
    problem = place_problem(config.library_root, key, new) or link_problem(config.library_root, new)
    if problem is not None:
        raise UsageError(f"{printable(new)} {problem}")
    clash = overlap(row, _discs_filed_in(config, db, new), first, count)
    if clash is not None:
        raise UsageError(f"{name}: its episodes {clash}; nothing moved")
    moves = _episode_moves(config, row, current, new, recorded, first)
    if not moves:
        raise UsageError(
            f"{name}: none of its episodes (e{recorded[0]:02d}-e{recorded[1]:02d}) is in "
            f"{printable(current)} (moved by hand?); nothing moved"
        )
    specials = disc_specials(config, db, row)
    if specials and item_folder("tv", new) != item_folder("tv", current):
        moves += _special_moves(current, new, specials)
    moves = in_order(moves)
    problem = move_problem(config.library_root, moves)
    if problem is not None:
        raise UsageError(problem)
    listed = "".join(f"\n  {move.shown()}" for move in moves)
    if dry_run:
        return Said(f"{name}: would move {_files(moves)}:{listed}")
    try:
        apply_moves_in_library(config.library_root, moves)
    except MoveRefused as error:
        raise UsageError(str(error)) from None
    numbered = Numbered(season_of(row), first, count)
    if first != recorded[0]:
        signature = sign_text(f"{key.uid} {numbered.text}", decision_key(config))
        recorded_now = {"episodes": numbered.text, "episodes_signature": signature}
        db.table("media_items").update(row["id"], recorded_now)
        row = {**row, **recorded_now}
        write_item_files(config.staging_root, row)
    was = f"e{recorded[0]:02d}-e{recorded[1]:02d}"
    reason = f"mp refile: from {current} ({was}) to {new} ({_span(numbered)})"
    roles = _roles_with_first(config, db, row, first, specials)
    _record(config, db, row, current, new, roles, reason)
    return Said(f"{name}: moved {_files(moves)} in the library:{listed}")


def _files(moves: list[Move]) -> str:
    specials = sum(os.path.basename(os.path.dirname(move.source)) == "Season 00" for move in moves)
    said = f"{len(moves) - specials} episode file(s)"
    return said + (f" and {specials} special(s)" if specials else "")


def _special_moves(current: str, new: str, specials: dict[str, int]) -> list[Move]:
    """The disc's specials, in its show folder's Season 00 as filing named them, to the
    new show folder's Season 00 with the same numbers (a renumbering keeps them)."""
    old_show, new_show = item_folder("tv", current), item_folder("tv", new)
    old_name, new_name = os.path.basename(old_show), os.path.basename(new_show)
    return [
        Move(
            os.path.join(old_show, "Season 00", f"{old_name} - s00e{number:02d}.mkv"),
            os.path.join(new_show, "Season 00", f"{new_name} - s00e{number:02d}.mkv"),
        )
        for number in sorted(specials.values())
    ]


def _span(numbered: Numbered) -> str:
    return f"e{numbered.first:02d}-e{numbered.first + numbered.count - 1:02d}"


def _discs_filed_in(config: Config, db, destination: str) -> list[dict]:
    """The tv items filed (or to be filed) in the show folder of destination."""
    show = item_folder("tv", destination)
    rows = list(db.query("SELECT * FROM media_items WHERE type = 'tv'"))
    approved = approved_destinations(db, [r["uid"] for r in rows])
    found = []
    for other in rows:
        place = approved.get((other["uid"], GATE)) or proposed_destination(
            ItemKey.of(other), config.library_root, config.library_names
        )
        if item_folder("tv", place) == show:
            found.append(other)
    return found


_EPISODE_FILE = re.compile(r"(.+) - s(\d\d)e(\d{2,3})(?:-e(\d{2,3}))?\.mkv", re.ASCII)


def _episode_moves(
    config: Config, row: dict, current: str, new: str, recorded: tuple[int, int], first: int
) -> list[Move]:
    """The disc's episode files in its season folder (named after the show folder, their
    numbers inside its recorded range), each with its new place and name. Refused when
    some are there but not all its numbers are (one missing, or a link or folder in its
    place): moving the rest would leave the disc split between two numberings."""
    old_show, new_show = item_folder_name("tv", current), item_folder_name("tv", new)
    season = season_of(row)
    shift = first - recorded[0]
    try:
        with open_below(config.library_root, current) as folder:
            entries = list(folder.entries())
            names = sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
            not_files = {e.name for e in entries if not e.is_file(follow_symlinks=False)}
    except (FileNotFoundError, NotADirectoryError):
        return []
    except BadEntry as error:
        raise UsageError(f"{error}; nothing moved") from None
    moves, covered = [], set[int]()
    for file_name in names:
        found = _EPISODE_FILE.fullmatch(file_name)
        if not found or found[1] != old_show or int(found[2]) != season:
            continue
        start, end = int(found[3]), int(found[4] or found[3])
        if not recorded[0] <= start <= end <= recorded[1]:
            continue
        if file_name != _episode_name(old_show, season, start, end if found[4] else None):
            continue  # 's01e001.mkv': not a name mp gives (someone's), left where it is
        renamed = _episode_name(new_show, season, start + shift, end + shift if found[4] else None)
        moves.append(Move(os.path.join(current, file_name), os.path.join(new, renamed)))
        covered.update(range(start, end + 1))
    missing = [n for n in range(recorded[0], recorded[1] + 1) if n not in covered]
    if moves and missing:
        expected = os.path.join(current, _episode_name(old_show, season, missing[0], None))
        what = (
            "is a link or a folder, not a file"
            if os.path.basename(expected) in not_files
            else "is not in the library"
        )
        raise UsageError(
            f"{printable(item_name(row))}: its episode e{missing[0]:02d}, "
            f"{printable(expected)}, {what} (moved by hand?); put it back as a file first "
            "(nothing moved)"
        )
    return moves


def _episode_name(show: str, season: int, first: int, last: int | None) -> str:
    """An episode's file name as filing writes it: 'Lost - s01e04.mkv', 's01e05-e06'."""
    span = f"e{first:02d}" + (f"-e{last:02d}" if last is not None else "")
    return f"{show} - s{season:02d}{span}.mkv"


def _roles_with_first(
    config: Config, db, row: dict, first: int, specials: dict[str, int]
) -> Roles | None:
    """The disc's roles in force with the new first episode and its specials' numbers
    as they are filed (so a later refile finds them whatever discs come since), when a
    person had set them (they stay the decision's); None when it follows the defaults."""
    roles = approved_roles(db, [row], config.gates).get(row["uid"])
    if roles is None:
        return None
    files = tuple(
        Role(role.file, role.role, specials.get(role.file, role.number)) for role in roles.files
    )
    return dataclasses.replace(roles, files=files, first_episode=first)
