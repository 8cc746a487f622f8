"""Approval gates through the real commands: opening, deciding, surviving a database
loss, the scripted walk, and the destination reaching the filebot job."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess

import pytest

from media_pipeline.approve.session import Choice, run_approve
from media_pipeline.items.names import ItemKey
from media_pipeline.library.destination import proposed_destination, season_number

MOVIE = ItemKey("movie", "Heat (1995)")
DISC = ItemKey("tv", "The Wire", "S02 Disc1")
GATES = ["remux_review", "filebot_confirm"]


@pytest.fixture
def gated(pipeline):
    pipeline.write_pipeline_config(gates=GATES)
    return pipeline


def remuxed(pipeline, *keys):
    for key in keys:
        pipeline.mark(key, "1-ripped", "rip")
        pipeline.mark(key, "2-remuxed", "remux")
    pipeline.mp("reconcile")


def listed(pipeline) -> list[dict]:
    return json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]


def item(pipeline, key) -> dict:
    return next(i for i in pipeline.status_json()["items"] if i["uid"] == key.uid)


def test_destination_in_plex_naming():
    library = "/mnt/library"
    assert proposed_destination(MOVIE, library) == "/mnt/library/Movies/Heat (1995)/Heat (1995).mkv"
    assert proposed_destination(DISC, library) == "/mnt/library/TV Shows/The Wire/Season 02/"
    assert season_number("Season 3 Disc 2") == 3
    assert season_number("S10 D1") == 10
    assert season_number("Disc 1") is None
    bare = ItemKey("tv", "Planet Earth", "Disc 4")
    assert proposed_destination(bare, library).endswith("Planet Earth/Season 01/")


def test_a_gate_opens_once_and_holds_dispatch(gated):
    remuxed(gated, MOVIE)
    gated.mp("reconcile")
    gated.mp("reconcile")
    approvals = listed(gated)
    assert len(approvals) == 1
    approval = approvals[0]
    assert approval["gate"] == "remux_review"
    assert approval["item"] == {
        "id": item(gated, MOVIE)["id"],
        "uid": MOVIE.uid,
        "type": "movie",
        "title": MOVIE.title,
        "disc_label": "",
    }
    assert [f["name"] for f in approval["prompt"]["files"]] == ["video.mkv"]
    assert approval["prompt"]["files"][0]["size"] == len(b"not really video")
    out = gated.mp("dispatch").stdout
    assert "needs remux_review approval" in out and gated.queue("pending") == []
    assert item(gated, MOVIE)["pending_approval"] == "remux_review"
    assert "awaits remux_review" in gated.mp("status").stdout


def test_approve_yes_lets_the_item_go_on_and_the_destination_reaches_filebot(gated):
    remuxed(gated, MOVIE)
    assert "remux_review approved" in gated.mp("approve", MOVIE.uid, "--yes").stdout
    gated.mp("dispatch")
    gated.mp("claim", "--worker", "w1")
    gated.mp("reconcile")
    (approval,) = listed(gated)
    assert approval["gate"] == "filebot_confirm"
    assert approval["prompt"]["destination"].endswith("Movies/Heat (1995)/Heat (1995).mkv")
    outside = gated.mp("approve", MOVIE.uid, "--yes", "--destination", "/etc/x", expect=2)
    assert "outside library_root" in outside.stderr
    gated.mp("approve", MOVIE.uid, "--yes", "--destination", "Movies/Heat/Heat.mkv")
    gated.mp("dispatch")
    (job_id,) = gated.queue("pending")
    gated.mp("claim", "--worker", "w1")
    env = dict(
        line.split("=", 1) for line in (gated.root / f"env.{job_id}").read_text().splitlines()
    )
    assert env["MP_DESTINATION"] == str(gated.root / "library" / "Movies" / "Heat" / "Heat.mkv")
    args = (gated.root / f"args.{job_id}").read_text().splitlines()
    assert args[1] == env["MP_DESTINATION"]
    gated.mp("reconcile")
    assert item(gated, MOVIE)["state"] == "IN_LIBRARY"
    history = gated.mp("history", MOVIE.uid).stdout
    assert "remux_review: approved by" in history and "filebot_confirm: approved" in history


def test_reject_needs_a_reason_and_holds_until_retry(gated):
    remuxed(gated, MOVIE)
    assert "needs --reason" in gated.mp("approve", MOVIE.uid, "--reject", expect=2).stderr
    gated.mp("approve", MOVIE.uid, "--reject", "--reason", "wrong audio track")
    rejected = item(gated, MOVIE)
    assert rejected["state"] == "REJECTED" and "wrong audio track" in rejected["reason"]
    decision = json.loads(
        (gated.folder(MOVIE, "2-remuxed") / ".pipeline" / "approval.remux_review.json").read_text()
    )
    assert decision["status"] == "rejected" and decision["reason"] == "wrong audio track"
    host = os.uname().nodename.split(".")[0]
    assert decision["by"] == f"{getpass.getuser()}@{host}", "who decided, and where"
    gated.mp("reconcile")
    assert listed(gated) == [] and gated.queue("pending") == []
    assert "'mp retry' asks again" in gated.mp("why", MOVIE.uid).stdout
    gated.mp("retry", MOVIE.uid)
    gated.mp("reconcile")
    assert [a["gate"] for a in listed(gated)] == ["remux_review"]
    assert item(gated, MOVIE)["state"] == "REMUXED"


def test_decisions_survive_losing_the_database(gated):
    other = ItemKey("movie", "Alien (1979)")
    remuxed(gated, MOVIE, other, DISC)
    gated.mp("approve", MOVIE.uid, "--yes")
    gated.mp("approve", other.uid, "--reject", "--reason", "bad rip")
    before = {i["uid"]: (i["state"], i["reason"]) for i in gated.status_json()["items"]}
    # The database and its WAL files are lost; the decision key beside them is not
    # (without it no decision can be trusted, and every gate asks again).
    for path in gated.database.parent.glob("state.db*"):
        path.unlink()
    result = gated.mp("reconcile", "-v")
    assert "remux_review approved (restored from its approval file)" in result.stderr
    after = {i["uid"]: (i["state"], i["reason"]) for i in gated.status_json()["items"]}
    assert after == before
    # Only the undecided item asks again; the approved one goes on.
    assert [a["item"]["uid"] for a in listed(gated)] == [DISC.uid]
    assert "1 job(s) queued" in gated.mp("dispatch").stdout
    assert gated.queue("pending")[0].count(MOVIE.uid) == 1


def test_bad_approval_files_are_not_trusted(gated):
    remuxed(gated, MOVIE)
    path = gated.folder(MOVIE, "2-remuxed") / ".pipeline" / "approval.remux_review.json"
    path.write_text('{"status": "approved"}')  # no time: not a decision we wrote
    for found in gated.database.parent.glob("state.db*"):
        found.unlink()
    gated.mp("reconcile")
    assert [a["gate"] for a in listed(gated)] == ["remux_review"]


class ScriptedPrompter:
    """Answers from a list, as a person would, and keeps what it was shown."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.shown = []
        self.told = []

    def show(self, approval, position, total):
        self.shown.append((approval.gate, approval.item["title"], position, total))

    def choose(self, approval):
        return self.answers.pop(0)

    def ask_reason(self, approval):
        return self.answers.pop(0)

    def edit_destination(self, approval, proposed):
        answer = self.answers.pop(0)
        return proposed if answer == "" else answer

    def ask_year(self, approval):
        return self.answers.pop(0)

    def ask_edition(self, approval):
        return self.answers.pop(0)

    def edit_roles(self, approval, text, first):
        return self.answers.pop(0)  # (roles text, first episode), or None to go back

    def tell(self, message):
        self.told.append(message)


def test_the_walk_approves_rejects_skips_and_quits(gated):
    keys = [ItemKey("movie", name) for name in ("A", "B", "C", "D")]
    remuxed(gated, *keys)
    prompter = ScriptedPrompter(Choice.APPROVE, Choice.REJECT, "too dark", Choice.SKIP, Choice.QUIT)
    summary = run_approve(gated.config, prompter)
    assert (summary.approved, summary.rejected, summary.skipped, summary.quit) == (1, 1, 1, True)
    assert [s[2:] for s in prompter.shown] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    states = {i["title"]: i["state"] for i in gated.status_json()["items"]}
    assert states["B"] == "REJECTED"
    assert sorted(a["item"]["title"] for a in listed(gated)) == ["C", "D"]


def test_the_walk_edits_a_destination_and_refuses_one_outside_the_library(gated):
    gated.mark(MOVIE, "3-transcoded", "transcode")
    gated.mp("reconcile")
    prompter = ScriptedPrompter(Choice.APPROVE, "", "/tmp/elsewhere", "Movies/Heat/Heat 1995.mkv")
    summary = run_approve(gated.config, prompter)
    assert summary.approved == 1
    assert any("outside library_root" in message for message in prompter.told)
    decision = json.loads(
        (
            gated.folder(MOVIE, "3-transcoded") / ".pipeline" / "approval.filebot_confirm.json"
        ).read_text()
    )
    assert decision["destination"] == str(gated.root / "library" / "Movies/Heat/Heat 1995.mkv")


def test_the_walk_asks_a_year_where_there_is_none_and_an_edition(gated):
    gated.write_pipeline_config(gates=["filebot_confirm"])
    movie, disc1, disc2 = (
        ItemKey("movie", "Heat"),
        ItemKey("tv", "Delta", "S01 Disc1"),
        ItemKey("tv", "Delta", "S01 Disc2"),
    )
    for key in (movie, disc1):
        gated.mark(key, "3-transcoded", "transcode")
    gated.mp("reconcile")
    prompter = ScriptedPrompter(
        Choice.APPROVE, "95", "1995", "Director's {Cut}", "Director's Cut", "",
        Choice.APPROVE, "2019", "",
    )  # fmt: skip
    assert run_approve(gated.config, prompter).approved == 2
    assert "'95' is not a year (1870-2100)" in prompter.told
    assert any("cannot be an edition's name" in told for told in prompter.told)
    library = gated.root / "library"
    cut = "Heat (1995) {edition-Director's Cut}"
    decided = {a["item_uid"]: a["destination"] for a in approvals_in(gated)}
    assert decided[movie.uid] == str(library / "Movies" / cut / f"{cut}.mkv")
    assert decided[disc1.uid] == str(library / "TV Shows" / "Delta (2019)" / "Season 01") + "/"
    # The show's next disc is proposed in the folder approved for the first, year and all.
    gated.mark(disc2, "3-transcoded", "transcode")
    gated.mp("reconcile")
    [approval] = listed(gated)
    assert approval["prompt"]["destination"].endswith("/TV Shows/Delta (2019)/Season 01/")
    assert not any("no year" in note for note in approval["prompt"]["notes"])


def test_year_and_edition_from_flags(gated):
    gated.write_pipeline_config(gates=["filebot_confirm"])
    movie = ItemKey("movie", "Heat")
    gated.mark(movie, "3-transcoded", "transcode")
    gated.mp("reconcile")
    [approval] = listed(gated)
    assert "the title has no year" in approval["prompt"]["notes"][0]
    for args, said in (
        (["--year", "1066"], "'1066' is not a year"),
        (["--edition", "a/b"], "cannot be an edition's name"),
        (["--year", "1995", "--destination", "Movies/x/x.mkv"], "not both"),
    ):
        err = gated.mp("approve", movie.uid, "--yes", *args, expect=2).stderr
        assert said in err and "Traceback" not in err
    out = gated.mp("approve", movie.uid, "--yes", "--year", "1995", "--edition", "Final Cut")
    assert "filebot_confirm approved" in out.stdout
    gated.mp("dispatch")
    [name] = gated.queue("pending")
    spec = json.loads((gated.staging / ".pipeline/jobs/pending" / name / "spec.json").read_text())
    cut = "Heat (1995) {edition-Final Cut}"
    assert spec["destination"] == str(gated.root / "library" / "Movies" / cut / f"{cut}.mkv")


def approvals_in(pipeline) -> list[dict]:
    import sqlite3

    with sqlite3.connect(pipeline.database) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM human_approvals")]


def test_remux_review_shows_tracks_from_ffprobe(gated):
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed (make test installs it)")
    folder = gated.folder(MOVIE, "2-remuxed")
    folder.mkdir(parents=True)
    subtitles = gated.root / "subs.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,500\nHello\n")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660:duration=2",
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:1",
            "language=fra",
            "-disposition:a:0",
            "default",
            "-disposition:a:1",
            "0",
            str(folder / "Heat.mkv"),
        ],
        check=True,
    )
    (folder / ".pipeline").mkdir()
    (folder / ".pipeline" / "remux.done").touch()
    gated.mp("reconcile")
    (approval,) = listed(gated)
    (described,) = approval["prompt"]["files"]
    assert described["video"] == {"codec": "mpeg4", "width": 320, "height": 240}
    assert 1.9 < described["duration"] < 2.2
    assert [(a["language"], a["default"]) for a in described["audio"]] == [
        ("eng", True),
        ("fra", False),
    ]


@pytest.mark.parametrize(
    ("key", "typed", "said"),
    [
        (MOVIE, "Movies/x.b/authorized_keys", "is not a movie's file in its own folder"),
        (MOVIE, "Movies/Heat (1995).mkv", "is not a movie's file in its own folder"),
        (MOVIE, "Films/Heat (1995)/Heat (1995).mkv", "is not a movie's file in its own folder"),
        (DISC, "TV Shows/The Wire/Extras/Season 02/", "is not a show's season folder"),
        (DISC, "Movies/The Wire/Season 02", "is not a show's season folder"),
    ],
    ids=["extension-trick", "no-folder", "not-movies", "below-the-show", "not-tv-shows"],
)
def test_the_gate_refuses_a_destination_that_is_not_the_items_own_place(gated, key, typed, said):
    """What its filing job's worker would refuse, a person is told at the gate."""
    gated.write_pipeline_config(gates=["filebot_confirm"])
    gated.mark(key, "3-transcoded", "transcode")
    gated.mp("reconcile")
    err = gated.mp("approve", key.uid, "--yes", "--destination", typed, expect=2).stderr
    assert f"destination '{typed}' {said}" in err and "Traceback" not in err
    assert [approval["gate"] for approval in listed(gated)] == ["filebot_confirm"]
    gated.mp("dispatch")
    assert gated.queue("pending") == []


def test_the_walk_tells_why_a_destination_is_not_the_items_place_and_asks_again(gated):
    gated.mark(MOVIE, "3-transcoded", "transcode")
    gated.mp("reconcile")
    prompter = ScriptedPrompter(
        Choice.APPROVE, "", "Movies/x.b/authorized_keys", "Movies/x.b/Heat (1995).mkv"
    )
    assert run_approve(gated.config, prompter).approved == 1
    assert any("is not a movie's file in its own folder" in told for told in prompter.told)
    [decision] = [a["destination"] for a in approvals_in(gated) if a["status"] == "approved"]
    assert decision == str(gated.root / "library" / "Movies" / "x.b" / "Heat (1995).mkv")


def test_a_show_folder_approved_elsewhere_before_is_not_proposed_for_the_next_disc(gated):
    """The show's next disc is proposed in the show folder approved for another, unless
    that one is not a show's folder (approved before the gate held to it): then the
    plain proposal, which the worker takes."""
    import sqlite3

    gated.write_pipeline_config(gates=["filebot_confirm"])
    disc1, disc2 = ItemKey("tv", "Delta", "S01 Disc1"), ItemKey("tv", "Delta", "S01 Disc2")
    gated.mark(disc1, "3-transcoded", "transcode")
    gated.mp("reconcile")
    gated.mp("approve", disc1.uid, "--yes", "--destination", "TV Shows/Delta (2019)/Season 01/")
    odd = str(gated.root / "library" / "TV Shows" / "Delta (2019)" / "Extras" / "Season 01") + "/"
    with sqlite3.connect(gated.database) as db:
        db.execute(
            "UPDATE human_approvals SET destination = ? WHERE item_uid = ?", [odd, disc1.uid]
        )
    db.close()
    gated.mark(disc2, "3-transcoded", "transcode")
    gated.mp("reconcile")
    [approval] = [a for a in listed(gated) if a["item"]["uid"] == disc2.uid]
    assert approval["prompt"]["destination"] == proposed_destination(
        disc2, str(gated.root / "library")
    )
