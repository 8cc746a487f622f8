"""A worker's max_running slots: flocks on files of this host's lock folder, with real
files and a real child process here. A slot's file is kept for the next claim; the
files of queues idle for a day go, when free, once a claim makes a new one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from media_pipeline.worker.slots import IDLE_SLOT_SECONDS, Slot, hold, take_slot


@pytest.fixture
def locks(tmp_path, monkeypatch):
    folder = tmp_path / "locks"
    folder.mkdir()
    monkeypatch.setenv("MP_LOCK_DIR", str(folder))
    return folder


def taken(slot: Slot | None) -> Slot:
    """The slot a take_slot() the test expects to find one free gave."""
    assert slot is not None, "no slot was free"
    return slot


def idle(path) -> None:
    """As if no claim had made this file for longer than a day."""
    moment = time.time() - IDLE_SLOT_SECONDS - 60
    os.utime(path, (moment, moment))


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


def test_a_queue_idle_for_a_day_leaves_no_file_behind(locks, tmp_path):
    taken(take_slot(str(tmp_path / "demo"), "w1", 1)).release()
    [demo] = list(locks.iterdir())
    taken(take_slot(str(tmp_path / "queue"), "w1", 1)).release()
    assert demo.exists(), "another queue's file, used within the day, is kept"
    idle(demo)
    taken(take_slot(str(tmp_path / "queue"), "w1", 1)).release()
    assert demo.exists(), "pruned only when a claim makes a new file"
    taken(take_slot(str(tmp_path / "third"), "w1", 1)).release()
    assert not demo.exists(), "idle and free: removed"
    assert len(list(locks.iterdir())) == 2, "one file per slot of the queues in use"


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
        assert take_slot(queue, "w1", 1) is None
        [held] = list(locks.iterdir())
        idle(held)
        taken(take_slot(str(tmp_path / "other"), "w1", 1)).release()
        assert held.exists(), "never removed while a process holds it"
    finally:
        child.communicate(b"", timeout=30)
    slot = take_slot(queue, "w1", 1)
    assert slot is not None, "free once the last holder has ended"
    slot.release()


def test_a_lock_on_a_removed_slot_file_counts_for_nobody(locks, tmp_path):
    queue = str(tmp_path / "queue")
    first = take_slot(queue, "w1", 1)
    assert first is not None
    [path] = list(locks.iterdir())
    late = os.open(path, os.O_RDWR)  # a claimer opened it just before it was pruned
    first.release()
    idle(path)
    taken(take_slot(str(tmp_path / "other"), "w1", 1)).release()  # makes a file: prunes
    assert not path.exists()
    second = take_slot(queue, "w1", 1)
    assert second is not None
    assert hold(late, str(path)) is None, "the late claimer must open the file anew"
    assert take_slot(queue, "w1", 1) is None, "still one holder of the one slot"
    second.release()


def test_a_slot_file_is_usable_by_every_user_whatever_the_umask(locks, tmp_path):
    """A root run by hand (umask 022 or 077) must not lock the service user out."""
    previous = os.umask(0o077)
    try:
        taken(take_slot(str(tmp_path / "queue"), "w1", 1)).release()
    finally:
        os.umask(previous)
    [path] = list(locks.iterdir())
    assert path.stat().st_mode & 0o777 == 0o666


def test_pruning_takes_only_old_slot_files_mp_names(locks, tmp_path):
    fifo = locks / "media-pipeline-x-0123abcd.slot0"
    os.mkfifo(fifo)
    other = locks / "media-pipeline-notes.slot.txt"
    other.write_text("someone's")
    for path in (fifo, other):
        idle(path)
    taken(take_slot(str(tmp_path / "queue"), "w1", 1)).release()
    assert fifo.exists() and other.exists(), "not a slot file mp makes: left alone"
