"""Environment faults: a full disk while writing a marker or a job, a share that stops
answering or is renamed away mid-reconcile, a read-only queue folder. Each: its exit
code, one sentence, nothing lost, and the next run recovers."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from media_pipeline.items.names import ItemKey
from media_pipeline.share.files import Folder

MOVIE = ItemKey("movie", "Heat (1995)")
real_replace = os.replace


def full_disk_now(monkeypatch):
    """From now on every atomic write fails at its rename, as on a full disk (the temp
    file's data could not be flushed)."""

    def no_space(source, target, **_descriptors):
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(os, "replace", no_space)
    return monkeypatch


def test_a_full_disk_while_writing_markers(pipeline, monkeypatch):
    pipeline.mp("reconcile")  # the first run, which writes the share's id
    pipeline.mark(MOVIE, "1-ripped", "rip")
    full_disk = full_disk_now(monkeypatch)
    result = pipeline.mp("reconcile", expect=1)
    assert "could not be written" in result.stderr and "No space left" in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("mp:")] == [
        result.stderr.strip().splitlines()[-1]
    ]
    pipeline_files = sorted(os.listdir(pipeline.folder(MOVIE, "1-ripped") / ".pipeline"))
    assert pipeline_files == ["rip.done", "rip.timestamp"], "no temporary file left behind"
    full_disk.setattr(os, "replace", real_replace)
    result = pipeline.mp("reconcile")
    assert (pipeline.folder(MOVIE, "1-ripped") / ".pipeline" / "state").read_text() == "RIPPED\n"


def test_a_full_disk_while_writing_a_job(pipeline, monkeypatch):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")

    full_disk_now(monkeypatch)
    result = pipeline.mp("dispatch", expect=1)
    assert "No space left on device" in result.stderr and "Traceback" not in result.output
    assert pipeline.queue("pending") == [], "never half a job in pending/"
    monkeypatch.setattr(os, "replace", real_replace)
    assert pipeline.status_json()["items"][0]["state"] == "RIPPED"
    pipeline.mp("dispatch")
    assert len(pipeline.queue("pending")) == 1


def test_a_share_that_stops_answering_is_refused(pipeline, monkeypatch):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    from media_pipeline.share.files import Folder

    real_entries, real_names, real_open = Folder.entries, Folder.names, Folder.open_root

    def refuse(path: str) -> None:
        # What the kernel answers for a folder of an NFS share whose server went away.
        if path.startswith(str(pipeline.staging)):
            raise OSError(errno.ESTALE, "Stale file handle", path)

    def stale_listing(listing):
        def listing_of(folder):
            refuse(folder.path)
            return listing(folder)

        return listing_of

    def stale_open(path):
        refuse(path)
        return real_open(path)

    monkeypatch.setattr(Folder, "entries", stale_listing(real_entries))
    monkeypatch.setattr(Folder, "names", stale_listing(real_names))
    monkeypatch.setattr(Folder, "open_root", staticmethod(stale_open))
    for command in (["reconcile"], ["claim", "--worker", "w1"]):
        result = pipeline.mp(*command, expect=3)
        assert "Stale file handle" in result.stderr, command
    monkeypatch.undo()
    assert pipeline.status_json()["items"][0]["state"] == "RIPPED"


class ReadOnlyMounts:
    """Called with a folder: makes it read-only; undo(folder) makes it writable again."""

    def __init__(self) -> None:
        self.mounted: list[str] = []

    def __call__(self, folder: Path | str) -> None:
        folder = str(folder)
        bind = subprocess.run(["mount", "--bind", folder, folder], capture_output=True)
        if bind.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
        self.mounted.append(folder)
        subprocess.run(["mount", "-o", "remount,bind,ro", folder, folder], check=True)

    def undo(self, folder: Path | str) -> None:
        self.mounted.remove(str(folder))
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only(tmp_path):
    """Make a folder read-only for real, with a read-only bind mount over itself (root
    ignores permission bits, so chmod would prove nothing)."""
    mounts = ReadOnlyMounts()
    yield mounts
    for folder in reversed(mounts.mounted):
        subprocess.run(["umount", folder], check=True)


def test_a_read_only_queue_folder(pipeline, read_only):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    other = ItemKey("movie", "Alien (1979)")
    pipeline.mark(other, "1-ripped", "rip")
    read_only(pipeline.staging / ".pipeline" / "jobs")

    claim = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "Read-only file system (is the share mounted read-only?)" in claim.stderr
    assert pipeline.queue("pending") == [job_id] and pipeline.runlog() == []
    # Reconcile reads the queue and writes only the staging folders and the database.
    pipeline.mp("reconcile")
    dispatch = pipeline.mp("dispatch", expect=1)
    assert "Read-only file system" in dispatch.stderr and "Traceback" not in dispatch.output
    cancel = pipeline.mp("cancel", MOVIE.uid, expect=1)
    assert "Read-only file system" in cancel.stderr
    states = {item["title"]: item["state"] for item in pipeline.status_json()["items"]}
    assert states == {MOVIE.title: "REMUXING", other.title: "RIPPED"}, "nothing half-done"
    assert pipeline.queue("pending") == [job_id] and pipeline.queue("tmp") == []


def test_a_read_only_queue_folder_recovers_when_writable_again(pipeline, read_only):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    queue = pipeline.staging / ".pipeline" / "jobs"
    read_only(queue)
    pipeline.mp("claim", "--worker", "w1", expect=1)
    read_only.undo(queue)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    pipeline.mp("reconcile")
    assert pipeline.status_json()["items"][0]["state"] == "REMUXED"
    assert [line.split()[0] for line in pipeline.runlog()] == ["start", "done"]


def test_staging_renamed_away_mid_reconcile_is_refused_and_changes_nothing(pipeline, monkeypatch):
    from media_pipeline.reconcile import scan

    movies = [ItemKey("movie", f"Film {number}") for number in range(6)]
    for key in movies:
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")
    before = pipeline.status_json()
    staging, away = str(pipeline.staging), str(pipeline.staging) + ".away"
    real_read = scan.read_folder_markers
    reads = []

    def read_then_vanish(item, path):
        reads.append(path)
        if len(reads) == 3:  # halfway through the walk, the mount goes
            os.rename(staging, away)
        return real_read(item, path)

    monkeypatch.setattr(scan, "read_folder_markers", read_then_vanish)
    result = pipeline.mp("reconcile", expect=3)
    assert "changed while being read" in result.stderr and "Traceback" not in result.output
    os.rename(away, staging)
    monkeypatch.setattr(scan, "read_folder_markers", real_read)
    assert pipeline.status_json() == before, "no item was marked missing"
    pipeline.mp("reconcile")
    assert pipeline.status_json()["counts"] == {"RIPPED": 6}


def test_an_item_moved_mid_reconcile_is_not_a_vanished_mount(pipeline, monkeypatch):
    from media_pipeline.reconcile import scan

    movies = [ItemKey("movie", f"Film {number}") for number in range(3)]
    for key in movies:
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")
    moved = pipeline.folder(movies[2], "1-ripped")
    real_read = scan.read_folder_markers

    def read_then_move(item, path):
        if moved.exists():  # a script moves one item away while the walk is under way
            os.rename(moved, pipeline.root / "elsewhere")
        return real_read(item, path)

    monkeypatch.setattr(scan, "read_folder_markers", read_then_move)
    pipeline.mp("reconcile")
    assert not moved.exists(), "no ghost of the moved item was written back"
    monkeypatch.setattr(scan, "read_folder_markers", real_read)
    pipeline.mp("reconcile")  # the next run sees the walk's outcome settled
    items = {item["title"]: item for item in pipeline.status_json()["items"]}
    assert [items[key.title]["state"] for key in movies] == ["RIPPED"] * 3
    assert [items[key.title]["missing_since"] is not None for key in movies] == [
        False,
        False,
        True,
    ]


def unreadable(monkeypatch, file_name: str, code: int) -> None:
    """Reading file_name on the share fails with code (EIO: the share flaking; EACCES)."""
    real = Folder.read_bytes

    def read_bytes(self, name, *args, **kwargs):
        if name == file_name:
            raise OSError(code, os.strerror(code), name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(Folder, "read_bytes", read_bytes)


@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES])
def test_a_job_file_reconcile_cannot_read_stops_the_run_and_changes_nothing(
    pipeline, monkeypatch, code
):
    """Not taken for a missing one: a genuine failed job would be rejected as forged and
    its item dispatched again, past max_attempts (helper-27's review of 846526c)."""
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.write_pipeline_config(jobs={"max_attempts": 1, "backoff_seconds": 1})
    pipeline.mark(movie, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    failed = pipeline.queue("failed")
    unreadable(monkeypatch, "result.json", code)
    result = pipeline.mp("reconcile", expect=None)
    assert result.exit_code == (3 if code == errno.EIO else 1), result.stdout
    assert pipeline.queue("failed") == failed and pipeline.queue("rejected") == []
    monkeypatch.undo()
    pipeline.mp("reconcile")
    assert pipeline.status_json()["counts"] == {"FAILED": 1}
