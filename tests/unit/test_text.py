"""Text for people and records: durations as people read them, in tables (whole units)
and on the page's charts (tenths, where a stage takes seconds); sizes; times; how wide
text shows on a terminal; and JSON that is safe to print and still exact."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from media_pipeline.text import (
    NOT_A_TIME,
    display_width,
    duration_text,
    encodable,
    json_text,
    local_time,
    mixed_scripts,
    name_stamp,
    shorten,
    size_text,
    utc_now,
)


@pytest.mark.parametrize(
    ("seconds", "short", "tenths", "expected"),
    [
        (None, False, False, ""),
        (45.9, False, False, "45 s"),
        (45.9, True, False, "45s"),
        (4.25, False, True, "4.2 s"),
        (119, False, False, "119 s"),
        (120, False, False, "2 min"),
        (738, False, True, "12.3 min"),
        (7200, True, False, "2h"),
        (9000, False, True, "2.5 h"),
        (172800, False, False, "2 days"),
        (216000, True, True, "2.5d"),
        # Judged as shown: a tenth that rounds up to the next unit is shown in it.
        (119.96, False, True, "2.0 min"),
        (119.94, False, True, "119.9 s"),
        (119.96, False, False, "119 s"),
    ],
)
def test_a_duration_in_the_unit_that_fits(seconds, short, tenths, expected):
    assert duration_text(seconds, short=short, tenths=tenths) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1_048_575, "1.0 MiB"),  # not "1024.0 KiB"
        (1_048_524, "1023.9 KiB"),
        (3_565_158, "3.4 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (int(1.2 * 1024**4), "1.2 TiB"),
        (3 * 1024**5, "3072.0 TiB"),  # no unit beyond TiB
    ],
)
def test_a_size_in_the_binary_unit_that_fits(count, expected):
    assert size_text(count) == expected


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("", 0),
        ("Heat (1995)", 11),
        ("日本語", 6),  # wide: two columns each
        ("ｱｲｳ", 3),  # halfwidth katakana: one each
        ("Amélie", 6),
        ("Ame\u0301lie", 6),  # a combining accent takes no column
        ("ＡＢ", 4),  # fullwidth Latin
    ],
)
def test_the_width_of_text_on_a_terminal_is_its_columns(text, width):
    assert display_width(text) == width


def test_shorten_cuts_to_the_columns_with_an_ellipsis():
    assert shorten("Heat (1995)", 11) == "Heat (1995)"
    assert shorten("Heat (1995)", 8) == "Heat (1…"
    # A wide character that would cross the edge is left out whole.
    assert shorten("日本語のタイトル", 7) == "日本語…"
    assert display_width(shorten("日本語のタイトル", 7)) == 7
    assert shorten("日本語のタイトル", 8) == "日本語…"


def test_shorten_shows_control_characters_escaped_and_counts_them_so():
    folder = "Heat\n\x1b[2J(1995)"
    shown = shorten(folder, 80)
    assert shown == "Heat\\n\\x1b[2J(1995)"
    assert shown.isprintable()
    assert shorten(folder, 8) == "Heat\\n\\…"


def test_mixed_scripts_names_the_look_alike_letters():
    note = mixed_scripts("Mаtrix")  # a Cyrillic а
    assert note == (
        "its name mixes Latin letters with Cyrillic ones ('а' U+0430): it may look like "
        "another title and is not the same"
    )
    greek = mixed_scripts("Ωmega Μan")  # Greek Omega and Mu
    assert greek is not None and "with Greek ones ('Ω' U+03A9, 'Μ' U+039C)" in greek
    both = mixed_scripts("Mаtrix Ωmega")
    assert both is not None and "with Cyrillic and Greek ones" in both


def test_mixed_scripts_names_at_most_six_letters_each_once():
    note = mixed_scripts("x" + "абвгдежз" * 2)
    assert note is not None
    assert re.findall(r"U\+\w{4}", note) == [f"U+{ord(letter):04X}" for letter in "абвгде"]


@pytest.mark.parametrize(
    "title",
    ["Матрица", "Ο Θίασος", "The Matrix (1999)", "Amélie", "東京物語", "2001", ""],
)
def test_a_title_in_one_script_is_no_look_alike(title):
    assert mixed_scripts(title) is None


def test_json_text_escapes_what_a_terminal_would_act_on_and_reads_back_the_same():
    data = {
        "title": "Amélie 日本",  # readable stays readable
        "controls": "a\x7fb\x85c",  # DEL and a C1 control (NEL)
        "direction": "abc\u202edcba",  # a right-to-left override
        "surrogate": "bad\udc80name",  # a lone surrogate from a bytes file name
        "tag": "x\U000e0001y",  # beyond the BMP and not printable
        "list": [1, None, True],
    }
    text = json_text(data)
    assert json.loads(text) == data
    assert all(line.isprintable() for line in text.split("\n"))
    assert encodable(text), "a lone surrogate is escaped, so the text has UTF-8 bytes"
    assert "Amélie 日本" in text
    assert "a\\u007fb\\u0085c" in text and "abc\\u202edcba" in text
    assert "bad\\udc80name" in text and "x\\udb40\\udc01y" in text
    assert text.startswith('{\n  "title"'), "indented as json.dumps indents"


def test_json_text_of_printable_data_is_json_dumps():
    assert json_text("Heat (1995)") == '"Heat (1995)"'
    assert json_text({"a": [1]}) == json.dumps({"a": [1]}, indent=2)


def test_encodable_text_has_utf8_bytes():
    assert encodable("Amélie 日本 \U0001f3ac")
    assert not encodable("bad\udc80name")


def test_utc_now_is_this_moment_in_utc():
    before = datetime.now(UTC).replace(microsecond=0)
    now, precise = utc_now(), utc_now(precise=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", now)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", precise)
    assert before <= datetime.fromisoformat(now) <= datetime.now(UTC)


def test_a_name_stamp_has_no_colon_or_plus():
    assert name_stamp("2026-12-07T17:19:00+00:00") == "2026-12-07T171900Z0000"
    assert name_stamp("2026-12-07T17:19:00.123456+00:00") == "2026-12-07T171900.123456Z0000"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d{6}Z0000", name_stamp())


@pytest.fixture
def five_hours_west(monkeypatch) -> Iterator[None]:
    """This host's zone, UTC-5 with no summer time (a POSIX TZ rule: no zone files)."""
    monkeypatch.setenv("TZ", "EST+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("five_hours_west")
@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-12-07T17:19:00+00:00", "2026-12-07 12:19"),
        ("2026-12-07T17:19:59.999999+00:00", "2026-12-07 12:19"),
        ("2026-01-01T02:00:00+00:00", "2025-12-31 21:00"),  # the day before, here
        ("2026-12-07T17:19:00+01:00", "2026-12-07 11:19"),
        (None, ""),
        ("", ""),
        # Read from the share, any text: never shown as it is.
        ("yesterday", NOT_A_TIME),
        ("2026-13-01T00:00:00+00:00", NOT_A_TIME),
        ("\x1b[2J", NOT_A_TIME),
        ("0001-01-01T00:00:00+00:00", NOT_A_TIME),  # before year 1 here
    ],
)
def test_a_stored_time_is_shown_in_local_time(stored, shown):
    assert local_time(stored) == shown
