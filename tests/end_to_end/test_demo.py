"""`mp demo` as a user runs it: the installed console script, in a real subprocess."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SEASON_01 = [
    *(f"Demo Show (2021) - s01e{n:02d}.mkv" for n in range(1, 6)),
    "Demo Show (2021) - s01e06-e07.mkv",
]


def mp_command() -> list[str]:
    script = Path(sys.executable).with_name("mp")
    return [str(script)] if script.exists() else [shutil.which("mp") or "mp"]


@dataclass
class Demo:
    sandbox: Path
    run: subprocess.CompletedProcess
    env: dict

    @property
    def library(self) -> Path:
        return self.sandbox / "library"

    @property
    def movie(self) -> Path:
        return self.library / "Movies" / "Big Buck Bunny (2008)" / "Big Buck Bunny (2008).mkv"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """One `mp demo` for the tests of what it made."""
    sandbox = tmp_path_factory.mktemp("demo") / "demo"
    env = {**os.environ}
    env.pop("MP_CONFIG", None)
    run = subprocess.run(
        [*mp_command(), "demo", str(sandbox)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return Demo(sandbox, run, env)


def test_demo_ends_with_every_item_in_the_library(demo):
    assert "IN_LIBRARY (8)" in demo.run.stdout
    season = demo.library / "TV Shows" / "Demo Show (2021)" / "Season 01"
    episodes = sorted(path.name for path in season.glob("*.mkv"))
    assert demo.movie.exists()
    extras = sorted(
        str(p.relative_to(demo.movie.parent)) for p in demo.movie.parent.rglob("Extra*.mkv")
    )
    assert extras == ["Featurettes/Extra 01.mkv", "Trailers/Extra 02.mkv"], "typed at review"
    # Three titles a disc (the short menu loops are not episodes), numbered across the
    # season's two discs in Plex's naming; the second disc's last is a double episode.
    assert episodes == SEASON_01
    # Three discs ripped by label with no year, the year given at the first one's gate:
    # one show folder, its six episodes numbered across the discs.
    shows = sorted(p.name for p in (demo.library / "TV Shows").iterdir())
    assert shows == ["Archive Series (2019)", "Demo Show (2021)"]
    archive = demo.library / "TV Shows" / "Archive Series (2019)" / "Season 02"
    assert sorted(p.name for p in archive.glob("*.mkv")) == [
        f"Archive Series (2019) - s02e{n:02d}.mkv" for n in range(1, 7)
    ]
    specials = demo.library / "TV Shows" / "Demo Show (2021)" / "Season 00"
    assert sorted(p.name for p in specials.glob("*.mkv")) == [
        "Demo Show (2021) - s00e01.mkv",
        "Demo Show (2021) - s00e02.mkv",
    ]
    status = subprocess.run(
        [*mp_command(), "status", "--json", "--config", str(demo.sandbox / "config.yaml")],
        capture_output=True,
        text=True,
        env=demo.env,
        timeout=60,
    )
    data = json.loads(status.stdout)
    assert data["counts"] == {"IN_LIBRARY": 8}
    # A second demo into the same folder refuses rather than overwrite it.
    again = subprocess.run(
        [*mp_command(), "demo", str(demo.sandbox)],
        capture_output=True, text=True, env=demo.env, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2
    assert "already holds a demo" in again.stderr


def test_the_demo_ends_saying_how_every_command_finds_its_config(demo):
    """Its last lines export MP_CONFIG; done as they say, from any folder, status, stats
    and jobs work without --config."""
    lines = demo.run.stdout.splitlines()
    exported = next(line for line in lines[-3:] if line.strip().startswith("export "))
    name, _equals, value = shlex.split(exported)[1].partition("=")
    assert name == "MP_CONFIG" and value == str(demo.sandbox.resolve() / "config.yaml")
    shown = {}
    for command in ("status", "stats", "jobs"):
        assert command in lines[-1]
        done = subprocess.run(
            [*mp_command(), command], capture_output=True, text=True,
            env={**demo.env, name: value}, cwd="/", timeout=60,
        )  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
        shown[command] = done.stdout
    assert "IN_LIBRARY (8)" in shown["status"]
    assert "transcode" in shown["stats"] and "completed" in shown["jobs"]


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed")
def test_the_demo_page_as_a_browser_shows_it(demo):
    page = demo.sandbox / "status.html"
    assert f"The status page, for a browser: file://{page}" in demo.run.stdout
    dom = subprocess.run(
        [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--dump-dom", "--virtual-time-budget=2000", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "IN_LIBRARY" in dom and "tv/Demo Show (2021)/S01 Disc2" in dom
    assert "Demo Show (2021), season 1" in dom and dom.count("<svg") == 3
    assert re.search(r"<time [^>]*>\d+ s ago</time>", dom), dom[:2000]


def streams(path: Path, *select: str, entries="stream=codec_name:stream_tags=language") -> list:
    return subprocess.run(
        ["ffprobe", "-v", "error", *select, "-show_entries", entries, "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip


@pytest.mark.skipif(not shutil.which("ffprobe"), reason="ffmpeg is not installed")
def test_the_demo_transcodes_with_real_ffmpeg_and_keeps_the_wanted_tracks(demo):
    assert demo.run.stdout.startswith("media-pipeline demo: real ffmpeg")
    assert streams(demo.movie) == ["h264", "aac,eng", "aac,fra", "subrip,eng"]
    # The film whose only audio is Japanese keeps it (the demo wants eng, fra).
    foreign = demo.library / "Movies" / "Demo Film (1961)" / "Demo Film (1961).mkv"
    languages = streams(foreign, "-select_streams", "a", entries="stream_tags=language")
    assert languages == ["jpn"]


def test_console_scripts_are_the_same_commands(tmp_path):
    bin_dir = Path(sys.executable).parent
    for name in ("mp-reconcile", "mp-status", "mp-dispatch", "mp-claim", "mp-approve"):
        script = bin_dir / name
        assert script.exists(), name
        run = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0
        assert "--config" in run.stdout and "--log-format" in run.stdout


def test_demo_without_ffmpeg_copies_and_says_so(tmp_path):
    # A PATH with every usual tool but ffmpeg and ffprobe.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in os.listdir("/usr/bin"):
        if name not in ("ffmpeg", "ffprobe", "makemkvcon", "filebot"):
            (tools / name).symlink_to(Path("/usr/bin") / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{tools}"}
    env.pop("MP_CONFIG", None)
    sandbox = tmp_path / "demo"
    run = subprocess.run(
        [*mp_command(), "demo", str(sandbox)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0].startswith("media-pipeline demo WITHOUT ffmpeg")
    assert "IN_LIBRARY (8)" in run.stdout
    season = sandbox / "library" / "TV Shows" / "Demo Show (2021)" / "Season 01"
    assert sorted(p.name for p in season.glob("*.mkv")) == SEASON_01
