"""File roles: the text a person types, the records kept, and the Plex names they give."""

from __future__ import annotations

import pytest

from media_pipeline.library.file_roles import (
    Role,
    Roles,
    RolesError,
    default_roles,
    from_json,
    labels,
    parse_roles,
    targets,
)

NAMES = ["a.mkv", "b.mkv", "c.mkv", "d.mkv", "e.mkv"]
SEASON = "/lib/TV Shows/Show (2021)/Season 02/"


def test_episodes_take_their_order_doubles_take_two_and_specials_go_to_season_00():
    roles = parse_roles("2 1 3:double 4:special 5:drop", "tv", NAMES, first_episode=4)
    assert roles.episode_count == 4
    assert targets(roles, "tv", SEASON, season=2, first=1) == [
        ("b.mkv", "Season 02/Show (2021) - s02e04.mkv"),
        ("a.mkv", "Season 02/Show (2021) - s02e05.mkv"),
        ("c.mkv", "Season 02/Show (2021) - s02e06-e07.mkv"),
        ("d.mkv", "Season 00/Show (2021) - s00e01.mkv"),
    ]
    assert roles.text(NAMES) == "2 1 3:double 4:special 5:drop"


def test_without_a_first_episode_the_season_decides():
    roles = parse_roles("1 2 3 4 5", "tv", NAMES)
    placed = targets(roles, "tv", SEASON, season=2, first=9)
    assert placed[0] == ("a.mkv", "Season 02/Show (2021) - s02e09.mkv")
    assert placed[-1] == ("e.mkv", "Season 02/Show (2021) - s02e13.mkv")


def test_specials_are_numbered_in_order_around_the_numbers_given():
    roles = parse_roles("1:special 2:special=1 3:special 4:drop 5:drop", "tv", NAMES)
    assert [place for _file, place in targets(roles, "tv", SEASON)] == [
        "Season 00/Show (2021) - s00e02.mkv",
        "Season 00/Show (2021) - s00e01.mkv",
        "Season 00/Show (2021) - s00e03.mkv",
    ]
    with pytest.raises(RolesError, match="same number"):
        parse_roles("1:special=2 2:special=2 3 4 5", "tv", NAMES)


def test_extras_go_to_plexs_folders_beside_the_movie():
    names = ["Extra 01.mkv", "Extra 02.mkv", "Heat (1995).mkv"]
    default = default_roles("movie", "Heat (1995)", names)
    assert default.text(names) == "1:other 2:other 3:movie"
    roles = parse_roles("3 1:behindthescenes 2:deleted", "movie", names)
    assert targets(roles, "movie", "/lib/Movies/Heat (1995)/Heat (1995) {edition-Cut}.mkv") == [
        ("Heat (1995).mkv", "Heat (1995) {edition-Cut}.mkv"),
        ("Extra 01.mkv", "Behind The Scenes/Extra 01.mkv"),
        ("Extra 02.mkv", "Deleted Scenes/Extra 02.mkv"),
    ]


def test_a_movie_without_its_title_file_takes_the_one_not_named_extra():
    assert default_roles("movie", "Heat", ["Extra 01.mkv", "main.mkv"]).files == (
        Role("Extra 01.mkv", "other"),
        Role("main.mkv", "movie"),
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("1 2 3", "files 4, 5 have no place"),
        ("1 2 3 4", "file 5 has no place"),
        ("0 1 2 3 4", "there is no file 0"),
        ("1 2 3 4 5:movie", "'movie' is not a role for a tv file"),
        ("1 2 3 4 5:episode=2", "only a special takes a number"),
        ("1 2 3 4 five", "'five' is not a file number"),
        ("1:special=0 2 3 4 5", "0 is not an episode number"),
    ],
)
def test_a_bad_text_says_what_is_wrong(text, said):
    with pytest.raises(RolesError, match=said):
        parse_roles(text, "tv", NAMES)


def test_a_first_episode_past_999_is_refused():
    with pytest.raises(RolesError, match="past 999"):
        parse_roles("1 2 3 4 5", "tv", NAMES, first_episode=997)


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"files": "a.mkv"},
        {"files": [{"file": "../x.mkv", "role": "episode"}]},
        {"files": [{"file": "a\tb.mkv", "role": "episode"}]},
        {"files": [{"file": "a.mkv", "role": "rm -rf"}]},
        {"files": [{"file": "a.mkv", "role": "episode", "number": 2}]},
        {"files": [{"file": "a.mkv", "role": "episode"}] * 2},
        {"files": [{"file": "a.mkv", "role": "episode"}], "first_episode": "4"},
    ],
)
def test_a_stored_record_is_checked_like_typed_text(record):
    with pytest.raises(RolesError):
        from_json(record, "tv")


def test_a_record_round_trips():
    roles = parse_roles("2 1:double 3:special=4 4:trailer 5:drop", "tv", NAMES, first_episode=3)
    assert from_json(roles.as_json(), "tv") == roles


def test_labels_say_what_each_file_becomes():
    roles = parse_roles("2 1:double 3:special 4:featurette 5:drop", "tv", NAMES)
    assert labels(roles, {"season": 1, "first": 7}) == {
        "b.mkv": "s01e07",
        "a.mkv": "s01e08-e09",
        "c.mkv": "special s00e01",
        "d.mkv": "featurette (in Featurettes/)",
        "e.mkv": "left out (stays in staging)",
    }
    unsettled = labels(roles, None)
    assert unsettled["b.mkv"] == "episode 1 of the disc"
    assert unsettled["a.mkv"] == "episodes 2-3 of the disc"
    assert labels(Roles((Role("m.mkv", "movie"),)), None) == {"m.mkv": "the movie"}
