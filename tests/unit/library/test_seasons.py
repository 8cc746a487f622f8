"""Seasons and discs from labels, and the numbering of a season's discs as one run."""

from __future__ import annotations

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.library.destination import disc_number, proposed_destination, season_number
from media_pipeline.library.seasons import Numbered, Waiting, numbering, recorded_range


@pytest.mark.parametrize(
    ("label", "season", "disc"),
    [
        ("S01 Disc1", 1, 1),
        ("S02 Disc2", 2, 2),
        ("Season 3 Disc 2", 3, 2),
        ("Series 3 Disc 1", 3, 1),
        ("Specials Disc1", 0, 1),
        ("Special Features D2", None, 2),  # a bonus disc: the show's extras
        ("S01 Disc3 Bonus", 1, 3),
        ("Lost D3", None, 3),
        ("Disc 12", None, 12),
        ("Bonus", None, 1),
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
    numbered = numbering(str(tmp_path), three, shown)
    assert isinstance(numbered, Numbered) and numbered.text == "8-9"
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


def test_with_remux_review_on_an_earlier_disc_counts_once_past_it(tmp_path):
    one = disc(tmp_path, "S01 Disc1", "REMUXED")  # waiting for its review
    two = disc(tmp_path, "S01 Disc2", "TRANSCODED")
    assert isinstance(numbering(str(tmp_path), two, [one, two], reviewed=True), Waiting)
    assert numbering(str(tmp_path), two, [one, two], reviewed=False) == Numbered(1, 4, 3)
    one["state"] = "TRANSCODING"
    assert numbering(str(tmp_path), two, [one, two], reviewed=True) == Numbered(1, 4, 3)


def test_two_discs_with_one_number_wait_rather_than_collide(tmp_path):
    for first, second in (("S01 Disc1", "S01 DVD1"), ("Season 1 Volume 1", "Season 1 Volume 2")):
        root = tmp_path / first.replace(" ", "")
        root.mkdir()
        a, b = disc(root, first, "TRANSCODED"), disc(root, second, "TRANSCODED")
        waiting = numbering(str(root), b, [a, b])
        assert isinstance(waiting, Waiting) and "are both disc 1 of season 1" in waiting.reason


def test_an_earlier_disc_ripped_after_a_later_one_was_numbered_waits(tmp_path):
    two = disc(tmp_path, "S01 Disc2", "IN_LIBRARY", episodes="1-3")  # filed first, as e01-e03
    one = disc(tmp_path, "S01 Disc1", "TRANSCODED")
    waiting = numbering(str(tmp_path), one, [one, two])
    assert isinstance(waiting, Waiting)
    assert "e01-e03 would overlap those of tv/Lost (2004)/S01 Disc2 (e01-e03)" in waiting.reason


def test_a_season_mp_cannot_read_waits(tmp_path):
    odd = disc(tmp_path, "Season 2019 Disc 1", "TRANSCODED")
    waiting = numbering(str(tmp_path), odd, [odd])
    assert isinstance(waiting, Waiting) and "names a season mp cannot read" in waiting.reason


def test_an_earlier_filed_disc_without_a_record_is_counted_where_its_episodes_are(tmp_path):
    one = disc(tmp_path, "S01 Disc1", "IN_LIBRARY", files=0)  # filing emptied 3-transcoded
    two = disc(tmp_path, "S01 Disc2", "TRANSCODED")
    waiting = numbering(str(tmp_path), two, [one, two])
    assert isinstance(waiting, Waiting) and "not recorded" in waiting.reason
    remuxed = tmp_path / "2-remuxed" / "tv" / "Lost (2004)" / "S01 Disc1"
    remuxed.mkdir(parents=True)
    for number in range(4):
        (remuxed / f"Episode {number + 1:02d}.mkv").write_bytes(b"x")
    assert numbering(str(tmp_path), two, [one, two]) == Numbered(1, 5, 3)


def test_only_the_files_filing_files_are_counted(tmp_path):
    one = disc(tmp_path, "S01 Disc1", "TRANSCODED", files=2)
    folder = tmp_path / "3-transcoded" / "tv" / "Lost (2004)" / "S01 Disc1"
    (folder / "Episode 03.MKV").write_bytes(b"x")  # the script's *.mkv does not take these
    (folder / "Episode 04.mp4").write_bytes(b"x")
    assert numbering(str(tmp_path), one, [one]) == Numbered(1, 1, 2)
