"""`mp approve`: walk the pending approvals with a prompter, or decide one from flags.

The walk asks abstract questions of a `Prompter`; `approve/terminal.py` answers them with
questionary, tests answer them from a script. The database lock is taken only while a
decision is written, never while a person thinks, so timers keep running meanwhile.
"""

from __future__ import annotations

import enum
import getpass
import json
import logging
import os
from dataclasses import dataclass
from typing import Protocol

from sqlite_utils import Database

from media_pipeline.approve.gates import carry_show_folder, destination_inside, gate_folder
from media_pipeline.approve.signing import decision_key, sign
from media_pipeline.config.hosts import host_name
from media_pipeline.config.settings import Config
from media_pipeline.errors import PipelineError, UsageError
from media_pipeline.items.lookup import find_item
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.items.state import change_state, item_name, write_item_files
from media_pipeline.library.destination import (
    check_edition,
    check_year,
    disc_season,
    has_edition,
    has_year,
    item_folder_name,
    with_year_and_edition,
)
from media_pipeline.library.file_roles import Roles, RolesError, from_json, parse_roles
from media_pipeline.library.filing_place import link_problem, place_problem
from media_pipeline.library.seasons import overlap, show_discs
from media_pipeline.pipeline import DESTINATION_GATE, State
from media_pipeline.share.files import is_folder
from media_pipeline.share.identity import ensure_share
from media_pipeline.share.markers import write_decision
from media_pipeline.store import (
    controller_database,
    existing_key,
    missing_database,
    reading_database,
)
from media_pipeline.text import utc_now

log = logging.getLogger(__name__)


class Choice(enum.Enum):
    APPROVE = "Approve"
    EDIT = "Change what each file becomes"
    REJECT = "Reject"
    SKIP = "Skip"
    QUIT = "Quit"


@dataclass
class PendingApproval:
    id: int
    gate: str
    requested_at: str
    item: dict
    prompt: dict
    roles: Roles | None = None  # as shown: the gate's proposal until changed

    def __post_init__(self) -> None:
        if self.roles is None:
            self.roles = _prompt_roles(self.prompt, self.item["type"])

    @property
    def name(self) -> str:
        return item_name(self.item)

    @property
    def decides_destination(self) -> bool:
        """Whether this is the gate that shows where the item goes and decides it."""
        return self.gate == DESTINATION_GATE

    @property
    def media(self) -> list[str]:
        """The media files the roles' text form numbers, in its order."""
        return [name for name in self.prompt.get("media") or [] if isinstance(name, str)]

    def as_json(self) -> dict:
        item = {key: self.item[key] for key in ("id", "uid", "type", "title", "disc_label")}
        return {
            "id": self.id,
            "gate": self.gate,
            "requested_at": self.requested_at,
            "item": item,
            "prompt": self.prompt,
        }


class Prompter(Protocol):
    def show(self, approval: PendingApproval, position: int, total: int) -> None: ...

    def choose(self, approval: PendingApproval) -> Choice: ...

    def ask_reason(self, approval: PendingApproval) -> str | None: ...

    def edit_destination(self, approval: PendingApproval, proposed: str) -> str | None: ...

    def ask_year(self, approval: PendingApproval) -> str | None:
        """The year of a title that has none ('' for none); None to skip the item."""
        ...

    def ask_edition(self, approval: PendingApproval) -> str | None:
        """A movie's edition ('' for none); None to skip the item."""
        ...

    def edit_roles(
        self, approval: PendingApproval, text: str, first: str
    ) -> tuple[str, str] | None:
        """The roles' text form and the first episode ('' for as the season stands), as
        the person edited them; None to go back without a change."""
        ...

    def tell(self, message: str) -> None: ...


@dataclass
class ApproveSummary:
    approved: int = 0
    rejected: int = 0
    skipped: int = 0
    quit: bool = False
    # Left with Ctrl-C: the item on screen undecided, the rest still pending.
    interrupted: bool = False

    def describe(self) -> str:
        said = (
            f"approve: {self.approved} approved, {self.rejected} rejected, {self.skipped} skipped"
        )
        if self.interrupted:
            said += " (left at Ctrl-C: the item shown and the rest are still pending)"
        return said


def _prompt_roles(prompt: dict, item_type: str) -> Roles | None:
    """The roles an approval was opened with (None for one opened before roles were)."""
    try:
        return from_json(prompt.get("roles"), item_type)
    except RolesError:
        return None


def _pending(db: Database, item_uid: str | None = None) -> list[PendingApproval]:
    where, params = "a.status = 'pending'", []
    if item_uid is not None:
        where += " AND a.item_uid = ?"
        params.append(item_uid)
    found = []
    for row in db.query(
        f"SELECT a.id AS approval_id, a.gate, a.requested_at, a.prompt, m.* "
        f"FROM human_approvals a JOIN media_items m ON m.uid = a.item_uid "
        f"WHERE {where} ORDER BY a.requested_at, a.id",
        params,
    ):
        prompt = json.loads(row.pop("prompt") or "{}")
        approval_id, gate, requested_at = (
            row.pop("approval_id"),
            row.pop("gate"),
            row.pop("requested_at"),
        )
        found.append(PendingApproval(approval_id, gate, requested_at, row, prompt))
    return found


def pending_approvals(config: Config) -> list[PendingApproval]:
    with reading_database(config) as db:
        return _pending(db) if db is not None else []


def decided_by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{host_name()}"


def check_destination(config: Config, destination: str, key: ItemKey) -> str:
    """A destination a person typed: relative to library_root, and never outside it. For
    a tv disc (key) it is a folder whose name is its season's, `Season NN` (its files
    are named sNNeMM in it); for a movie, a file. Only the item's own place, as its
    filing job's worker checks it (library/filing_place.py)."""
    path = os.path.normpath(os.path.join(config.library_root, destination.strip()))
    if "\0" in destination or not destination_inside(config, path):
        raise UsageError(
            f"destination '{printable(destination)}' is outside library_root {config.library_root}"
        )
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in path.split(os.sep)):
        raise UsageError(
            f"destination '{printable(destination[:80])}...' has a name longer than the 255 "
            "bytes a file or folder name can have"
        )
    if key.type == "tv":
        season = disc_season(key.disc_label)
        wanted = f"Season {season:02d}"
        if os.path.basename(path) != wanted:
            raise UsageError(
                f"a tv disc's destination is its season's folder; {printable(key.name)} is "
                f"season {season} by its label, so it ends in '{wanted}/' (to file it in "
                "another season, rip it with a label that names that season)"
            )
        path += os.sep
    elif destination.rstrip().endswith(os.sep):
        raise UsageError(f"a movie's destination is a file, not the folder '{destination}'")
    if (problem := place_problem(config.library_root, key, path)) is not None:
        raise UsageError(f"destination '{printable(destination)}' {problem}")
    check_filing_through(config, path)
    return path


def check_filing_through(config: Config, destination: str) -> None:
    """UsageError if the filing job's worker would refuse destination for a link on its
    way (the item would end FAILED after the person approved it)."""
    if (problem := link_problem(config.library_root, destination)) is not None:
        raise UsageError(
            f"destination '{printable(destination)}' {problem}; make it a real folder, or "
            "give another destination"
        )


def record_decision(
    config: Config,
    db: Database,
    approval: PendingApproval,
    *,
    approved: bool,
    by: str,
    reason: str | None = None,
    destination: str | None = None,
    roles: Roles | None = None,
) -> None:
    """Write a decision: first the approval file (what survives losing the database),
    then the database, then, for a rejection, the item's state."""
    now = utc_now()
    status = "approved" if approved else "rejected"
    key = ItemKey.of(approval.item)
    if approval.decides_destination and approved:
        destination = destination or approval.prompt.get("destination")
    decision = {
        "status": status,
        "at": now,
        "by": by,
        "reason": reason,
        "destination": destination if approved else None,
        "gate": approval.gate,
        "requested_at": approval.requested_at,
        "item": {
            "uid": key.uid,
            "type": key.type,
            "title": key.title,
            "disc_label": key.disc_label,
        },
        "prompt": approval.prompt,
    }
    if approved:
        chosen = roles or approval.roles
        decision["roles"] = chosen.as_json() if chosen is not None else None
    signed = sign(decision, decision_key(config))
    write_decision(
        config.staging_root,
        gate_folder(config, key, approval.gate),
        approval.gate,
        json.dumps(signed, indent=2, ensure_ascii=False) + "\n",
    )
    with db.atomic():
        db.table("human_approvals").update(
            approval.id,
            {
                "status": status,
                "decided_at": now,
                "decided_by": by,
                "reason": reason,
                "destination": decision["destination"],
                "roles": json.dumps(decision["roles"]) if decision.get("roles") else None,
            },
        )
        if approved and approval.decides_destination and key.type == "tv" and destination:
            for other in carry_show_folder(config, db, key, destination):
                log.info("%s: proposed into the show's folder chosen for %s", other, key.name)
    log.info(
        "%s: %s %s by %s",
        approval.name,
        approval.gate,
        status,
        by,
        extra={"event": f"approval_{status}", "item": approval.name},
    )
    if not approved:
        item = next(db.query("SELECT * FROM media_items WHERE uid = ?", [key.uid]))
        write_item_files(
            config.staging_root,
            change_state(
                db, item, State.REJECTED, trigger="approval", reason=f"{approval.gate}: {reason}"
            ),
        )


def _decide_one(config: Config, approval: PendingApproval, **decision) -> bool:
    """Record one decision under the lock, if the approval is still pending."""
    with controller_database(config) as db:
        ensure_share(config)
        current = [a for a in _pending(db, approval.item["uid"]) if a.id == approval.id]
        if not current:
            return False
        record_decision(config, db, current[0], by=decided_by(), **decision)
    return True


def decide(
    config: Config,
    item_text: str,
    *,
    approved: bool,
    reason: str | None = None,
    destination: str | None = None,
    files: str | None = None,
    first_episode: int | None = None,
    year: str | None = None,
    edition: str | None = None,
    dry_run: bool = False,
) -> str:
    """`mp approve ITEM --yes|--reject`: decide the item's pending approval (with
    dry_run, say what would be decided and write nothing). files and first_episode
    change what each file becomes, at either gate."""
    if not approved and not (reason and reason.strip()):
        raise UsageError("--reject needs --reason TEXT (it is kept with the decision)")
    with reading_database(config) as db:
        if db is None:
            raise missing_database(config)
        item = find_item(db, item_text)
        pending = _pending(db, item["uid"])
    name = printable(item_name(item))
    if not pending:
        raise UsageError(f"{name} has no pending approval (state {item['state']})")
    approval = pending[0]
    if destination is not None:
        if not approval.decides_destination:
            raise UsageError(
                f"--destination is for {DESTINATION_GATE}; {name} is at {approval.gate}"
            )
        destination = check_destination(config, destination, ItemKey.of(approval.item))
    if year is not None or edition is not None:
        destination = _typed_details(approval, destination, year, edition, approved=approved)
    if approved and approval.decides_destination:
        # The proposed destination too: the library may have changed since it was shown.
        check_filing_through(config, destination or approval.prompt.get("destination") or "")
    roles = None
    if files is not None or first_episode is not None:
        with reading_database(config) as db:
            roles = _typed_roles(approval, files, first_episode, approved=approved, db=db)
    verb = "approved" if approved else "rejected"
    if roles is not None:
        verb += f", its files as '{roles.text(approval.media)}'"
        if roles.first_episode:
            verb += f" from episode {roles.first_episode}"
    folder = gate_folder(config, ItemKey.of(approval.item), approval.gate)
    if dry_run:
        # What the real decision checks before it writes: the share, the key, the folder.
        ensure_share(config, dry_run=True)
        existing_key(config.decision_key)
        _folder_there(config, folder, name)
        if approved and approval.decides_destination:
            filed = destination or approval.prompt.get("destination") or "?"
            verb += f", to be filed as {printable(filed)}"
        return f"{name}: {approval.gate} would be {verb}"
    _folder_there(config, folder, name)
    if not _decide_one(
        config, approval, approved=approved, reason=reason, destination=destination, roles=roles
    ):
        raise UsageError(f"the approval of {name} was decided meanwhile")
    return f"{name}: {approval.gate} {verb}"


def _typed_details(
    approval: PendingApproval,
    destination: str | None,
    year: str | None,
    edition: str | None,
    *,
    approved: bool,
) -> str:
    """The destination proposed at filebot_confirm with --year and --edition in it."""
    name = printable(approval.name)
    if not approved:
        raise UsageError("--year and --edition come with --yes")
    if not approval.decides_destination:
        raise UsageError(
            f"--year and --edition are for {DESTINATION_GATE}; {name} is at {approval.gate}"
        )
    if destination is not None:
        raise UsageError(
            "give --destination with the year in it, or --year and --edition, not both"
        )
    kind = approval.item["type"]
    if edition is not None and kind != "movie":
        raise UsageError(f"{name}: an edition is a movie's ('{{edition-NAME}}'), not a tv disc's")
    try:
        found_year = check_year(year) if year is not None else None
        found_edition = check_edition(edition) if edition is not None else None
    except ValueError as error:
        raise UsageError(f"{name}: {error}") from None
    proposed = approval.prompt.get("destination") or ""
    folder = item_folder_name(kind, proposed)
    if found_year is not None and has_year(folder):
        raise UsageError(f"{name}: '{printable(folder)}' has a year already")
    return with_year_and_edition(kind, proposed, found_year, found_edition)


def _typed_roles(
    approval: PendingApproval,
    files: str | None,
    first_episode: int | None,
    *,
    approved: bool,
    db: Database | None = None,
) -> Roles:
    """The roles given with --files and --first-episode, checked against the files the
    approval shows."""
    name = printable(approval.name)
    if not approved:
        raise UsageError(
            f"--files and --first-episode come with --yes; {name} is at {approval.gate}"
        )
    if approval.roles is None:
        raise UsageError(f"{name}: its approval shows no media files to give roles to")
    text = files if files is not None else approval.roles.text(approval.media)
    try:
        roles = parse_roles(text, approval.item["type"], approval.media, first_episode)
    except RolesError as error:
        raise UsageError(f"{name}: --files '{printable(text)}': {error}") from None
    if roles.first_episode and db is not None:
        discs = show_discs(db, approval.item["title"])
        clash = overlap(approval.item, discs, roles.first_episode, roles.episode_count)
        if clash is not None:
            raise UsageError(f"{name}: --first-episode {roles.first_episode}: episodes {clash}")
    return roles


def _folder_there(config: Config, folder: str, name: str) -> None:
    if not is_folder(config.staging_root, folder):
        raise PipelineError(
            f"{name}: its folder {printable(folder)} is gone from staging, so the decision "
            "cannot be written there; 'mp reconcile' marks it missing"
        )


def _edit_roles(approval: PendingApproval, prompter: Prompter) -> None:
    """Ask for the files' roles until they parse or the person goes back."""
    if approval.roles is None:
        prompter.tell("There are no media files to give roles to.")
        return
    text = approval.roles.text(approval.media)
    first = str(approval.roles.first_episode or "")
    while True:
        edited = prompter.edit_roles(approval, text, first)
        if edited is None:
            return
        text, first = edited
        try:
            number = int(first) if first.strip() else None
            approval.roles = parse_roles(text, approval.item["type"], approval.media, number)
            return
        except ValueError as error:  # RolesError, or a first episode that is no number
            prompter.tell(
                f"{error}" if isinstance(error, RolesError) else f"'{first}' is not a number"
            )


_BACKED_OUT = object()


def _asked(prompter: Prompter, ask, check):
    """Ask until the answer passes check ('' is no answer: None); _BACKED_OUT when the
    person backed out."""
    while True:
        answer = ask()
        if answer is None:
            return _BACKED_OUT
        try:
            return check(answer) if answer.strip() else None
        except ValueError as error:
            prompter.tell(str(error))


def _with_details_asked(approval: PendingApproval, prompter: Prompter) -> str | None:
    """The proposed destination, with the year asked for where its title has none and,
    for a movie, an edition; None when the person backed out (the item is skipped)."""
    kind = approval.item["type"]
    proposed = approval.prompt.get("destination") or ""
    name = item_folder_name(kind, proposed)
    year = edition = None
    if not has_year(name):
        year = _asked(prompter, lambda: prompter.ask_year(approval), check_year)
    if kind == "movie" and not has_edition(name) and year is not _BACKED_OUT:
        edition = _asked(prompter, lambda: prompter.ask_edition(approval), check_edition)
    if _BACKED_OUT in (year, edition):
        return None
    return with_year_and_edition(kind, proposed, year, edition)


def run_approve(config: Config, prompter: Prompter) -> ApproveSummary:
    """Walk the pending approvals, oldest first, asking the prompter about each. A
    prompter that raises KeyboardInterrupt (Ctrl-C, at any question) ends the walk:
    the item it was asking about is left undecided."""
    summary = ApproveSummary()
    approvals = pending_approvals(config)
    if not approvals:
        prompter.tell("No approvals are pending.")
        return summary
    try:
        _walk(config, prompter, approvals, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


def _walk(
    config: Config, prompter: Prompter, approvals: list[PendingApproval], summary: ApproveSummary
) -> None:
    for position, approval in enumerate(approvals, start=1):
        prompter.show(approval, position, len(approvals))
        choice = prompter.choose(approval)
        while choice is Choice.EDIT:
            _edit_roles(approval, prompter)
            prompter.show(approval, position, len(approvals))
            choice = prompter.choose(approval)
        if choice is Choice.QUIT:
            summary.quit = True
            break
        if choice is Choice.SKIP:
            summary.skipped += 1
            continue
        decision: dict = {"approved": choice is Choice.APPROVE}
        if choice is Choice.APPROVE:
            decision["roles"] = approval.roles
        if choice is Choice.REJECT:
            reason = prompter.ask_reason(approval)
            if not reason:
                prompter.tell("No reason given: skipped, still pending.")
                summary.skipped += 1
                continue
            decision["reason"] = reason
        elif approval.decides_destination:
            proposed = _with_details_asked(approval, prompter)
            edited = proposed
            while proposed is not None:
                edited = prompter.edit_destination(approval, proposed)
                if edited is None:
                    break
                try:
                    decision["destination"] = check_destination(
                        config, edited, ItemKey.of(approval.item)
                    )
                    break
                except UsageError as error:
                    prompter.tell(str(error))
            if edited is None:
                summary.skipped += 1
                continue
        if _decide_one(config, approval, **decision):
            if decision["approved"]:
                summary.approved += 1
            else:
                summary.rejected += 1
        else:
            prompter.tell(f"{printable(approval.name)} was decided meanwhile; skipped.")
            summary.skipped += 1
