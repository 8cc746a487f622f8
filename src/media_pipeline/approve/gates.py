"""The two approval gates: when one opens, what it shows, and its decision files.

Reconcile opens a gate's approval when an item reaches the gate's state with the gate
on, once per visit. A decision lives twice: in `human_approvals` and in
`.pipeline/approval.<gate>.json` in the item's folder for that stage, which is what
brings decisions back after the database is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING

from sqlite_utils import Database

from media_pipeline.approve.restore_plan import Found, judge, restorations
from media_pipeline.approve.signing import decision_key
from media_pipeline.config.settings import Config
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import Logged, item_name
from media_pipeline.jobs.queue import (
    COMPLETED,
    Queue,
)
from media_pipeline.library.destination import library_name, naming_notes, proposed_destination
from media_pipeline.library.file_roles import (
    Roles,
    RolesError,
    from_json,
    media_names,
    roles_to_follow,
    unplain_media,
)
from media_pipeline.library.filing_place import place_problem
from media_pipeline.library.media import describe_files
from media_pipeline.library.seasons import Waiting, numbering, show_discs
from media_pipeline.notify.events import approval_event, approvals_event
from media_pipeline.notify.send import notify_each_or_one
from media_pipeline.pipeline import (
    DESTINATION_GATE,
    GATE_STAGES,
    GATE_STATES,
    GATES,
    REVIEW_GATE,
    SORT_STAGE,
)
from media_pipeline.share.files import parse_json_object, relative_parts
from media_pipeline.share.markers import archive_decision_file
from media_pipeline.store import in_slices
from media_pipeline.text import mixed_scripts, name_stamp, utc_now

if TYPE_CHECKING:
    from media_pipeline.reconcile.scan import ScannedItem

log = logging.getLogger(__name__)


def gate_folder(config: Config, key: ItemKey, gate: str) -> str:
    """The item's folder whose `.pipeline/` holds the gate's decision file."""
    return key.folder(config.staging_root, GATE_STAGES[gate])


def destination_inside(config: Config, destination: str | None) -> bool:
    """Whether a filing destination is a path below library_root (never the root)."""
    if not destination or not os.path.isabs(destination):
        return False
    return bool(relative_parts(config.library_root, destination))


def approved_destinations(
    db: Database, uids: list[str] | None = None
) -> dict[tuple[str, str], str | None]:
    """(item uid, gate) -> destination, for the approvals in force (of these items, if
    given): the latest decision at each gate, when it is an approval."""
    in_force = _approvals_in_force(db, uids)
    return {key: row["destination"] for key, row in in_force.items() if row["status"] == "approved"}


def approvals_in_force(db: Database, uids: list[str], gate: str) -> dict[str, dict]:
    """Item uid -> the approval in force at its gate, for those of uids that have one
    (not pending, rejected or none): one query for them all."""
    return {
        uid: row
        for (uid, at), row in _approvals_in_force(db, uids).items()
        if at == gate and row["status"] == "approved"
    }


def approval_in_force(db: Database, uid: str, gate: str) -> dict | None:
    """The approval in force at an item's gate, or None (pending, rejected or none)."""
    return approvals_in_force(db, [uid], gate).get(uid)


def approval_digest(row: dict) -> str:
    """What a filing job names the approval it follows from by: a digest of the decision
    (item, gate, when, where), the same after a rebuild restores it from its file."""
    fields = (row["item_uid"], row["gate"], row["decided_at"] or "", row["destination"] or "")
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


def filing_destination(config: Config, approved: dict, row: dict) -> str:
    """Where an item's filing job must file it: the destination a person approved at
    filebot_confirm when that gate is on, else (or if the approval named none) the
    proposed one. What dispatch writes into the spec, and what reconcile holds a
    pending spec to."""
    key = ItemKey.of(row)
    chosen = (
        approved.get((row["uid"], DESTINATION_GATE)) if DESTINATION_GATE in config.gates else None
    )
    return chosen or proposed_destination(key, config.library_root, config.library_names)


def prompt_for(config: Config, key: ItemKey, gate: str, db: Database | None = None) -> dict:
    """What the person is shown at a gate: the media files, numbered as the roles' text
    form numbers them, and the roles they get unless changed (at filebot_confirm, those
    approved at remux_review); at filebot_confirm, the proposed destination."""
    folder = gate_folder(config, key, gate)
    prompt: dict = {"folder": folder, "files": describe_files(config.staging_root, folder)}
    listed = [described["name"] for described in prompt["files"]]
    names = media_names(listed)
    prompt["notes"] = [
        f"'{printable(name)}' cannot be filed: its name holds a control character (a tab, "
        "a newline); rename it in staging, then 'mp retry --ask-again' if it was decided"
        for name in unplain_media(listed)
    ]
    if (look_alike := mixed_scripts(f"{key.title} {key.disc_label}")) is not None:
        prompt["notes"].insert(0, look_alike)
    # The notes that say something is wrong, which the prompt sets apart from the rest.
    prompt["warnings"] = list(prompt["notes"])
    item = {"uid": key.uid, "type": key.type}
    earlier = approved_roles(db, [item]).get(key.uid) if db is not None else None
    prompt["media"] = names
    prompt["roles"] = roles_to_follow(earlier, key.type, key.title, names, key.disc_label).as_json()
    if gate == DESTINATION_GATE:
        destination = proposed_destination(key, config.library_root, config.library_names)
        if key.type == "tv" and db is not None:
            destination = _in_approved_show_folder(config, db, key, destination)
        prompt["destination"] = destination
        prompt["notes"] = [*prompt["notes"], *naming_notes(key.type, destination)]
        named = library_name(key.title, config.library_names)
        if named != key.title:
            prompt["notes"].append(
                f"named '{printable(named)}' in the library: SMB shares and Windows refuse "
                "some of the title's characters (config library_names: 'smb')"
            )
    return prompt


def _in_approved_show_folder(config: Config, db: Database, key: ItemKey, destination: str) -> str:
    """A disc's proposed season folder, in the show folder a person approved for another
    disc of the show (with the year given there): the discs of a show stay together.
    Only a show folder filing may use (one approved elsewhere, before that rule, is not)."""
    others = [disc["uid"] for disc in show_discs(db, key.title) if disc["uid"] != key.uid]
    approved = approved_destinations(db, others)
    season = os.path.basename(destination.rstrip(os.sep))
    shows = sorted(
        os.path.dirname(d.rstrip(os.sep))
        for (_uid, gate), d in approved.items()
        if gate == DESTINATION_GATE and d
    )
    proposals = [os.path.join(show, season) + os.sep for show in shows]
    usable = [p for p in proposals if place_problem(config.library_root, key, p) is None]
    return usable[-1] if usable else destination


def carry_show_folder(config: Config, db: Database, key: ItemKey, destination: str) -> list[str]:
    """A tv disc approved into a show folder: the show's other discs still waiting at
    filebot_confirm are proposed that folder too (their season folders in it), so one
    show is one folder ('Seinfeld (1989)' given at disc 1's gate reaches discs 2 and 3),
    and their prompts say so. Returns the names of the discs whose proposal changed."""
    show_folder = os.path.dirname(destination.rstrip(os.sep))
    others = [disc for disc in show_discs(db, key.title) if disc["uid"] != key.uid]
    if not others:
        return []
    changed = []
    for marks, part in in_slices([disc["uid"] for disc in others]):
        rows = db.query(
            "SELECT a.id, a.prompt, m.title, m.disc_label FROM human_approvals a JOIN "
            "media_items m ON m.uid = a.item_uid WHERE a.gate = ? AND "
            f"a.status = 'pending' AND a.item_uid IN ({marks})",
            [DESTINATION_GATE, *part],
        )
        for row in list(rows):
            prompt = json.loads(row["prompt"] or "{}")
            season = os.path.basename(str(prompt.get("destination", "")).rstrip(os.sep))
            proposed = os.path.join(show_folder, season) + os.sep
            other = ItemKey("tv", row["title"], row["disc_label"])
            if not season or proposed == prompt.get("destination"):
                continue
            if place_problem(config.library_root, other, proposed) is not None:
                continue
            prompt["destination"] = proposed
            prompt["notes"] = [
                *[note for note in prompt.get("notes", []) if "the title has no year" not in note],
                f"the show's folder, '{printable(os.path.basename(show_folder))}', was chosen "
                f"at {printable(key.name)}'s gate: this disc is proposed into it",
            ]
            db.table("human_approvals").update(row["id"], {"prompt": json.dumps(prompt)})
            changed.append(other.name)
    return changed


def _episodes_now(config: Config, db: Database, item: dict) -> tuple[str, dict | None]:
    """How a tv disc's episodes would be numbered as its season stands, for the person
    reviewing its remux (the numbers are settled when it is filed)."""
    discs = show_discs(db, item["title"])
    settled = numbering(config.staging_root, item, discs, roles=approved_roles(db, discs))
    if settled is None:
        return "episodes: no episode files (.mkv) to number", None
    if isinstance(settled, Waiting):
        return f"episodes: not numbered yet; filing {settled.reason}", None
    last = settled.first + settled.count - 1
    span = f"s{settled.season:02d}e{settled.first:02d}" + (
        f"-e{last:02d}" if last != settled.first else ""
    )
    note = f"episodes: as the season stands, {span} in the order below (settled when it is filed)"
    return note, {"season": settled.season, "first": settled.first}


def approved_roles(
    db: Database, rows: list[dict], gates=GATE_STATES, *, exact: set[str] | None = None
) -> dict[str, Roles]:
    """item uid -> the file roles a person approved, for those items that have them: at
    filebot_confirm if they were set there, else at remux_review (of the gates that are
    on). An approval from before roles existed has none: the defaults apply. exact, if
    given, gets the uids whose roles come from filebot_confirm: the files it listed are
    the ones filed, exactly."""
    in_force = _approvals_in_force(db, [row["uid"] for row in rows])
    types = {row["uid"]: row["type"] for row in rows}
    found: dict[str, Roles] = {}
    for gate in GATES:  # the later gate's roles win
        if gate not in gates:
            continue
        for (uid, decided_gate), approval in in_force.items():
            if decided_gate != gate or approval["status"] != "approved" or not approval["roles"]:
                continue
            try:
                found[uid] = from_json(json.loads(approval["roles"]), types[uid])
                if exact is not None and gate == DESTINATION_GATE:
                    exact.add(uid)
            except (RolesError, ValueError) as error:
                log.warning("approval %s: its roles are not usable (%s)", approval["id"], error)
    return found


# The lines of a remux log that say what was kept or left out, and why (lib-media.sh).
_TOLD = ("audio:", "kept:", "main feature:", "extra:", "episode ", "skipped", "dropped")
MAX_TOLD = 24
MAX_LOG_READ = 64 * 1024


def remux_said(config: Config, db: Database, item: dict) -> list[str]:
    """What the item's last remux job said about the tracks and titles it kept, for the
    person reviewing it. Its log is on the share: shown as text, never acted on."""
    row = next(
        db.query(
            "SELECT id FROM jobs WHERE item_uid = ? AND kind = ? AND state = 'completed' "
            "ORDER BY created_at DESC LIMIT 1",
            [item["uid"], SORT_STAGE.kind],
        ),
        None,
    )
    if row is None:
        return []
    with Queue.of(config) as queue:
        text = queue.read_log_head(COMPLETED, row["id"], MAX_LOG_READ)
    told = [line.strip() for line in text.splitlines() if line.strip().startswith(_TOLD)]
    return [f"{SORT_STAGE.kind}: {printable(line)[:200]}" for line in told[:MAX_TOLD]]


def _approvals_in_force(db: Database, uids: list[str] | None = None) -> dict[tuple[str, str], dict]:
    """(item uid, gate) -> its latest approval row that is pending or decided; of the
    items with those uids, if given."""
    query = "SELECT * FROM human_approvals WHERE status != 'superseded'"
    selections: list[tuple[str, list]]
    if uids is None:
        selections = [(query, [])]
    else:
        selections = [
            (f"{query} AND item_uid IN ({marks})", part) for marks, part in in_slices(uids)
        ]
    latest = {}
    for sql, params in selections:
        for row in db.query(f"{sql} ORDER BY id", params):
            latest[(row["item_uid"], row["gate"])] = row
    return latest


def open_approvals(
    config: Config, db: Database | None, *, dry_run: bool, notes: dict | None = None
) -> list[str]:
    """Open one approval for every item waiting at a gate that is on and has none.
    notes: (item uid, gate) -> what the person should know (a decision not restored)."""
    if db is None or not config.gates:
        return []
    changes: list[str] = []
    opened: list[tuple[str, str, str, str]] = []
    in_force = _approvals_in_force(db)
    for gate in config.gates:
        state = GATE_STATES[gate]
        for item in db.query(
            "SELECT * FROM media_items WHERE state = ? AND missing_since IS NULL", [str(state)]
        ):
            if (item["uid"], gate) in in_force:
                continue
            name = item_name(item)
            changes.append(Logged(f"{printable(name)}: {gate} approval opened"))
            if dry_run:
                continue
            requested_at = utc_now()
            prompt = prompt_for(config, ItemKey.of(item), gate, db)
            if item["type"] == "tv":
                note, prompt["numbering"] = _episodes_now(config, db, item)
                prompt["notes"] = [*prompt.get("notes", []), note]
            if gate == REVIEW_GATE:
                prompt["notes"] = [*prompt.get("notes", []), *remux_said(config, db, item)]
            if notes and (item["uid"], gate) in notes:
                prompt["notes"] = [*prompt.get("notes", []), notes[(item["uid"], gate)]]
            db.table("human_approvals").insert(
                {
                    "item_uid": item["uid"],
                    "gate": gate,
                    "status": "pending",
                    "prompt": json.dumps(prompt, ensure_ascii=False),
                    "requested_at": requested_at,
                }
            )
            log.info(
                "%s: %s approval opened",
                name,
                gate,
                extra={"event": "approval_opened", "item": name},
            )
            opened.append((item["uid"], gate, requested_at, name))
    _notify_opened(config, db, opened)
    return changes


def _notify_opened(config: Config, db: Database, opened: list[tuple[str, str, str, str]]):
    notify_each_or_one(
        config, db, [approval_event(*each) for each in opened], lambda: approvals_event(opened)
    )


def restore_decisions(
    config: Config,
    db: Database | None,
    items: dict[ItemKey, ScannedItem],
    *,
    dry_run: bool,
    notes: dict | None = None,
) -> list[str]:
    """Decisions found in the approval files of these scanned items that the database
    lacks (lost, rebuilt, or a crash between the file and the database write) go back
    into the database: only those this controller signed, for this item and gate, with
    a destination inside library_root (approve/restore_plan.py). Any other is set aside
    (kept, renamed) and its gate asks again; notes gets the reason, for the prompt."""
    found = [
        Found(key, gate, parse_json_object(text))
        for key, item in items.items()
        for stage, stage_markers in item.folders.items()
        for gate, text in stage_markers.approval_texts.items()
        if gate in GATE_STATES and stage == GATE_STAGES[gate]
    ]
    if db is None or not found:
        return []
    # A dry run makes nothing, not even the key; without one, nothing was signed here.
    has_key = not dry_run or os.path.exists(config.decision_key)
    signing_key = decision_key(config) if has_key else b""
    superseded = retired_decisions(db, sorted({entry.key.uid for entry in found}))
    trusted, set_aside = judge(found, signing_key, config.library_root, superseded)
    changes = []
    for key, gate, problem in set_aside:
        changes.append(
            f"{printable(key.name)}: {gate} decision file not restored ({problem}); "
            "set aside, the gate asks again"
        )
        if notes is not None:
            notes[(key.uid, gate)] = f"A decision file was found and not trusted: {problem}."
        if not dry_run:
            stamp = name_stamp()
            folder = gate_folder(config, key, gate)
            archive_decision_file(config.staging_root, folder, gate, f"untrusted-{stamp}")
    if not trusted:
        return changes
    uids = sorted({entry.key.uid for entry in trusted})
    recorded = {
        (row["item_uid"], row["gate"], row["decided_at"])
        for marks, part in in_slices(uids)
        for row in db.query(
            f"SELECT item_uid, gate, decided_at FROM human_approvals WHERE item_uid IN ({marks})",
            part,
        )
    }
    in_force = _approvals_in_force(db, uids)
    for key, gate, row, replaces in restorations(trusted, recorded, in_force):
        said = f"{gate} {row['status']} (restored from its approval file)"
        changes.append(f"{printable(key.name)}: {said}")
        if dry_run:
            continue
        if replaces is not None:
            db.table("human_approvals").update(replaces, row)
        else:
            db.table("human_approvals").insert(row)
    return changes


def supersede_decisions(db: Database, where: str, params: list, why: str) -> None:
    """The human_approvals rows matching where stop counting, and the decisions among
    them are retired for good: their signed files, set aside or copied back onto the
    share, are never restored again (restore_decisions, mp rename), a rebuild included."""
    decided = db.query(
        "SELECT item_uid, gate, decided_at FROM human_approvals WHERE decided_at IS NOT NULL "
        f"AND status IN ('approved', 'rejected') AND {where}",
        params,
    )
    now = utc_now()
    db.table("retired_decisions").insert_all(
        ({**row, "retired_at": now, "why": why} for row in decided), ignore=True
    )
    db.execute(f"UPDATE human_approvals SET status = 'superseded' WHERE {where}", params)


def retired_decisions(db: Database, uids: list[str]) -> set[tuple[str, str, str]]:
    """(item uid, gate, decided at) of every decision of these items that was superseded
    once: one query a batch (reconcile asks it of every decision file it scans)."""
    return {
        (row["item_uid"], row["gate"], row["decided_at"])
        for marks, part in in_slices(uids)
        for row in db.query(
            f"SELECT item_uid, gate, decided_at FROM retired_decisions WHERE item_uid IN ({marks})",
            part,
        )
    }


def retired(db: Database, uid: str, gate: str, decided_at: object) -> bool:
    """Whether this decision of the item at the gate was superseded once."""
    return (uid, gate, str(decided_at)) in retired_decisions(db, [uid])


def archive_decision(config: Config, key: ItemKey, gate: str) -> None:
    """Move a decision file aside (kept, renamed) when the item is sent back to its gate,
    so the old decision is neither in force nor restored after a database loss."""
    stamp = name_stamp()
    archive_decision_file(
        config.staging_root, gate_folder(config, key, gate), gate, f"superseded-{stamp}"
    )
