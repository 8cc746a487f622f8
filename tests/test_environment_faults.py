"""Environment faults: a full disk while writing a marker or a job, a share that stops
answering. Each: its exit code, one sentence, nothing lost, and the next run recovers."""

from __future__ import annotations

import errno
import os

import pytest

from media_pipeline.items import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")
real_replace = os.replace


@pytest.fixture
def full_disk(monkeypatch):
    """Every atomic write fails at its rename, as on a full disk (the temp file's data
    could not be flushed)."""

    def no_space(source, target):
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(os, "replace", no_space)
    return monkeypatch


def test_a_full_disk_while_writing_markers(pipeline, full_disk):
    pipeline.mark(MOVIE, "1-ripped", "rip")
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

    def no_space(source, target):
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(os, "replace", no_space)
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
    real_scandir = os.scandir

    def stale(path="."):
        if str(path).startswith(str(pipeline.staging)):
            raise OSError(errno.ESTALE, "Stale file handle", str(path))
        return real_scandir(path)

    real_listdir = os.listdir

    def stale_listing(path="."):
        if str(path).startswith(str(pipeline.staging)):
            raise OSError(errno.ESTALE, "Stale file handle", str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "scandir", stale)
    monkeypatch.setattr(os, "listdir", stale_listing)
    for command in (["reconcile"], ["claim", "--worker", "w1"]):
        result = pipeline.mp(*command, expect=3)
        assert "Stale file handle" in result.stderr, command
    monkeypatch.setattr(os, "scandir", real_scandir)
    monkeypatch.setattr(os, "listdir", real_listdir)
    assert pipeline.status_json()["items"][0]["state"] == "RIPPED"
