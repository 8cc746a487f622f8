"""Which decision files reconcile restores, on their own: files and rows in, a plan out.
No database and no share: approve/restore_plan.py is pure."""

from __future__ import annotations

import json

import pytest

from media_pipeline.approve.restore_plan import (
    Found,
    Restore,
    SetAside,
    decision_row,
    judge,
    restorations,
)
from media_pipeline.approve.signing import sign
from media_pipeline.items.names import ItemKey

KEY = b"k" * 32
LIBRARY = "/library"
HEAT = ItemKey("movie", "Heat (1995)")
AT = "2026-11-20T08:00:00+00:00"


def decision(key: ItemKey = HEAT, gate: str = "filebot_confirm", **fields) -> dict:
    made = {
        "item": {"uid": key.uid, "type": key.type, "title": key.title},
        "gate": gate,
        "status": "approved",
        "at": AT,
        "destination": f"{LIBRARY}/Movies/Heat (1995)/Heat (1995).mkv",
        **fields,
    }
    return sign(made, KEY)


def test_a_file_this_controller_signed_for_the_item_and_gate_is_trusted():
    found = Found(HEAT, "filebot_confirm", decision())
    assert judge([found], KEY, LIBRARY, set()) == ([found], [])


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (Found(HEAT, "filebot_confirm", None), "it is not a JSON object"),
        (
            Found(HEAT, "filebot_confirm", {**decision(), "status": "rejected"}),
            "its signature does not verify: this controller did not write it",
        ),
        (Found(HEAT, "remux_review", decision()), "it was written for another item or gate"),
        (
            Found(ItemKey("movie", "Ronin"), "filebot_confirm", decision()),
            "it was written for another item or gate",
        ),
        (Found(HEAT, "filebot_confirm", decision(status="maybe")), "it holds no decision"),
        (
            Found(HEAT, "filebot_confirm", decision(destination=7)),
            "its destination is not text",
        ),
    ],
)
def test_a_file_not_to_believe_is_set_aside_with_why(entry, problem):
    assert judge([entry], KEY, LIBRARY, set()) == ([], [SetAside(entry.key, entry.gate, problem)])


def test_a_destination_outside_the_items_place_or_unusable_roles_are_set_aside():
    outside = Found(HEAT, "filebot_confirm", decision(destination="/etc/cron.d/x"))
    roles = Found(HEAT, "filebot_confirm", decision(roles={"nonsense": True}))
    _trusted, aside = judge([outside, roles], KEY, LIBRARY, set())
    assert aside[0].problem.startswith("its destination ")
    assert aside[1].problem.startswith("its file roles are not usable (")


def test_a_decision_superseded_once_stays_aside():
    entry = Found(HEAT, "filebot_confirm", decision())
    trusted, aside = judge([entry], KEY, LIBRARY, {(HEAT.uid, "filebot_confirm", AT)})
    assert trusted == [] and "superseded" in aside[0].problem


def test_what_the_database_has_is_not_restored_again():
    entry = Found(HEAT, "filebot_confirm", decision())
    assert restorations([entry], {(HEAT.uid, "filebot_confirm", AT)}, {}) == []


def test_a_restored_decision_takes_the_place_of_the_gates_pending_approval():
    entry = Found(HEAT, "filebot_confirm", decision(by="ann", reason="x" * 3000))
    pending = {(HEAT.uid, "filebot_confirm"): {"id": 12, "status": "pending"}}
    [restore] = restorations([entry], set(), pending)
    assert restore == Restore(HEAT, "filebot_confirm", restore.row, 12)
    assert restore.row["decided_by"] == "ann" and len(restore.row["reason"]) == 2000
    decided = {(HEAT.uid, "filebot_confirm"): {"id": 12, "status": "approved"}}
    assert restorations([entry], set(), decided)[0].replaces is None  # added beside it


def test_a_row_holds_the_file_as_json_texts():
    row = decision_row(HEAT, "remux_review", decision(gate="remux_review", roles=["1"]))
    assert (row["item_uid"], row["gate"], row["status"]) == (HEAT.uid, "remux_review", "approved")
    assert row["requested_at"] == row["decided_at"] == AT
    assert json.loads(row["prompt"]) == {} and json.loads(row["roles"]) == ["1"]
