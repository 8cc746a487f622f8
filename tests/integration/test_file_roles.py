"""What each remuxed file becomes, set at remux_review: through approval, a lost database,
season numbering, and the filing job's file list, which a share writer cannot change."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import (
    forged_pending_spec,
    item_row,
    lose_the_database,
    pending_spec_of,
    refused_by_worker,
    set_aside_by_reconcile,
)

from media_pipeline.items.names import ItemKey

DISC1 = ItemKey("tv", "Lost (2004)", "S01 Disc1")
DISC2 = ItemKey("tv", "Lost (2004)", "S01 Disc2")

NAMES = [f"Lost (2004) - S01 Disc1 - Episode {n:02d}.mkv" for n in range(1, 6)]


def disc_folder(pipeline, key, stage, markers, names=NAMES):
    folder = pipeline.mark(key, stage, *markers)
    (folder / "video.mkv").unlink()
    for name in names:
        (folder / name).write_bytes(name.encode())
    return folder


def reviewed(pipeline, *approve_args: str) -> None:
    """DISC1 remuxed with five titles, approved at remux_review with approve_args, then
    transcoded (by hand: its job cancelled, the same files marked)."""
    pipeline.write_pipeline_config(gates=["remux_review"])
    disc_folder(pipeline, DISC1, "2-remuxed", ("rip", "remux"))
    pipeline.mp("reconcile")
    out = pipeline.mp("approve", DISC1.uid, "--yes", *approve_args).stdout
    assert "remux_review approved" in out
    pipeline.mp("dispatch")
    pipeline.mp("cancel", DISC1.uid)
    disc_folder(pipeline, DISC1, "3-transcoded", ("transcode",))
    pipeline.mp("reconcile")


def test_the_review_shows_each_file_numbered_with_what_it_becomes(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    disc_folder(pipeline, DISC1, "2-remuxed", ("rip", "remux"))
    pipeline.mp("reconcile")
    [approval] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approval["prompt"]["media"] == NAMES
    roles = approval["prompt"]["roles"]
    assert [r["role"] for r in roles["files"]] == ["episode"] * 5
    assert approval["prompt"]["numbering"] == {"season": 1, "first": 1}


def test_roles_set_at_review_name_the_files_and_count_in_the_season(pipeline):
    reviewed(pipeline, "--files", "2 1 3:double 4:special 5:drop", "--first-episode", "4")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    show = "Lost (2004)"
    assert spec["episodes"] == {"season": 1, "first": 4}
    assert spec["files"] == [
        [NAMES[1], f"Season 01/{show} - s01e04.mkv"],
        [NAMES[0], f"Season 01/{show} - s01e05.mkv"],
        [NAMES[2], f"Season 01/{show} - s01e06-e07.mkv"],
        [NAMES[3], f"Season 00/{show} - s00e01.mkv"],
    ]  # the fifth, left out, is not filed: it stays in staging
    assert item_row(pipeline, DISC1)["episodes"] == "4-7"

    # The next disc is numbered after the double: e08.
    disc_folder(pipeline, DISC2, "3-transcoded", ("rip", "remux", "transcode"), NAMES[:2])
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    assert item_row(pipeline, DISC2)["episodes"] == "8-9"

    # The worker gets the list, one "file<TAB>place" line each.
    for _job in range(2):
        pipeline.mp("claim", "--worker", "w1")
    env = (next(pipeline.root.glob(f"env.job_*filebot*{DISC1.uid}*"))).read_text()
    assert f"MP_FILES={NAMES[1]}\tSeason 01/{show} - s01e04.mkv\n" in env


def test_roles_survive_losing_the_database_and_forged_ones_do_not(pipeline):
    reviewed(pipeline, "--files", "1:featurette 2 3 4 5:drop")
    lose_the_database(pipeline)
    pipeline.mp("reconcile")
    with sqlite3.connect(pipeline.database) as db:
        [(roles,)] = db.execute("SELECT roles FROM human_approvals WHERE status = 'approved'")
    assert [f["role"] for f in json.loads(roles)["files"]] == [
        "featurette", "episode", "episode", "episode", "drop",
    ]  # fmt: skip
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert spec["files"][0] == [NAMES[0], f"Featurettes/{NAMES[0]}"]

    # A share writer changes the roles in the decision file: not restored, asked again.
    pipeline.mp("cancel", DISC1.uid)
    decision = pipeline.folder(DISC1, "2-remuxed") / ".pipeline" / "approval.remux_review.json"
    forged = json.loads(decision.read_text())
    forged["roles"]["files"][4]["role"] = "episode"
    decision.write_text(json.dumps(forged))
    lose_the_database(pipeline)
    out = pipeline.mp("reconcile", "-v").stderr
    assert "remux_review decision file not restored (its signature does not verify" in out


def test_a_pending_filing_job_with_another_file_list_is_rejected(pipeline):
    reviewed(pipeline, "--files", "1 2 3 4 5:drop")
    pipeline.mp("dispatch")
    with forged_pending_spec(pipeline, "filebot") as spec:
        spec["files"][0][1] = "Season 01/Lost (2004) - s01e09.mkv"  # a share writer renames
    reason = set_aside_by_reconcile(pipeline)
    assert "its file list is not the one dispatch wrote" in reason


@pytest.mark.parametrize(
    ("place", "problem"),
    [
        ("../../Movies/x.mkv", "is not a plain name"),  # out of the item's folder
        ("-x.mkv", "'-x.mkv' is not a name filing gives"),  # at the show's root
    ],
)
def test_a_worker_runs_only_names_filing_gives(pipeline, place, problem):
    reviewed(pipeline)
    pipeline.mp("dispatch")
    with forged_pending_spec(pipeline, "filebot") as spec:
        spec["files"][0][1] = place  # forged before any reconcile could see it
    reason = refused_by_worker(pipeline, "filebot")
    assert problem in reason


def test_bad_roles_are_one_sentence_and_decide_nothing(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    disc_folder(pipeline, DISC1, "2-remuxed", ("rip", "remux"))
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.mark(movie, "2-remuxed", "rip", "remux")
    pipeline.mp("reconcile")
    for files, said in (
        ("1 2 3", "files 4, 5 have no place"),
        ("1 2 3 4 9", "there is no file 9"),
        ("1 1 2 3 4", "file 1 is given twice"),
        ("1 2 3 4 5:movie", "'movie' is not a role for a tv file"),
        ("1:drop 2:drop 3:drop 4:drop 5:drop", "every file is left out"),
    ):
        err = pipeline.mp("approve", DISC1.uid, "--yes", "--files", files, expect=2).stderr
        assert said in err and "Traceback" not in err
    err = pipeline.mp("approve", movie.uid, "--yes", "--files", "1:trailer", expect=2).stderr
    assert "exactly one marked movie" in err
    err = pipeline.mp("approve", movie.uid, "--yes", "--first-episode", "3", expect=2).stderr
    assert "a first episode number is for a tv disc" in err
    assert len(json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]) == 2


def test_a_movie_review_keeps_extras_by_type(pipeline):
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.write_pipeline_config(gates=["remux_review"])
    names = ["Extra 01.mkv", "Extra 02.mkv", "Heat (1995).mkv"]
    disc_folder(pipeline, movie, "2-remuxed", ("rip", "remux"), names)
    pipeline.mp("reconcile")
    out = pipeline.mp("approve", movie.uid, "--yes", "--files", "3 1:trailer 2:drop").stdout
    assert "its files as '3:movie 1:trailer 2:drop'" in out
    pipeline.mp("dispatch")
    pipeline.mp("cancel", movie.uid)
    disc_folder(pipeline, movie, "3-transcoded", ("transcode",), names)
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert spec["files"] == [
        ["Heat (1995).mkv", "Heat (1995).mkv"],
        ["Extra 01.mkv", "Trailers/Extra 01.mkv"],
    ]


def test_the_filing_gate_shows_the_reviewed_roles_and_can_change_them(pipeline):
    reviewed(pipeline, "--files", "2 1 3 4:drop 5:drop")
    pipeline.write_pipeline_config(gates=["remux_review", "filebot_confirm"])
    pipeline.mp("reconcile")
    [approval] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approval["gate"] == "filebot_confirm"
    assert [f["file"] for f in approval["prompt"]["roles"]["files"]][:2] == NAMES[1::-1]
    pipeline.mp("approve", DISC1.uid, "--yes")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert [source for source, _place in spec["files"]] == [NAMES[1], NAMES[0], NAMES[2]]

    # Filing stopped (a file in the way, say): asked again, the roles change there.
    pipeline.mp("cancel", DISC1.uid)
    pipeline.mp("retry", DISC1.uid, "--ask-again")
    pipeline.mp("reconcile")
    out = pipeline.mp("approve", DISC1.uid, "--yes", "--files", "3 2 1 4:trailer 5:drop")
    assert "its files as '3 2 1 4:trailer 5:drop'" in out.stdout
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert [source for source, _place in spec["files"]] == [NAMES[2], NAMES[1], NAMES[0], NAMES[3]]
    assert spec["files"][3][1] == f"Trailers/{NAMES[3]}"


def test_a_file_list_taken_out_of_a_pending_spec_is_rejected(pipeline):
    reviewed(pipeline, "--files", "1 2:featurette 3:drop 4 5")
    pipeline.mp("dispatch")
    with forged_pending_spec(pipeline, "filebot") as spec:
        del spec["files"]  # the script would then file every file, the dropped one too
    reason = set_aside_by_reconcile(pipeline)
    assert "its file list is not the one dispatch wrote" in reason


def test_roles_approved_at_filing_are_followed_exactly(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    folder = disc_folder(pipeline, DISC1, "3-transcoded", ("rip", "remux", "transcode"))
    pipeline.mp("reconcile")
    pipeline.mp("approve", DISC1.uid, "--yes", "--files", "1 2 3 4 5")  # the defaults
    (folder / "A injected.mkv").write_bytes(b"planted after the approval")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert [source for source, _place in spec["files"]] == NAMES


def test_a_disc_of_extras_alone_is_filed_and_verified(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    bonus = ItemKey("tv", "Lost (2004)", "Bonus Disc")
    disc_folder(pipeline, bonus, "3-transcoded", ("rip", "remux", "transcode"), NAMES[:2])
    pipeline.mp("reconcile")
    pipeline.mp("approve", bonus.uid, "--yes", "--files", "1:featurette 2:interview")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    assert item_row(pipeline, bonus)["state"] == "IN_LIBRARY"
    show = pipeline.root / "library" / "TV Shows" / "Lost (2004)"
    assert (show / "Featurettes" / NAMES[0]).exists() and (show / "Interviews" / NAMES[1]).exists()


def test_an_approved_disc_that_cannot_file_is_asked_again_and_why_says_so(pipeline):
    reviewed(pipeline, "--files", "2 1 3:featurette 4 5")
    (pipeline.folder(DISC1, "3-transcoded") / NAMES[2]).unlink()  # a file gone meanwhile
    pipeline.mp("dispatch")
    assert pipeline.queue("pending") == []
    why = pipeline.mp("why", DISC1.uid).stdout
    assert "not all in its folder" in why
    err = pipeline.mp("retry", DISC1.uid, "--ask-again", expect=2).stderr
    assert "no filing gate is on to set them again: add filebot_confirm" in err

    # With the filing gate on, the gate asks again.
    pipeline.write_pipeline_config(gates=["remux_review", "filebot_confirm"])
    pipeline.mp("reconcile")
    pipeline.mp("approve", DISC1.uid, "--yes", "--files", "1 2 3 4:drop")
    (pipeline.folder(DISC1, "3-transcoded") / NAMES[3]).unlink()
    assert "not all in its folder" in pipeline.mp("dispatch").stdout
    out = pipeline.mp("retry", DISC1.uid, "--ask-again").stdout
    assert "filebot_confirm asks again once 'mp reconcile' has run (then 'mp approve')" in out


def test_a_first_episode_overlapping_a_filed_disc_is_refused_at_the_gate(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    disc_folder(pipeline, DISC1, "3-transcoded", ("rip", "remux", "transcode"), NAMES[:3])
    disc_folder(pipeline, DISC2, "2-remuxed", ("rip", "remux"), NAMES[:2])
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    assert item_row(pipeline, DISC1)["episodes"] == "1-3"
    err = pipeline.mp("approve", DISC2.uid, "--yes", "--first-episode", "2", expect=2).stderr
    assert "e02-e03 would overlap those of tv/Lost (2004)/S01 Disc1 (e01-e03)" in err
    pipeline.mp("approve", DISC2.uid, "--yes", "--first-episode", "4")


def test_specials_on_a_specials_disc_come_after_its_episodes(pipeline):
    specials = ItemKey("tv", "Lost (2004)", "Specials Disc1")
    disc_folder(pipeline, specials, "3-transcoded", ("rip", "remux", "transcode"), NAMES[:3])
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    pipeline.mp("reconcile")
    pipeline.mp("approve", specials.uid, "--yes", "--files", "1 2 3:special")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert [place for _source, place in spec["files"]] == [
        f"Season 00/Lost (2004) - s00e0{n}.mkv" for n in (1, 2, 3)
    ]


def test_a_file_whose_name_cannot_be_passed_on_is_named_at_the_gate(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    disc_folder(pipeline, DISC1, "2-remuxed", ("rip", "remux"), [NAMES[0], "tab\there.mkv"])
    pipeline.mp("reconcile")
    [approval] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approval["prompt"]["media"] == [NAMES[0]]
    assert any("'tab\\there.mkv' cannot be filed" in note for note in approval["prompt"]["notes"])
    pipeline.mp("approve", DISC1.uid, "--yes", "--files", "1")


def test_specials_of_a_show_never_share_a_number_across_discs(pipeline):
    specials = ItemKey("tv", "Lost (2004)", "Specials Disc1")
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    for disc, names in ((DISC1, NAMES[:3]), (DISC2, NAMES[:2]), (specials, NAMES[:2])):
        disc_folder(pipeline, disc, "3-transcoded", ("rip", "remux", "transcode"), names)
    pipeline.mp("reconcile")
    pipeline.mp("approve", DISC1.uid, "--yes", "--files", "1 2 3:special")
    pipeline.mp("approve", DISC2.uid, "--yes", "--files", "1 2:special")
    pipeline.mp("approve", specials.uid, "--yes")
    pipeline.mp("dispatch")
    placed = {}
    for name in pipeline.queue("pending"):
        spec = json.loads(
            (pipeline.staging / ".pipeline" / "jobs" / "pending" / name / "spec.json").read_text()
        )
        placed[spec["item"]["disc_label"]] = [p for _s, p in spec["files"] if "Season 00" in p]
    show = "Season 00/Lost (2004) - s00e"
    assert placed == {
        "Specials Disc1": [f"{show}01.mkv", f"{show}02.mkv"],
        "S01 Disc1": [f"{show}03.mkv"],
        "S01 Disc2": [f"{show}04.mkv"],
    }


def test_names_filing_cannot_make_wait_with_the_way_out(pipeline):
    long_title = ItemKey("tv", "L" * 245, "S01 Disc1")  # a folder made on the share by hand
    disc_folder(pipeline, long_title, "3-transcoded", ("rip", "remux", "transcode"), NAMES[:1])
    tabbed = ItemKey("movie", "Alpha")
    disc_folder(pipeline, tabbed, "3-transcoded", ("rip", "remux", "transcode"), ["A\tx.mkv"])
    pipeline.mp("reconcile")
    out = pipeline.mp("dispatch").stdout
    assert "longer than a file name can be" in out and "'mp rename' it" in out
    assert "names hold a tab or newline" in out
    assert pipeline.queue("pending") == []


def test_a_place_taken_in_the_library_or_a_tab_name_waits_before_any_job(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    disc_folder(pipeline, DISC1, "3-transcoded", ("rip", "remux", "transcode"), NAMES[:2])
    season = pipeline.root / "library" / "TV Shows" / "Lost (2004)" / "Season 01"
    season.mkdir(parents=True)
    (season / "Lost (2004) - s01e01.mkv").write_bytes(b"a file filed before, not this disc's")
    movie = ItemKey("movie", "Heat (1995)")
    disc_folder(pipeline, movie, "3-transcoded", ("rip", "remux", "transcode"),
                ["Heat (1995).mkv", "Extra\tx.mkv"])  # fmt: skip
    pipeline.mp("reconcile")
    pipeline.mp("approve", DISC1.uid, "--yes")
    pipeline.mp("approve", movie.uid, "--yes")
    out = pipeline.mp("dispatch").stdout
    assert "s01e01.mkv is in the library already" in out and "--first-episode" in out
    assert "names hold a tab or newline" in out and pipeline.queue("pending") == []


def test_a_destination_with_an_over_long_name_is_refused_at_the_gate(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    movie = ItemKey("movie", "Zed (2020)")
    disc_folder(pipeline, movie, "3-transcoded", ("rip", "remux", "transcode"), ["Zed (2020).mkv"])
    pipeline.mp("reconcile")
    long = "B" * 300
    err = pipeline.mp("approve", movie.uid, "--yes", "--destination", f"Movies/{long}/Z.mkv",
                      expect=2).stderr  # fmt: skip
    assert "longer than the 255 bytes" in err


def test_a_movie_whose_place_is_taken_is_told_to_choose_another_destination(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    movie = ItemKey("movie", "Heat (1995)")
    disc_folder(pipeline, movie, "3-transcoded", ("rip", "remux", "transcode"), ["Heat (1995).mkv"])
    there = pipeline.root / "library" / "Movies" / "Heat (1995)" / "Heat (1995).mkv"
    there.parent.mkdir(parents=True)
    there.write_bytes(b"an older copy, another size")
    pipeline.mp("reconcile")
    pipeline.mp("approve", movie.uid, "--yes")
    out = pipeline.mp("dispatch").stdout
    assert "give it another destination at the gate" in out and "--first-episode" not in out
