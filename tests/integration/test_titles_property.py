"""Any name a folder can have is tracked as that name and never run as a command."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import unicodedata
from pathlib import Path

import yaml
from click.testing import CliRunner
from conftest import AS_ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_pipeline.cli import mp

# A command smuggled in a name would create this file in the working folder.
CANARY = "mp_canary"

# Pieces a hostile or merely unlucky folder name is made of.
HOSTILE_PIECES = st.sampled_from(
    [
        " ",
        "'",
        '"',
        "$(touch mp_canary)",
        "`touch mp_canary`",
        "; touch mp_canary",
        "-rf",
        "--help",
        "\n",
        "\t",
        "é",
        "日本語",
        "🎬",
        "\\",
        "*",
        "{title}",
        "%s",
        "..",
    ]
)


def _usable(name: str) -> bool:
    """A name reconcile takes in as it is: not hidden, not one a script would take for
    an option (passed over with a warning), and in NFC (another form is renamed to it):
    test_what_people_see.py has those."""
    return (
        bool(name)
        and unicodedata.is_normalized("NFC", name)
        and not name.startswith(".")
        and not name.startswith("-")
        and "/" not in name
        and "\0" not in name
        and len(name.encode("utf-8")) <= 255
    )


names = (
    st.lists(
        st.one_of(HOSTILE_PIECES, st.text(min_size=1, max_size=12)),
        min_size=1,
        max_size=6,
    )
    .map("".join)
    .filter(_usable)
)
long_names = st.integers(min_value=200, max_value=250).map(lambda n: "x-" + "x" * n)
titles = st.one_of(names, long_names)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    movie_titles=st.lists(titles, min_size=1, max_size=4, unique=True),
    show=titles,
    disc_labels=st.lists(titles, min_size=1, max_size=3, unique=True),
)
def test_any_folder_name_is_tracked_exactly_and_never_executed(movie_titles, show, disc_labels):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        staging = root / "staging"
        config = root / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "staging_root": str(staging),
                    "library_root": str(root / "library"),
                    "database": str(root / "db" / "state.db"),
                    "gates": [],
                    "units": AS_ROOT,
                }
            )
        )
        expected = set()
        for title in movie_titles:
            folder = staging / "1-ripped" / "movies" / title / ".pipeline"
            folder.mkdir(parents=True)
            (folder / "rip.done").touch()
            expected.add(("movie", title, ""))
        for label in disc_labels:
            folder = staging / "2-remuxed" / "tv" / show / label / ".pipeline"
            folder.mkdir(parents=True)
            (folder / "remux.done").touch()
            expected.add(("tv", show, label))

        runner = CliRunner()
        with contextlib.chdir(root):
            run = runner.invoke(mp, ["reconcile", "--config", str(config)], catch_exceptions=False)
            assert run.exit_code == 0, run.output
        status = runner.invoke(mp, ["status", "--json", "--config", str(config)])
        report = json.loads(status.stdout)
        items = report["items"]
        assert {(i["type"], i["title"], i["disc_label"]) for i in items} == expected
        assert all(os.path.isdir(i["folder_path"]) for i in items)
        # The table shows every item on its own line, whatever its name holds.
        table = runner.invoke(mp, ["status", "--config", str(config)]).stdout
        blocks = len({i["state"] for i in items})
        # The seasons block: its heading, a line per season and per disc, a blank line.
        seasons = report["seasons"]
        season_lines = 2 + len(seasons) + sum(len(s["discs"]) for s in seasons) if seasons else 0
        # And one line naming titles that mix Latin with Cyrillic or Greek letters, when
        # some do (hypothesis finds such titles now and then).
        notes = [line for line in table.splitlines() if line.startswith("look-alike letters")]
        assert len(notes) <= 1, notes
        lines = len(expected) + 4 * blocks + 1 + season_lines + len(notes)
        assert len(table.splitlines()) == lines
        for item in items:
            found = runner.invoke(mp, ["history", item["uid"], "--config", str(config)])
            assert found.exit_code == 0
            name = "/".join(p for p in (item["type"], item["title"], item["disc_label"]) if p)
            if "\n" not in name:
                by_name = runner.invoke(mp, ["history", name, "--config", str(config)])
                assert by_name.exit_code == 0, by_name.output
        assert not (root / CANARY).exists()
        assert not Path(CANARY).exists()
