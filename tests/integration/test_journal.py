"""Lines written to the journal carry their syslog priority, so `journalctl -p warning`
finds warnings and errors. The journal's stream is stood in for by a file: systemd names
its stream to the service by device and inode (JOURNAL_STREAM), which a file has too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import conftest

from media_pipeline.items.names import ItemKey


def run_mp(tmp_path: Path, *args: str, journal: bool) -> str:
    """Run `mp args` with stderr to a file; with journal, JOURNAL_STREAM names that file."""
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "w") as stderr:
        status = os.fstat(stderr.fileno())
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        if journal:
            env["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
        subprocess.run(
            [sys.executable, "-m", "media_pipeline", *args],
            stderr=stderr, stdout=subprocess.DEVNULL, env=env, timeout=60,
        )  # fmt: skip
    return stderr_path.read_text()


def test_an_error_is_priority_3_and_a_warning_4(pipeline, tmp_path):
    missing = str(tmp_path / "missing.yaml")
    assert run_mp(tmp_path, "status", "--config", missing, journal=True).startswith("<3>mp: ")
    assert run_mp(tmp_path, "status", "--config", missing, journal=False).startswith("mp: ")
    # A warning from a command (a marker folder that is a link is passed over).
    folder = pipeline.folder(ItemKey("movie", "Heat (1995)"), "1-ripped")
    folder.mkdir(parents=True)
    (folder / ".pipeline").symlink_to(tmp_path)
    said = run_mp(tmp_path, "reconcile", "--config", str(pipeline.config_path), journal=True)
    warnings = [line for line in said.splitlines() if "WARNING" in line]
    assert warnings and all(line.startswith("<4>WARNING ") for line in warnings), said
    assert all(line[:3] in ("<4>", "<6>", "<7>") for line in said.splitlines()), said


def test_json_errors_are_json_lines_with_the_prefix(pipeline, tmp_path):
    pipeline.mp("reconcile")
    said = run_mp(tmp_path, "why", "nothing", "--log-format", "json", "--config",
                  str(pipeline.config_path), journal=True)  # fmt: skip
    [line] = [line for line in said.splitlines() if '"error"' in line]
    assert line.startswith("<3>{")
    assert json.loads(line[3:])["message"].startswith("no item matches"), said


def test_stderr_sent_elsewhere_gets_no_prefix(pipeline, tmp_path):
    pipeline.mp("reconcile")
    # JOURNAL_STREAM inherited, but stderr redirected to a file: not the journal.
    env = {**os.environ, "JOURNAL_STREAM": "1:1"}
    done = subprocess.run(
        [sys.executable, "-m", "media_pipeline", "why", "nothing", "--config",
         str(pipeline.config_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.stderr.startswith("mp: no item matches")


# -- one line per result: the result on stdout once; log lines only at -v or in the journal


def test_a_result_is_said_once_and_the_journal_keeps_what_was_done(pipeline, tmp_path):
    """By hand: a new database is one line, a queued job one line, both on stdout, and
    nothing on stderr. Under systemd (stderr the journal) the log lines are there too."""
    pipeline.mark(ItemKey("movie", "Heat (1995)"), "1-ripped", "rip")
    config = ("--config", str(pipeline.config_path))
    made = conftest.run_mp("reconcile", *config)
    assert made.returncode == 0 and made.stderr == "", made.stderr
    assert made.stdout.splitlines() == [
        f"created the database {pipeline.database}",
        "reconcile: 1 items; applied 1 new, 1 state changes, 2 files written, 1 queue changes",
    ]
    queued = conftest.run_mp("dispatch", *config)
    assert queued.returncode == 0 and queued.stderr == "", queued.stderr
    [line] = [line for line in queued.stdout.splitlines() if "movie/Heat (1995)" in line]
    assert line.startswith("queued job_") and queued.stdout.count("movie/Heat (1995)") == 1
    pipeline.mp("cancel", "movie/Heat (1995)")
    pipeline.mp("retry", "movie/Heat (1995)")
    journal = run_mp(tmp_path, "dispatch", *config, journal=True)
    assert "<6>INFO movie/Heat (1995): RIPPED -> REMUXING (remux job queued)" in journal
    assert "DEBUG" not in journal


def test_v_shows_debug_and_the_shared_options_work_before_the_command(pipeline, tmp_path):
    pipeline.mp("reconcile")
    config = str(pipeline.config_path)
    debug = f"DEBUG config {config}: staging_root {pipeline.staging}"
    for args in (["status", "-v", "--config", config], ["-v", "status", "--config", config],
                 ["-v", "--config", config, "status"]):  # fmt: skip
        done = conftest.run_mp(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stderr.startswith(debug), (args, done.stderr)
        assert done.stdout.startswith("No items yet")
    quiet = conftest.run_mp("-q", "claim", "--worker", "w1", "--dry-run", "--config", config)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    # After the command wins over before it; JSON before the command is JSON.
    done = conftest.run_mp("--log-format", "json", "-v", "status", "--config", config)
    assert json.loads(done.stderr.splitlines()[0])["level"] == "debug"
    done = conftest.run_mp("--log-format", "json", "-v", "status", "--log-format", "text",
                           "--config", config)  # fmt: skip
    assert done.stderr.startswith(debug)
    # Under the journal without -v: no debug; -q there leaves warnings and errors.
    assert "DEBUG" not in run_mp(tmp_path, "status", "--config", config, journal=True)
    assert run_mp(tmp_path, "-q", "reconcile", "--config", config, journal=True) == ""
