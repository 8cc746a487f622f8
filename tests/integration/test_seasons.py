"""A season's discs filed as one run of episodes, whatever order they arrive in; the
numbers kept on the share through a lost database, and checked in a pending job."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (
    forged_pending_spec,
    item_row,
    job_name,
    pending_spec_of,
    refused_by_worker,
    set_aside_by_reconcile,
)

from media_pipeline.items.names import ItemKey

DISC1 = ItemKey("tv", "Lost (2004)", "S01 Disc1")
DISC2 = ItemKey("tv", "Lost (2004)", "S01 Disc2")


def episodes_in(folder: Path, count: int) -> None:
    """A disc folder's episode files: the marked folder's video.mkv and count - 1 more."""
    for number in range(2, count + 1):
        (folder / f"Episode {number:02d}.mkv").write_bytes(b"episode")


def item(pipeline, key) -> dict:
    return next(i for i in pipeline.status_json()["items"] if i["uid"] == key.uid)


def file_everything(pipeline, rounds: int = 4) -> None:
    """The hosts' timers, by hand, until what can be filed is."""
    for _round in range(rounds):
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")
        for _claim in range(3):
            pipeline.mp("claim", "--worker", "w1", expect=None)
    pipeline.mp("reconcile")


def pending_spec(pipeline) -> tuple[Path, dict]:
    [name] = pipeline.queue("pending")
    path = pipeline.staging / ".pipeline" / "jobs" / "pending" / name / "spec.json"
    return path, json.loads(path.read_text())


def test_a_later_disc_waits_for_the_earlier_and_is_numbered_after_it(pipeline):
    pipeline.mark(DISC1, "1-ripped", "rip")
    disc2 = pipeline.mark(DISC2, "3-transcoded", "rip", "remux", "transcode")
    episodes_in(disc2, 3)
    pipeline.mp("reconcile")
    out = pipeline.mp("dispatch").stdout
    assert "waiting: tv/Lost (2004)/S01 Disc2 waits for tv/Lost (2004)/S01 Disc1 (RIPPED)" in out
    assert [job_name(n).kind for n in pipeline.queue("pending")] == ["remux"]
    why = pipeline.mp("why", DISC2.uid).stdout
    assert "waits for tv/Lost (2004)/S01 Disc1" in why

    # Disc 1's remux is done (by hand here: its job cancelled, its output marked).
    pipeline.mp("cancel", DISC1.uid)
    episodes_in(pipeline.mark(DISC1, "2-remuxed", "remux"), 2)
    pipeline.mp("reconcile")
    assert item(pipeline, DISC1)["state"] == "REMUXED"
    out = pipeline.mp("dispatch").stdout
    # Disc 1 goes on to its transcode; disc 2, no longer waiting, to its filing.
    assert "_filebot_tv_" in out and "for tv/Lost (2004)/S01 Disc2\n" in out
    assert "dispatch: 2 job(s) queued, 0 waiting" in out
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert spec["episodes"] == {"season": 1, "first": 3}
    assert spec["destination"].endswith("/TV Shows/Lost (2004)/Season 01/")
    assert item_row(pipeline, DISC2)["episodes"] == "3-5"
    metadata = json.loads((disc2 / ".pipeline" / "metadata.json").read_text())
    assert metadata["episodes"] == "3-5"
    # mp status shows the season's discs in disc order, with their episodes.
    status = pipeline.mp("status").stdout
    block = status.split("SEASONS\n", 1)[1].split("\n\n")[0].splitlines()
    assert block[0] == "Lost (2004), season 1"
    assert block[1].split() == ["S01", "Disc1", "-", "TRANSCODING"]
    assert block[2].split() == ["S01", "Disc2", "e03-e05", "FILING"]
    [season] = pipeline.status_json()["seasons"]
    assert [d["episodes"] for d in season["discs"]] == [None, "3-5"]

    # The worker is told where the numbering starts.
    for _job in range(2):  # Disc 1's transcode job is pending too
        pipeline.mp("claim", "--worker", "w1")
    [env_file] = pipeline.root.glob("env.job_*filebot*")
    env = env_file.read_text().splitlines()
    assert "MP_SEASON=1" in env and "MP_FIRST_EPISODE=3" in env


def test_recorded_numbers_survive_losing_the_database(pipeline):
    disc1 = pipeline.mark(DISC1, "3-transcoded", "rip", "remux", "transcode")
    episodes_in(disc1, 3)
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    assert item_row(pipeline, DISC1)["episodes"] == "1-3"
    for path in pipeline.database.parent.iterdir():
        if path.name.startswith("state.db"):
            path.unlink()
    pipeline.mp("reconcile")
    assert item_row(pipeline, DISC1)["episodes"] == "1-3"


def test_a_pending_filing_job_with_other_episode_numbers_is_rejected(pipeline):
    disc1 = pipeline.mark(DISC1, "3-transcoded", "rip", "remux", "transcode")
    episodes_in(disc1, 3)
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    with forged_pending_spec(pipeline, "filebot") as spec:
        spec["episodes"]["first"] = 40  # a share writer renumbers the disc
    reason = set_aside_by_reconcile(pipeline)
    assert "episode numbers are not the ones dispatch settled" in reason


def test_a_disc_label_for_a_movie_is_refused_not_dropped(pipeline):
    pipeline.mp("reconcile")
    err = pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)", "--disc-label", "D1",
                      expect=2).stderr  # fmt: skip
    assert "--disc-label is for tv discs" in err
    assert pipeline.queue("pending") == []


def test_the_filing_gate_says_when_a_title_has_no_year(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    pipeline.mark(ItemKey("movie", "Heat"), "3-transcoded", "transcode")
    pipeline.mark(ItemKey("movie", "Ronin (1998)"), "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    approvals = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    notes = {a["item"]["title"]: a["prompt"]["notes"] for a in approvals}
    assert notes["Ronin (1998)"] == []
    [note] = notes["Heat"]
    assert "the title has no year" in note and "'Heat (1999)'" in note


def test_a_filing_destination_can_be_chosen_again_after_approval(pipeline):
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    pipeline.mark(movie, "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    pipeline.mp("approve", movie.uid, "--yes")
    pipeline.mp("dispatch")
    pipeline.mp("cancel", movie.uid)
    # A plain retry keeps the approval: nothing is asked again.
    out = pipeline.mp("retry", movie.uid).stdout
    assert "back to TRANSCODED; 'mp dispatch' queues its job" in out
    pipeline.mp("reconcile")
    assert json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"] == []
    pipeline.mp("dispatch")
    pipeline.mp("cancel", movie.uid)
    # --ask-again sets the approval aside (its file kept) and the gate opens again.
    assert (
        "would go back to TRANSCODED; filebot_confirm would ask again"
        in pipeline.mp("retry", movie.uid, "--ask-again", "--dry-run").stdout
    )
    out = pipeline.mp("retry", movie.uid, "--ask-again").stdout
    assert "filebot_confirm asks again" in out
    folder = pipeline.folder(movie, "3-transcoded") / ".pipeline"
    assert list(folder.glob("approval.filebot_confirm.superseded-*.json"))
    pipeline.mp("reconcile")
    [approval] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approval["gate"] == "filebot_confirm"
    pipeline.mp("approve", movie.uid, "--yes", "--destination", "Movies/Heat (1995)/Heat 2.mkv")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert spec["destination"].endswith("/Movies/Heat (1995)/Heat 2.mkv")


def test_ask_again_needs_a_gate_to_go_back_to(pipeline):
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.mark(movie, "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("cancel", movie.uid)
    err = pipeline.mp("retry", movie.uid, "--ask-again", expect=2).stderr
    assert "where no gate is on" in err
    assert "not both" in pipeline.mp("retry", movie.uid, "--ask-again", "--redo", expect=2).stderr


def test_forget_sets_the_stage_folders_aside_and_keeps_every_media_file(pipeline):
    from conftest import tree_snapshot

    movie = ItemKey("movie", "Heat (1995)")
    pipeline.mark(movie, "1-ripped", "rip")
    pipeline.mark(movie, "2-remuxed", "remux")
    other = ItemKey("movie", "Ronin (1998)")
    pipeline.mark(other, "1-ripped", "rip")
    pipeline.mp("reconcile")
    media = sorted(
        data
        for path, data in tree_snapshot(pipeline.staging).items()
        if path.endswith(".mkv") and data is not None
    )
    assert "would forget it" in pipeline.mp("forget", movie.uid, "--dry-run").stdout
    # Without a terminal it asks for --yes rather than decide alone.
    assert "add --yes" in pipeline.mp("forget", movie.uid, expect=2).stderr
    out = pipeline.mp("forget", movie.uid, "--yes").stdout
    assert "forgotten" in out and "set aside" in out
    for stage, marker in (("1-ripped", "rip.done"), ("2-remuxed", "remux.done")):
        folder = pipeline.folder(movie, stage)
        assert not folder.exists(), "a new rip of the title starts from a clean folder"
        (aside,) = folder.parent.glob(".Heat (1995).forgotten-*")
        assert (aside / ".pipeline" / marker).exists() and list(aside.glob("*.mkv"))
    after = sorted(
        data
        for path, data in tree_snapshot(pipeline.staging).items()
        if path.endswith(".mkv") and data is not None
    )
    assert after == media, "no media file changed or went"
    # Reconcile does not bring it back; the other item is untouched.
    pipeline.mp("reconcile")
    assert [i["title"] for i in pipeline.status_json()["items"]] == ["Ronin (1998)"]
    assert "no item matches" in pipeline.mp("why", movie.uid, expect=2).stderr


def test_forget_is_refused_while_a_job_is_live(pipeline):
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.mark(movie, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    assert "'mp cancel' it first" in pipeline.mp("forget", movie.uid, "--yes", expect=2).stderr
    assert pipeline.folder(movie, "1-ripped").joinpath(".pipeline", "rip.done").exists()


def test_a_tv_destination_is_its_seasons_folder_and_a_movies_a_file(pipeline):
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    movie = ItemKey("movie", "Heat (1995)")
    episodes_in(pipeline.mark(DISC1, "3-transcoded", "transcode"), 2)
    pipeline.mark(movie, "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    wrong = pipeline.mp(
        "approve", DISC1.uid, "--yes", "--destination", "TV Shows/Lost (2004)/Season 02/",
        expect=2,
    ).stderr  # fmt: skip
    assert "season 1 by its label, so it ends in 'Season 01/'" in wrong
    folder = pipeline.mp(
        "approve", movie.uid, "--yes", "--destination", "Movies/Heat (1995)/", expect=2
    ).stderr
    assert "a movie's destination is a file" in folder
    # Without its final /, a season's folder is still taken as the folder.
    pipeline.mp("approve", DISC1.uid, "--yes", "--destination", "TV Shows/Lost (2004)/Season 01")
    pipeline.mp("dispatch")
    _path, spec = pending_spec_of(pipeline, "filebot")
    assert spec["destination"].endswith("/TV Shows/Lost (2004)/Season 01/")


def test_a_worker_refuses_a_filing_spec_whose_season_is_not_its_labels(pipeline):
    episodes_in(pipeline.mark(DISC1, "3-transcoded", "transcode"), 2)
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    with forged_pending_spec(pipeline, "filebot") as spec:
        spec["episodes"]["season"] = 7  # forged before any reconcile could see it
    reason = refused_by_worker(pipeline, "filebot")
    assert "season 7 is not the one its disc label names" in reason


def test_another_cut_or_copy_of_a_filed_movie_is_ripped_as_an_edition(pipeline):
    heat = ItemKey("movie", "Heat (1995)")
    pipeline.mark(heat, "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    err = pipeline.mp("rip", "--type", "movie", "--title", "Heat (1995)", expect=2).stderr
    assert "already tracked" in err and "--edition NAME" in err
    out = pipeline.mp(
        "rip", "--type", "movie", "--title", "Heat (1995)", "--edition", "Director's Cut"
    ).stdout
    assert "queued" in out and "Heat (1995) {edition-Director's Cut}" in out
    cut = ItemKey("movie", "Heat (1995) {edition-Director's Cut}")
    assert item_row(pipeline, cut)["state"] == "RIPPING"
    for bad in (("--edition", "a}b"), ("--edition", "  "), ("--edition", "x" * 33)):
        args = ("rip", "--type", "movie", "--title", "Heat (1995)", *bad)
        said = pipeline.mp(*args, expect=2).stderr
        assert "cannot be an edition's name (up to 32 characters, Plex's limit" in said
    tv = ("rip", "--type", "tv", "--title", "Lost", "--disc-label", "S01 D1", "--edition", "X")
    assert "--edition is for movies" in pipeline.mp(*tv, expect=2).stderr


def test_an_editions_library_path_is_plexs(pipeline):
    from media_pipeline.library.destination import proposed_destination

    cut = ItemKey("movie", "Heat (1995) {edition-Director's Cut}")
    assert proposed_destination(cut, "/lib") == (
        "/lib/Movies/Heat (1995) {edition-Director's Cut}/Heat (1995) {edition-Director's Cut}.mkv"
    )


def test_the_remux_review_shows_how_the_discs_episodes_would_be_numbered(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    episodes_in(pipeline.mark(DISC1, "3-transcoded", "rip", "remux", "transcode"), 3)
    episodes_in(pipeline.mark(DISC2, "2-remuxed", "rip", "remux"), 2)
    pipeline.mp("reconcile")
    [approval] = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approval["item"]["disc_label"] == "S01 Disc2"
    assert "as the season stands, s01e04-e05 in the order below" in " ".join(
        approval["prompt"]["notes"]
    )


def test_a_forged_episode_range_is_not_restored_after_a_database_loss(pipeline):
    disc1 = pipeline.mark(DISC1, "3-transcoded", "rip", "remux", "transcode")
    episodes_in(disc1, 3)
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    metadata_path = disc1 / ".pipeline" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    assert metadata["episodes"] == "1-3" and len(metadata["episodes_signature"]) == 64
    metadata["episodes"] = "1-40"  # a share writer pushes the next disc to e41
    metadata_path.write_text(json.dumps(metadata))
    for path in pipeline.database.parent.iterdir():
        if path.name.startswith("state.db"):
            path.unlink()
    result = pipeline.mp("reconcile")
    assert "episode range is not one this controller signed" in result.stderr
    assert item_row(pipeline, DISC1)["episodes"] is None


def test_a_year_given_at_one_discs_gate_reaches_the_shows_other_discs(pipeline):
    """Three discs of a show ripped without a year wait at filebot_confirm; the year given
    at disc 1's gate makes the show's folder, and discs 2 and 3 (their gates open) are
    proposed into it, said in their prompts: the show is filed into one folder."""
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    discs = [ItemKey("tv", "Seinfeld", f"S03 Disc{n}") for n in (1, 2, 3)]
    for disc in discs:
        episodes_in(pipeline.mark(disc, "3-transcoded", "rip", "remux", "transcode"), 2)
    pipeline.mp("reconcile")
    pipeline.mp("approve", discs[0].uid, "--yes", "--year", "1989")
    listed = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert len(listed) == 2
    for approval in listed:
        assert approval["prompt"]["destination"].endswith("/TV Shows/Seinfeld (1989)/Season 03/")
        assert any("was chosen at tv/Seinfeld/S03 Disc1's gate" in note
                   for note in approval["prompt"]["notes"])  # fmt: skip
        assert not any("has no year" in note for note in approval["prompt"]["notes"])
    for disc in discs[1:]:
        pipeline.mp("approve", disc.uid, "--yes")
    file_everything(pipeline)
    assert {item(pipeline, disc)["state"] for disc in discs} == {"IN_LIBRARY"}
    shows = pipeline.root / "library" / "TV Shows"
    assert sorted(path.name for path in shows.iterdir()) == ["Seinfeld (1989)"]


def test_a_disc_whose_predecessor_was_never_ripped_waits_for_it(pipeline):
    """Discs 1 and 3 of a season, disc 2 not ripped yet: disc 3 waits for it (it once took
    disc 2's numbers); when disc 2 comes, each disc gets its own episodes."""
    discs = {n: ItemKey("tv", "Lost (2004)", f"S01 Disc{n}") for n in (1, 2, 3)}
    for n in (1, 3):
        episodes_in(pipeline.mark(discs[n], "3-transcoded", "rip", "remux", "transcode"), 2)
    pipeline.mp("reconcile")
    out = pipeline.mp("dispatch").stdout
    assert "S01 Disc3 waits for disc 2 of season 1, which mp has not seen" in out, out
    assert "S01 Disc3" in pipeline.mp("why", discs[3].uid).stdout
    episodes_in(pipeline.mark(discs[2], "3-transcoded", "rip", "remux", "transcode"), 2)
    file_everything(pipeline)
    assert [item_row(pipeline, discs[n])["episodes"] for n in (1, 2, 3)] == ["1-2", "3-4", "5-6"]


def test_a_disc_renamed_to_add_the_year_stays_with_its_show(pipeline):
    """Lost disc 2 renamed 'Lost (2004)' (disc 1 is 'Lost'): it is still numbered after
    disc 1's episodes, and waits for them, as one show."""
    first, second = ItemKey("tv", "Lost", "S01 Disc1"), ItemKey("tv", "Lost", "S01 Disc2")
    pipeline.mark(first, "1-ripped", "rip")
    episodes_in(pipeline.mark(second, "3-transcoded", "rip", "remux", "transcode"), 2)
    pipeline.mp("reconcile")
    pipeline.mp("rename", second.uid, "Lost (2004)")
    pipeline.mp("reconcile")
    out = pipeline.mp("dispatch").stdout
    assert "S01 Disc2 waits for tv/Lost/S01 Disc1" in out, out


def test_two_shows_of_one_name_and_other_years_are_two_groups():
    from media_pipeline.library.seasons import same_show

    assert same_show("Lost", "Lost (2004)") and same_show("lost (2004)", "Lost (2004)")
    assert not same_show("Shameless (2004)", "Shameless (2011)")
    assert not same_show("Lost", "Lost Girl")


def test_a_bonus_discs_titles_are_the_shows_extras(pipeline):
    """'S01 Disc2 Bonus' is no Season 00 of specials: its titles are filed as the show's
    featurettes, and the next disc's episodes follow disc 1's."""
    one = ItemKey("tv", "Lost (2004)", "S01 Disc1")
    bonus = ItemKey("tv", "Lost (2004)", "S01 Disc2 Bonus")
    three = ItemKey("tv", "Lost (2004)", "S01 Disc3")
    for key in (one, bonus, three):
        episodes_in(pipeline.mark(key, "3-transcoded", "rip", "remux", "transcode"), 2)
    file_everything(pipeline)
    assert {item(pipeline, key)["state"] for key in (one, bonus, three)} == {"IN_LIBRARY"}
    show = pipeline.root / "library" / "TV Shows" / "Lost (2004)"
    assert sorted(p.name for p in (show / "Featurettes").iterdir()) == [
        "Episode 02.mkv",
        "video.mkv",
    ]
    assert not (show / "Season 00").exists()
    assert item_row(pipeline, three)["episodes"] == "3-4"
