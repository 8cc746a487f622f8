"""`mp rename`: folders, rows, signed decisions and episode ranges follow the new title;
media is moved only by renaming its folder, and a clash or a live job changes nothing."""

from __future__ import annotations

import json
import sqlite3

from conftest import item_row, lose_the_database, tree_snapshot

from media_pipeline.items.names import ItemKey

HEAT, HEAT_1995 = ItemKey("movie", "Heat"), ItemKey("movie", "Heat (1995)")


def media(pipeline, title: str) -> dict:
    """The item's media files by stage, as bytes: what a rename must carry unchanged."""
    return {
        path.split("/")[0] + "/" + path.rsplit("/", 1)[-1]: data
        for path, data in tree_snapshot(pipeline.staging).items()
        if path.endswith(".mkv") and f"/{title}/" in path
    }


def test_a_rename_moves_folders_rows_and_signed_decisions(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mark(HEAT, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    pipeline.mp("approve", HEAT.uid, "--yes")
    before = media(pipeline, "Heat")
    old_id = item_row(pipeline, HEAT)["id"]

    assert (
        "would be renamed movie/Heat (1995)"
        in pipeline.mp("rename", HEAT.uid, "Heat (1995)", "--dry-run").stdout
    )
    assert pipeline.folder(HEAT, "1-ripped").exists(), "a dry run moves nothing"
    out = pipeline.mp("rename", HEAT.uid, "Heat (1995)").stdout
    assert "movie/Heat renamed movie/Heat (1995): its folders in 1-ripped, 2-remuxed moved" in out
    assert not pipeline.folder(HEAT, "1-ripped").exists()
    assert media(pipeline, "Heat (1995)") == before
    row = item_row(pipeline, HEAT_1995)
    assert (row["id"], row["uid"], row["state"]) == (old_id, HEAT_1995.uid, "REMUXED")
    with sqlite3.connect(pipeline.database) as db:
        uids = {uid for (uid,) in db.execute("SELECT item_uid FROM state_transitions")}
    assert uids == {HEAT_1995.uid}, "its history follows it"
    history = pipeline.mp("history", HEAT_1995.uid).stdout
    assert "mp rename from Heat" in history

    # The decision was signed again for the new uid: it comes back after a database loss.
    lose_the_database(pipeline)
    pipeline.mp("reconcile")
    assert json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"] == []
    assert "needs remux_review" not in pipeline.mp("dispatch").stdout


def test_a_filing_approval_asks_again_and_the_episode_range_stays_signed(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    lost, lost_2004 = ItemKey("tv", "Lost", "S01 Disc1"), ItemKey("tv", "Lost (2004)", "S01 Disc1")
    pipeline.mark(lost, "3-transcoded", "rip", "remux", "transcode")
    pipeline.mp("reconcile")
    pipeline.mp("approve", lost.uid, "--yes")
    pipeline.mp("dispatch")
    pipeline.mp("cancel", lost.uid)
    pipeline.mp("retry", lost.uid)
    assert item_row(pipeline, lost)["episodes"] == "1-1"
    out = pipeline.mp("rename", lost.uid, "Lost (2004)").stdout
    assert "filebot_confirm asks again" in out
    pipeline.mp("reconcile")
    [approval] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approval["prompt"]["destination"].endswith("/TV Shows/Lost (2004)/Season 01/")
    lose_the_database(pipeline)
    out = pipeline.mp("reconcile")
    assert "episode range is not" not in out.stderr
    assert item_row(pipeline, lost_2004)["episodes"] == "1-1"


def test_a_rename_onto_a_folder_there_or_a_live_job_changes_nothing(pipeline):
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.folder(HEAT_1995, "1-ripped").mkdir(parents=True)  # someone else's folder
    before = tree_snapshot(pipeline.staging)
    err = pipeline.mp("rename", HEAT.uid, "Heat (1995)", expect=2).stderr
    assert "is there already; mp never merges folders" in err
    assert tree_snapshot(pipeline.staging) == before
    pipeline.folder(HEAT_1995, "1-ripped").rmdir()
    pipeline.mp("dispatch")
    err = pipeline.mp("rename", HEAT.uid, "Heat (1995)", expect=2).stderr
    assert "has a live job" in err
    for title, said in (("a/b", "cannot be a folder name"), (".x", "cannot be a folder name"),
                        ("Heat", "is already called")):  # fmt: skip
        assert said in pipeline.mp("rename", HEAT.uid, title, expect=2).stderr


def test_every_correction_survives_losing_the_database(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    ronin, test_rip = ItemKey("movie", "Ronin"), ItemKey("movie", "Test Rip")
    for key in (HEAT, ronin, test_rip):
        pipeline.mark(key, "3-transcoded", "rip", "remux", "transcode")
    pipeline.mp("reconcile")
    pipeline.mp("rename", HEAT.uid, "Heat (1995)")  # a title fixed
    pipeline.mp("forget", test_rip.uid, "--yes")  # an item that should not be tracked
    pipeline.mp("reconcile")
    pipeline.mp("approve", HEAT_1995.uid, "--yes", "--edition", "Director's Cut")
    pipeline.mp("approve", ronin.uid, "--yes", "--year", "1998")
    pipeline.mp("dispatch")
    pipeline.mp("cancel", ronin.uid)
    pipeline.mp("retry", ronin.uid, "--ask-again")  # its destination to be chosen again

    lose_the_database(pipeline)
    pipeline.mp("reconcile")
    titles = sorted(i["title"] for i in pipeline.status_json()["items"])
    assert titles == ["Heat (1995)", "Ronin"], "renamed, and the forgotten one stays out"
    [asked] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert asked["item"]["title"] == "Ronin" and asked["gate"] == "filebot_confirm"
    cut = "Heat (1995) {edition-Director's Cut}"
    with sqlite3.connect(pipeline.database) as db:
        [(destination,)] = db.execute(
            "SELECT destination FROM human_approvals WHERE item_uid = ? AND status = 'approved'",
            [HEAT_1995.uid],
        )
    assert destination == str(pipeline.root / "library" / "Movies" / cut / f"{cut}.mkv")


def test_a_renamed_disc_leaves_no_empty_show_folder_and_odd_titles_are_refused(pipeline):
    lost = ItemKey("tv", "Lost", "S01 Disc1")
    pipeline.mark(lost, "1-ripped", "rip")
    pipeline.mp("reconcile")
    err = pipeline.mp("rename", lost.uid, "Lost (2004) ", expect=2).stderr
    assert "begins or ends with a space" in err
    assert "longer than 180 bytes" in pipeline.mp("rename", lost.uid, "x" * 181, expect=2).stderr
    pipeline.mp("rename", lost.uid, "Lost (2004)")
    assert not (pipeline.staging / "1-ripped" / "tv" / "Lost").exists()
    assert (pipeline.staging / "1-ripped" / "tv" / "Lost (2004)" / "S01 Disc1").is_dir()
