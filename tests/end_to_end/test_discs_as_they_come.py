"""Discs as they really come, through the real commands and the reference scripts with
real ffmpeg: a TV disc with a "play all" title, a title forgotten and ripped again, and
a transcode that failed, retried."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ffmpeg_title

from media_pipeline.items.names import ItemKey
from media_pipeline.setup.demo import DEMO_ENVIRONMENT, write_demo_config
from media_pipeline.setup.scripts import packaged_scripts

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="ffmpeg is not installed (make test installs it)",
)

SHOW = ItemKey("tv", "Lost (2004)", "S01 Disc1")
HEAT = ItemKey("movie", "Heat (1995)")


def seconds_of(path: Path) -> float:
    probe = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
    done = subprocess.run([*probe, str(path)], capture_output=True, text=True, check=True)
    return float(done.stdout)


class Hosts:
    """A sandbox of the demo's config and hosts, each step a separate mp process."""

    def __init__(self, root: Path):
        self.root = root
        shutil.copytree(packaged_scripts(), root / "scripts")
        self.discs = root / "discs"
        self.config = write_demo_config(root, root / "scripts")
        self.env = {**os.environ, **DEMO_ENVIRONMENT, "MP_DISC_ROOT": str(self.discs)}
        self.env.pop("MP_CONFIG", None)
        self.mp("reconcile")  # a new install: the controller's first run makes the database

    def mp(self, *args: str, expect: int = 0) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("mp")), *args, "--config", str(self.config)],
            capture_output=True, text=True, env=self.env, timeout=300,
        )  # fmt: skip
        assert done.returncode == expect, (args, done.stdout, done.stderr)
        return done.stdout + done.stderr

    def rip(self, key: ItemKey) -> None:
        labels = ["--disc-label", key.disc_label] if key.disc_label else []
        self.mp("rip", "--type", key.type, "--title", key.title, *labels)

    def run_until_review(self) -> dict:
        """Rip and remux; the remux_review approval then pending, as approve --list shows."""
        for _round in range(4):
            self.mp("reconcile")
            approvals = json.loads(self.mp("approve", "--list", "--json"))["approvals"]
            if approvals:
                (approval,) = approvals
                return approval
            self.mp("dispatch")
            for host in ("ct302", "ct303"):
                self.mp("claim", "--worker", host)
        raise AssertionError(self.mp("status"))

    def staged(self, key: ItemKey, stage: str) -> Path:
        return Path(key.folder(str(self.root / "staging"), stage))


def test_a_play_all_title_is_shown_left_out_at_the_gate_and_its_episodes_kept(tmp_path):
    hosts = Hosts(tmp_path)
    disc = hosts.discs / "tv" / SHOW.title / SHOW.disc_label
    episodes = [disc / f"title_t0{n}.mkv" for n in (1, 2, 3)]
    for number, (path, seconds) in enumerate(zip(episodes, (4, 5, 4.4), strict=True)):
        ffmpeg_title(path, seconds, 300 + 100 * number)
    listing = tmp_path / "play-all.txt"
    listing.write_text("".join(f"file '{path}'\n" for path in episodes))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
         "-c", "copy", str(disc / "title_t00.mkv")],
        check=True,
    )  # fmt: skip
    hosts.rip(SHOW)
    approval = hosts.run_until_review()
    assert approval["gate"] == "remux_review"
    told = 'remux: skipped (a "play all": as long as title_t01.mkv + title_t02.mkv + '
    told += "title_t03.mkv together): title_t00.mkv"
    assert told in approval["prompt"]["notes"], approval["prompt"]
    remuxed = sorted(hosts.staged(SHOW, "2-remuxed").glob("*.mkv"))
    assert [round(seconds_of(path)) for path in remuxed] == [4, 5, 4]


def test_a_forgotten_title_ripped_again_starts_from_clean_folders(tmp_path):
    hosts = Hosts(tmp_path)
    disc = hosts.discs / "movie" / HEAT.title
    ffmpeg_title(disc / "title_t00.mkv", 2, 440)  # a first disc: the wrong one, say
    ffmpeg_title(disc / "title_t01.mkv", 1, 550)
    hosts.rip(HEAT)
    hosts.run_until_review()
    hosts.mp("forget", HEAT.uid, "--yes")
    shutil.rmtree(disc)
    ffmpeg_title(disc / "title_t00.mkv", 3, 330)  # the right disc, ripped again
    hosts.rip(HEAT)
    approval = hosts.run_until_review()
    assert approval["item"]["uid"] == HEAT.uid
    assert sorted(p.name for p in hosts.staged(HEAT, "1-ripped").glob("*.mkv")) == [
        "title_t00.mkv"
    ], "only the new disc's titles"
    remuxed = hosts.staged(HEAT, "2-remuxed")
    assert [p.name for p in remuxed.glob("*.mkv")] == ["Heat (1995).mkv"]
    assert round(seconds_of(remuxed / "Heat (1995).mkv")) == 3, "the new disc's feature"
    # The first disc's media is set aside under hidden names, never deleted.
    for stage, names in (("1-ripped", 2), ("2-remuxed", 2)):
        (aside,) = hosts.staged(HEAT, stage).parent.glob(".Heat (1995).forgotten-*")
        assert len(list(aside.glob("*.mkv"))) == names


# An ffmpeg that fails its first transcode half way (a full share), leaving what it had
# written, and is the real one after.
FAILING_ONCE = """#!/usr/bin/env bash
for last; do :; done
if [[ " $* " == *" -crf "* && ! -e $MP_TEST_FAILED ]]; then
  touch -- "$MP_TEST_FAILED"
  printf 'half a file' > "$last"
  echo "No space left on device" >&2
  exit 1
fi
exec {real} "$@"
"""


def failing_once(tmp_path: Path, tool: str, stand_in: str) -> Hosts:
    """Hosts whose jobs fail for good at their first failure, with tool on their PATH
    replaced by stand_in (formatted with the real one's path), which fails once."""
    hosts = Hosts(tmp_path)
    config = yaml.safe_load(hosts.config.read_text())
    config["jobs"]["max_attempts"] = 1
    hosts.config.write_text(yaml.safe_dump(config))
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / tool).write_text(stand_in.format(real=shutil.which(tool)))
    (tools / tool).chmod(0o755)
    hosts.env["PATH"] = f"{tools}:{hosts.env['PATH']}"
    hosts.env["MP_TEST_FAILED"] = str(tmp_path / "failed")
    return hosts


def test_a_failed_transcode_succeeds_after_mp_retry(tmp_path):
    hosts = failing_once(tmp_path, "ffmpeg", FAILING_ONCE)
    ffmpeg_title(hosts.discs / "movie" / HEAT.title / "title_t00.mkv", 2, 440)
    hosts.rip(HEAT)
    hosts.run_until_review()
    hosts.mp("approve", HEAT.uid, "--yes")
    hosts.mp("dispatch")
    assert "failed for good" in hosts.mp("claim", "--worker", "ct304", expect=1)
    hosts.mp("reconcile")
    assert json.loads(hosts.mp("status", "--json"))["counts"] == {"FAILED": 1}
    hosts.mp("retry", HEAT.uid)
    hosts.mp("dispatch")
    assert "completed" in hosts.mp("claim", "--worker", "ct304")
    transcoded = hosts.staged(HEAT, "3-transcoded")
    assert round(seconds_of(transcoded / "Heat (1995).mkv")) == 2
    assert not list(transcoded.glob(".mp-part.*"))


# An mv that fails once as it gives a disc's third episode its name in the library (a
# share that went away mid-filing), and is the real one otherwise.
FAILING_THIRD = """#!/usr/bin/env bash
for last; do :; done
if [[ $last == *s01e03.mkv && ! -e $MP_TEST_FAILED ]]; then
  touch -- "$MP_TEST_FAILED"
  echo "mv: Input/output error" >&2
  exit 1
fi
exec {real} "$@"
"""


def visible(folder: Path) -> list[str]:
    """The names in folder but the hidden ones (a script's own temporary names)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def half_filed(tmp_path: Path, show: ItemKey) -> tuple[Hosts, Path, list[float]]:
    """The show's disc of three episodes filed as 'Lost' (no year) until its filing
    stops at the third (a stand-in mv fails it once): the hosts, the season folder with
    e01-e02 in it, and their lengths."""
    hosts = failing_once(tmp_path, "mv", FAILING_THIRD)
    disc = hosts.discs / "tv" / show.title / show.disc_label
    for number, seconds in enumerate((2, 2.5, 3), start=1):
        ffmpeg_title(disc / f"title_t0{number}.mkv", seconds, 300 + 100 * number)
    hosts.rip(show)
    hosts.run_until_review()
    hosts.mp("approve", show.uid, "--yes")
    hosts.mp("dispatch")
    hosts.mp("claim", "--worker", "ct304")  # the transcode
    hosts.mp("reconcile")
    hosts.mp("approve", show.uid, "--yes")  # filed as 'Lost', no year
    hosts.mp("dispatch")
    assert "failed for good" in hosts.mp("claim", "--worker", "ct304", expect=1)
    season = tmp_path / "library" / "TV Shows" / "Lost" / "Season 01"
    assert visible(season) == ["Lost - s01e01.mkv", "Lost - s01e02.mkv"]
    return hosts, season, [seconds_of(season / f"Lost - s01e0{n}.mkv") for n in (1, 2)]


def test_a_half_filed_disc_decided_again_moves_what_it_had_filed(tmp_path):
    """Filing stops after two of a disc's three episodes; the show's folder is decided
    again at filebot_confirm (a year added): the two filed ones move to the new folder,
    the third is filed there, and the old folder holds none of them."""
    show = ItemKey("tv", "Lost", "S01 Disc1")
    hosts, old, first_two = half_filed(tmp_path, show)

    hosts.mp("reconcile")
    hosts.mp("retry", show.uid, "--ask-again")
    hosts.mp("reconcile")
    hosts.mp("approve", show.uid, "--yes", "--year", "2004")
    dispatched = hosts.mp("dispatch")
    assert "moved what it had filed" in dispatched, dispatched
    assert "completed" in hosts.mp("claim", "--worker", "ct304")
    hosts.mp("reconcile")
    assert json.loads(hosts.mp("status", "--json"))["counts"] == {"IN_LIBRARY": 1}
    shows = tmp_path / "library" / "TV Shows"
    new = shows / "Lost (2004)" / "Season 01"
    filed = sorted(str(p.relative_to(shows)) for p in shows.rglob("*.mkv") if p.name[0] != ".")
    assert filed == [f"Lost (2004)/Season 01/Lost (2004) - s01e0{n}.mkv" for n in (1, 2, 3)], (
        "each episode once, in the new folder"
    )
    assert [seconds_of(new / f"Lost (2004) - s01e0{n}.mkv") for n in (1, 2)] == first_two
    assert round(seconds_of(new / "Lost (2004) - s01e03.mkv")) == 3
    history = hosts.mp("history", show.uid)
    assert f"{old}/Lost - s01e01.mkv -> {new}/Lost (2004) - s01e01.mkv" in history, history


def test_a_half_filed_disc_renumbered_in_its_show_folder_moves_its_own_files(tmp_path):
    """Filing stops after e01-e02 of three; decided again in the same show folder from
    episode 2: its own e02 and e01 move on to e03 and e02 (each place freed before it is
    used), and the filing finishes e02-e04, each episode once, nothing overwritten."""
    show = ItemKey("tv", "Lost", "S01 Disc1")
    hosts, season, first_two = half_filed(tmp_path, show)

    hosts.mp("reconcile")
    hosts.mp("retry", show.uid, "--ask-again")
    hosts.mp("reconcile")
    hosts.mp("approve", show.uid, "--yes", "--first-episode", "2")
    said = hosts.mp("why", show.uid)  # as dispatch will see it: nothing in the way
    assert "in the library already" not in said and "waits for 'mp dispatch'" in said, said
    dispatched = hosts.mp("dispatch")
    assert "0 waiting" in dispatched, dispatched
    assert f"{season}/Lost - s01e02.mkv -> {season}/Lost - s01e03.mkv" in dispatched, dispatched
    assert "completed" in hosts.mp("claim", "--worker", "ct304")
    hosts.mp("reconcile")
    assert json.loads(hosts.mp("status", "--json"))["counts"] == {"IN_LIBRARY": 1}
    assert visible(season) == [f"Lost - s01e0{n}.mkv" for n in (2, 3, 4)]
    assert [seconds_of(season / f"Lost - s01e0{n}.mkv") for n in (2, 3)] == first_two
    assert round(seconds_of(season / "Lost - s01e04.mkv")) == 3


def filed_with_a_special(tmp_path: Path, show: ItemKey) -> Hosts:
    """Lost S01 Disc1 filed with its third title a special: e01-e02 and s00e01."""
    hosts = Hosts(tmp_path)
    disc = hosts.discs / "tv" / show.title / show.disc_label
    for number, seconds in enumerate((2, 2.5, 3), start=1):
        ffmpeg_title(disc / f"title_t0{number}.mkv", seconds, 300 + 100 * number)
    hosts.rip(show)
    hosts.run_until_review()
    hosts.mp("approve", show.uid, "--yes", "--files", "1 2 3:special")
    hosts.mp("dispatch")
    hosts.mp("claim", "--worker", "ct304")  # the transcode
    hosts.mp("reconcile")
    hosts.mp("approve", show.uid, "--yes")
    hosts.mp("dispatch")
    assert "completed" in hosts.mp("claim", "--worker", "ct304")
    hosts.mp("reconcile")
    return hosts


def test_a_disc_refiled_to_another_show_takes_its_specials_along(tmp_path):
    show = ItemKey("tv", "Lost", "S01 Disc1")
    hosts = filed_with_a_special(tmp_path, show)
    shows = tmp_path / "library" / "TV Shows"

    def filed() -> list[str]:
        return sorted(str(p.relative_to(shows)) for p in shows.rglob("*.mkv"))

    assert filed() == [
        "Lost/Season 00/Lost - s00e01.mkv",
        "Lost/Season 01/Lost - s01e01.mkv",
        "Lost/Season 01/Lost - s01e02.mkv",
    ]
    special = shows / "Lost" / "Season 00" / "Lost - s00e01.mkv"
    dry = hosts.mp("refile", show.uid, "--year", "2004", "--dry-run")
    assert "would move 2 episode file(s) and 1 special(s)" in dry, dry
    assert f"{special} -> {shows}/Lost (2004)/Season 00/Lost (2004) - s00e01.mkv" in dry, dry

    hosts.mp("refile", show.uid, "--year", "2004")
    assert filed() == [
        "Lost (2004)/Season 00/Lost (2004) - s00e01.mkv",
        "Lost (2004)/Season 01/Lost (2004) - s01e01.mkv",
        "Lost (2004)/Season 01/Lost (2004) - s01e02.mkv",
    ], "the old show folder, left empty, goes"
    moved = shows / "Lost (2004)" / "Season 00" / "Lost (2004) - s00e01.mkv"
    assert round(seconds_of(moved)) == 3, "the special is the disc's third title"
    # Its number is now part of the decision, and a second refile finds it there.
    hosts.mp("refile", show.uid, "--title", "Lost (2005)", "--first-episode", "3")
    assert filed() == [
        "Lost (2005)/Season 00/Lost (2005) - s00e01.mkv",
        "Lost (2005)/Season 01/Lost (2005) - s01e03.mkv",
        "Lost (2005)/Season 01/Lost (2005) - s01e04.mkv",
    ]
    decision = hosts.staged(show, "3-transcoded") / ".pipeline" / "approval.filebot_confirm.json"
    roles = json.loads(decision.read_text())["roles"]
    assert roles["files"][2] == {"file": "Lost - S01 Disc1 - Episode 03.mkv", "role": "special",
                                 "number": 1}, roles  # fmt: skip
