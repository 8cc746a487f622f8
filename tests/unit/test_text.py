"""Durations as people read them, in tables (whole units) and on the page's charts
(tenths, where a stage takes seconds)."""

from __future__ import annotations

import pytest

from media_pipeline.text import duration_text


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
    ],
)
def test_a_duration_in_the_unit_that_fits(seconds, short, tenths, expected):
    assert duration_text(seconds, short=short, tenths=tenths) == expected
