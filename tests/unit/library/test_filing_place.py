"""A filing destination's shape: the item's own place in the library, nothing else."""

from __future__ import annotations

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.library.destination import proposed_destination, with_year_and_edition
from media_pipeline.library.filing_place import place_problem

LIBRARY = "/lib"
MOVIE = ItemKey("movie", "Heat")
DISC = ItemKey("tv", "Lost", "S01 Disc2")
KEYS = [
    MOVIE,
    ItemKey("movie", "Heat (1995) {edition-Cut}"),
    ItemKey("movie", "x.b"),
    ItemKey("movie", "Tab\tin a title"),
    DISC,
    ItemKey("tv", "Lost", "Season 3 Disc 1"),
    ItemKey("tv", "Lost", "Specials Disc1"),
    ItemKey("tv", "Planet Earth", "Disc 4"),
]


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.name)
def test_every_destination_the_controller_proposes_is_allowed(key):
    proposed = proposed_destination(key, LIBRARY)
    assert place_problem(LIBRARY, key, proposed) is None
    edition = "Director's Cut" if key.type == "movie" else None
    named = with_year_and_edition(key.type, proposed, 1995, edition)
    assert place_problem(LIBRARY, key, named) is None


@pytest.mark.parametrize(
    "destination",
    [
        "/lib/Movies/Ronin (1998)/Ronin (1998).mkv",  # another title a person gave
        "/lib/Movies/Heat (1995)/Heat (1995) {edition-Cut}.mkv",
        "/lib/Movies/x.b/main.mkv",
        "/lib/Movies/Heat/../Heat (1995)/Heat (1995).mkv",
    ],
)
def test_a_movie_may_have_any_title_a_person_gives_it(destination):
    assert place_problem(LIBRARY, MOVIE, destination) is None


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("/lib/Movies/x.b/authorized_keys", "is not a movie's file in its own folder"),
        ("/lib/Movies/Heat.mkv", "is not a movie's file in its own folder"),
        ("/lib/Movies/Heat/Featurettes/Heat.mkv", "is not a movie's file in its own folder"),
        ("/lib/Movies/Heat/.mp-part.0.mkv", "is not a movie's file in its own folder"),
        ("/lib/Movies/.Heat/Heat.mkv", "is not a movie's file in its own folder"),
        ("/lib/Movies/Heat/Heat.mkv/", "is not a movie's file in its own folder"),
        ("/lib/Films/Heat/Heat.mkv", "is not a movie's file in its own folder"),
        ("/lib/TV Shows/Lost/Season 01/", "is not a movie's file in its own folder"),
        ("/lib/Movies/Heat/../../../etc/Heat.mkv", "is not inside library_root"),
        ("/library2/Movies/Heat/Heat.mkv", "is not inside library_root"),
        ("Movies/Heat/Heat.mkv", "is not inside library_root"),
        ("/lib", "is not inside library_root"),
        ("", "is not inside library_root"),
    ],
)
def test_a_movie_is_refused_anything_but_its_file_in_a_folder_of_movies(destination, problem):
    assert (place_problem(LIBRARY, MOVIE, destination) or "").startswith(problem)


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("/lib/TV Shows/Lost/Season 03/", "is not its disc's season folder, 'Season 01'"),
        ("/lib/TV Shows/Lost/Season 00/", "is not its disc's season folder, 'Season 01'"),
        ("/lib/TV Shows/Lost/Season 1/", "is not its disc's season folder, 'Season 01'"),
        ("/lib/TV Shows/Lost/Season 01/x.mkv", "is not a show's season folder"),
        ("/lib/TV Shows/Season 01/", "is not a show's season folder"),
        ("/lib/TV Shows/Lost/Extra/Season 01/", "is not a show's season folder"),
        ("/lib/TV Shows/.ssh/Season 01/", "is not a show's season folder"),
        ("/lib/Movies/Lost/Season 01/", "is not a show's season folder"),
        ("/lib/TV/Lost/Season 01/", "is not a show's season folder"),
    ],
)
def test_a_tv_disc_is_refused_anything_but_its_seasons_folder(destination, problem):
    assert (place_problem(LIBRARY, DISC, destination) or "").startswith(problem)


def test_a_tv_disc_may_go_to_a_show_folder_a_person_names_without_its_final_slash():
    assert place_problem(LIBRARY, DISC, "/lib/TV Shows/Lost (2004)/Season 01") is None
    specials = ItemKey("tv", "Lost", "Specials Disc1")
    assert place_problem(LIBRARY, specials, "/lib/TV Shows/Lost (2004)/Season 00/") is None
