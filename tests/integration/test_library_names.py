"""Names every share accepts: a title with what SMB shares and Windows clients refuse is
filed under a name they take (the config's `library_names: smb`, the default), the gate
says so, and `as-is` keeps the title."""

from __future__ import annotations

import json

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.library.destination import library_name


@pytest.mark.parametrize(
    ("title", "named"),
    [
        ("Star Wars: Episode IV", "Star Wars - Episode IV"),
        ("Face/Off", "Face-Off"),
        ("Who? Me", "Who Me"),
        ('The "Movie" <Cut> a|b', "The 'Movie' Cut a-b"),
        ("Back\\Slash*", "Back-Slash-"),
        ("Trailing. ", "Trailing"),
        ("CON", "CON_"),
        ("nul", "nul_"),
        ("Heat (1995) {edition-Director's Cut}", "Heat (1995) {edition-Director's Cut}"),
        ("Amélie (2001)", "Amélie (2001)"),
    ],
)
def test_a_title_becomes_a_name_smb_takes(title, named):
    assert library_name(title) == named
    assert library_name(title, "as-is") == title.replace("/", "-")


def filed_at_the_gate(pipeline, key: ItemKey, **settings) -> dict:
    pipeline.write_pipeline_config(gates=["filebot_confirm"], **settings)
    pipeline.mark(key, "1-ripped", "rip")
    pipeline.mark(key, "2-remuxed", "remux")
    pipeline.mark(key, "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    (approval,) = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    return approval


def test_the_gate_proposes_and_files_the_name_smb_takes(pipeline):
    key = ItemKey("movie", "Star Wars: Episode IV (1977)")
    approval = filed_at_the_gate(pipeline, key)
    destination = approval["prompt"]["destination"]
    assert destination.endswith(
        "Movies/Star Wars - Episode IV (1977)/Star Wars - Episode IV (1977).mkv"
    )
    assert any("named 'Star Wars - Episode IV (1977)' in the library" in note
               for note in approval["prompt"]["notes"])  # fmt: skip
    pipeline.mp("approve", key.uid, "--yes")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    filed = pipeline.root / "library" / "Movies" / "Star Wars - Episode IV (1977)"
    assert (filed / "Star Wars - Episode IV (1977).mkv").exists()
    assert not any(":" in path.name for path in (pipeline.root / "library").rglob("*"))


def test_as_is_keeps_the_title(pipeline):
    key = ItemKey("movie", "Star Wars: Episode IV (1977)")
    approval = filed_at_the_gate(pipeline, key, library_names="as-is")
    assert approval["prompt"]["destination"].endswith(f"Movies/{key.title}/{key.title}.mkv")
    assert not any("in the library:" in note for note in approval["prompt"]["notes"])


def test_a_title_with_a_slash_is_refused_with_the_name_to_give(pipeline):
    said = pipeline.mp("rip", "--type", "movie", "--title", "Face/Off", expect=2).stderr
    assert "cannot be a folder name; give 'Face-Off'" in said


def test_a_bad_rule_is_one_sentence(pipeline):
    pipeline.write_pipeline_config(library_names="windows")
    said = pipeline.mp("config", "validate", expect=2).stderr
    assert "key 'library_names' must be 'smb' or 'as-is', got 'windows'" in said
