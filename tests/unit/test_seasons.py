"""Seasons and discs from labels, and the numbering of a season's discs as one run."""

from __future__ import annotations

import pytest

from media_pipeline.destination import disc_number, proposed_destination, season_number
from media_pipeline.items import ItemKey
from media_pipeline.seasons import Numbered, Waiting, numbering, recorded_range


@pytest.mark.parametrize(
    ("label", "season", "disc"),
    [
        ("S01 Disc1", 1, 1),
        ("S02 Disc2", 2, 2),
        ("Season 3 Disc 2", 3, 2),
        ("Series 3 Disc 1", 3, 1),
        ("Specials Disc1", 0, 1),
        ("Special Features D2", 0, 2),
        ("Lost D3", None, 3),
        ("Disc 12", None, 12),
        ("Bonus", 0, 1),
        ("DISC_2", None, 2),
    ],
)
def test_labels_name_the_season_and_the_disc(label, season, disc):
    assert (season_number(label), disc_number(label)) == (season, disc)


def test_specials_go_to_season_00_and_unlabelled_discs_to_season_01():
    assert proposed_destination(ItemKey("tv", "Lost (2004)", "Specials Disc1"), "/lib") == (
        "/lib/TV Shows/Lost (2004)/Season 00/"
    )
    assert proposed_destination(ItemKey("tv", "Lost (2004)", "Disc2"), "/lib").endswith(
        "/Season 01/"
    )


def test_only_sane_recorded_ranges_count():
    assert recorded_range("4-6") == (4, 6)
    for text in (None, "", "6-4", "0-3", "1-1000", "a-b", "4-6\n", " 4-6"):
        assert recorded_range(text) is None, text


def disc(tmp_path, label: str, state: str, files: int = 3, **fields) -> dict:
    key = ItemKey("tv", "Lost (2004)", label)
    folder = tmp_path / "3-transcoded" / "tv" / key.title / label
    folder.mkdir(parents=True)
    for number in range(files):
        (folder / f"Episode {number + 1:02d}.mkv").write_bytes(b"x")
    (folder / "notes.txt").write_text("not an episode")
    return {
        "uid": key.uid,
        "type": "tv",
        "title": key.title,
        "disc_label": label,
        "state": state,
        "stopped_in": None,
        "folder_path": str(folder),
        "episodes": None,
        **fields,
    }


def test_a_disc_follows_the_episodes_of_the_discs_before_it(tmp_path):
    one = disc(tmp_path, "S01 Disc1", "IN_LIBRARY", episodes="1-3")
    two = disc(tmp_path, "S01 Disc2", "TRANSCODING", files=4)
    three = disc(tmp_path, "S01 Disc3", "TRANSCODED", files=2)
    other_season = disc(tmp_path, "S02 Disc1", "IN_LIBRARY", episodes="1-5")
    later = disc(tmp_path, "S01 Disc4", "RIPPED")  # after it: no bearing
    shown = [later, three, other_season, two, one]
    assert numbering(str(tmp_path), three, shown) == Numbered(1, 8, 2)
    assert numbering(str(tmp_path), three, shown).text == "8-9"
    assert numbering(str(tmp_path), one, shown) == Numbered(1, 1, 3)


def test_a_disc_waits_for_an_earlier_disc_not_yet_remuxed(tmp_path):
    one = disc(tmp_path, "S01 Disc1", "RIPPED")
    two = disc(tmp_path, "S01 Disc2", "TRANSCODED")
    waiting = numbering(str(tmp_path), two, [one, two])
    assert isinstance(waiting, Waiting)
    assert "waits for tv/Lost (2004)/S01 Disc1 (RIPPED)" in waiting.reason
    # A rejected remux is made again, perhaps with other episodes: it is waited for too;
    # a failed one says how to go on.
    one["state"], one["stopped_in"] = "REJECTED", "REMUXED"
    assert isinstance(numbering(str(tmp_path), two, [one, two]), Waiting)
    one["state"], one["stopped_in"] = "FAILED", "REMUXING"
    assert "'mp retry' it" in numbering(str(tmp_path), two, [one, two]).reason  # type: ignore[union-attr]
    # Once remuxed, its files are counted.
    one["state"], one["stopped_in"] = "TRANSCODING", None
    assert numbering(str(tmp_path), two, [one, two]) == Numbered(1, 4, 3)


def test_specials_are_their_own_run_in_season_00(tmp_path):
    one = disc(tmp_path, "S01 Disc1", "TRANSCODED")
    specials = disc(tmp_path, "Specials Disc1", "TRANSCODED", files=2)
    specials2 = disc(tmp_path, "Specials Disc2", "TRANSCODED", files=1)
    assert numbering(str(tmp_path), specials2, [one, specials, specials2]) == Numbered(0, 3, 1)


def test_a_disc_with_no_media_files_is_not_numbered(tmp_path):
    empty = disc(tmp_path, "S01 Disc1", "TRANSCODED", files=0)
    assert numbering(str(tmp_path), empty, [empty]) is None
