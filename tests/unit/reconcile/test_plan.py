"""The reconcile planner on its own: scanned items and database rows in, a plan out.
No filesystem and no database: plan.py is pure, and these pin down its rules."""

from __future__ import annotations

import itertools
import json

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.reconcile.plan import plan_items, plan_missing
from media_pipeline.reconcile.scan import ScannedItem
from media_pipeline.share.markers import FolderMarkers

NOW = "2026-11-26T10:00:00+00:00"
EARLIER = "2026-11-20T08:00:00+00:00"
ROOT = "/staging"
MOVIE = ItemKey("movie", "Heat (1995)")


def scanned(key: ItemKey, **stages: set[str] | FolderMarkers) -> ScannedItem:
    """An item seen in the given stage folders (stage="1-ripped" etc., spelt with _ for -
    as keywords: ripped=..., remuxed=..., transcoded=...) with those markers done."""
    names = {"ripped": "1-ripped", "remuxed": "2-remuxed", "transcoded": "3-transcoded"}
    folders = {}
    for word, seen in stages.items():
        stage = names[word]
        folder = key.folder(ROOT, stage)
        folders[stage] = (
            seen if isinstance(seen, FolderMarkers) else FolderMarkers(folder, frozenset(seen))
        )
    return ScannedItem(key, folders)


def row_for(key: ItemKey, state: str, **fields) -> dict:
    return {
        "id": 1,
        "uid": key.uid,
        "type": key.type,
        "title": key.title,
        "disc_label": key.disc_label,
        "state": state,
        "stopped_in": None,
        "reason": None,
        "priority": 0,
        "created_at": EARLIER,
        "updated_at": EARLIER,
        "folder_path": key.folder(ROOT, "1-ripped"),
        "missing_since": None,
        **fields,
    }


def plan(item: ScannedItem, row: dict | None = None, *, last=None, held=None):
    rows = {row["uid"]: row} if row else {}
    return plan_items({item.key: item}, rows, last or {}, NOW, held)


def applied(item: ScannedItem, result) -> ScannedItem:
    """The scan after the plan's files were written: what the next reconcile reads."""
    files = {(w.folder, w.name): w.text for w in result.writes}
    folders = {}
    for stage, markers in item.folders.items():
        folders[stage] = FolderMarkers(
            markers.folder,
            markers.done,
            files.get((markers.folder, "state"), markers.state_text),
            files.get((markers.folder, "metadata.json"), markers.metadata_text),
        )
    return ScannedItem(item.key, folders)


def test_a_rip_marker_makes_a_new_item_ripped_with_its_files():
    result, warnings = plan(scanned(MOVIE, ripped={"rip"}))
    assert warnings == []
    [new] = result.new_items
    assert (new["uid"], new["state"], new["folder_path"]) == (
        MOVIE.uid,
        "RIPPED",
        MOVIE.folder(ROOT, "1-ripped"),
    )
    assert [t.describe() for t in result.transitions] == [
        "movie/Heat (1995): new item, RIPPED (rip.done seen)"
    ]
    written = {w.name: w.text for w in result.writes}
    assert written["state"] == "RIPPED\n"
    assert json.loads(written["metadata.json"])["uid"] == MOVIE.uid


def test_a_folder_with_no_marker_yet_is_not_an_item():
    result, _ = plan(scanned(MOVIE, ripped=set()))
    assert result.describe() == [] and result.new_items == []


def test_the_furthest_marker_wins_and_the_item_follows_its_folder():
    row = row_for(MOVIE, "RIPPED")
    result, _ = plan(scanned(MOVIE, ripped={"rip"}, remuxed={"remux"}), row)
    [(item_id, updates)] = result.updated_items
    assert item_id == 1
    assert updates["state"] == "REMUXED"
    assert updates["folder_path"] == MOVIE.folder(ROOT, "2-remuxed")
    assert updates["updated_at"] == NOW
    [transition] = result.transitions
    assert (transition.from_state, transition.to_state, transition.reason) == (
        "RIPPED",
        "REMUXED",
        "remux.done seen",
    )
    assert {w.folder for w in result.writes} == {MOVIE.folder(ROOT, "2-remuxed")}


def test_a_marker_behind_the_recorded_state_changes_nothing():
    row = row_for(MOVIE, "TRANSCODING", folder_path=MOVIE.folder(ROOT, "2-remuxed"))
    result, _ = plan(scanned(MOVIE, ripped={"rip"}, remuxed={"remux"}), row)
    assert result.transitions == [] and result.updated_items == []


def test_the_marker_of_a_live_job_does_not_count_until_its_job_ends():
    row = row_for(MOVIE, "REMUXING")
    item = scanned(MOVIE, ripped={"rip"}, remuxed={"remux"})
    held, _ = plan(item, row, held={MOVIE.uid: {"remux"}})
    assert held.transitions == []
    free, _ = plan(item, row)
    assert [t.to_state for t in free.transitions] == ["REMUXED"]


@pytest.mark.parametrize(
    ("markers", "state"),
    [(set(), "FAILED"), ({"remux"}, "REMUXED"), ({"transcode"}, "TRANSCODED")],
)
def test_a_stopped_item_moves_on_only_for_a_marker_past_where_it_stopped(markers, state):
    row = row_for(MOVIE, "FAILED", stopped_in="REMUXING", reason="remux failed")
    result, _ = plan(scanned(MOVIE, ripped={"rip"}, remuxed=markers), row)
    assert [t.to_state for t in result.transitions] == ([] if state == "FAILED" else [state])
    if state == "FAILED":
        # It keeps its reason and where it stopped.
        assert all("reason" not in u and "stopped_in" not in u for _, u in result.updated_items)


def test_a_lost_database_is_restored_from_the_items_own_state_file():
    metadata = {"uid": MOVIE.uid, "priority": 7, "created_at": EARLIER, "reason": "kept"}
    ripped = FolderMarkers(
        MOVIE.folder(ROOT, "1-ripped"), frozenset({"rip"}), "REMUXING\n", json.dumps(metadata)
    )
    result, _ = plan(scanned(MOVIE, ripped=ripped))
    [new] = result.new_items
    assert (new["state"], new["priority"], new["created_at"], new["reason"]) == (
        "REMUXING",
        7,
        EARLIER,
        "kept",
    )
    assert [t.reason for t in result.transitions] == ["restored from .pipeline/state"]
    # Its history already ends in that state (the table outlived the items): no new row.
    again, _ = plan(scanned(MOVIE, ripped=ripped), last={MOVIE.uid: "REMUXING"})
    assert again.transitions == []


def test_metadata_of_another_item_or_out_of_range_is_not_restored():
    other = ItemKey("movie", "Ronin (1998)")
    for metadata in (
        {"uid": other.uid, "priority": 9},  # a folder copied under another name
        {"uid": MOVIE.uid, "priority": 10**26, "created_at": "yesterday"},
        {"uid": MOVIE.uid, "priority": True},
    ):
        ripped = FolderMarkers(
            MOVIE.folder(ROOT, "1-ripped"), frozenset({"rip"}), "RIPPED\n", json.dumps(metadata)
        )
        [new] = plan(scanned(MOVIE, ripped=ripped))[0].new_items
        assert (new["priority"], new["created_at"]) == (0, NOW), metadata


def test_a_state_file_holding_no_state_is_reported_and_the_markers_decide():
    ripped = FolderMarkers(MOVIE.folder(ROOT, "1-ripped"), frozenset({"rip"}), "DONE?\x1b\n")
    result, warnings = plan(scanned(MOVIE, ripped=ripped))
    assert [n["state"] for n in result.new_items] == ["RIPPED"]
    [warning] = warnings
    assert "holds no known state" in warning and "\x1b" not in warning


def test_an_item_whose_folder_is_back_is_no_longer_missing():
    row = row_for(MOVIE, "RIPPED", missing_since=EARLIER)
    result, _ = plan(scanned(MOVIE, ripped={"rip"}), row)
    [(_, updates)] = result.updated_items
    assert updates["missing_since"] is None
    assert any("no longer missing" in note for note in result.notes)


def test_only_items_before_the_library_whose_folders_vanished_are_kept_as_missing():
    gone = row_for(MOVIE, "REMUXED")
    filed = row_for(ItemKey("movie", "Filed (2000)"), "IN_LIBRARY", id=2)
    already = row_for(ItemKey("movie", "Gone (2001)"), "RIPPED", id=3, missing_since=EARLIER)
    listed = row_for(ItemKey("movie", "Here (2002)"), "RIPPED", id=4)
    result = plan_missing([gone, filed, already, listed], {ItemKey.of(listed)}, NOW)
    assert result.updated_items == [(1, {"missing_since": NOW})]
    assert result.describe() == [
        "movie/Heat (1995): its folder is gone from staging; kept as missing (state REMUXED)"
    ]


MARKERS = ("rip", "remux", "transcode")


@pytest.mark.parametrize(
    "done",
    [set(c) for n in range(1, 4) for c in itertools.combinations(MARKERS, n)],
)
@pytest.mark.parametrize("recorded", [None, "RIPPED", "REMUXING", "TRANSCODED", "CANCELLED"])
def test_a_second_plan_after_applying_the_first_changes_nothing(done, recorded):
    """Reconcile is idempotent: whatever the markers and the row, the plan of the tree the
    first plan left is empty."""
    item = scanned(MOVIE, ripped=done & {"rip"} or {"rip"}, remuxed=done - {"rip"})
    row = None
    if recorded is not None:
        row = row_for(MOVIE, recorded, stopped_in="REMUXING" if recorded == "CANCELLED" else None)
    first, _ = plan(item, row)
    if first.new_items:
        row = {"id": 1, **first.new_items[0]}
    for _, updates in first.updated_items:
        row = {**row, **updates}  # type: ignore[dict-item]
    second, _ = plan(applied(item, first), row, last={MOVIE.uid: row["state"]} if row else None)
    assert second.describe() == [] and second.updated_items == [] and second.new_items == []
