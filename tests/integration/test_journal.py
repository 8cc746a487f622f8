"""Lines written to the journal carry their syslog priority, so `journalctl -p warning`
finds warnings and errors. The journal's stream is stood in for by a file: systemd names
its stream to the service by device and inode (JOURNAL_STREAM), which a file has too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from media_pipeline.items import ItemKey


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
