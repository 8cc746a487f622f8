"""`mp refile ITEM`: change where a movie already in the library is filed (its year, its
edition, its title as the library names it), moving its folder there.

Filing is a decision like the gates' ones, so it can be made again: the movie's folder
in the library is renamed to the new name (a rename inside the library: its files,
extras included, are never copied or rewritten, and nothing is deleted), its main file
renamed after it, and the new destination recorded as a signed filebot_confirm
decision, the old one retired, with a line in the item's history. Refused when the new
folder is there already (mp never merges or overwrites), and for a tv disc: its episodes
belong to the show's season, which one disc cannot move on its own.
"""

from __future__ import annotations

import errno
import json
import os

from media_pipeline.approve.session import PendingApproval, decided_by, record_decision
from media_pipeline.config import Config
from media_pipeline.destination import (
    TYPE_LIBRARY_FOLDERS,
    check_edition,
    check_year,
    proposed_destination,
    with_year_and_edition,
)
from media_pipeline.errors import UsageError
from media_pipeline.filing_place import link_problem, place_problem
from media_pipeline.gates import approved_destinations, gate_folder, supersede_decisions
from media_pipeline.item_state import item_name, transition_row
from media_pipeline.items import ItemKey, printable
from media_pipeline.jobs.manage import ManageResult, key_from_parts, on_controller
from media_pipeline.lookup import find_item
from media_pipeline.share import BadEntry, is_folder, open_below
from media_pipeline.states import State
from media_pipeline.text import utc_now

GATE = "filebot_confirm"


def run_refile(
    config: Config,
    item_text: str,
    *,
    title: str | None = None,
    year: str | None = None,
    edition: str | None = None,
    dry_run: bool = False,
) -> ManageResult:
    if title is None and year is None and edition is None:
        raise UsageError("say what changes: --title, --year or --edition")
    with on_controller(config, dry_run) as (_queue, db):
        row = find_item(db, item_text)
        name = printable(item_name(row))
        if row["state"] != State.IN_LIBRARY:
            raise UsageError(
                f"{name} is {row['state']}, not in the library: its destination is decided "
                "at filebot_confirm ('mp retry --ask-again' asks again)"
            )
        if row["type"] != "movie":
            raise UsageError(
                f"{name} is a tv disc: its episodes are numbered in its show's season, which "
                "one disc cannot move on its own (refile moves movies)"
            )
        key = ItemKey.of(row)
        # Where it was filed: the filing decision in force (a refile's, or the gate's),
        # else where filing proposed it.
        approved = approved_destinations(db, [key.uid]).get((key.uid, GATE))
        current = approved or proposed_destination(key, config.library_root, config.library_names)
        if not is_folder(config.staging_root, gate_folder(config, key, GATE)):
            raise UsageError(
                f"{name}: its folder in staging, where its filing decision is kept "
                f"({printable(gate_folder(config, key, GATE))}), is gone; nothing moved"
            )
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
            return ManageResult(f"{name}: would move its folder in the library from {moved}")
        _move(config, current, new)
        _record(config, db, row, current, new)
    return ManageResult(f"{name}: moved in the library from {moved}")


def _new_destination(config, key: ItemKey, current: str, title, year, edition) -> str:
    try:
        found_year = check_year(year) if year is not None else None
        found_edition = check_edition(edition) if edition is not None else None
    except ValueError as error:
        raise UsageError(str(error)) from None
    start = current
    if title is not None:
        # Checked as `mp rip` and `mp rename` check a title.
        retitled = key_from_parts("movie", title.strip(), "")
        start = proposed_destination(retitled, config.library_root, config.library_names)
    return with_year_and_edition("movie", start, found_year, found_edition)


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


def _record(config: Config, db, row: dict, current: str, new: str) -> None:
    """The new destination as a decision at filebot_confirm, signed like a person's at the
    gate; the old one retired; a line in the history."""
    now = utc_now()
    reason = f"mp refile: from {current}"[:500]
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
        config, db, pending, approved=True, by=decided_by(), reason=reason, destination=new
    )
    db.table("state_transitions").insert(
        transition_row(row["uid"], row["state"], row["state"], "manual", reason, now)
    )
