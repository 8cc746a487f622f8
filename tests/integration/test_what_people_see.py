"""What a share writer can make people see: escape sequences and forged lines in what mp
prints, look-alike titles at the gates, a library path through a link approved, and
titles that a script would take for options. Each through the real `mp` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from conftest import signed_by_controller
from hostile import HONEST, at_the_filing_gate

from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.spec import build_spec

MP = str(Path(sys.executable).with_name("mp"))

# What a terminal acts on: ESC (OSC 52 writes the clipboard, OSC 0 the window title),
# BEL that ends them, the one-byte C1 CSI, and a direction override.
ACTIVE = ("\x1b", "\x07", "\x9b", "\u202e")


def mp(pipeline, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [MP, *args, "--config", str(pipeline.config_path)],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env={**os.environ, "MP_TEST_DIR": str(pipeline.root)},
        timeout=120,
    )
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def quiet(text: str) -> bool:
    """Nothing in text that acts on a terminal."""
    return not any(character in text for character in ACTIVE)


FORGED = ItemKey("movie", "Evil\nINFO forged line \x1b[31mred\x9b2J")


def test_a_folder_name_cannot_forge_or_colour_a_log_line(pipeline):
    forged = FORGED
    pipeline.mark(forged, "1-ripped", "rip")
    mp(pipeline, "reconcile")
    texts = mp(pipeline, "dispatch", "-v").stderr
    # Its job is queued now: a second item for a JSON log line.
    other = ItemKey("movie", "Other\nINFO forged too\u202e")
    pipeline.mark(other, "1-ripped", "rip")
    mp(pipeline, "reconcile")
    lines = mp(pipeline, "dispatch", "-v", "--log-format", "json").stderr
    assert "INFO movie/Evil\\nINFO forged line \\x1b[31mred" in texts
    assert not any(line.startswith("INFO forged") for line in texts.splitlines())
    assert quiet(texts) and quiet(lines)
    for line in lines.splitlines():
        entry = json.loads(line)  # each line one object: no line was split
        if entry.get("item", "").startswith("movie/Other"):
            assert entry["item"] == "movie/Other\\nINFO forged too\\u202e"


def test_a_running_folders_worker_name_and_claim_time_are_escaped(pipeline):
    """The worker's part of running/ID.WORKER.PID.tEPOCH and claimed_at are anyone's text."""
    forged = FORGED
    pipeline.mark(forged, "1-ripped", "rip")
    mp(pipeline, "reconcile")
    mp(pipeline, "dispatch")
    queue = pipeline.staging / ".pipeline" / "jobs"
    [job_id] = pipeline.queue("pending")
    worker = "\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x9b"
    running = queue / "running" / f"{job_id}.{worker}.123.t{int(time.time())}"
    (queue / "pending" / job_id).rename(running)
    (running / "claimed_at").write_text("yesterday \x1b]0;title\x07\n")
    (running / "heartbeat").touch()

    jobs = mp(pipeline, "jobs").stdout
    status = mp(pipeline, "status").stdout
    why = mp(pipeline, "why", forged.uid).stdout
    for shown in (jobs, status, why):
        assert quiet(shown), shown
        assert "\\x1b]52;c;ZXZpbA==" in shown
    assert "yesterday" not in why and "its claimed_at is not a time" in why
    for args in (("jobs", "--json"), ("status", "--json")):
        text = mp(pipeline, *args).stdout
        assert quiet(text), text
        found = json.loads(text)  # and a program still reads the worker's name exactly
        running_jobs = found["jobs"] if args[0] == "jobs" else found["running_jobs"]
        assert [job["worker"] for job in running_jobs if job.get("worker")] == [worker]


def test_a_title_or_disc_label_beginning_with_a_dash_is_refused_by_rip(pipeline):
    for args, label in (
        (("--type", "movie", "--title=-rf"), "title '-rf'"),
        (("--type", "tv", "--title", "Show", "--disc-label=--delete"), "disc label '--delete'"),
    ):
        said = mp(pipeline, "rip", *args, expect=2).stderr
        assert said == (
            f"mp: the {label} begins with '-', which a script given it would take for an option\n"
        )
    assert pipeline.queue("pending") == [] and pipeline.status_json()["items"] == []


def test_a_folder_beginning_with_a_dash_is_passed_over_and_reaches_no_script(pipeline):
    """Chosen: reconcile never takes such a folder in (a warning each run says to rename
    it), so no job is ever made for it; and a worker refuses a job naming one, signed
    or not (a controller from before this rule, or a stolen key)."""
    movie, disc = ItemKey("movie", "-rf"), ItemKey("tv", "Show", "--delete")
    for key in (movie, disc):
        pipeline.mark(key, "1-ripped", "rip")
    said = mp(pipeline, "reconcile").stderr
    assert "movies/-rf is passed over: its name begins with '-'" in said
    assert "tv/Show/--delete is passed over: its name begins with '-'" in said
    mp(pipeline, "dispatch")
    assert pipeline.status_json()["items"] == [] and pipeline.queue("pending") == []

    spec = build_spec(pipeline.config, "rip", movie, priority=0, now=datetime.now(UTC))
    job = pipeline.staging / ".pipeline" / "jobs" / "pending" / spec["id"]
    job.mkdir(parents=True)
    (job / "spec.json").write_text(json.dumps(signed_by_controller(pipeline, spec)))
    said = mp(pipeline, "claim", "--worker", "w1")
    assert f"job {spec['id']} refused, nothing was run" in said.stdout + said.stderr
    assert pipeline.runlog() == [], "no script ran"


def test_a_library_path_through_a_link_is_refused_at_the_gate_not_at_claim(pipeline, decoy):
    """library/Movies is a link to a folder outside the roots: the worker refuses to file
    through it, so the gate refuses to approve it, and the item waits there rather than
    end FAILED; a link put there after the approval is caught by dispatch."""
    at_the_filing_gate(pipeline)
    movies = pipeline.root / "library" / "Movies"
    movies.symlink_to(decoy / "home", target_is_directory=True)
    said = mp(pipeline, "approve", HONEST.uid, "--yes", expect=2).stderr
    assert said.startswith("mp: destination '") and said.count("\n") == 1, said
    assert f"goes through {movies}, which is a link or not a folder" in said
    typed = "Movies/Heat (1995)/Heat (1995).mkv"
    said = mp(pipeline, "approve", HONEST.uid, "--yes", "--destination", typed, expect=2).stderr
    assert f"goes through {movies}, which is a link" in said
    assert [a["gate"] for a in pending_approvals(pipeline)] == ["filebot_confirm"]

    movies.unlink()
    movies.mkdir()
    mp(pipeline, "approve", HONEST.uid, "--yes")
    movies.rename(pipeline.root / "library" / "Movies.old")
    movies.symlink_to(decoy / "home", target_is_directory=True)
    said = mp(pipeline, "dispatch").stdout
    asks_again = "(no filing job runs through one); not dispatched, filebot_confirm asks again"
    assert f"{movies}, which is a link or not a folder {asks_again}" in said
    assert pipeline.queue("pending") == []
    assert pipeline.status_json()["items"][0]["state"] == "TRANSCODED"


def pending_approvals(pipeline) -> list[dict]:
    return json.loads(mp(pipeline, "approve", "--list", "--json").stdout)["approvals"]


NFC, NFD = "Am\u00e9lie (2001)", "Ame\u0301lie (2001)"  # the same letters, two forms


def test_a_title_in_another_unicode_form_is_the_same_item(pipeline):
    """A folder copied from a Mac names é as e and an accent (NFD): it is taken in as the
    NFC title, with that title's uid, and renamed so that every stage's folder and every
    job's paths are the key's; a script gets folders that are there."""
    pipeline.mark(ItemKey("movie", NFD), "1-ripped", "rip")
    said = mp(pipeline, "reconcile", "--dry-run").stdout
    assert "would: rename " in said and "to its NFC form, movie/" + NFC in said
    assert (pipeline.staging / "1-ripped" / "movies" / NFD).is_dir(), "a dry run renames nothing"

    mp(pipeline, "reconcile")
    [item] = pipeline.status_json()["items"]
    assert (item["title"], item["uid"]) == (NFC, ItemKey("movie", NFC).uid)
    assert os.listdir(pipeline.staging / "1-ripped" / "movies") == [NFC]
    assert item["folder_path"] == str(pipeline.staging / "1-ripped" / "movies" / NFC)
    mp(pipeline, "dispatch")
    mp(pipeline, "claim", "--worker", "w1")
    mp(pipeline, "reconcile")
    assert pipeline.status_json()["items"][0]["state"] == "REMUXED"
    assert mp(pipeline, "why", f"movie/{NFD}").stdout.startswith(f"movie/{NFC}: ")
    # Typed in NFD too, a title is the NFC one's.
    mp(pipeline, "rip", "--type", "tv", "--title", "Cafe\u0301", "--disc-label", "S01 Disc1")
    assert ("tv", "Caf\u00e9") in {(i["type"], i["title"]) for i in pipeline.status_json()["items"]}


def test_two_folders_of_one_title_in_two_forms_are_one_item_at_the_gate(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    for title in (NFC, NFD):
        pipeline.mark(ItemKey("movie", title), "2-remuxed", "remux")
    show = ItemKey("tv", "Caf\u00e9 Society", "S01 Disc1")
    pipeline.mark(show, "2-remuxed", "remux")
    pipeline.mark(ItemKey("tv", "Cafe\u0301 Society", "S01 Disc2"), "2-remuxed", "remux")
    said = mp(pipeline, "reconcile").stderr
    assert f"movies/{NFD} is passed over: another folder there has the same name" in said
    names = sorted(a["item"]["title"] + "/" + a["item"]["disc_label"] for a in pending(pipeline))
    assert names == [f"{NFC}/", "Caf\u00e9 Society/S01 Disc1", "Caf\u00e9 Society/S01 Disc2"]
    shows = pipeline.staging / "2-remuxed" / "tv"
    assert sorted(os.listdir(shows / "Caf\u00e9 Society")) == ["S01 Disc1", "S01 Disc2"]
    assert os.listdir(shows / "Cafe\u0301 Society") == [], "left, empty: mp made not it"


def test_a_title_mixing_latin_and_cyrillic_letters_is_pointed_out(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    for title in ("Matrix (1999)", "M\u0430trix (1999)"):  # the second a is Cyrillic
        pipeline.mark(ItemKey("movie", title), "2-remuxed", "remux")
    mp(pipeline, "reconcile")
    notes = {a["item"]["title"]: a["prompt"]["notes"] for a in pending(pipeline)}
    warning = "its name mixes Latin letters with Cyrillic ones ('\u0430' U+0430)"
    assert notes["M\u0430trix (1999)"][0].startswith(warning)
    assert not any("mixes" in note for note in notes["Matrix (1999)"])
    look_alike = ItemKey("movie", "M\u0430trix (1999)")
    assert f"Note: {warning}" in mp(pipeline, "why", look_alike.uid).stdout
    said = "look-alike letters (Latin with Cyrillic/Greek) in: movie/M\u0430trix (1999)"
    assert said in mp(pipeline, "status").stdout


def pending(pipeline) -> list[dict]:
    return json.loads(mp(pipeline, "approve", "--list", "--json").stdout)["approvals"]


def test_a_folder_in_another_form_is_not_renamed_under_a_job_made_by_its_old_name(pipeline):
    """A job queued before titles were taken in as NFC names the folder as it is on disk
    (NFD): reconcile leaves the folder while that job is queued, so a script would find
    it. The job is of no item the controller has (the item is the NFC one): no live list
    names it, so it is refused, never run, and the item goes on under its NFC name."""
    old_key = ItemKey("movie", NFD)
    pipeline.mark(old_key, "1-ripped", "rip")
    spec = build_spec(pipeline.config, "remux", old_key, priority=0, now=datetime.now(UTC))
    pending = pipeline.staging / ".pipeline" / "jobs" / "pending" / spec["id"]
    pending.mkdir(parents=True)
    (pending / "spec.json").write_text(json.dumps(signed_by_controller(pipeline, spec)))
    said = mp(pipeline, "reconcile").stderr
    assert "is not renamed to its NFC form while a job of it is queued or running" in said
    assert os.listdir(pipeline.staging / "1-ripped" / "movies") == [NFD]
    # A list made in a later second than the job was signed leaves it out: refused.
    while time.time() < json.loads((pending / "spec.json").read_text())["issued_at"] + 1:
        time.sleep(0.01)
    (pending.parent.parent / "live.json").unlink()  # the controller's next run writes it
    mp(pipeline, "reconcile")
    ran = mp(pipeline, "claim", "--worker", "w1")
    assert f"job {spec['id']} refused, nothing was run" in ran.stdout, ran.stdout + ran.stderr
    mp(pipeline, "reconcile", "--dispatch")
    assert os.listdir(pipeline.staging / "1-ripped" / "movies") == [NFC]
    ran = mp(pipeline, "claim", "--worker", "w1")
    new_job = f"_remux_movie_{ItemKey('movie', NFC).uid}_"
    assert new_job in ran.stdout and "completed" in ran.stdout, ran.stdout
