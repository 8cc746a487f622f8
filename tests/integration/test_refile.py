"""`mp refile`: a movie in the library moved to another name, its files untouched (a
rename inside the library), a tv disc's episodes moved to another show folder or
renumbered; the new place a signed decision in its history; refused onto a file or
folder that is there, over another disc's episodes and for an item not yet filed."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import item_row, lose_the_database, tree_snapshot
from hostile import HONEST, carried_through, started

from media_pipeline.items.names import ItemKey

CUT = "Heat (1995) {edition-Director's Cut}"


def library(pipeline):
    return pipeline.root / "library" / "Movies"


def contents(folder) -> dict[str, bytes]:
    """Every file below folder by its path there, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_filed_movie_moves_to_its_edition_and_keeps_every_byte(pipeline):
    started(pipeline)
    carried_through(pipeline)
    before = contents(library(pipeline) / HONEST.title)
    assert f"{HONEST.title}.mkv" in before, before
    dry = pipeline.mp("refile", HONEST.uid, "--edition", "Director's Cut", "--dry-run").stdout
    assert f"would move its folder in the library from {library(pipeline) / HONEST.title}" in dry
    assert (library(pipeline) / HONEST.title).is_dir(), "a dry run moves nothing"

    said = pipeline.mp("refile", HONEST.uid, "--edition", "Director's Cut").stdout
    assert f"to {library(pipeline) / CUT}" in said
    assert not (library(pipeline) / HONEST.title).exists()
    after = contents(library(pipeline) / CUT)
    renamed = {
        path.replace(f"{HONEST.title}.mkv", f"{CUT}.mkv"): data for path, data in before.items()
    }
    assert after == renamed, "the same files, the movie's renamed after its folder"
    assert "mp refile: from" in pipeline.mp("history", HONEST.uid).stdout

    # The new place is the decision in force, and comes back after a database loss.
    decision = (
        pipeline.folder(HONEST, "3-transcoded") / ".pipeline" / "approval.filebot_confirm.json"
    )
    assert json.loads(decision.read_text())["destination"].endswith(f"/{CUT}/{CUT}.mkv")
    lose_the_database(pipeline)
    pipeline.mp("reconcile")
    with sqlite3.connect(pipeline.database) as db:
        (restored,) = db.execute(
            "SELECT destination FROM human_approvals WHERE status = 'approved'"
        ).fetchone()
    assert restored.endswith(f"/{CUT}/{CUT}.mkv")
    # And a second refile starts from there.
    pipeline.mp("refile", HONEST.uid, "--title", "Heat: The Cut (1995)")
    assert (library(pipeline) / "Heat - The Cut (1995)" / "Heat - The Cut (1995).mkv").exists()
    assert not (library(pipeline) / CUT).exists()


def test_refile_never_merges_or_overwrites(pipeline):
    started(pipeline)
    carried_through(pipeline)
    (library(pipeline) / CUT).mkdir()
    (library(pipeline) / CUT / "someone's.mkv").write_bytes(b"kept")
    before = tree_snapshot(library(pipeline))
    said = pipeline.mp("refile", HONEST.uid, "--edition", "Director's Cut", expect=2).stderr
    assert "is there already; mp never merges or overwrites" in said
    assert tree_snapshot(library(pipeline)) == before


def test_refile_is_for_a_filed_item(pipeline):
    disc = ItemKey("tv", "Lost (2004)", "S01 Disc1")
    pipeline.mark(disc, "1-ripped", "rip")
    pipeline.mark(HONEST, "1-ripped", "rip")
    pipeline.mp("reconcile")
    said = pipeline.mp("refile", HONEST.uid, "--year", "1995", expect=2).stderr
    assert "not in the library" in said
    assert "say what changes" in pipeline.mp("refile", HONEST.uid, expect=2).stderr
    said = pipeline.mp("refile", disc.uid, "--year", "2004", expect=2).stderr
    assert "RIPPED, not in the library" in said


def test_a_rip_into_a_folder_holding_untracked_media_is_refused(pipeline):
    """Media an item forgotten by an earlier release left in place: a new rip of the
    title would mix its titles with them, so it is refused until the folder is aside."""
    pipeline.mp("reconcile")  # a new install: the database
    folder = pipeline.folder(HONEST, "1-ripped")
    folder.mkdir(parents=True)
    (folder / "title_t00.mkv").write_bytes(b"an old disc")
    said = pipeline.mp("rip", "--type", "movie", "--title", HONEST.title, expect=2).stderr
    assert "holds media already, of no item mp tracks" in said
    assert pipeline.queue("pending") == []
    folder.rename(folder.with_name(f".{folder.name}.aside"))
    assert "queued" in pipeline.mp("rip", "--type", "movie", "--title", HONEST.title).stdout


LOST = [ItemKey("tv", "Lost", f"S01 Disc{n}") for n in (1, 2)]


def shows(pipeline):
    return pipeline.root / "library" / "TV Shows"


def filed_discs(pipeline) -> None:
    """Two discs of 'Lost' (no year), two episodes each, filed as e01-e04."""
    for key in LOST:
        folder = pipeline.mark(key, "3-transcoded", "rip", "remux", "transcode")
        (folder / "Episode 02.mkv").write_bytes(b"episode")
    for _round in range(3):
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")
        for _claim in range(2):
            pipeline.mp("claim", "--worker", "w1", expect=None)
    pipeline.mp("reconcile")
    season = shows(pipeline) / "Lost" / "Season 01"
    assert sorted(p.name for p in season.iterdir()) == [f"Lost - s01e0{n}.mkv" for n in range(1, 5)]
    # Each file told apart by its bytes, to follow it through the moves.
    for path in season.iterdir():
        path.write_bytes(path.name.encode())


def test_a_filed_disc_is_renumbered_and_moved_to_its_shows_new_folder(pipeline):
    filed_discs(pipeline)
    old = shows(pipeline) / "Lost" / "Season 01"
    before = tree_snapshot(shows(pipeline))
    said = pipeline.mp("refile", LOST[1].uid, "--first-episode", "2", expect=2).stderr
    assert "e02-e03 would overlap those of tv/Lost/S01 Disc1 (e01-e02)" in said, said
    assert "Traceback" not in said
    dry = pipeline.mp("refile", LOST[1].uid, "--first-episode", "5", "--dry-run").stdout
    assert f"{old / 'Lost - s01e04.mkv'} -> {old / 'Lost - s01e06.mkv'}" in dry, dry
    assert tree_snapshot(shows(pipeline)) == before, "a dry run moves nothing"

    pipeline.mp("refile", LOST[1].uid, "--first-episode", "5")
    assert {p.name: p.read_bytes() for p in old.iterdir()} == {
        "Lost - s01e01.mkv": b"Lost - s01e01.mkv",
        "Lost - s01e02.mkv": b"Lost - s01e02.mkv",
        "Lost - s01e05.mkv": b"Lost - s01e03.mkv",
        "Lost - s01e06.mkv": b"Lost - s01e04.mkv",
    }
    assert item_row(pipeline, LOST[1])["episodes"] == "5-6"
    # Renumbered by less than its own length: each file makes room for the one before.
    pipeline.mp("refile", LOST[1].uid, "--first-episode", "4")
    assert sorted(p.name for p in old.iterdir())[2:] == ["Lost - s01e04.mkv", "Lost - s01e05.mkv"]
    assert (old / "Lost - s01e05.mkv").read_bytes() == b"Lost - s01e04.mkv"

    # Disc 1 to 'Lost (2004)': its episodes go, disc 2's keep the old folder.
    pipeline.mp("refile", LOST[0].uid, "--year", "2004")
    new = shows(pipeline) / "Lost (2004)" / "Season 01"
    assert {p.name: p.read_bytes() for p in new.iterdir()} == {
        "Lost (2004) - s01e01.mkv": b"Lost - s01e01.mkv",
        "Lost (2004) - s01e02.mkv": b"Lost - s01e02.mkv",
    }
    assert sorted(p.name for p in old.iterdir()) == ["Lost - s01e04.mkv", "Lost - s01e05.mkv"]
    # Disc 2 follows: the old show folder, left empty, goes.
    pipeline.mp("refile", LOST[1].uid, "--year", "2004")
    assert sorted(p.name for p in shows(pipeline).iterdir()) == ["Lost (2004)"]
    assert len(list(new.iterdir())) == 4
    history = pipeline.mp("history", LOST[1].uid).stdout
    assert history.count("[manual] mp refile: from") == 3, history
    assert "Season 01/ (e03-e04) to " in history and "Season 01/ (e05-e06)" in history

    # The new place and numbers are decisions on the share: back after a database loss.
    lose_the_database(pipeline)
    pipeline.mp("reconcile")
    assert item_row(pipeline, LOST[1])["episodes"] == "4-5"
    with sqlite3.connect(pipeline.database) as db:
        places = {d for (d,) in db.execute("SELECT destination FROM human_approvals")}
    assert places == {str(new) + "/"}, places


def test_a_discs_refile_never_overwrites_another_file(pipeline):
    filed_discs(pipeline)
    new = shows(pipeline) / "Lost (2004)" / "Season 01"
    new.mkdir(parents=True)
    (new / "Lost (2004) - s01e04.mkv").write_bytes(b"someone's")
    before = tree_snapshot(shows(pipeline))
    said = pipeline.mp("refile", LOST[1].uid, "--year", "2004", expect=2).stderr
    assert f"{new / 'Lost (2004) - s01e04.mkv'} is in the library already" in said, said
    assert "mp never overwrites" in said
    assert tree_snapshot(shows(pipeline)) == before
    said = pipeline.mp("refile", LOST[1].uid, "--edition", "Cut", expect=2).stderr
    assert "an edition is for a movie" in said


def test_a_disc_moved_onto_another_filesystem_is_copied_verified_then_removed(pipeline):
    """The new show folder on a filesystem of its own (a tmpfs mounted there, in a mount
    namespace of the command's own): no rename reaches it, so each file is copied, the
    copy compared, and only then the old one removed."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a filesystem in the library")
    filed_discs(pipeline)
    new = shows(pipeline) / "Lost (2004)"
    new.mkdir()
    command = (
        f'mount -t tmpfs tmpfs "{new}" && "{Path(sys.executable).with_name("mp")}" refile '
        f'"{LOST[1].uid}" --year 2004 --config "{pipeline.config_path}" >/dev/null && '
        f'find "{new}" -type f -exec sh -c \'printf "%s=%s\\n" "$1" "$(cat "$1")"\' _ {{}} \\;'
    )
    done = subprocess.run(["unshare", "--mount", "sh", "-c", command],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if "mount" in done.stderr and done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip(f"no mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    season = new / "Season 01"
    assert sorted(done.stdout.splitlines()) == [
        f"{season}/Lost (2004) - s01e03.mkv=Lost - s01e03.mkv",
        f"{season}/Lost (2004) - s01e04.mkv=Lost - s01e04.mkv",
    ]
    old = shows(pipeline) / "Lost" / "Season 01"
    assert sorted(p.name for p in old.iterdir()) == ["Lost - s01e01.mkv", "Lost - s01e02.mkv"]


def test_a_file_named_unlike_mps_is_left_where_it_is(pipeline):
    """'Lost - s01e001.mkv' beside the disc's e01 reads as episode 1 too, but mp never
    writes that name: it is someone's, and stays; the disc's own two move, each once."""
    filed_discs(pipeline)
    season = shows(pipeline) / "Lost" / "Season 01"
    (season / "Lost - s01e001.mkv").write_bytes(b"someone's")
    dry = pipeline.mp("refile", LOST[0].uid, "--first-episode", "5", "--dry-run").stdout
    assert "would move 2 episode file(s)" in dry, dry
    assert "s01e001" not in dry, dry
    pipeline.mp("refile", LOST[0].uid, "--first-episode", "5")
    assert {p.name: p.read_bytes() for p in season.iterdir()} == {
        "Lost - s01e001.mkv": b"someone's",
        "Lost - s01e03.mkv": b"Lost - s01e03.mkv",
        "Lost - s01e04.mkv": b"Lost - s01e04.mkv",
        "Lost - s01e05.mkv": b"Lost - s01e01.mkv",
        "Lost - s01e06.mkv": b"Lost - s01e02.mkv",
    }
    assert item_row(pipeline, LOST[0])["episodes"] == "5-6"


@pytest.mark.parametrize("how", ["missing", "a link"])
def test_a_disc_with_an_episode_not_there_as_a_file_is_refused(pipeline, how):
    """Disc 2's e04 gone (or a link in its place): moving e03 alone would split the disc
    between two show folders and record numbers its files do not have."""
    filed_discs(pipeline)
    season = shows(pipeline) / "Lost" / "Season 01"
    episode = season / "Lost - s01e04.mkv"
    episode.unlink()
    if how == "a link":
        episode.symlink_to(season / "Lost - s01e01.mkv")
    before = tree_snapshot(shows(pipeline))
    said = pipeline.mp("refile", LOST[1].uid, "--year", "2004", expect=2).stderr
    what = "is a link or a folder, not a file" if how == "a link" else "is not in the library"
    assert f"its episode e04, {episode}, {what}" in said, said
    assert "Traceback" not in said and len(said.strip().splitlines()) == 1, said
    assert tree_snapshot(shows(pipeline)) == before
    assert item_row(pipeline, LOST[1])["episodes"] == "3-4"
    assert "mp refile" not in pipeline.mp("history", LOST[1].uid).stdout
