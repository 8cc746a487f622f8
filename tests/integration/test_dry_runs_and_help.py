"""Every command that changes something has --dry-run, which says what it would do and
writes nothing; every help page has examples; Tab completes items and workers."""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from conftest import claim_in_background, tree_snapshot

from media_pipeline.cli import mp
from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")
DISC = ItemKey("tv", "Lost", "S01 Disc1")


def snapshot(pipeline) -> dict:
    """The share, the library and the database folder (database, WAL, lock, keys)."""
    return tree_snapshot(pipeline.staging, pipeline.database.parent, pipeline.root / "library")


def unchanged(pipeline, *args: str, expect: int = 0) -> str:
    """Run a dry run and prove it wrote nothing: not on the share, not in the database,
    not in the queue."""
    before = snapshot(pipeline)
    result = pipeline.mp(*args, "--dry-run", expect=expect)
    after = snapshot(pipeline)
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


def test_forget_dry_run_names_the_folders_it_would_set_aside(queued):
    pipeline, _ = queued
    assert "'mp cancel' it first" in unchanged(pipeline, "forget", MOVIE.uid, expect=2)
    pipeline.mp("cancel", MOVIE.uid)
    out = unchanged(pipeline, "forget", MOVIE.uid)
    assert f"would forget it and set aside {pipeline.folder(MOVIE, '1-ripped')} (hidden" in out


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
    # Refused as the real commands refuse it: only reconcile makes a database.
    missing = f"database {pipeline.database} does not exist"
    assert missing in unchanged(pipeline, "cancel", "1", expect=2)
    assert missing in unchanged(pipeline, "rip", "--type", "movie", "--title", "X", expect=2)
    assert "would: create the database" in unchanged(pipeline, "reconcile")
    assert not pipeline.database.exists()


def test_a_reader_leaves_what_a_killed_writer_left_in_the_wal_where_it_is(queued):
    """A reconcile killed after committing leaves its last transactions in the WAL. A
    read-write connection would copy them into the database on closing; status, why,
    Tab completion and every dry run open it read-only, so neither file changes."""
    pipeline, _ = queued
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
            "db.execute('PRAGMA wal_autocheckpoint = 0');"
            "db.execute(\"UPDATE media_items SET reason = 'in the WAL'\");"
            "db.commit(); os._exit(0)",
            str(pipeline.database),
        ],
        timeout=60,
    )
    assert killed.returncode == 0
    wal = Path(f"{pipeline.database}-wal")
    before = (pipeline.database.read_bytes(), wal.read_bytes())
    assert before[1], "the killed writer left its transaction in the WAL"
    assert pipeline.status_json()["items"][0]["reason"] == "in the WAL"  # readers see it
    pipeline.mp("why", MOVIE.uid)
    unchanged(pipeline, "priority", MOVIE.uid, "3")
    assert (pipeline.database.read_bytes(), wal.read_bytes()) == before


def _pages(group: click.Group, prefix=()):
    yield prefix, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _pages(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def _resolve(words: list[str]) -> tuple[list[str], click.Command]:
    """The command an example's words name, and the words naming it."""
    command: click.Command = mp
    path: list[str] = []
    for word in words:
        if isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
            path.append(word)
        else:
            break
    return path, command


def test_every_help_page_has_examples_naming_real_commands_and_options():
    pages = list(_pages(mp))
    assert len(pages) >= 23
    for path, _command in pages:
        text = CliRunner().invoke(mp, [*path, "--help"]).stdout
        assert "Examples:" in text, f"mp {' '.join(path)} --help has no examples"
        examples = text.split("Examples:", 1)[1].split("\n\n")[0]
        for line in examples.strip().splitlines():
            words = shlex.split(line.split("#")[0].split("|")[0].split("&&")[0])
            assert words[0] == "mp", line
            named, command = _resolve(words[1:])
            assert named, f"{line!r} names no command"
            options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            for word in words[1 + len(named) :]:
                if word.startswith("-") and not word.lstrip("-").isdigit():
                    assert word.split("=")[0] in options, f"{line!r}: {word} is no option"


def test_the_examples_worker_names_are_the_example_configs():
    from media_pipeline.config.output import example_yaml

    workers = set(yaml.safe_load(example_yaml())["workers"])
    for path, _command in _pages(mp):
        text = CliRunner().invoke(mp, [*path, "--help"]).stdout
        for line in text.split("Examples:", 1)[1].split("\n\n")[0].splitlines():
            words = line.split("#")[0].split()
            for flag, name in itertools.pairwise(words):
                if flag in ("--worker", "drain", "resume"):
                    assert name in workers, f"{line!r}: {name} is not in 'mp config example'"


def test_dry_runs_check_what_the_real_commands_check(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mark(MOVIE, "2-remuxed", "remux")
    pipeline.mp("reconcile")
    share_id = pipeline.staging / ".pipeline" / "share.id"
    real_id = share_id.read_text()
    # A share that is not this controller's: refused, dry or not.
    share_id.write_text("0" * 32 + "\n")
    refused = unchanged(pipeline, "approve", MOVIE.uid, "--yes", expect=3)
    assert f"holds share {'0' * 8}, but this controller knows share {real_id[:8]}" in refused
    share_id.write_text(real_id)
    # A decision key that is not one mp made.
    key = Path(pipeline.config.decision_key)
    good_key = key.read_bytes() if key.exists() else None
    key.write_bytes(b"short")
    assert "holds 5 bytes" in unchanged(pipeline, "approve", MOVIE.uid, "--yes", expect=3)
    if good_key is None:
        key.unlink()
    else:
        key.write_bytes(good_key)
    # The item's folder gone: named, dry and real alike.
    folder = pipeline.folder(MOVIE, "2-remuxed")
    folder.rename(pipeline.root / "moved")
    err = unchanged(pipeline, "approve", MOVIE.uid, "--yes", expect=1)
    assert f"its folder {folder} is gone from staging" in err
    assert "is gone from staging" in pipeline.mp("approve", MOVIE.uid, "--yes", expect=1).stderr
    (pipeline.root / "moved").rename(folder)
    pipeline.mp("approve", MOVIE.uid, "--reject", "--reason", "wrong audio")
    # Retry of a rejection: the gate asks again, and --redo needs the folder it sets aside.
    out = unchanged(pipeline, "retry", MOVIE.uid)
    assert "would go back to REMUXED; remux_review would ask again" in out
    remuxed = pipeline.folder(MOVIE, "2-remuxed")
    remuxed.rename(pipeline.root / "moved")
    err = unchanged(pipeline, "retry", MOVIE.uid, "--redo", expect=2)
    assert "is not there to set aside" in err


def test_a_title_that_is_not_text_is_a_usage_error_not_a_traceback(pipeline):
    pipeline.mp("reconcile")
    for title in ("\udcff", "Line\nbreak", "Bell\a"):
        err = unchanged(pipeline, "rip", "--type", "movie", "--title", title, expect=2)
        assert "not printable text" in err
        assert "not printable text" in pipeline.mp("rip", "--type", "movie", "--title", title,
                                                   expect=2).stderr  # fmt: skip


def test_cancel_dry_run_of_a_cancelled_item_whose_job_still_runs(pipeline):
    pipeline.behave("remux", "block")
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    worker = claim_in_background(pipeline, until=lambda: list(pipeline.root.glob("started.*")))
    try:
        pipeline.mp("cancel", MOVIE.uid)
        out = unchanged(pipeline, "cancel", MOVIE.uid)
        assert "would ask the worker running" in out and "it is CANCELLED already" in out
    finally:
        worker.wait(timeout=60)  # the cancel stops its script within the grace period


@pytest.mark.parametrize(
    "command", ["cancel", "retry", "why", "history", "priority", "approve", "forget"]
)
def test_every_dry_run_and_item_command_lists_what_it_takes(command):
    text = CliRunner().invoke(mp, [command, "--help"]).stdout
    assert "ITEM" in text
    if command in ("cancel", "retry", "priority", "approve", "forget"):
        assert "--dry-run" in text


def complete(pipeline, words: str, config: Path | str | None = "default") -> list[str]:
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
    if config is None:
        del env["MP_CONFIG"]
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
    offered = complete(pipeline, "mp why ")
    assert offered == ["'movie/Heat (1995)'", "'tv/Lost/S01 Disc1'"]
    assert complete(pipeline, "mp retry tv") == ["'tv/Lost/S01 Disc1'"]
    assert complete(pipeline, "mp claim --worker ") == ["w1"]
    assert complete(pipeline, "mp worker drain w") == ["w1"]
    assert complete(pipeline, "mp hist") == ["history"]
    # --config on the line is the config the completion reads.
    elsewhere = pipeline.root / "elsewhere.yaml"
    elsewhere.write_text(pipeline.config_path.read_text())
    line = f"mp why --config {elsewhere} movie/"
    assert complete(pipeline, line, config=None) == ["'movie/Heat (1995)'"]


def test_hostile_titles_complete_as_one_quoted_word_that_runs_nothing(pipeline):
    hostile = [
        ItemKey("movie", "Odd $(touch pwned) x"),
        ItemKey("movie", "Quote ' and ` tick"),
        ItemKey("tv", "Show; rm -rf", "S01 Disc1"),
    ]
    for key in hostile:
        pipeline.mark(key, "1-ripped", "rip")
    newline = pipeline.staging / "1-ripped" / "movies" / "New\nline" / ".pipeline"
    newline.mkdir(parents=True)
    (newline / "rip.done").touch()
    pipeline.mp("reconcile")
    offered = complete(pipeline, "mp why ")
    # Each is one shell word that stands for exactly the item's name; the name with a
    # newline is not offered.
    assert sorted(shlex.split(word)[0] for word in offered) == sorted(k.name for k in hostile)
    assert all(len(shlex.split(word)) == 1 for word in offered)
    # And bash itself reads each back as the name, running nothing.
    for word in offered:
        echoed = subprocess.run(
            ["bash", "-c", f"printf %s {word}"], cwd=pipeline.root, capture_output=True, text=True
        )
        assert echoed.stdout in {k.name for k in hostile}
    assert not (pipeline.root / "pwned").exists()


def test_tab_completion_with_a_broken_config_offers_nothing_and_prints_no_error(pipeline):
    Path(pipeline.config_path).write_text("staging_root: [\n")
    assert complete(pipeline, "mp why ") == []
