"""Plex names for an item's library folder: a year added where there is none, editions."""

from __future__ import annotations

import pytest

from media_pipeline.library.destination import (
    check_edition,
    check_year,
    naming_notes,
    with_year_and_edition,
)

MOVIE = "/lib/Movies/Heat/Heat.mkv"
SEASON = "/lib/TV Shows/Delta/Season 03/"


def test_a_year_goes_into_the_movies_folder_and_file():
    assert (
        with_year_and_edition("movie", MOVIE, 1995, None)
        == "/lib/Movies/Heat (1995)/Heat (1995).mkv"
    )


def test_an_edition_follows_the_year_as_plex_names_it():
    cut = "Heat (1995) {edition-Director's Cut}"
    assert (
        with_year_and_edition("movie", MOVIE, 1995, "Director's Cut")
        == f"/lib/Movies/{cut}/{cut}.mkv"
    )
    ripped = "/lib/Movies/Heat {edition-Cut}/Heat {edition-Cut}.mkv"
    assert with_year_and_edition("movie", ripped, 1995, "Other") == (
        "/lib/Movies/Heat (1995) {edition-Cut}/Heat (1995) {edition-Cut}.mkv"
    )  # an edition given at rip stays; the year goes before it


def test_a_show_gets_its_year_and_keeps_its_season():
    assert (
        with_year_and_edition("tv", SEASON, 2019, None) == "/lib/TV Shows/Delta (2019)/Season 03/"
    )
    assert (
        with_year_and_edition("tv", "/lib/TV Shows/Delta (2019)/Season 03/", 2020, None).count("(")
        == 1
    )


def test_a_file_named_otherwise_keeps_its_name():
    assert with_year_and_edition("movie", "/lib/Movies/Heat/main.mkv", 1995, None) == (
        "/lib/Movies/Heat (1995)/main.mkv"
    )


def test_notes_read_the_destination_not_the_title():
    assert naming_notes("tv", SEASON) and not naming_notes("tv", "/l/TV Shows/D (2019)/Season 01/")
    assert not naming_notes("movie", "/lib/Movies/Heat (1995)/Heat (1995).mkv")


@pytest.mark.parametrize("year", ["95", "1066", "2200", "nineteen", "", "²", "１９９５"])
def test_a_year_is_four_digits_in_range(year):
    with pytest.raises(ValueError, match="is not a year"):
        check_year(year)


@pytest.mark.parametrize("name", ["{edition-x}", "a/b", "x" * 61, "tab\there", "  "])
def test_an_edition_cannot_break_plexs_braces_or_the_path(name):
    with pytest.raises(ValueError, match="cannot be an edition's name"):
        check_edition(name)


def test_a_bare_year_at_the_titles_end_becomes_plexs_when_it_is_the_year_given():
    from media_pipeline.library.destination import with_year_and_edition

    show = "/l/TV Shows/Doctor Who 2005/Season 01/"
    assert (
        with_year_and_edition("tv", show, 2005, None) == "/l/TV Shows/Doctor Who (2005)/Season 01/"
    )
    movie = "/l/Movies/Blade Runner 2049/Blade Runner 2049.mkv"
    assert with_year_and_edition("movie", movie, 2017, None) == (
        "/l/Movies/Blade Runner 2049 (2017)/Blade Runner 2049 (2017).mkv"
    )
    assert with_year_and_edition("movie", "/l/Movies/1917/1917.mkv", 2019, None) == (
        "/l/Movies/1917 (2019)/1917 (2019).mkv"
    )
