"""Every command that changes something has --dry-run, which says what it would do and
writes nothing; every help page has examples; Tab completes items and workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import tree_snapshot

from media_pipeline.cli import mp
from media_pipeline.items import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")
DISC = ItemKey("tv", "Lost", "S01 Disc1")


def unchanged(pipeline, *args: str, expect: int = 0) -> str:
    """Run a dry run and prove it wrote nothing: not on the share, not in the database
    (its folder holds the database, its WAL and the lock), not in the queue."""
    before = tree_snapshot(pipeline.staging, pipeline.database.parent, pipeline.root / "library")
    result = pipeline.mp(*args, "--dry-run", expect=expect)
    after = tree_snapshot(pipeline.staging, pipeline.database.parent, pipeline.root / "library")
    assert after == before, f"mp {' '.join(args)} --dry-run changed {set(after) ^ set(before)}"
    return result.stdout if expect == 0 else result.stderr


@pytest.fixture
def queued(pipeline):
    """MOVIE ripped, with its remux job pending."""
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    [job] = pipeline.queue("pending")
    return pipeline, job


def test_rip_dry_run_says_what_it_would_queue_and_refuses_as_the_real_one(queued):
    pipeline, _ = queued
    out = unchanged(pipeline, "rip", "--type", "tv", "--title", "Lost", "--disc-label", "S01 Disc1")
    assert out.strip() == "would queue a rip job for tv/Lost/S01 Disc1"
    err = unchanged(pipeline, "rip", "--type", "movie", "--title", "Heat (1995)", expect=2)
    assert "already tracked" in err
    # And the real one does what the dry run said.
    assert "queued" in pipeline.mp("rip", "--type", "tv", "--title", "Lost", "--disc-label",
                                   "S01 Disc1").stdout  # fmt: skip


def test_cancel_dry_run_names_the_job_it_would_stop(queued):
    pipeline, job = queued
    out = unchanged(pipeline, "cancel", MOVIE.uid)
    assert f"would cancel pending job {job}" in out and "CANCELLED" in out
    pipeline.mp("cancel", MOVIE.uid)
    assert pipeline.queue("cancelled") == [job]


def test_priority_dry_run_says_the_pending_job_would_be_requeued(queued):
    pipeline, job = queued
    out = unchanged(pipeline, "priority", MOVIE.uid, "100")
    assert f"would set priority 100 and re-queue its pending job {job}" in out
    unchanged(pipeline, "priority", MOVIE.uid, "900", expect=2)


def test_retry_dry_run_says_where_the_item_would_go_back_to(queued):
    pipeline, _ = queued
    pipeline.mp("cancel", MOVIE.uid)
    pipeline.mp("reconcile")
    assert "would go back to RIPPED" in unchanged(pipeline, "retry", MOVIE.uid)
    assert "back to RIPPED" in pipeline.mp("retry", MOVIE.uid).stdout
    assert "only FAILED, REJECTED or CANCELLED" in unchanged(pipeline, "retry", MOVIE.uid, expect=2)


def test_retry_redo_dry_run_names_the_folder_it_would_set_aside(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mark(MOVIE, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    pipeline.mp("approve", MOVIE.uid, "--reject", "--reason", "wrong audio")
    out = unchanged(pipeline, "retry", MOVIE.uid, "--redo")
    assert f"would set {pipeline.folder(MOVIE, '2-remuxed')} aside (kept)" in out
    assert "back to RIPPED" in out


def test_approve_dry_run_says_the_decision_and_writes_no_decision_file(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review", "filebot_confirm"])
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mark(MOVIE, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    out = unchanged(pipeline, "approve", MOVIE.uid, "--yes")
    assert out.strip() == "movie/Heat (1995): remux_review would be approved"
    rejected = unchanged(pipeline, "approve", MOVIE.uid, "--reject", "--reason", "no")
    assert "would be rejected" in rejected
    assert "needs --reason" in unchanged(pipeline, "approve", MOVIE.uid, "--reject", expect=2)
    assert "--dry-run needs ITEM" in unchanged(pipeline, "approve", expect=2)


def test_worker_drain_and_resume_dry_runs(queued):
    pipeline, _ = queued
    assert "would drain worker w1" in unchanged(pipeline, "worker", "drain", "w1")
    assert "is already claiming jobs" in unchanged(pipeline, "worker", "resume", "w1")
    pipeline.mp("worker", "drain", "w1")
    assert "is already drained" in unchanged(pipeline, "worker", "drain", "w1")
    assert "would resume worker w1" in unchanged(pipeline, "worker", "resume", "w1")
    assert "not under 'workers'" in unchanged(pipeline, "worker", "drain", "nobody", expect=2)


def test_a_dry_run_before_the_first_reconcile_creates_no_database(pipeline):
    pipeline.mp("reconcile")  # the share gets its id; the database exists
    pipeline.database.unlink()
    for name in os.listdir(pipeline.database.parent):
        os.unlink(pipeline.database.parent / name)
    assert "no item has id 1" in unchanged(pipeline, "cancel", "1", expect=2)
    assert "would queue a rip job" in unchanged(pipeline, "rip", "--type", "movie", "--title", "X")
    assert not pipeline.database.exists()


def _pages(group: click.Group, prefix=()):
    yield prefix, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _pages(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_help_page_has_examples_that_name_real_commands():
    pages = list(_pages(mp))
    assert len(pages) >= 23
    known = {" ".join(path) for path, _ in pages}
    for path, _command in pages:
        text = CliRunner().invoke(mp, [*path, "--help"]).stdout
        assert "Examples:" in text, f"mp {' '.join(path)} --help has no examples"
        examples = text.split("Examples:", 1)[1].split("\n\n")[0]
        for line in examples.strip().splitlines():
            words = line.split("#")[0].split()
            assert words[0] == "mp", line
            named = " ".join(w for w in words[1:3] if not w.startswith("-"))
            assert any(named.startswith(k) for k in known if k), f"{line!r} names no command"


@pytest.mark.parametrize("command", ["cancel", "retry", "why", "history", "priority", "approve"])
def test_every_dry_run_and_item_command_lists_what_it_takes(command):
    text = CliRunner().invoke(mp, [command, "--help"]).stdout
    assert "ITEM" in text
    if command in ("cancel", "retry", "priority", "approve"):
        assert "--dry-run" in text


def complete(pipeline, words: str) -> list[str]:
    """What bash would offer on Tab after `words` (the real completion protocol, in a
    process of its own, as the shell runs it)."""
    parts = words.split(" ")
    env = {
        **os.environ,
        "_MP_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(parts) - 1),
        "MP_CONFIG": str(pipeline.config_path),
    }
    run = subprocess.run(
        [sys.executable, "-m", "media_pipeline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return [line.split(",", 1)[1] for line in run.stdout.splitlines() if "," in line]


def test_tab_completes_items_from_the_database_and_workers_from_the_config(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mark(DISC, "1-ripped", "rip")
    pipeline.mp("reconcile")
    assert complete(pipeline, "mp why ") == ["movie/Heat (1995)", "tv/Lost/S01 Disc1"]
    assert complete(pipeline, "mp retry tv") == ["tv/Lost/S01 Disc1"]
    assert complete(pipeline, "mp claim --worker ") == ["w1"]
    assert complete(pipeline, "mp worker drain w") == ["w1"]
    assert complete(pipeline, "mp hist") == ["history"]


def test_tab_completion_with_a_broken_config_offers_nothing_and_prints_no_error(pipeline):
    Path(pipeline.config_path).write_text("staging_root: [\n")
    assert complete(pipeline, "mp why ") == []
