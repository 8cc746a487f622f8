"""The marker reader and the controller's writer, on real folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from media_pipeline.share.files import BadEntry, Folder
from media_pipeline.share.markers import (
    FolderMarkers,
    read_folder_markers,
    write_controller_files,
)


def read(folder: Path) -> FolderMarkers:
    with Folder.open_root(str(folder)) as item:
        return read_folder_markers(item, str(folder))


def test_reader_sorts_markers_controller_files_and_approvals(tmp_path):
    pipeline = tmp_path / ".pipeline"
    pipeline.mkdir()
    for name in ("rip.done", "rip.timestamp", "remux.done", ".state.123.tmp", "notes.txt"):
        (pipeline / name).write_text("x")
    (pipeline / "state").write_text("REMUXED\n")
    (pipeline / "metadata.json").write_text('{"uid": "abc"}')
    (pipeline / "approval.remux_review.json").write_text('{"status": "approved"}')
    markers = read(tmp_path)
    assert markers.done == {"rip", "remux"}
    assert markers.state_text == "REMUXED\n"
    assert markers.metadata == {"uid": "abc"}
    assert markers.approval_texts == {"remux_review": '{"status": "approved"}'}


def test_a_folder_without_pipeline_has_no_markers(tmp_path):
    markers = read(tmp_path)
    assert markers.done == frozenset() and markers.state_text is None


def test_linked_controller_files_are_passed_over_with_a_reason(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root's own\n")
    item = tmp_path / "item"
    (item / ".pipeline").mkdir(parents=True)
    (item / ".pipeline" / "state").symlink_to(secret)
    os.mkfifo(item / ".pipeline" / "metadata.json")  # would block a plain open() forever
    markers = read(item)
    assert markers.state_text is None and markers.metadata_text is None
    assert any("symbolic link" in problem for problem in markers.problems)
    assert any("not a regular file" in problem for problem in markers.problems)


def test_a_linked_pipeline_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rip.done").touch()
    item = tmp_path / "item"
    item.mkdir()
    (item / ".pipeline").symlink_to(elsewhere)
    with pytest.raises(BadEntry, match="symbolic link"):
        read(item)
    with pytest.raises(BadEntry, match="symbolic link"):
        write_controller_files(str(tmp_path), str(item), [("state", "RIPPED\n")])
    assert sorted(os.listdir(elsewhere)) == ["rip.done"]


def test_controller_files_are_replaced_whole_and_readable_by_other_hosts(tmp_path):
    item = tmp_path / "item"
    item.mkdir()
    old_umask = os.umask(0o022)
    try:
        assert write_controller_files(str(tmp_path), str(item), [("state", "RIPPED\n")])
        first_inode = os.stat(item / ".pipeline" / "state").st_ino
        write_controller_files(str(tmp_path), str(item), [("state", "REMUXED\n")])
    finally:
        os.umask(old_umask)
    path = item / ".pipeline" / "state"
    assert path.read_text() == "REMUXED\n"
    # Replaced by rename (a new inode), never rewritten in place.
    assert os.stat(path).st_ino != first_inode
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(item / ".pipeline")) == ["state"], "no temporary file left"


def test_a_folder_that_moved_on_is_not_made_again(tmp_path):
    gone = tmp_path / "1-ripped" / "movies" / "Heat"
    assert not write_controller_files(str(tmp_path), str(gone), [("state", "RIPPED\n")])
    assert not (tmp_path / "1-ripped").exists()
