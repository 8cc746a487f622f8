"""`mp refile`: a movie in the library moved to another name, its files untouched (a
rename inside the library), the new place a signed decision in its history; refused
onto a folder that is there, for a tv disc and for an item not yet filed."""

from __future__ import annotations

import json
import sqlite3

from conftest import lose_the_database, tree_snapshot
from hostile import HONEST, carried_through, started

from media_pipeline.items import ItemKey

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


def test_refile_is_for_a_filed_movie(pipeline):
    disc = ItemKey("tv", "Lost (2004)", "S01 Disc1")
    pipeline.mark(disc, "1-ripped", "rip")
    pipeline.mark(HONEST, "1-ripped", "rip")
    pipeline.mp("reconcile")
    said = pipeline.mp("refile", HONEST.uid, "--year", "1995", expect=2).stderr
    assert "not in the library" in said
    assert "say what changes" in pipeline.mp("refile", HONEST.uid, expect=2).stderr
    said = pipeline.mp("refile", disc.uid, "--year", "2004", expect=2).stderr
    assert "RIPPED, not in the library" in said or "is a tv disc" in said


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
