"""The staging walk: which folders are items, and what is passed over."""

from __future__ import annotations

import os

from media_pipeline.items.names import ItemKey
from media_pipeline.reconcile.scan import ScannedItem, ScanResult, StagingWalk


def scan_staging(staging_root: str) -> ScanResult:
    """Every item folder under the stage folders, with its markers, in one batch (as
    reconcile walks them, a batch at a time)."""
    walk = StagingWalk(staging_root)
    items: dict[ItemKey, ScannedItem] = {}
    for batch in walk.batches(len(walk.items) or 1):
        items.update(batch)
    walk.check_unchanged()
    walk.close()
    return ScanResult(items, tuple(walk.stages_present), walk.warnings)


def test_layout_gives_movie_and_tv_items_with_their_stage_folders(sandbox):
    movie = ItemKey("movie", "Heat")
    disc = ItemKey("tv", "Lost", "S01 Disc1")
    sandbox.mark(movie, "1-ripped", "rip")
    sandbox.mark(movie, "2-remuxed")
    sandbox.mark(disc, "3-transcoded", "transcode")
    scan = scan_staging(str(sandbox.staging))
    assert set(scan.items) == {movie, disc}
    assert list(scan.items[movie].folders) == ["1-ripped", "2-remuxed"]
    assert scan.items[movie].done == {"rip"}
    assert scan.items[movie].current.folder == str(sandbox.folder(movie, "2-remuxed"))
    assert scan.stages_present == ("1-ripped", "2-remuxed", "3-transcoded")


def test_dot_folders_files_and_unknown_types_are_not_items(sandbox):
    ripped = sandbox.staging / "1-ripped"
    (ripped / "movies" / ".nfs000123").mkdir(parents=True)
    (ripped / "movies" / "stray.mkv").write_bytes(b"x")
    (ripped / "music" / "Album").mkdir(parents=True)
    (ripped / "tv" / "Show Without Discs").mkdir(parents=True)
    (sandbox.staging / ".pipeline" / "jobs").mkdir(parents=True)
    assert scan_staging(str(sandbox.staging)).items == {}


def test_names_that_are_not_utf8_are_reported_and_passed_over(sandbox):
    movies = os.path.join(os.fsencode(sandbox.staging), b"1-ripped", b"movies")
    os.makedirs(os.path.join(movies, b"Caf\xe9 Latin-1"))
    sandbox.mark(ItemKey("movie", "Fine"), "1-ripped", "rip")
    scan = scan_staging(str(sandbox.staging))
    assert [key.title for key in scan.items] == ["Fine"]
    assert len(scan.warnings) == 1 and "not valid UTF-8" in scan.warnings[0]
    # And reconcile goes on with the rest.
    result = sandbox.mp("reconcile")
    assert "not valid UTF-8" in result.stderr
    assert sandbox.status_json()["counts"] == {"RIPPED": 1}
