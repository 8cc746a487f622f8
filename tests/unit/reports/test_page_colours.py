"""The status page's chart colours stand out from the page in both colour schemes: at
least 3:1 (WCAG's contrast for graphics), measured from the page's own style sheet."""

from __future__ import annotations

import re

import pytest

from media_pipeline.reports.page import KINDS, STYLE


def luminance(colour: str) -> float:
    if len(colour) == 4:  # #rgb
        colour = "#" + "".join(digit * 2 for digit in colour[1:])
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))

    def linear(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


PROPERTY = re.compile(r"--([\w-]+):(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\b")


def scheme(dark: bool) -> dict[str, str]:
    """The custom properties of the light scheme, or of the dark one laid over it."""
    light_block, _, dark_block = STYLE.partition("@media (prefers-color-scheme:dark)")
    found = dict(PROPERTY.findall(light_block))
    if dark:
        found.update(PROPERTY.findall(dark_block.split("}}")[0]))
    return found


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_chart_colour_has_3_to_1_against_the_page(dark):
    colours = scheme(dark)
    charted = [f"k-{kind}" for kind in (*KINDS, "other")] + ["bar"]
    for name in charted:
        for ground in ("card", "bg"):
            ratio = contrast(colours[name], colours[ground])
            where = "dark" if dark else "light"
            assert ratio >= 3, f"--{name} on --{ground} ({where}): {ratio:.2f}"


def test_the_measure_itself():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#f28e2b", "#ffffff") < 3  # the orange the timeline used before
