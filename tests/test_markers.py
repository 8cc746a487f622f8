"""The marker reader and the atomic writer, on real folders."""

from __future__ import annotations

import os
import stat

import pytest

from media_pipeline.fsutil import write_atomic
from media_pipeline.markers import read_folder_markers, write_controller_file


def test_reader_sorts_markers_controller_files_and_approvals(tmp_path):
    pipeline = tmp_path / ".pipeline"
    pipeline.mkdir()
    for name in ("rip.done", "rip.timestamp", "remux.done", ".state.123.tmp", "notes.txt"):
        (pipeline / name).write_text("x")
    (pipeline / "state").write_text("REMUXED\n")
    (pipeline / "metadata.json").write_text('{"uid": "abc"}')
    (pipeline / "approval.remux_review.json").write_text('{"status": "approved"}')
    markers = read_folder_markers(str(tmp_path))
    assert markers.done == {"rip", "remux"}
    assert markers.state_text == "REMUXED\n"
    assert markers.metadata == {"uid": "abc"}
    assert markers.approval_texts == {"remux_review": '{"status": "approved"}'}


def test_a_folder_without_pipeline_has_no_markers(tmp_path):
    markers = read_folder_markers(str(tmp_path))
    assert markers.done == frozenset() and markers.state_text is None


def test_controller_files_are_replaced_whole_and_readable_by_other_hosts(tmp_path):
    old_umask = os.umask(0o022)
    try:
        write_controller_file(str(tmp_path), "state", "RIPPED\n")
        first_inode = os.stat(tmp_path / ".pipeline" / "state").st_ino
        write_controller_file(str(tmp_path), "state", "REMUXED\n")
    finally:
        os.umask(old_umask)
    path = tmp_path / ".pipeline" / "state"
    assert path.read_text() == "REMUXED\n"
    # Replaced by rename (a new inode), never rewritten in place.
    assert os.stat(path).st_ino != first_inode
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path / ".pipeline")) == ["state"], "no temporary file left"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "state"
    target.write_text("RIPPED\n")

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(str(target), "REMUXED\n")
    assert target.read_text() == "RIPPED\n"
    assert os.listdir(tmp_path) == ["state"]
