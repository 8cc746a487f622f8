"""The interactive prompts in a real terminal: tmux runs `mp`, we type and read the screen."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import claim_in_background, run_mp, tree_snapshot

from media_pipeline.items.names import ItemKey

pytestmark = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")


class Terminal:
    def __init__(self, command: str, columns: int = 400):
        self.name = f"mp-test-{uuid.uuid4().hex[:8]}"
        self.folder = tempfile.mkdtemp(prefix="mp-tmux-")
        # The shell stays after the command so its last words can be read.
        subprocess.run(
            [
                *self.tmux,
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(columns),
                "-y",
                "50",
                f"{command}; echo EXIT-$?; sleep 120",
            ],
            check=True,
        )

    @property
    def tmux(self) -> list[str]:
        """tmux, on a server of this terminal's own: tests in two processes sharing the
        default one raced, one's last session closing the server as the other's
        new-session reached it ("server exited unexpectedly")."""
        return ["tmux", "-S", os.path.join(self.folder, "socket")]

    def screen(self, styles: bool = False) -> str:
        """What the pane shows, wrapped lines joined; with styles, its SGR escapes too."""
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-J", *(["-e"] if styles else []), "-t", self.name],
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, text: str, seconds: float = 30) -> str:
        deadline = time.monotonic() + seconds
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen shows:\n{screen}")
            time.sleep(0.05)

    def wait_for_after(self, first: str, then: str, seconds: float = 30) -> str:
        """Wait until `then` shows below `first`: a prompt for this item, not the same
        words left on the screen by the one before it (keys sent before the new prompt
        is drawn would be lost)."""
        deadline = time.monotonic() + seconds
        while True:
            screen = self.screen()
            if first in screen and then in screen[screen.rindex(first) :]:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{then!r} never came after {first!r}:\n{screen}")
            time.sleep(0.05)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)  # its socket, which tmux leaves


@pytest.fixture
def terminal_for(pipeline):
    opened = []

    def start(*args: str) -> Terminal:
        mp = Path(sys.executable).with_name("mp")
        command = " ".join([str(mp), *args, "--config", str(pipeline.config_path)])
        opened.append(Terminal(command))
        return opened[-1]

    yield start
    for terminal in opened:
        terminal.close()


def decision(pipeline, key, stage, gate) -> dict:
    path = pipeline.folder(key, stage) / ".pipeline" / f"approval.{gate}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_approve_reject_skip_and_edit_a_destination(pipeline, terminal_for):
    pipeline.write_pipeline_config(gates=["remux_review", "filebot_confirm"])
    first, second, third = (ItemKey("movie", name) for name in ("Alpha", "Bravo", "Charlie"))
    filed = ItemKey("tv", "Delta", "S03 Disc2")
    for key in (first, second, third):
        pipeline.mark(key, "2-remuxed", "remux")
    pipeline.mark(filed, "3-transcoded", "transcode")
    pipeline.mp("reconcile")

    terminal = terminal_for("approve")
    screen = terminal.wait_for("Decision:")
    assert "[1 of 4] remux_review: movie/Alpha" in screen and "video.mkv" in screen
    terminal.keys("Enter")  # Approve is first: Enter approves

    terminal.wait_for_after("[2 of 4] remux_review: movie/Bravo", "Decision:")
    terminal.keys("Down", "Down", "Enter")  # Reject (after changing the files' roles)
    terminal.wait_for_after("[2 of 4] remux_review: movie/Bravo", "Why reject it?")
    terminal.type("audio out of sync")
    terminal.keys("Enter")

    terminal.wait_for_after("[3 of 4] remux_review: movie/Charlie", "Decision:")
    terminal.keys("Down", "Down", "Down", "Enter")  # Skip

    screen = terminal.wait_for_after("[4 of 4] filebot_confirm: tv/Delta/S03 Disc2", "Decision:")
    assert "TV Shows/Delta/Season 03/" in screen
    assert "note: the title has no year" in screen  # Plex would not match 'Delta'
    terminal.keys("Enter")  # Approve
    terminal.wait_for_after("[4 of 4] filebot_confirm", "Year of the show")
    terminal.type("2019")
    terminal.keys("Enter")
    screen = terminal.wait_for_after("[4 of 4] filebot_confirm", "Library destination")
    assert "Delta (2019)/Season 03/" in screen  # the year is in the destination proposed
    terminal.keys("C-u")
    terminal.type("TV Shows/Delta (2019)/Season 03/")
    terminal.keys("Enter")

    screen = terminal.wait_for("EXIT-")
    assert "approve: 2 approved, 1 rejected, 1 skipped" in screen and "EXIT-0" in screen
    # Each decision is said by the prompts and the summary: no log lines between them.
    assert "INFO" not in screen, screen
    assert decision(pipeline, first, "2-remuxed", "remux_review")["status"] == "approved"
    rejected = decision(pipeline, second, "2-remuxed", "remux_review")
    assert rejected["status"] == "rejected" and rejected["reason"] == "audio out of sync"
    assert decision(pipeline, third, "2-remuxed", "remux_review") == {}
    filed_decision = decision(pipeline, filed, "3-transcoded", "filebot_confirm")
    assert (
        filed_decision["destination"]
        == str(pipeline.root / "library" / "TV Shows" / "Delta (2019)" / "Season 03") + "/"
    )
    pending = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert [a["item"]["title"] for a in pending] == ["Charlie"]


def test_quit_leaves_the_rest_pending(pipeline, terminal_for):
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(ItemKey("movie", "Alpha"), "2-remuxed", "remux")
    pipeline.mp("reconcile")
    terminal = terminal_for("approve")
    terminal.wait_for("Decision:")
    terminal.keys("Down", "Down", "Down", "Down", "Enter")  # Quit
    screen = terminal.wait_for("EXIT-")
    assert "0 approved, 0 rejected, 0 skipped" in screen
    assert len(json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]) == 1


# A remux that says what it is doing, then runs until released.
TALKING_REMUX = """#!/usr/bin/env bash
echo "frame=  120 fps= 30 time=00:00:04.00"
touch "$MP_TEST_DIR/started.$MP_JOB_ID"
while [ ! -e "$MP_TEST_DIR/release" ]; do sleep 0.05; done
"""


def history(terminal) -> str:
    """The pane and everything scrolled off it."""
    return subprocess.run(
        [*terminal.tmux, "capture-pane", "-p", "-S", "-2000", "-t", terminal.name],
        capture_output=True, text=True,
    ).stdout  # fmt: skip


def screen_when(terminal, wanted, seconds: float = 30) -> str:
    """The screen once wanted(screen) holds."""
    deadline = time.monotonic() + seconds
    while not wanted(screen := terminal.screen()):
        assert time.monotonic() < deadline, f"the screen never changed so:\n{screen}"
        time.sleep(0.05)
    return screen


def test_status_watch_is_one_live_screen_until_q(pipeline, terminal_for):
    """What needs a person (an approval waiting, a failure and what its script said),
    what runs (with its script's last line) and what is on its way, on one screen
    redrawn in place; a title's brackets are shown, not taken as styles."""
    pipeline.write_pipeline_config(
        gates=["remux_review"], jobs={"max_attempts": 1, "heartbeat_seconds": 1}
    )
    failing, waiting, running = (
        ItemKey("movie", name) for name in ("Bravo (2001)", "[bold]Alpha[red]", "Charlie")
    )
    pipeline.behave("remux", "fail")
    pipeline.mark(failing, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    pipeline.mp("claim", "--worker", "w1", expect=None)
    pipeline.behave("remux", "ok")
    pipeline.mark(waiting, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    pipeline.mp("claim", "--worker", "w1")
    (pipeline.scripts / "remux.sh").write_text(TALKING_REMUX)
    pipeline.mark(running, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    worker = claim_in_background(pipeline, lambda: list(pipeline.root.glob("started.*")))
    try:
        terminal = terminal_for("status", "--watch")
        screen = terminal.wait_for("frame=  120")
        needs = screen[screen.index("Needs you") : screen.index("Running")]
        assert "[bold]Alpha[red]" in needs and "awaits remux_review" in needs, screen
        assert "Bravo (2001)" in needs and "something broke" in needs, screen
        assert "Charlie" in screen[screen.index("Running") :], screen
        assert "REMUXING" in screen[screen.index("On their way") :], screen
        pipeline.mp("approve", "movie/[bold]Alpha[red]", "--yes")
        screen_when(terminal, lambda screen: "awaits" not in screen)
        assert history(terminal).count("q or Ctrl-C to quit") == 1, "redrawn in place"
        terminal.keys("q")
        screen = terminal.wait_for("EXIT-")
        assert "EXIT-0" in screen and "q or Ctrl-C to quit" not in screen, screen
    finally:
        (pipeline.root / "release").touch()
        worker.wait(60)


def test_status_watch_counts_what_does_not_fit_a_small_screen(pipeline):
    """30 items on their way in a terminal 14 lines tall: the screen shows what fits and
    says how many more there are, rather than cutting them off unsaid."""
    for number in range(30):
        pipeline.mark(ItemKey("movie", f"Film {number:02d}"), "1-ripped", "rip")
    pipeline.mp("reconcile")
    mp = Path(sys.executable).with_name("mp")
    terminal = Terminal(
        f"export LINES=14 COLUMNS=100; {mp} status --watch --config {pipeline.config_path}",
        columns=100,
    )
    try:
        screen = terminal.wait_for("more ('mp status' lists them all)")
        shown = len(re.findall(r"movie/Film \d\d", screen))
        said = re.search(r"\.\.\. and (\d+) more", screen)
        assert said and shown + int(said.group(1)) == 30, screen
        terminal.keys("q")
        assert "EXIT-0" in terminal.wait_for("EXIT-")
    finally:
        terminal.close()


def test_status_watch_ends_on_ctrl_c_and_writes_nothing(pipeline, terminal_for):
    pipeline.mark(ItemKey("movie", "Alpha"), "1-ripped", "rip")
    pipeline.mp("reconcile")
    terminal = terminal_for("status", "--watch")
    screen = terminal.wait_for("movie/Alpha")
    assert "RIPPED" in screen, screen
    pipeline.mark(ItemKey("movie", "Bravo"), "1-ripped", "rip")
    pipeline.mp("reconcile")
    terminal.wait_for("movie/Bravo")  # redrawn with the new item
    settled = tree_snapshot(pipeline.root)
    shown = terminal.screen().splitlines()[0]  # its clock: two redraws more, by it
    screen_when(terminal, lambda screen: screen.splitlines()[0] != shown)
    terminal.keys("C-c")
    screen = terminal.wait_for("EXIT-")
    assert "EXIT-0" in screen and "Traceback" not in screen, screen
    assert tree_snapshot(pipeline.root) == settled, "the dashboard wrote something"


LONG_SHOW = "The Remarkably Long Chronicles of a Show Whose Title Goes On and On and On"


def test_status_and_jobs_use_the_terminals_width_and_colour_and_honour_no_color(pipeline):
    """In a 200-column terminal, two discs whose names differ only at their end are told
    apart in `mp status` and `mp jobs` (each with its uid); states are in colour, and
    NO_COLOR takes the colour away. Piped, the same commands print no escapes."""
    for label in ("S01 Disc1", "S01 Disc2"):
        pipeline.mark(ItemKey("tv", LONG_SHOW, label), "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    mp = Path(sys.executable).with_name("mp")
    shown = {}
    for colour in ("", "NO_COLOR=1"):
        # The width as a shell says it (tmux may give a new pane its size only after its
        # command has started); the pane's lines are read joined (-J).
        command = (
            f"export COLUMNS=200 {colour}; {mp} status --config {pipeline.config_path}; "
            f"{mp} jobs --config {pipeline.config_path}"
        )
        terminal = Terminal(command, columns=200)
        try:
            terminal.wait_for("EXIT-")
            shown[colour] = terminal.screen(styles=True)
            screen = terminal.screen()
        finally:
            terminal.close()
        for label in ("S01 Disc1", "S01 Disc2"):
            assert f"tv/{LONG_SHOW}/{label}" in screen, screen
        # Each disc's uid beside its name, in status and in jobs alike.
        uids = re.findall(r"│ ([0-9a-f]{8}) │ tv/", screen)
        assert len(uids) == 4 and len(set(uids)) == 2, screen
        assert sum(1 for line in screen.splitlines() if "pending" in line and "remux" in line) == 2
    assert "\x1b[36m" in shown[""] or "36m" in shown[""], "RIPPED is not in cyan"
    assert "36m" not in shown["NO_COLOR=1"] and "34m" not in shown["NO_COLOR=1"]
    piped = run_mp("status", "--config", str(pipeline.config_path))
    assert "\x1b[" not in piped.stdout and f"tv/{LONG_SHOW[:20]}" in piped.stdout


def test_forget_asks_first_and_no_keeps_it(pipeline, terminal_for):
    movie = ItemKey("movie", "Alpha")
    pipeline.mark(movie, "1-ripped", "rip")
    pipeline.mp("reconcile")
    terminal = terminal_for("forget", movie.uid)
    screen = terminal.wait_for("Forget it? [y/N]")
    assert "would forget it" in screen
    terminal.keys("Enter")  # the default is no
    screen = terminal.wait_for("EXIT-")
    assert "nothing forgotten" in screen and "EXIT-0" in screen
    assert len(pipeline.status_json()["items"]) == 1
    terminal = terminal_for("forget", movie.uid)
    terminal.wait_for("Forget it? [y/N]")
    terminal.type("y")
    terminal.keys("Enter")
    screen = terminal.wait_for("EXIT-")
    assert "forgotten" in screen and "EXIT-0" in screen
    assert pipeline.status_json()["items"] == []


def test_the_files_roles_are_changed_at_the_prompt_and_kept_with_the_decision(
    pipeline, terminal_for
):
    pipeline.write_pipeline_config(gates=["remux_review"])
    disc = ItemKey("tv", "Lost (2004)", "S01 Disc1")
    folder = pipeline.mark(disc, "2-remuxed", "rip", "remux")
    for name in ("Episode 02.mkv", "Episode 03.mkv"):
        (folder / name).write_bytes(b"episode")
    pipeline.mp("reconcile")

    terminal = terminal_for("approve")
    screen = terminal.wait_for("Decision:")
    assert " 1. Episode 02.mkv" in screen and "-> s01e01" in screen
    assert " 3. video.mkv" in screen and "files: 1 2 3" in screen
    terminal.keys("Down", "Enter")  # Change what each file becomes
    terminal.wait_for("Files:")
    terminal.keys("C-u")
    terminal.type("3 1:double 2:bogus")
    terminal.keys("Enter")
    terminal.wait_for("First episode")
    terminal.type("4")
    terminal.keys("Enter")
    terminal.wait_for("'bogus' is not a role for a tv file")  # asked again, kept as typed
    terminal.wait_for_after("'bogus' is not a role", "Files:")
    terminal.keys("BSpace", "BSpace", "BSpace", "BSpace", "BSpace")
    terminal.type("drop")
    terminal.keys("Enter")
    terminal.wait_for_after("'bogus' is not a role", "First episode")
    terminal.keys("Enter")  # 4 stays
    screen = terminal.wait_for_after("files: 3 1:double 2:drop, first episode 4", "Decision:")
    assert "video.mkv" in screen and "-> s01e04" in screen and "-> s01e05-e06" in screen
    terminal.keys("Enter")  # Approve
    screen = terminal.wait_for("EXIT-")
    assert "1 approved" in screen and "EXIT-0" in screen
    roles = decision(pipeline, disc, "2-remuxed", "remux_review")["roles"]
    assert roles == {
        "files": [
            {"file": "video.mkv", "role": "episode"},
            {"file": "Episode 02.mkv", "role": "double"},
            {"file": "Episode 03.mkv", "role": "drop"},
        ],
        "first_episode": 4,
    }


def test_a_destination_through_a_link_is_refused_at_the_prompt(pipeline, terminal_for):
    """The worker refuses to file through a link; so does the gate, while the person is
    there to make the folder real or give another destination (not after the job failed)."""
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    movie = ItemKey("movie", "Heat (1995)")
    pipeline.mark(movie, "3-transcoded", "transcode")
    pipeline.mp("reconcile")
    elsewhere = pipeline.root / "elsewhere"
    elsewhere.mkdir()
    (pipeline.root / "library" / "Movies").symlink_to(elsewhere, target_is_directory=True)

    terminal = terminal_for("approve")
    terminal.wait_for("Decision:")
    terminal.keys("Enter")  # Approve
    terminal.wait_for("Edition")
    terminal.keys("Enter")  # none
    terminal.wait_for("Library destination")
    terminal.keys("Enter")  # as proposed
    screen = terminal.wait_for("which is a link or not a folder")
    assert "library/Movies, which is a link" in screen
    terminal.wait_for_after("which is a link or not a folder", "Library destination")
    terminal.keys("C-c")  # leave: the item stays pending
    screen = terminal.wait_for("EXIT-")
    assert "0 approved, 0 rejected, 0 skipped" in screen and "left at Ctrl-C" in screen
    assert "EXIT-130" in screen
    assert decision(pipeline, movie, "3-transcoded", "filebot_confirm") == {}
    assert not list(elsewhere.iterdir())


def test_a_title_with_look_alike_letters_is_pointed_out_at_the_prompt(pipeline, terminal_for):
    """'Mаtrix' with a Cyrillic а shows as 'Matrix': the prompt says so, naming the letter."""
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(ItemKey("tv", "M\u0430trix (1999)", "S01 Disc1"), "2-remuxed", "remux")
    pipeline.mp("reconcile")
    terminal = terminal_for("approve")
    screen = terminal.wait_for("Decision:")
    assert "warning: its name mixes Latin letters with Cyrillic ones ('\u0430' U+0430)" in screen
    # Set apart from the routine notes: red, where a note is dim; the choice highlighted.
    styled = terminal.screen(styles=True).splitlines()
    [warning] = [line for line in styled if "warning: its name mixes" in line]
    assert "31m" in warning or "91m" in warning, repr(warning)
    notes = [line for line in styled if "note: " in line]
    assert notes and not any("31m" in line for line in notes), notes
    [pointer] = [line for line in styled if "Approve" in line]
    assert "36m" in pointer, repr(pointer)
    assert "Ctrl-C to leave" in screen
    terminal.keys("Down", "Down", "Down", "Enter")  # Skip
    assert "EXIT-0" in terminal.wait_for("EXIT-")


def test_ctrl_c_at_any_question_leaves_without_deciding(pipeline, terminal_for):
    """Ctrl-C in the files editor, at the year asked at filebot_confirm, or at the
    choice itself: the session ends (exit 130), that item and the rest still pending,
    nothing written; never back at the item with Approve selected."""
    pipeline.write_pipeline_config(gates=["remux_review", "filebot_confirm"])
    disc = ItemKey("tv", "Lost", "S01 Disc1")
    pipeline.mark(disc, "2-remuxed", "rip", "remux")
    movie = ItemKey("movie", "Heat")
    pipeline.mark(movie, "3-transcoded", "rip", "remux", "transcode")
    pipeline.mp("reconcile")
    pending = len(json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"])
    assert pending == 2
    # Each question, and the keys that lead to it from the item's choice (Heat comes
    # second: Lost is skipped first).
    keys_to_the_question = {
        "Decision:": ((), ()),
        "Files:": ((), ("Down", "Enter")),  # Change what each file becomes
        "First episode": ((), ("Down", "Enter", "WAIT:Files:", "Enter")),
        "Why reject it?": ((), ("Down", "Down", "Enter")),
        "Year of the movie": (("Down", "Down", "Down", "Enter"), ("Enter",)),
        "Edition": (("Down", "Down", "Down", "Enter"), ("Enter", "WAIT:Year", "Enter")),
    }
    for question, (to_heat, keys) in keys_to_the_question.items():
        terminal = terminal_for("approve")
        terminal.wait_for("Decision:")
        if to_heat:
            terminal.keys(*to_heat)
            terminal.wait_for_after("Heat", "Decision:")
        for key in keys:
            if key.startswith("WAIT:"):
                terminal.wait_for(key[5:])
            else:
                terminal.keys(key)
        terminal.wait_for(question)
        terminal.keys("C-c")
        screen = terminal.wait_for("EXIT-")
        assert "EXIT-130" in screen and "left at Ctrl-C" in screen, screen
        assert "Traceback" not in screen and "Cancelled by user" not in screen, screen
        listed = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
        assert len(listed) == pending, question
    for item, stage in ((disc, "2-remuxed"), (movie, "3-transcoded")):
        assert not list((pipeline.folder(item, stage) / ".pipeline").glob("approval.*"))
