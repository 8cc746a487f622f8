"""The demo's pipeline driven the way the hosts drive it: every step a separate `mp`
process (reconcile, approve, dispatch on the controller; claim on each worker), real
ffmpeg in the reference scripts, until every item is in the library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from media_pipeline.setup.demo import (
    DEMO_ENVIRONMENT,
    DISCS,
    HOSTS,
    MOVIE,
    make_discs,
    write_demo_config,
)
from media_pipeline.setup.scripts import packaged_scripts

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="ffmpeg is not installed (make test installs it)",
)


def test_three_hosts_take_the_demo_discs_into_the_library(tmp_path):
    shutil.copytree(packaged_scripts(), tmp_path / "scripts")
    make_discs(tmp_path / "discs", with_ffmpeg=True)
    config = write_demo_config(tmp_path, tmp_path / "scripts")
    env = {**os.environ, **DEMO_ENVIRONMENT, "MP_DISC_ROOT": str(tmp_path / "discs")}
    env.pop("MP_CONFIG", None)
    mp = str(Path(sys.executable).with_name("mp"))

    def run(*args: str) -> str:
        done = subprocess.run(
            [mp, *args, "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    run("reconcile")  # a new install: the controller's first run makes the database
    for key in DISCS:
        run("rip", "--type", key.type, "--title", key.title, "--disc-label", key.disc_label)
    claimed = {host: 0 for host in HOSTS}
    for _round in range(8):
        run("reconcile")
        for approval in json.loads(run("approve", "--list", "--json"))["approvals"]:
            run("approve", approval["item"]["uid"], "--yes")
        run("dispatch")
        for host in HOSTS:
            while "completed" in run("claim", "--worker", host):
                claimed[host] += 1
        status = json.loads(run("status", "--json"))
        if status["counts"] == {"IN_LIBRARY": len(DISCS)}:
            break
    assert status["counts"] == {"IN_LIBRARY": len(DISCS)}
    # ct302 ripped every disc, ct303 remuxed each, ct304 transcoded and filed each.
    assert claimed == {"ct302": len(DISCS), "ct303": len(DISCS), "ct304": 2 * len(DISCS)}
    library = tmp_path / "library"
    assert (library / "Movies" / MOVIE.title / f"{MOVIE.title}.mkv").exists()
    season = library / "TV Shows" / "Demo Show (2021)" / "Season 01"
    assert sorted(p.name for p in season.glob("*.mkv")) == [
        f"Demo Show (2021) - s01e{n:02d}.mkv" for n in range(1, 7)
    ]
    stats = json.loads(run("stats", "--json"))
    assert {stage["stage"]: stage["completed"] for stage in stats["stages"]} == {
        "rip": len(DISCS),
        "remux": len(DISCS),
        "transcode": len(DISCS),
        "filebot": len(DISCS),
    }
    history = run("history", MOVIE.uid)
    assert "remux_review: approved" in history and "filebot_confirm: approved" in history
