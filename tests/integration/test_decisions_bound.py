"""A decision belongs to one item, one gate and one time: mp rename signs again only the
item's own decision at that gate, mp forget ends the item's decisions, and a decision
that stopped counting never counts again, after `mp reconcile --rebuild` included. A
share writer copies signed decision files around; none of it skips a gate."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import lose_the_database

from media_pipeline.items.names import ItemKey

HEAT, ALIEN = ItemKey("movie", "Heat"), ItemKey("movie", "Alien (1979)")
HEAT_1995 = ItemKey("movie", "Heat (1995)")
GATES = ["remux_review", "filebot_confirm"]


@pytest.fixture
def gated(pipeline):
    pipeline.write_pipeline_config(gates=GATES)
    return pipeline


def remuxed(pipeline, *keys: ItemKey) -> None:
    for key in keys:
        pipeline.mark(key, "1-ripped", "rip")
        pipeline.mark(key, "2-remuxed", "remux")
    pipeline.mp("reconcile")


def decision_path(pipeline, key: ItemKey, stage: str, gate: str):
    return pipeline.folder(key, stage) / ".pipeline" / f"approval.{gate}.json"


def waiting(pipeline) -> set[tuple[str, str]]:
    """(item uid, gate) of every approval a person is asked for now."""
    listed = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    return {(approval["item"]["uid"], approval["gate"]) for approval in listed}


def at_filebot_confirm(pipeline, key: ItemKey) -> None:
    """key approved at remux_review, transcoded, waiting at filebot_confirm."""
    pipeline.mp("approve", key.uid, "--yes")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    assert (key.uid, "filebot_confirm") in waiting(pipeline)


@pytest.mark.parametrize("planted_gate", ["remux_review", "filebot_confirm"])
def test_rename_never_signs_another_items_decision(gated, planted_gate):
    """Another item's signed approval (at this gate, or its filing approval with its
    destination) copied into the remux_review slot of an item a person renames: it is
    not signed for the item, and the gate still asks, before and after a database loss."""
    remuxed(gated, HEAT, ALIEN)
    if planted_gate == "remux_review":
        gated.mp("approve", ALIEN.uid, "--yes")
        source = decision_path(gated, ALIEN, "2-remuxed", "remux_review")
    else:
        at_filebot_confirm(gated, ALIEN)
        gated.mp("approve", ALIEN.uid, "--yes")
        source = decision_path(gated, ALIEN, "3-transcoded", "filebot_confirm")
    planted = decision_path(gated, HEAT, "2-remuxed", "remux_review")
    shutil.copyfile(source, planted)  # the share writer
    gated.mp("rename", HEAT.uid, "Heat (1995)")
    carried = json.loads(decision_path(gated, HEAT_1995, "2-remuxed", "remux_review").read_text())
    assert carried["item"]["uid"] == ALIEN.uid, "signed again for the renamed item"
    said = gated.mp("reconcile", "-v").stderr
    assert "Heat (1995): remux_review approved" not in said, said
    assert "it was written for another item or gate" in said, said
    assert (HEAT_1995.uid, "remux_review") in waiting(gated)
    lose_the_database(gated)
    said = gated.mp("reconcile", "-v").stderr
    assert "Heat (1995): remux_review approved" not in said, said
    assert (HEAT_1995.uid, "remux_review") in waiting(gated)
    assert "needs remux_review" in gated.mp("dispatch").stdout or not gated.queue("pending")


def test_rename_still_carries_the_items_own_decision(gated):
    remuxed(gated, HEAT)
    gated.mp("approve", HEAT.uid, "--yes")
    gated.mp("rename", HEAT.uid, "Heat (1995)")
    carried = json.loads(decision_path(gated, HEAT_1995, "2-remuxed", "remux_review").read_text())
    assert carried["item"]["uid"] == HEAT_1995.uid
    lose_the_database(gated)
    assert "remux_review approved (restored" in gated.mp("reconcile", "-v").stderr
    assert waiting(gated) == set()


def test_a_forgotten_items_decisions_end_with_it(gated):
    """After mp forget, a new item of the same title is asked at the gate; renaming the
    forgotten markers back brings the item back but not its approval."""
    remuxed(gated, HEAT)
    gated.mp("approve", HEAT.uid, "--yes")
    gated.mp("forget", HEAT.uid, "--yes")
    folder = gated.folder(HEAT, "2-remuxed")
    (aside,) = folder.parent.glob(f".{folder.name}.forgotten-*")
    # A new disc of the same title: new markers, a new item.
    gated.mark(HEAT, "2-remuxed", "remux")
    gated.mp("reconcile")
    assert (HEAT.uid, "remux_review") in waiting(gated)
    assert gated.queue("pending") == [] or "transcode" not in gated.mp("dispatch").stdout
    # The share writer puts the forgotten folder back, approval included.
    gated.mp("forget", HEAT.uid, "--yes")
    for extra in folder.parent.glob(f".{folder.name}.forgotten-*"):
        if extra != aside:
            shutil.rmtree(extra)
    aside.rename(folder)
    said = gated.mp("reconcile", "-v").stderr
    assert "restored from its approval file" not in said, said
    assert "it was superseded" in said, said
    assert (HEAT.uid, "remux_review") in waiting(gated)


def test_a_superseded_decision_copied_back_stays_superseded_after_a_rebuild(gated):
    """A filing approval replaced through --ask-again: its old signed file, copied back
    over the new one, is not restored by the runbook's own repair."""
    remuxed(gated, HEAT)
    at_filebot_confirm(gated, HEAT)
    old_place = "Movies/Heat (1995)/Heat (1995).mkv"
    gated.mp("approve", HEAT.uid, "--yes", "--destination", old_place)
    path = decision_path(gated, HEAT, "3-transcoded", "filebot_confirm")
    old = path.read_bytes()
    gated.mp("retry", HEAT.uid, "--ask-again")
    gated.mp("reconcile")
    new_place = "Movies/Heat (1995) {edition-Director's Cut}/Heat (1995).mkv"
    gated.mp("approve", HEAT.uid, "--yes", "--destination", new_place)
    path.write_bytes(old)  # the share writer
    said = gated.mp("reconcile", "--rebuild", "-v").stderr
    assert "it was superseded" in said, said
    # The new decision's file was overwritten (the share writer's doing): neither is in
    # force after the rebuild, and the gate asks again.
    assert "needs filebot_confirm" in gated.mp("dispatch").stdout
    assert gated.queue("pending") == []
    assert (HEAT.uid, "filebot_confirm") in waiting(gated)


def test_the_old_titles_decision_does_not_pass_a_gate_after_a_rename(gated):
    """After mp rename, a share writer makes folders of the old title again and puts the
    old title's signed approval back: it is not restored, and the gate asks."""
    remuxed(gated, HEAT)
    gated.mp("approve", HEAT.uid, "--yes")
    saved = decision_path(gated, HEAT, "2-remuxed", "remux_review").read_bytes()
    gated.mp("rename", HEAT.uid, "Heat (1995)")
    remuxed(gated, HEAT)  # the share writer: the old title's folders, with markers
    decision_path(gated, HEAT, "2-remuxed", "remux_review").write_bytes(saved)
    said = gated.mp("reconcile", "-v").stderr
    assert "movie/Heat: remux_review approved" not in said, said
    assert (HEAT.uid, "remux_review") in waiting(gated)
    assert "needs remux_review" in gated.mp("dispatch").stdout
    # The renamed item keeps its own approval.
    assert (HEAT_1995.uid, "remux_review") not in waiting(gated)
