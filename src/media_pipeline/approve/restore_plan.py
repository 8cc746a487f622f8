"""Which decision files reconcile restores into the database, decided from what is known
of them: no database, no share. gates.restore_decisions gathers the files and the rows,
asks for the plan, then carries it out; the rules are here, and
tests/unit/approve/test_restore_plan.py holds them to account.

A decision file counts only if this controller signed it (HMAC, approve/signing.py), for
this item and gate, with a decision in it, usable file roles and a destination that is
the item's own place in the library; a decision a retry, --ask-again or forget set aside
once stays aside.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple

from media_pipeline.approve.signing import verifies
from media_pipeline.items.names import ItemKey
from media_pipeline.library.file_roles import RolesError, from_json
from media_pipeline.library.filing_place import place_problem

DECIDED = ("approved", "rejected")


class Found(NamedTuple):
    """A decision file as the scan read it: its JSON object, or None when it is none."""

    key: ItemKey
    gate: str
    decision: dict | None


class SetAside(NamedTuple):
    """A file not trusted: set aside (kept, renamed), and its gate asks again."""

    key: ItemKey
    gate: str
    problem: str


class Restore(NamedTuple):
    """A decision to put back: the human_approvals row, written over the gate's pending
    approval (its id) where one waits, else added."""

    key: ItemKey
    gate: str
    row: dict
    replaces: int | None


def judge(
    found: Iterable[Found],
    signing_key: bytes,
    library_root: str,
    superseded: Collection[tuple[str, str, str]],
) -> tuple[list[Found], list[SetAside]]:
    """The files to believe, and those to set aside with why. superseded holds (uid,
    gate, decided at) of every decision set aside once."""
    trusted, aside = [], []
    for entry in found:
        key, gate, decision = entry
        problem = decision_problem(key, gate, decision, signing_key, library_root)
        if (
            problem is None
            and decision is not None
            and (key.uid, gate, decision["at"]) in superseded
        ):
            problem = "it was superseded (by a retry, --ask-again or forget) and stays so"
        if problem is None:
            trusted.append(entry)
        else:
            aside.append(SetAside(key, gate, problem))
    return trusted, aside


def restorations(
    trusted: Iterable[Found],
    recorded: Collection[tuple[str, str, str]],
    in_force: Mapping[tuple[str, str], dict],
) -> list[Restore]:
    """What of the trusted decisions the database lacks. recorded holds (uid, gate,
    decided at) of the rows it has; in_force the approval in force at each (uid, gate)."""
    found = []
    for key, gate, decision in trusted:
        assert decision is not None  # judge trusts only a decision
        if (key.uid, gate, decision["at"]) in recorded:
            continue
        pending = in_force.get((key.uid, gate))
        replaces = pending["id"] if pending is not None and pending["status"] == "pending" else None
        found.append(Restore(key, gate, decision_row(key, gate, decision), replaces))
    return found


def decision_row(key: ItemKey, gate: str, decision: dict) -> dict:
    """The human_approvals row a trusted decision file stands for, its texts bounded."""
    return {
        "item_uid": key.uid,
        "gate": gate,
        "status": decision["status"],
        "requested_at": decision.get("requested_at") or decision["at"],
        "decided_at": decision["at"],
        "decided_by": str(decision.get("by") or "")[:200] or None,
        "reason": str(decision.get("reason") or "")[:2000] or None,
        "destination": decision.get("destination") or None,
        "prompt": json.dumps(decision.get("prompt") or {}),
        "roles": json.dumps(decision["roles"]) if decision.get("roles") else None,
    }


def decision_problem(
    key: ItemKey, gate: str, decision: dict | None, signing_key: bytes, library_root: str
) -> str | None:
    """Why a decision file cannot be restored, or None when it can."""
    if decision is None:
        return "it is not a JSON object"
    if not verifies(decision, signing_key):
        return "its signature does not verify: this controller did not write it"
    item = decision.get("item")
    if decision.get("gate") != gate or not isinstance(item, dict) or item.get("uid") != key.uid:
        return "it was written for another item or gate"
    if decision.get("status") not in DECIDED or not isinstance(decision.get("at"), str):
        return "it holds no decision"
    if decision.get("roles") is not None:
        try:
            from_json(decision["roles"], key.type)
        except RolesError as error:
            return f"its file roles are not usable ({error})"
    destination = decision.get("destination")
    if destination is None:
        return None
    if not isinstance(destination, str):
        return "its destination is not text"
    problem = place_problem(library_root, key, destination)
    return f"its destination {problem}" if problem else None
