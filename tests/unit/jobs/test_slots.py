"""A worker's max_running slots: flocks on files of this host's lock folder, real files
and a real child process here; a released slot leaves no file behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from media_pipeline.jobs.slots import hold, take_slot


@pytest.fixture
def locks(tmp_path, monkeypatch):
    folder = tmp_path / "locks"
    folder.mkdir()
    monkeypatch.setenv("MP_LOCK_DIR", str(folder))
    return folder


def test_a_released_slot_leaves_no_file(locks, tmp_path):
    slot = take_slot(str(tmp_path / "queue"), "w1", 2)
    assert slot is not None and len(os.listdir(locks)) == 1
    slot.release()
    assert os.listdir(locks) == []


def test_max_running_slots_are_held_until_released(locks, tmp_path):
    queue = str(tmp_path / "queue")
    first = take_slot(queue, "w1", 1)
    assert first is not None
    assert take_slot(queue, "w1", 1) is None, "the one slot is held"
    assert take_slot(str(tmp_path / "other"), "w1", 1) is not None, "another queue counts apart"
    first.release()
    again = take_slot(queue, "w1", 1)
    assert again is not None
    again.release()


def test_a_process_that_inherited_the_slot_holds_it_and_its_file(locks, tmp_path):
    queue = str(tmp_path / "queue")
    slot = take_slot(queue, "w1", 1)
    assert slot is not None
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE, pass_fds=(slot.descriptor,),
    )  # fmt: skip
    try:
        slot.release()  # the worker is done; the job's process goes on
        assert len(os.listdir(locks)) == 1, "kept while a process holds it"
        assert take_slot(queue, "w1", 1) is None
    finally:
        child.communicate(b"", timeout=30)
    slot = take_slot(queue, "w1", 1)
    assert slot is not None, "free once the last holder has ended"
    slot.release()
    assert os.listdir(locks) == []


def test_a_lock_on_a_removed_slot_file_counts_for_nobody(locks, tmp_path):
    queue = str(tmp_path / "queue")
    first = take_slot(queue, "w1", 1)
    assert first is not None
    [name] = os.listdir(locks)
    path = str(locks / name)
    late = os.open(path, os.O_RDWR)  # a claimer opened it just before the release
    first.release()  # and removed it
    second = take_slot(queue, "w1", 1)
    assert second is not None
    assert hold(late, path) is None, "the late claimer must open the file anew"
    assert take_slot(queue, "w1", 1) is None, "still one holder of the one slot"
    second.release()
