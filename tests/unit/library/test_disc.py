"""Titles guessed from disc labels as they are found on real discs, and what udev's
properties say of the disc."""

from __future__ import annotations

from datetime import datetime

import pytest

from media_pipeline.errors import UsageError
from media_pipeline.library.disc import Guess, disc_from, eject, guess


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("THE_MATRIX", Guess("movie", "The Matrix")),
        ("SEINFELD_S3_D2", Guess("tv", "Seinfeld", "S03 Disc2")),
        ("FRIENDS_SEASON_1_DISC_3", Guess("tv", "Friends", "S01 Disc3")),
        ("SOPRANOS_SEASON2_DISC4", Guess("tv", "Sopranos", "S02 Disc4")),
        ("THE_WIRE_S02D01", Guess("tv", "The Wire", "S02 Disc1")),
        ("THE.OFFICE.S3.D4", Guess("tv", "The Office", "S03 Disc4")),
        ("BBT_S04_DISC_2", Guess("tv", "Bbt", "S04 Disc2")),
        ("DEXTER_S1", Guess("tv", "Dexter", "S01 Disc1")),
        ("BBC_SHERLOCK_SERIES_2", Guess("tv", "Bbc Sherlock", "S02 Disc1")),
        ("SHERLOCK_SERIES2_DISC1", Guess("tv", "Sherlock", "S02 Disc1")),
        ("TATORT_STAFFEL_3_DVD2", Guess("tv", "Tatort", "S03 Disc2")),
        ("KAAMELOTT_SAISON_1_D2", Guess("tv", "Kaamelott", "S01 Disc2")),
        ("LA_CASA_DE_PAPEL_TEMPORADA_2", Guess("tv", "La Casa De Papel", "S02 Disc1")),
        ("GOMORRA_STAGIONE_1", Guess("tv", "Gomorra", "S01 Disc1")),
        ("SERIES_7", Guess("movie", "Series 7")),  # the first word is the title's
        ("GONE_WITH_THE_WIND", Guess("movie", "Gone with the Wind")),
        ("HARRY_POTTER_AND_THE_CHAMBER_OF_SECRETS",
         Guess("movie", "Harry Potter and the Chamber of Secrets")),
        ("ROCKY_II", Guess("movie", "Rocky II")),
        ("STAR_WARS_EPISODE_IV", Guess("movie", "Star Wars Episode IV")),
        ("BLADE_RUNNER_2049", Guess("movie", "Blade Runner 2049")),
        ("1917", Guess("movie", "1917")),
        ("S7", Guess("movie", "S7")),
        ("MAD_MAX_FURY_ROAD_BLU_RAY", Guess("movie", "Mad Max Fury Road")),
        ("AMELIE_PAL_R2", Guess("movie", "Amelie")),
        ("LOTR_FOTR_WS", Guess("movie", "Lotr Fotr")),
        ("TITANIC_DISC_2", Guess("movie", "Titanic")),
        ("Inception", Guess("movie", "Inception")),
        ("  spaced  out ", Guess("movie", "Spaced Out")),
        ("AC/DC_LIVE", Guess("movie", "Ac Dc Live")),  # from ID_FS_LABEL_ENC's \x2f
        ("../../ETC", Guess("movie", "Etc")),
        ("BAD\x00NAME\x1b[31m", Guess("movie", "Bad Name [31m")),
    ],
)  # fmt: skip
def test_labels_of_real_discs(label, expected):
    assert guess(label) == expected


@pytest.mark.parametrize("label", ["", "DVD_VIDEO", "LOGICAL_VOLUME_ID", "BDROM", "___"])
def test_a_label_that_names_nothing_says_so(label):
    assert guess(label, uuid="2003-04-11-09-00-00-00") == Guess(
        "movie", "Unlabelled disc 2003-04-11-09-00"
    )
    when = datetime(2026, 11, 26, 7, 5)
    assert guess(label, uuid="../x", now=when).title == "Unlabelled disc 2026-11-26 0705"


def test_udev_properties_say_the_media():
    dvd = {"ID_CDROM_MEDIA": "1", "ID_CDROM_MEDIA_DVD": "1", "ID_FS_LABEL": "THE_MATRIX"}
    assert disc_from("/dev/sr0", dvd).media == "dvd"
    bd = {"ID_CDROM_MEDIA": "1", "ID_CDROM_MEDIA_BD": "1", "ID_FS_LABEL_ENC": "A\\x20B"}
    assert (disc_from("/dev/sr1", bd).media, disc_from("/dev/sr1", bd).label) == ("bd", "A B")
    with pytest.raises(UsageError, match="no disc in /dev/sr0"):
        disc_from("/dev/sr0", {"ID_CDROM_MEDIA_DVD": "1"})
    with pytest.raises(UsageError, match="neither a DVD nor a Blu-ray"):
        disc_from("/dev/sr0", {"ID_CDROM_MEDIA": "1", "ID_CDROM_MEDIA_CD": "1"})


def test_a_label_longer_than_any_disc_holds_is_cut_at_a_word():
    title = guess("THE_" + "VERY_LONG_" * 30 + "FILM").title
    assert title.startswith("The Very Long Very") and len(title.encode()) <= 120


def test_only_an_optical_drive_is_a_device():
    from media_pipeline.library.disc import read_disc

    for device in ("/dev/sda", "/dev/sr0\n", "/dev/sr0/../sda", "sr0"):
        with pytest.raises(UsageError, match="is not an optical drive"):
            read_disc(device)


def test_a_long_label_in_a_script_without_spaces_still_fits_a_title():
    title = guess("日本" * 32).title  # 192 bytes of UTF-8, one word
    assert title.startswith("日本日本") and len(title.encode()) <= 120


def test_eject_names_what_stopped_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without util-linux's eject
    assert eject("/dev/sr0") == "eject is not installed (the package is eject, or util-linux)"
    assert eject("/dev/sda") == "/dev/sda is not an optical drive (/dev/srN)"
    assert eject("/dev/sr0\n") == "/dev/sr0\\n is not an optical drive (/dev/srN)"
    unrunnable = tmp_path / "eject"
    unrunnable.write_text("#!/bin/sh\n")  # not executable
    assert eject("/dev/sr0") == "eject could not start (Permission denied)"
