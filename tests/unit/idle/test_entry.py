"""The idle claim answered before the command line is built: only when there surely is
no job for the worker, with the config and the share checked as the full claim checks
them; in every other case the full command decides."""

from __future__ import annotations

import pytest
import yaml
from conftest import AS_ROOT

from media_pipeline.idle import entry

JOB = "job_p500_20261126T044334279230_{kind}_movie_ff1a9983a07d_Heat-1995"


@pytest.fixture
def share(tmp_path):
    staging = tmp_path / "staging"
    (staging / ".pipeline" / "jobs" / "pending").mkdir(parents=True)
    (staging / ".pipeline" / "share.id").write_text("0123456789abcdef0123456789abcdef\n")
    config = {
        "staging_root": str(staging),
        "library_root": str(tmp_path / "library"),
        "database": str(tmp_path / "db" / "state.db"),
        "workers": {"ct304": {"kinds": ["transcode"]}},
        "scripts": {"transcode": {"path": "/bin/true"}},
        "units": AS_ROOT,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return staging, path, config


def claim(path, *more):
    return entry.idle_claim(["claim", "--worker", "ct304", "--config", str(path), *more])


def test_no_job_of_its_kinds_is_answered_at_once(share):
    staging, path, _config = share
    assert claim(path) == "worker ct304: no job to run"
    pending = staging / ".pipeline" / "jobs" / "pending"
    (pending / JOB.format(kind="remux")).mkdir()  # another worker's kind
    (pending / ".wait.1764130000.x").touch()  # a back-off file
    assert claim(path) == "worker ct304: no job to run"
    (pending / JOB.format(kind="transcode")).mkdir()
    assert claim(path) is None, "a job it may run: the full claim"


def test_a_share_with_no_queue_yet_has_no_job(share):
    staging, path, _config = share
    (staging / ".pipeline" / "jobs" / "pending").rmdir()
    (staging / ".pipeline" / "jobs").rmdir()
    assert claim(path) == "worker ct304: no job to run"


@pytest.mark.parametrize(
    "change",
    ["option", "drained", "no share", "bad share id", "linked queue",
     "queue is a file", "unknown key", "broken yaml"],
)  # fmt: skip
def test_anything_else_goes_to_the_full_command(share, tmp_path, change):
    staging, path, config = share
    jobs = staging / ".pipeline" / "jobs"
    args = []
    if change == "option":
        args = ["-v"]
    elif change == "drained":
        (jobs / "drained").mkdir()
        (jobs / "drained" / "ct304").touch()
    elif change == "no share":
        (staging / ".pipeline" / "share.id").unlink()
    elif change == "bad share id":
        (staging / ".pipeline" / "share.id").write_text("garbage\n")
    elif change in ("linked queue", "queue is a file"):
        (jobs / "pending").rmdir()
        jobs.rmdir()
        if change == "linked queue":
            (tmp_path / "elsewhere" / "pending").mkdir(parents=True)
            jobs.symlink_to(tmp_path / "elsewhere")
        else:
            jobs.touch()
    elif change == "unknown key":
        path.write_text(yaml.safe_dump({**config, "staging_rooot": "/x"}))
    else:
        path.write_text("staging_root: [unclosed")
    assert claim(path, *args) is None


def test_other_commands_and_forms_are_not_touched(share):
    _staging, path, _config = share
    assert entry.idle_claim(["reconcile", "--config", str(path)]) is None
    assert entry.idle_claim(["claim", "--config", str(path)]) is None  # worker: hostname
    assert entry.idle_claim(["claim", "--worker=ct304", f"--config={path}"]) is not None


def test_time_windows_matter_only_to_a_job_it_may_run(share):
    staging, path, config = share
    path.write_text(yaml.safe_dump({**config, "windows": {"transcode": "01:00-07:00"}}))
    assert claim(path) == "worker ct304: no job to run"
    (staging / ".pipeline" / "jobs" / "pending" / JOB.format(kind="transcode")).mkdir()
    assert claim(path) is None, "its window may be closed: the full claim says"


@pytest.mark.parametrize("seconds", ["\u00b2", "99999", "-1", "1.5"])
def test_a_linger_the_full_command_refuses_goes_to_it(share, seconds):
    _staging, path, _config = share
    assert claim(path, "--linger", seconds) is None
    args = ["reconcile", "--if-changed", "--config", str(path), "--linger", seconds]
    assert entry.idle_controller(args) is None
