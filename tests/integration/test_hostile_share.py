"""The share as a trust boundary (DESIGN section 10), tried as a person with write access
to the share would: each case is refused or contained. Every test also checks that
nothing outside the sandbox changed (a decoy tree hashed before and after), and most
then carry an honest item through the whole pipeline to the library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    claim_in_background,
    earlier_copy_id,
    lose_the_database,
    process_state,
    running,
    signed_by_controller,
    silence,
    tree_snapshot,
)
from hostile import (
    HONEST,
    OTHER,
    SECRET,
    OpenWatch,
    at_the_filing_gate,
    carried_through,
    drive,
    held_running,
    jobs_dir,
    nothing_leaked,
    old,
    rejected_reasons,
    started,
)

from media_pipeline.approve.signing import sign
from media_pipeline.items.names import ItemKey

# -- links in job folders ----------------------------------------------------------------


def test_a_log_linked_to_authorized_keys_is_never_written(pipeline, decoy):
    job_id = started(pipeline)
    job = jobs_dir(pipeline) / "pending" / job_id
    (job / "log").symlink_to(decoy / "home" / ".ssh" / "authorized_keys")
    for name in ("pid", "heartbeat", "result.json", "claimed_by", "claimed_at"):
        (job / name).symlink_to(decoy / "etc" / "shadow")
    result = pipeline.mp("claim", "--worker", "w1")
    assert f"job {job_id} refused, nothing was run" in result.stdout + result.stderr
    assert pipeline.runlog() == []
    assert any("is a symbolic link" in reason for reason in rejected_reasons(pipeline))
    carried_through(pipeline)


def test_a_log_hard_linked_to_a_file_elsewhere_is_never_written(pipeline, decoy):
    job_id = started(pipeline)
    secret = pipeline.root / "secret-on-this-disk"  # a hard link needs one filesystem
    secret.write_bytes(SECRET)
    os.link(secret, jobs_dir(pipeline) / "pending" / job_id / "log")
    pipeline.behave("remux", "fail")
    result = pipeline.mp("claim", "--worker", "w1")
    assert "is a hard link" in result.stdout + result.stderr
    assert secret.read_bytes() == SECRET and pipeline.runlog() == []
    nothing_leaked(pipeline)


@pytest.mark.parametrize(
    ("folder", "plant"),
    [
        ("2-remuxed", ".pipeline/remux.timestamp"),  # `date > ...timestamp` writes through
        ("1-ripped", "extra.mkv"),  # a filing or remux script copies what it reads
        ("1-ripped", "fifo.mkv"),  # ffmpeg would block on it for ever
        ("1-ripped", "hard.mkv"),  # a second name for a file elsewhere
        ("1-ripped", "playlist.mkv"),  # ffmpeg would read every file it names
    ],
)
def test_an_item_folder_holding_a_link_runs_nothing(pipeline, decoy, folder, plant):
    job_id = started(pipeline)
    target = pipeline.folder(HONEST, folder) / plant
    target.parent.mkdir(parents=True, exist_ok=True)
    if plant.startswith("fifo"):
        os.mkfifo(target)
    elif plant.startswith("playlist"):
        target.write_text(f"#EXTM3U\n#EXTINF:3.0,\nfile://{decoy}/etc/shadow.ts\n")
    elif plant.startswith("hard"):
        (pipeline.root / "elsewhere").write_bytes(SECRET)
        os.link(pipeline.root / "elsewhere", target)
    else:
        target.symlink_to(decoy / "etc" / "shadow")
    result = pipeline.mp("claim", "--worker", "w1")
    assert f"job {job_id} refused, nothing was run" in result.stdout + result.stderr
    assert "is a link, a FIFO or device, a hard link or a playlist" in result.stdout + result.stderr
    assert pipeline.runlog() == []
    target.unlink()  # a person removes it
    carried_through(pipeline)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
@pytest.mark.parametrize("where", ["state marker", "job log"])
def test_a_device_node_on_the_share_is_never_opened(pipeline, decoy, where):
    """A character device with /dev/null's numbers where reconcile reads an item's state
    and where a claim appends to a job's log: refused by its type, and never opened."""
    job_id = started(pipeline)
    if where == "state marker":
        node = pipeline.folder(HONEST, "1-ripped") / ".pipeline" / "state"
        node.unlink()
        command = ["reconcile"]
    else:
        node = jobs_dir(pipeline) / "pending" / job_id / "log"
        command = ["claim", "--worker", "w1"]
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    watch = OpenWatch(node)
    try:
        os.close(os.open(node, os.O_PATH))  # no event: what the watch counts is real opens
        assert watch.opens() == 0
        with open(node, "rb"):
            pass
        assert watch.opens() == 1, "the watch sees an open"
        result = pipeline.mp(*command, expect=None)
        assert "Traceback" not in result.output
        assert watch.opens() == 0, f"mp {command[0]} opened the device"
    finally:
        watch.close()
    assert pipeline.runlog() == []
    with contextlib.suppress(FileNotFoundError):
        node.unlink()  # a person removes it (a job refused took its own to rejected/)
    carried_through(pipeline)


def test_a_stale_job_with_linked_files_copies_nothing_onto_the_share(pipeline, decoy):
    job_id = started(pipeline)
    running = jobs_dir(pipeline) / "running" / f"{job_id}.ct303.1"
    (jobs_dir(pipeline) / "pending" / job_id).rename(running)
    (running / "spec.json").unlink()
    (running / "spec.json").symlink_to(decoy / "etc" / "shadow")
    (running / "log").symlink_to(decoy / "etc" / "shadow")
    old(running)
    result = pipeline.mp("reconcile", "-v")
    assert "its spec cannot be used" in result.stderr
    assert pipeline.queue("running") == []
    nothing_leaked(pipeline)
    carried_through(pipeline)
    nothing_leaked(pipeline)


def test_a_job_folder_that_is_a_link_is_rejected(pipeline, decoy):
    job_id = started(pipeline)
    forged = job_id.replace("job_p500", "job_p001")
    (jobs_dir(pipeline) / "pending" / forged).symlink_to(decoy / "home")
    result = pipeline.mp("claim", "--worker", "w1")
    said = f"job {forged} refused, nothing was run: is a symbolic link (not a job folder)"
    assert said in result.stderr, result.stderr
    assert "completed" in result.stdout, "the claim goes on to the honest job"
    carried_through(pipeline)


def test_cancel_does_not_follow_a_linked_cancel_file(pipeline, decoy):
    job_id = started(pipeline)
    worker = held_running(pipeline, job_id)
    (name,) = pipeline.queue("running")
    (jobs_dir(pipeline) / "running" / name / "cancel").symlink_to(decoy / "etc" / "shadow")
    # The link alone is no cancel file mp wrote: the worker may take it as one, but the
    # cancel command must write its own file, never through the link.
    pipeline.mp("cancel", HONEST.uid)
    worker.communicate(timeout=60)
    assert pipeline.queue("cancelled") == [job_id]


# -- deletes through links -----------------------------------------------------------------


@pytest.mark.parametrize("folder", ["tmp", "completed"])
def test_a_linked_queue_folder_refuses_the_command(pipeline, decoy, folder):
    started(pipeline)
    (jobs_dir(pipeline) / folder).rmdir()
    target = decoy / "home"
    old(target / ".ssh", 90 * 86400)
    (jobs_dir(pipeline) / folder).symlink_to(target)
    result = pipeline.mp("reconcile", expect=3)
    assert "is a symbolic link" in result.stderr and "refusing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    os.utime(target / ".ssh")  # the decoy's own time, as before the test
    (jobs_dir(pipeline) / folder).unlink()  # a person puts a real folder back
    carried_through(pipeline)


def test_retention_removes_old_jobs_only_and_moves_other_names_aside(pipeline, decoy):
    job_id = started(pipeline)
    pipeline.mp("claim", "--worker", "w1")
    assert pipeline.queue("completed") == [job_id]
    completed = jobs_dir(pipeline) / "completed"
    (completed / "notes.txt").write_text("a person's notes\n")
    (completed / "family-photos").mkdir()
    for entry in (completed / job_id, completed / job_id / "result.json"):
        old(entry, 40 * 86400)
    for entry in (completed / "notes.txt", completed / "family-photos"):
        old(entry, 40 * 86400)
    result = pipeline.mp("reconcile", "-v")
    assert f"job {job_id}: completed 40 days ago; folder removed" in result.stderr
    assert pipeline.queue("completed") == []
    assert sorted(rejected_reasons(pipeline)) == [
        "completed/family-photos: not a name mp gives a job\n",
        "completed/notes.txt: not a name mp gives a job\n",
    ]
    kept = [
        jobs_dir(pipeline) / "rejected" / holder / "entry" for holder in pipeline.queue("rejected")
    ]
    assert sorted(entry.is_dir() for entry in kept) == [False, True], "kept, not deleted"
    assert "a person's notes\n" in [entry.read_text() for entry in kept if entry.is_file()]


@pytest.mark.parametrize("state", ["completed", "tmp"])
def test_an_item_folder_renamed_like_a_job_is_never_deleted(pipeline, decoy, state):
    pipeline.mp("reconcile")
    media = pipeline.root / "media"
    (media / "Extras").mkdir(parents=True)
    (media / "movie.mkv").write_bytes(b"the only copy")
    (media / "Extras" / "nested.mkv").write_bytes(b"another")
    forged = jobs_dir(pipeline) / state / "job_p500_20200101T000000000000_remux_movie_000000000000"
    forged.parent.mkdir(parents=True, exist_ok=True)
    media.rename(forged)
    for path in (forged, forged / "movie.mkv"):
        old(path, 400 * 86400)
    result = pipeline.mp("reconcile", "-v")
    assert "which mp never writes in a job folder" in result.stderr
    (holder,) = pipeline.queue("rejected")
    kept = jobs_dir(pipeline) / "rejected" / holder / "entry"
    assert (kept / "movie.mkv").read_bytes() == b"the only copy"
    assert (kept / "Extras" / "nested.mkv").read_bytes() == b"another"


def test_failed_jobs_expire_like_completed_ones(pipeline, decoy):
    pipeline.write_pipeline_config(
        jobs={
            "heartbeat_seconds": 1,
            "stale_after_seconds": 30,
            "cancel_grace_seconds": 1,
            "max_attempts": 1,
            "retention_days": 7,
        }
    )
    job_id = started(pipeline)
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    assert pipeline.queue("failed") == [job_id]
    pipeline.mp("reconcile")  # the next timer run, long before the folder expires
    failed = jobs_dir(pipeline) / "failed" / job_id
    old(failed / "result.json", 8 * 86400)
    assert "failed 8 days ago; folder removed" in pipeline.mp("reconcile", "-v").stderr
    assert pipeline.queue("failed") == []
    assert pipeline.status_json()["counts"] == {"FAILED": 1}, "the item keeps its state"


# -- linked item folders ---------------------------------------------------------------------


def test_a_linked_item_folder_is_passed_over_and_never_written(pipeline, decoy):
    evil = decoy / "home"
    (evil / ".pipeline").mkdir()
    (evil / ".pipeline" / "remux.done").touch()
    before = tree_snapshot(decoy)
    (pipeline.staging / "2-remuxed" / "movies").mkdir(parents=True)
    (pipeline.staging / "2-remuxed" / "movies" / "Evil").symlink_to(evil)
    pipeline.mark(OTHER, "1-ripped", "rip")
    (pipeline.folder(OTHER, "1-ripped") / ".pipeline").rename(pipeline.root / "moved")
    (pipeline.folder(OTHER, "1-ripped") / ".pipeline").symlink_to(evil / ".pipeline")
    result = pipeline.mp("reconcile", "-v")
    assert "Evil is a symbolic link; passed over" in result.stderr
    assert ".pipeline is a symbolic link; passed over" in result.stderr
    titles = [item["title"] for item in pipeline.status_json()["items"]]
    assert "Evil" not in titles and OTHER.title not in titles
    assert tree_snapshot(decoy) == before
    shutil.rmtree(evil / ".pipeline")  # the decoy as the fixture made it
    pipeline.mark(HONEST, "1-ripped", "rip")
    carried_through(pipeline)


def test_approve_never_writes_a_decision_through_a_linked_pipeline_folder(pipeline, decoy):
    pipeline.write_pipeline_config(gates=["remux_review"])
    started(pipeline)
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    assert pipeline.status_json()["items"][0]["pending_approval"] == "remux_review"
    pipeline_folder = pipeline.folder(HONEST, "2-remuxed") / ".pipeline"
    pipeline_folder.rename(pipeline.root / "moved")
    pipeline_folder.symlink_to(decoy / "etc" / "cron.d")
    result = pipeline.mp("approve", HONEST.uid, "--yes", expect=3)
    assert "is a symbolic link" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    pipeline_folder.unlink()
    (pipeline.root / "moved").rename(pipeline_folder)
    pipeline.mp("approve", HONEST.uid, "--yes")
    carried_through(pipeline)


# -- one bad entry never stops a run -------------------------------------------------------


def test_bad_entries_in_every_queue_folder_are_rejected_and_the_run_goes_on(pipeline, decoy):
    job_id = started(pipeline)
    pending, running = jobs_dir(pipeline) / "pending", jobs_dir(pipeline) / "running"
    running.mkdir(exist_ok=True)
    unknown_kind = job_id.replace("_remux_", "_backup_")
    bad_date = "job_p500_20261399T250000000000_remux_movie_0123456789ab"
    (pending / unknown_kind).mkdir()
    (pending / bad_date).mkdir()
    (running / f"{job_id}.ct304.77").write_text("a plain file where a job folder goes\n")
    (jobs_dir(pipeline) / "completed" / "stray.txt").write_text("x")
    result = pipeline.mp("reconcile", "-v")
    assert "Traceback" not in result.output
    assert pipeline.queue("pending") == [job_id] and pipeline.queue("running") == []
    reasons = " ".join(rejected_reasons(pipeline))
    assert unknown_kind in reasons and bad_date in reasons and "is not a folder" in reasons
    assert "rejected" in pipeline.mp("jobs").stdout
    listed = json.loads(pipeline.mp("jobs", "--json").stdout)["jobs"]
    assert sum(job["state"] == "rejected" for job in listed) == 4
    assert "rejected" in pipeline.mp("status").stdout
    carried_through(pipeline)


def test_a_huge_name_first_in_line_does_not_stop_claims(pipeline, decoy):
    job_id = started(pipeline)
    long_name = "job_p001_20260101T000000000000_remux_movie_0123456789ab_" + "x" * 190
    (jobs_dir(pipeline) / "pending" / long_name).mkdir()
    result = pipeline.mp("claim", "--worker", "w1")
    assert f"job {job_id} completed" in result.stdout
    pipeline.mp("reconcile")
    assert any("not a name mp gives a job" in reason for reason in rejected_reasons(pipeline))
    carried_through(pipeline)


@pytest.mark.parametrize("where", ["approval", "result", "spec"])
def test_json_nested_beyond_reason_is_survived(pipeline, decoy, where):
    pipeline.write_pipeline_config(gates=["remux_review"] if where == "approval" else [])
    job_id = started(pipeline)
    # Deep enough to overflow a recursive parser, and within every size limit.
    bomb = "[" * 30_000 + "]" * 30_000
    job = jobs_dir(pipeline) / "pending" / job_id
    if where == "spec":
        (job / "spec.json").write_text(bomb)
        result = pipeline.mp("claim", "--worker", "w1")
        assert f"job {job_id} refused, nothing was run" in result.stdout + result.stderr
        assert pipeline.queue("running") == []
    elif where == "result":
        (job / "result.json").write_text(bomb)
        pipeline.mp("reconcile")
    else:
        pipeline.mp("claim", "--worker", "w1")
        approval = pipeline.folder(HONEST, "2-remuxed") / ".pipeline" / "approval.remux_review.json"
        approval.write_text(bomb)
        result = pipeline.mp("reconcile", "-v")
        assert "decision file not restored" in result.stderr
        pipeline.mp("approve", HONEST.uid, "--yes")
    carried_through(pipeline)


def test_a_stale_spec_with_words_for_numbers_is_taken_back(pipeline, decoy):
    job_id = started(pipeline)
    running = jobs_dir(pipeline) / "running" / f"{job_id}.ct303.1"
    (jobs_dir(pipeline) / "pending" / job_id).rename(running)
    spec = json.loads((running / "spec.json").read_text())
    spec["attempts"] = "abc"
    (running / "spec.json").write_text(json.dumps(spec))
    old(running)
    result = pipeline.mp("reconcile", "-v")
    assert "its spec cannot be used (field 'attempts' is not a whole number)" in result.stderr
    assert "REMUXING -> RIPPED" in result.stderr and "will be dispatched again" in result.stderr
    assert "Traceback" not in result.output
    [rejected] = pipeline.queue("rejected")  # named by when, then as it was
    assert rejected.endswith(f".{running.name}")
    carried_through(pipeline)


@pytest.mark.parametrize("suffix", [".w9.01.t{claimed}", ".w9.1.t0{claimed}", ".w9.1.t{claimed}\n"])
def test_a_running_name_in_a_form_no_claim_writes_is_rejected(pipeline, decoy, suffix):
    """A name that would read back as another (leading zeros, a final newline) once sat
    in running/ for ever, the item stopped: reconcile never found the folder it named."""
    job_id = started(pipeline)
    name = job_id + suffix.format(claimed=int(time.time()) - 3600)
    (jobs_dir(pipeline) / "pending" / job_id).rename(jobs_dir(pipeline) / "running" / name)
    result = pipeline.mp("reconcile", "-v")
    assert "not a name mp gives a job; moved to rejected/" in result.stderr
    assert "its job is gone from the queue; will be dispatched again" in result.stderr
    assert pipeline.queue("running") == []
    carried_through(pipeline)


def test_a_heartbeat_from_the_far_future_keeps_no_job_for_ever(pipeline, decoy):
    """A heartbeat (or a folder) dated a day ahead is no sign of life: the job's claim,
    an hour old, decides, and the job is taken back."""
    job_id = started(pipeline)
    running = jobs_dir(pipeline) / "running" / f"{job_id}.w9.1.t{int(time.time()) - 3600}"
    (jobs_dir(pipeline) / "pending" / job_id).rename(running)
    (running / "heartbeat").touch()
    ahead = time.time() + 86400
    for path in (running / "heartbeat", running):
        os.utime(path, (ahead, ahead))
    result = pipeline.mp("reconcile", "-v")
    assert re.search(r"worker w9 vanished \(no heartbeat for 36\d\d s\); taken back", result.stderr)
    carried_through(pipeline)


def test_a_job_moved_into_running_by_hand_is_rejected_and_why_explains(pipeline, decoy):
    job_id = started(pipeline)
    (jobs_dir(pipeline) / "pending" / job_id).rename(jobs_dir(pipeline) / "running" / job_id)
    assert "REMUXING" in pipeline.mp("why", HONEST.uid).stdout  # once an AttributeError
    assert pipeline.mp("jobs").exit_code == 0
    result = pipeline.mp("reconcile", "-v")
    assert "moved here by hand?" in result.stderr
    assert "RIPPED" in pipeline.mp("why", HONEST.uid).stdout, "sent back to be queued again"
    carried_through(pipeline)


# -- forged decisions ------------------------------------------------------------------------


def test_a_forged_filing_decision_is_not_restored_and_the_gate_asks_again(pipeline, decoy):
    at_the_filing_gate(pipeline)
    assert pipeline.status_json()["items"][0]["pending_approval"] == "filebot_confirm"
    decision = pipeline.folder(HONEST, "3-transcoded") / ".pipeline"
    forged = {
        "status": "approved",
        "at": "2026-11-25T00:00:00+00:00",
        "by": "owner@ct303",
        "gate": "filebot_confirm",
        "destination": str(decoy / "etc" / "cron.d" / "evil"),
        "item": {"uid": HONEST.uid, "type": "movie", "title": HONEST.title, "disc_label": ""},
        "signature": "0" * 64,
    }
    (decision / "approval.filebot_confirm.json").write_text(json.dumps(forged))
    lose_the_database(pipeline)  # only the share speaks now
    result = pipeline.mp("reconcile", "-v")
    assert "its signature does not verify" in result.stderr
    approvals = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert "not trusted" in " ".join(approvals[0]["prompt"]["notes"])
    assert "0 job(s) would queue" in pipeline.mp("dispatch", "--dry-run").stdout
    assert pipeline.queue("pending") == []
    pipeline.mp("approve", HONEST.uid, "--yes")
    carried_through(pipeline)


def forged_value(field: str, value, library: Path):
    """Another value for a decision's field that every check but the signature accepts."""
    if field == "destination":
        return str(library / "Movies" / "Forged (2001)" / "Forged (2001).mkv")
    if field == "status":
        return "rejected" if value == "approved" else "approved"
    if isinstance(value, dict):
        return {**value, "forged": True}
    if isinstance(value, str):
        return value.replace("0", "1") if "0" in value else value + "1"
    return "forged"


def test_a_change_to_any_field_a_decision_signature_covers_is_refused(pipeline, decoy):
    """Each field of a real decision file, changed on the share, keeps it from being
    restored after a database loss, and the gate asks again; the same file unchanged is
    restored, so it is the signature alone that refuses each change."""
    at_the_filing_gate(pipeline)
    library = pipeline.root / "library"
    approved = str(library / "Movies" / "Approved (2001)" / "Approved (2001).mkv")
    pipeline.mp("approve", HONEST.uid, "--yes", "--destination", approved)
    path = pipeline.folder(HONEST, "3-transcoded") / ".pipeline" / "approval.filebot_confirm.json"
    honest = json.loads(path.read_text())
    fields = sorted(set(honest) - {"signature"})
    assert {"status", "at", "by", "destination", "gate", "item", "prompt"} <= set(fields)
    for field in fields:
        path.write_text(json.dumps({**honest, field: forged_value(field, honest[field], library)}))
        lose_the_database(pipeline)
        result = pipeline.mp("reconcile", "-v")
        assert (
            "filebot_confirm decision file not restored (its signature does not verify"
            in result.stderr
        ), f"a changed {field!r} was not refused: {result.stderr}"
        approvals = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
        assert [a["gate"] for a in approvals] == ["filebot_confirm"], f"changed {field!r}"
    path.write_text(json.dumps(honest))
    lose_the_database(pipeline)
    assert "filebot_confirm approved (restored from its approval file)" in (
        pipeline.mp("reconcile", "-v").stderr
    )
    pipeline.mp("dispatch")
    [job_id] = pipeline.queue("pending")
    spec = json.loads((jobs_dir(pipeline) / "pending" / job_id / "spec.json").read_text())
    assert spec["destination"] == approved


def test_a_signed_decision_copied_to_another_item_is_not_restored(pipeline, decoy):
    pipeline.write_pipeline_config(gates=["remux_review"])
    for key in (HONEST, OTHER):
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    pipeline.mp("approve", HONEST.uid, "--yes")
    honest = pipeline.folder(HONEST, "2-remuxed") / ".pipeline" / "approval.remux_review.json"
    other = pipeline.folder(OTHER, "2-remuxed") / ".pipeline" / "approval.remux_review.json"
    shutil.copy(honest, other)
    lose_the_database(pipeline)
    result = pipeline.mp("reconcile", "-v")
    assert "written for another item or gate" in result.stderr
    pending = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert [approval["item"]["title"] for approval in pending] == [OTHER.title]


def restored_signed_approval(pipeline, destination: str) -> None:
    """The honest item at its filing gate, an approval of destination signed with this
    controller's own key in its folder, and the database lost: reconcile restores what
    it may of it next."""
    from media_pipeline.approve.signing import decision_key

    at_the_filing_gate(pipeline)
    decision = {
        "status": "approved",
        "at": "2026-11-25T00:00:00+00:00",
        "by": "owner@ct303",
        "gate": "filebot_confirm",
        "destination": destination,
        "item": {"uid": HONEST.uid, "type": "movie", "title": HONEST.title, "disc_label": ""},
    }
    path = pipeline.folder(HONEST, "3-transcoded") / ".pipeline" / "approval.filebot_confirm.json"
    path.write_text(json.dumps(sign(decision, decision_key(pipeline.config))))
    lose_the_database(pipeline)


def test_a_decision_signed_with_the_key_but_pointing_outside_the_library(pipeline, decoy):
    """Even a decision this controller signed is checked against library_root (the
    root may have moved since)."""
    restored_signed_approval(pipeline, "/etc/cron.d/evil")
    assert "destination is not inside library_root" in pipeline.mp("reconcile", "-v").stderr
    assert pipeline.queue("pending") == []


def test_an_approved_destination_outside_the_library_is_never_dispatched(pipeline, decoy):
    """The library moved (library_root changed) after a person approved a destination in
    the old one: dispatch asks again rather than file outside the library."""
    at_the_filing_gate(pipeline)
    pipeline.mp("approve", HONEST.uid, "--yes")
    new_library = pipeline.root / "library2"
    new_library.mkdir()
    pipeline.write_pipeline_config(gates=["filebot_confirm"], library_root=str(new_library))
    result = pipeline.mp("dispatch")
    assert "is not inside library_root; not dispatched, filebot_confirm asks again" in result.stdout
    assert pipeline.queue("pending") == []
    pipeline.mp("reconcile")
    approvals = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert approvals[0]["prompt"]["destination"].startswith(str(new_library))
    pipeline.mp("approve", HONEST.uid, "--yes")
    status = drive(pipeline)
    assert status["items"][0]["state"] == "IN_LIBRARY"
    assert list(new_library.rglob("*.mkv")), "filed in the library it now has"


def test_a_filing_spec_changed_on_the_share_files_nothing_there(pipeline, decoy):
    """Inside library_root a worker cannot tell a forged destination from an approved
    one; reconcile can, and rejects the job before it is claimed."""
    at_the_filing_gate(pipeline)
    approved = "Movies/Heat (1995)/Heat (1995) {edition-Director's Cut}.mkv"
    pipeline.mp("approve", HONEST.uid, "--yes", "--destination", approved)
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    spec_path = jobs_dir(pipeline) / "pending" / job_id / "spec.json"
    spec = json.loads(spec_path.read_text())
    library = pipeline.root / "library"
    assert spec["destination"] == str(library / approved)
    spec["destination"] = str(library / "Movies" / "Somewhere Else.mkv")
    spec_path.write_text(json.dumps(spec))
    result = pipeline.mp("reconcile", "-v")
    assert "its destination is not the one approved for its item" in result.stderr
    assert pipeline.queue("pending") == []
    carried_through(pipeline)
    assert (library / approved).exists()
    assert not (library / "Movies" / "Somewhere Else.mkv").exists()


# -- a done marker never overrides a failed job --------------------------------------------


def test_unreadable_output_with_a_marker_never_reaches_the_library(pipeline, decoy):
    if pipeline.root.joinpath("sample.mkv").exists() is False:
        pytest.skip("needs ffmpeg: verification probes the output")
    pipeline.write_pipeline_config(
        jobs={
            "heartbeat_seconds": 1,
            "stale_after_seconds": 30,
            "cancel_grace_seconds": 1,
            "max_attempts": 1,  # the back-off between attempts is tested elsewhere
        }
    )
    started(pipeline)
    pipeline.behave("transcode", "garbage")  # random bytes as broken.mkv, then the marker
    status = drive(pipeline)
    (item,) = status["items"]
    assert item["state"] == "FAILED" and item["stopped_in"] == "TRANSCODING"
    assert "failed verification" in item["reason"]
    assert not any((pipeline.root / "library").rglob("*.mkv"))
    assert "start filebot" not in " ".join(pipeline.runlog())
    marker = pipeline.folder(HONEST, "3-transcoded") / ".pipeline"
    assert not (marker / "transcode.done").exists()


# -- an empty folder where the share should be --------------------------------------------


def test_an_empty_mount_point_refuses_every_writing_command(pipeline, decoy):
    started(pipeline)
    pipeline.staging.rename(pipeline.root / "unmounted")
    pipeline.staging.mkdir()  # what an unmounted share leaves behind
    for command in (
        ["dispatch"],
        ["claim", "--worker", "w1"],
        ["reconcile"],
        ["rip", "--type", "movie", "--title", "New"],
        ["cancel", HONEST.uid],
        ["worker", "drain", "w1"],
    ):
        result = pipeline.mp(*command, expect=3)
        assert "share" in result.stderr, command
    assert os.listdir(pipeline.staging) == [], "nothing was written onto the mount point"
    assert pipeline.runlog() == []
    pipeline.staging.rmdir()
    (pipeline.root / "unmounted").rename(pipeline.staging)
    carried_through(pipeline)


# -- found by a hostile review: each once gave a traceback or stopped every run -------------


def _plant_odd_names(pipeline, job_id):
    running, pending = jobs_dir(pipeline) / "running", jobs_dir(pipeline) / "pending"
    running.mkdir(exist_ok=True)
    (running / f"{job_id}.w1.²").mkdir()  # '²'.isdigit() is True; int('²') fails
    (pending / ".wait.².").touch()
    (pending / ".wait.1.x").mkdir()  # a folder where a back-off file would be
    (pending / f".wait.99999999999999999999.{job_id}").touch()  # holds it back for ever


def _plant_bad_text(pipeline, job_id):
    completed = jobs_dir(pipeline) / "completed" / job_id.replace("p500", "p499")
    completed.mkdir(parents=True)
    (completed / "result.json").write_text('{"status": "completed", "worker": "\\udc80"}')
    pipeline.mark(OTHER, "1-ripped", "rip")
    metadata = {"uid": OTHER.uid, "created_at": "\\udc80", "priority": 10**26}
    meta = pipeline.folder(OTHER, "1-ripped") / ".pipeline" / "metadata.json"
    meta.write_text(json.dumps(metadata).replace("\\\\udc80", "\\udc80"))
    (meta.parent / "state").write_text("RIPPED\n")


def _plant_absurd_numbers(pipeline, job_id):
    spec_path = jobs_dir(pipeline) / "pending" / job_id / "spec.json"
    spec = json.loads(spec_path.read_text())
    spec.update(attempts=5000, max_attempts=10**6, not_before=1e300)
    spec_path.write_text(json.dumps(spec).replace("1e+300", "Infinity"))


@pytest.mark.parametrize("plant", [_plant_odd_names, _plant_bad_text, _plant_absurd_numbers])
def test_entries_that_once_stopped_every_run(pipeline, decoy, plant):
    job_id = started(pipeline)
    plant(pipeline, job_id)
    for command in (
        ["reconcile"],
        ["jobs"],
        ["status"],
        ["why", HONEST.uid],
        ["priority", HONEST.uid, "5"],
        ["dispatch"],
        ["claim", "--worker", "w1"],
    ):
        result = pipeline.mp(*command, expect=None)
        assert result.exit_code in (0, 1), (command, result.output)
        assert "Traceback" not in result.output, command
    carried_through(pipeline)


def test_a_spec_title_too_long_for_a_folder_is_refused(pipeline, decoy):
    from datetime import UTC, datetime

    from media_pipeline.jobs.spec import build_spec

    pipeline.mp("reconcile")
    long_key = ItemKey("movie", "x" * 300)
    spec = build_spec(pipeline.config, "remux", long_key, priority=0, now=datetime.now(UTC))
    folder = jobs_dir(pipeline) / "pending" / spec["id"]
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(spec))
    result = pipeline.mp("claim", "--worker", "w1")
    assert "refused, nothing was run" in result.stdout + result.stderr
    assert pipeline.mp("reconcile").exit_code == 0
    assert pipeline.queue("running") == []


def test_a_copy_of_a_running_job_never_runs_beside_it(pipeline, decoy):
    """A copy of a job on the share, claimed while the first runs: never two scripts of
    the item at once. Either the second claim sees the first and refuses, or (when the
    first saw the second's claim at its poll and stopped as a duplicate before the second
    looked) the second runs after the first has ended. The stand-in script holds a lock
    while it runs and logs "beside" if another holds it when it starts."""
    job_id = started(pipeline)
    copy_id = earlier_copy_id(job_id)
    pending = jobs_dir(pipeline) / "pending"
    shutil.copytree(pending / job_id, pending / copy_id)
    spec = json.loads((pending / copy_id / "spec.json").read_text())
    # Signed with the controller's key (a share writer's unsigned copy never runs at
    # all: test_signed_jobs.py): the item's own guard must keep the two apart.
    copy = signed_by_controller(pipeline, {**spec, "id": copy_id})
    (pending / copy_id / "spec.json").write_text(json.dumps(copy))
    pipeline.behave("remux", "alone")
    first = claim_in_background(pipeline, until=lambda: list(pipeline.root.glob("started.*")))
    # The second claim as a process of its own: were the copy run beside the first, its
    # script would wait for the release too, so the test watches for its start instead.
    second = subprocess.Popen(
        [str(Path(sys.executable).with_name("mp")), "claim", "--worker", "w1",
         "--config", str(pipeline.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while second.poll() is None and len(list(pipeline.root.glob("started.*"))) < 2:
        assert time.monotonic() < deadline, "the second claim neither ran nor refused"
        time.sleep(0.02)
    (pipeline.root / "release").touch()
    out, err = second.communicate(timeout=60)
    first_out, _ = first.communicate(timeout=60)
    log = pipeline.runlog()
    assert not [line for line in log if line.startswith("beside")], log
    refused = "another job of this item is running" in out + err
    stood_aside = b"another job of this item ran" in first_out
    assert refused or stood_aside, (out, err, first_out)


def test_a_forged_old_heartbeat_does_not_take_back_a_live_claim(pipeline, decoy):
    """A share writer sets a running job's heartbeat an hour back: its claim, minutes
    old (the time in its folder's name), is a later sign of life, so reconcile leaves it
    with its worker, and it runs once."""
    job_id = started(pipeline)
    worker = held_running(pipeline, job_id)
    (name,) = pipeline.queue("running")
    old(jobs_dir(pipeline) / "running" / name / "heartbeat")  # forged
    result = pipeline.mp("reconcile", "-v")
    assert "vanished" not in result.stderr and "taken back" not in result.stderr
    assert pipeline.queue("running") == [name]
    (pipeline.root / "release").touch()
    out, _err = worker.communicate(timeout=60)
    assert f"job {job_id} completed".encode() in out
    assert [line for line in pipeline.runlog() if line.startswith("start")] == [
        f"start remux {job_id}"
    ]


def test_a_second_job_of_an_item_appearing_mid_run_stops_both(pipeline, decoy):
    """A copy of a running job slipped past the check at its start (the first was renamed
    aside for a moment): the running copy sees it at its next poll and stops."""
    job_id = started(pipeline)
    pipeline.behave("remux", "spawn")
    worker = claim_in_background(
        pipeline, until=lambda: (pipeline.root / f"started.{job_id}").exists()
    )
    script, child = map(int, (pipeline.root / f"pids.{job_id}").read_text().split())
    copy = earlier_copy_id(job_id)
    (running_name,) = pipeline.queue("running")
    spec = json.loads((jobs_dir(pipeline) / "running" / running_name / "spec.json").read_text())
    (jobs_dir(pipeline) / "running" / f"{copy}.w2.99").mkdir()
    (jobs_dir(pipeline) / "running" / f"{copy}.w2.99" / "spec.json").write_text(
        json.dumps(signed_by_controller(pipeline, {**spec, "id": copy}))
    )
    out, _err = worker.communicate(timeout=30)  # within a poll
    assert b"another job of this item ran" in out
    for pid in (script, child):
        assert not running(pid), f"process {pid} of the stopped job still runs"
    shutil.rmtree(jobs_dir(pipeline) / "running" / f"{copy}.w2.99")
    pipeline.behave("remux", "ok")
    carried_through(pipeline)


def test_a_planted_claim_of_the_item_stops_nothing(pipeline, decoy):
    """Folders in running/ that name the item but hold no spec a trusted host signed (an
    empty claim, an unsigned copy, any name with the uid in it) run no script: the job
    beside them is not stopped as a duplicate, and its marker is not set aside."""
    job_id = started(pipeline)
    worker = held_running(pipeline, job_id)
    (running_name,) = pipeline.queue("running")
    running = jobs_dir(pipeline) / "running"
    spec = json.loads((running / running_name / "spec.json").read_text())
    copy = earlier_copy_id(job_id)
    (running / f"{copy}.w2.99").mkdir()
    (running / f"{copy}.w2.98").mkdir()
    (running / f"{copy}.w2.98" / "spec.json").write_text(json.dumps({**spec, "id": copy}))
    (running / f"x_{HONEST.uid}").mkdir()
    (running / f"{job_id}.w2.97").write_text("")  # a file, not a folder
    # Two heartbeats after the plant: the loop that beats has looked at running/ since.
    heartbeat = running / running_name / "heartbeat"
    for _ in range(2):
        beat = heartbeat.stat().st_mtime_ns
        deadline = time.monotonic() + 30
        while heartbeat.stat().st_mtime_ns == beat and worker.poll() is None:
            assert time.monotonic() < deadline, "the running job stopped beating"
            time.sleep(0.05)
    assert worker.poll() is None, "the running job stopped"
    (pipeline.root / "release").touch()
    out, _err = worker.communicate(timeout=60)
    assert f"job {job_id} completed".encode() in out, out
    assert [line for line in pipeline.runlog() if line.startswith("start")] == [
        f"start remux {job_id}"
    ]


def test_a_hidden_folder_naming_the_item_in_running_holds_nothing_back(pipeline, decoy):
    """`running/.nfs_<uid>` (a name NFS itself gives a file deleted while open) once made
    every claim of the item refuse its job, and three refusals failed the item."""
    (jobs_dir(pipeline) / "running").mkdir(parents=True, exist_ok=True)
    job_id = started(pipeline)
    (jobs_dir(pipeline) / "running" / f".nfs0001_{HONEST.uid}").mkdir()
    result = pipeline.mp("claim", "--worker", "w1")
    assert f"job {job_id} completed" in result.stdout, result.output
    carried_through(pipeline)


def test_forged_silences_a_live_worker_answers_never_fail_the_item(pipeline, decoy):
    """Three times the running job is made to look silent (its heartbeat and claim time
    moved an hour back) and reconcile takes it back: each time its worker was alive and
    said so, so no take-back counts as a failed attempt (max_attempts is 3)."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 3})
    job_id = started(pipeline)
    for _round in range(3):
        worker = held_running(pipeline, job_id)
        (name,) = pipeline.queue("running")
        silence(jobs_dir(pipeline) / "running" / name)
        out, _err = worker.communicate(timeout=60)
        assert b"taken back" in out, out
        said = pipeline.mp("reconcile", "-v").stderr
        assert "taken back" in said and "FAILED" not in said, said
        assert pipeline.queue("failed") == []
        (pipeline.root / f"started.{job_id}").unlink()
    spec = json.loads((jobs_dir(pipeline) / "pending" / job_id / "spec.json").read_text())
    assert spec["attempts"] == 3, "the spec still counts every take-back"
    pipeline.behave("remux", "ok")
    carried_through(pipeline)


def test_a_take_back_nobody_answers_still_counts(pipeline, decoy):
    """A worker that is gone (killed with its script) answers nothing: after max_attempts
    take-backs the job fails for good, as before."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 2})
    job_id = started(pipeline)
    pipeline.behave("remux", "spawn")
    for expected in ("pending", "failed"):
        worker = claim_in_background(
            pipeline, until=lambda: (pipeline.root / f"started.{job_id}").exists()
        )
        script = int((pipeline.root / f"pids.{job_id}").read_text().split()[0])
        worker.kill()  # the worker and its script's group gone, as with the host
        worker.wait()
        with contextlib.suppress(ProcessLookupError):  # its guard may have ended it
            os.killpg(script, signal.SIGKILL)
        (name,) = pipeline.queue("running")
        silence(jobs_dir(pipeline) / "running" / name)
        pipeline.mp("reconcile")
        assert pipeline.queue(expected) == [job_id]
        with contextlib.suppress(FileNotFoundError):
            (pipeline.root / f"started.{job_id}").unlink()


@pytest.mark.parametrize("planted", ["result.json", "claimed_by"])
def test_a_folder_where_mp_writes_a_jobs_file_stops_only_that_job(pipeline, decoy, planted):
    """A folder named result.json (or claimed_by) in a job's folder: the claim refuses or
    sets aside that job with one sentence naming the file, and every later run works
    (it once stopped every reconcile for good, naming a temporary file)."""
    job_id = started(pipeline)
    pipeline.mark(OTHER, "1-ripped", "rip")
    (jobs_dir(pipeline) / "pending" / job_id / planted / "x").mkdir(parents=True)
    result = pipeline.mp("claim", "--worker", "w1", expect=None)
    said = result.stdout + result.stderr
    assert f"{planted} is a folder where mp writes a file" in said, said
    assert ".tmp" not in said and "Traceback" not in said
    assert pipeline.queue("running") == []
    assert pipeline.mp("reconcile").exit_code == 0
    carried_through(pipeline)
    carried_through(pipeline, OTHER)


def test_a_stale_job_with_a_folder_for_its_result_is_set_aside(pipeline, decoy):
    job_id = started(pipeline)
    pipeline.mark(OTHER, "1-ripped", "rip")
    running = jobs_dir(pipeline) / "running"
    running.mkdir(exist_ok=True)
    folder = running / f"{job_id}.w9.1.t{int(time.time())}"
    (jobs_dir(pipeline) / "pending" / job_id).rename(folder)
    (folder / "result.json").mkdir()
    silence(folder)
    said = pipeline.mp("reconcile", "-v").stderr
    assert (
        "result.json is a folder where mp writes a file; move it away; moved to rejected/" in said
    )
    assert "Ronin (1998): new item" in said, "the run went on"
    carried_through(pipeline)


# -- filing stays in the item's own place ---------------------------------------------------

FILING_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "filebot-process.sh"
LOST = ItemKey("tv", "Lost (2004)", "S01 Disc1")


def with_the_reference_filing_script(pipeline) -> None:
    """The worker files with the project's own filing script (its start logged first):
    what a forged destination would reach if the worker ran it."""
    (pipeline.scripts / "filebot.sh").write_text(
        "#!/usr/bin/env bash\n"
        'printf "start filebot %s\\n" "$MP_JOB_ID" >> "$MP_TEST_DIR/runlog"\n'
        f'MP_NO_FILEBOT=1 exec bash "{FILING_SCRIPT}" "$@"\n'
    )


def pending_filing(pipeline, key: ItemKey) -> tuple[str, Path]:
    """key transcoded (real media where ffmpeg is) and its filing job pending: its id
    and its spec's path."""
    folder = pipeline.mark(key, "3-transcoded", "transcode")
    if (pipeline.root / "sample.mkv").exists():
        shutil.copy(pipeline.root / "sample.mkv", folder / "video.mkv")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    return job_id, jobs_dir(pipeline) / "pending" / job_id / "spec.json"


def forge_destination(pipeline, spec_path: Path, destination: Path | str) -> None:
    """The destination changed before any reconcile could see it, and the file list
    dropped (the script then files the item's files at the destination); signed again
    with the controller's key, so that the worker's place check, not the signature,
    must refuse it."""
    spec = json.loads(spec_path.read_text())
    spec["destination"] = str(destination)
    spec.pop("files", None)
    spec_path.write_text(json.dumps(signed_by_controller(pipeline, spec)))


def refused_before_its_script(pipeline, job_id: str, reason: str) -> None:
    result = pipeline.mp("claim", "--worker", "w1")
    said = result.stdout + result.stderr
    assert f"job {job_id} refused, nothing was run" in said and reason in said, said
    assert pipeline.runlog() == [], "the filing script never started"
    assert [reason in text for text in rejected_reasons(pipeline)] == [True]


def test_a_forged_destination_beside_a_planted_link_reaches_nothing(pipeline, decoy):
    """`library/Movies/x.b/authorized_keys` once reached ~/.ssh: inside library_root with
    no link on the way, it ran, and the filing script put its copy at
    `x.b/.mp-part.<hash>.b/authorized_keys`, through a link planted at `.mp-part.<hash>.b`.
    The worker refuses it now before the script starts; the honest job still files."""
    with_the_reference_filing_script(pipeline)
    job_id, spec_path = pending_filing(pipeline, HONEST)
    library = pipeline.root / "library"
    folder = library / "Movies" / "x.b"
    folder.mkdir(parents=True)
    target = folder / "authorized_keys"
    planted = folder / f".mp-part.{hashlib.sha256(str(target).encode()).hexdigest()[:16]}.b"
    planted.symlink_to(decoy / "home" / ".ssh")
    forge_destination(pipeline, spec_path, target)
    refused_before_its_script(
        pipeline, job_id, "field 'destination' is not a movie's file in its own folder"
    )
    assert (decoy / "home" / ".ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA owner\n"
    assert list(folder.iterdir()) == [planted]
    carried_through(pipeline)
    assert (library / "Movies" / HONEST.title / f"{HONEST.title}.mkv").is_file()
    assert list(folder.iterdir()) == [planted]


@pytest.mark.parametrize(
    ("key", "forged", "reason"),
    [
        (HONEST, "TV Shows/Lost (2004)/Season 01/", "is not a movie's file in its own folder"),
        (HONEST, "Movies/Heat (1995)/Featurettes/Heat (1995).mkv", "is not a movie's file"),
        (LOST, "TV Shows/Lost (2004)/Season 03/", "is not its disc's season folder, 'Season 01'"),
        (LOST, "Movies/Heat (1995)/Heat (1995).mkv", "is not a show's season folder"),
        (LOST, "TV Shows/Lost (2004)/Season 01/Extras/Season 01/", "is not a show's season"),
    ],
    ids=[
        "movie-in-a-show",
        "movie-as-an-extra",
        "another-season",
        "disc-as-a-movie",
        "below-a-season",
    ],
)
def test_a_forged_destination_in_another_items_place_runs_nothing(
    pipeline, decoy, key, forged, reason
):
    """Another item's folder, or another season's: refused by the worker before the
    filing script starts, and nothing is made there."""
    with_the_reference_filing_script(pipeline)
    job_id, spec_path = pending_filing(pipeline, key)
    library = pipeline.root / "library"
    forge_destination(pipeline, spec_path, library / forged)
    refused_before_its_script(pipeline, job_id, f"field 'destination' {reason}")
    assert list(library.rglob("*")) == [], "nothing was filed anywhere"


def test_an_approved_destination_of_another_shape_is_asked_again_not_dispatched(pipeline, decoy):
    """One approved before the gate held destinations to the item's place (or a database
    edited since): dispatch asks again rather than queue a job its worker refuses."""
    at_the_filing_gate(pipeline)
    pipeline.mp("approve", HONEST.uid, "--yes")
    elsewhere = str(pipeline.root / "library" / "Movies" / "Heat (1995).mkv")
    with contextlib.closing(sqlite3.connect(pipeline.database)) as db, db:
        db.execute(
            "UPDATE human_approvals SET destination = ? WHERE gate = ?",
            [elsewhere, "filebot_confirm"],
        )
    result = pipeline.mp("dispatch")
    assert (
        "is not a movie's file in its own folder, 'Movies/<Title (Year)>/<name>.mkv'; not "
        "dispatched, filebot_confirm asks again"
    ) in result.stdout
    assert pipeline.queue("pending") == []
    pipeline.mp("reconcile")
    pipeline.mp("approve", HONEST.uid, "--yes")
    carried_through(pipeline)
    assert not (pipeline.root / "library" / "Movies" / "Heat (1995).mkv").exists()


def test_a_signed_decision_whose_destination_is_not_the_items_place(pipeline, decoy):
    """Even a decision this controller signed is held to the item's place when it is
    restored: it may have been signed before the gate held destinations to it."""
    restored_signed_approval(
        pipeline, str(pipeline.root / "library" / "Movies" / "x.b" / "authorized_keys")
    )
    assert "its destination is not a movie's file in its own folder" in (
        pipeline.mp("reconcile", "-v").stderr
    )
    assert pipeline.queue("pending") == []


def test_a_stage_folder_swapped_for_a_link_before_filing_starts_reaches_nothing(pipeline, decoy):
    """Between the worker's checks and its script's start, a share writer swaps the
    stage folder above the item for a link to a look-alike outside the roots: the
    script, started in the folder the worker opened, sees that its name leads elsewhere
    now and files nothing; nothing outside changes, and the honest item still files."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    with_the_reference_filing_script(pipeline)
    job_id, _spec = pending_filing(pipeline, HONEST)
    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("mp")), "claim", "--worker", "w1",
         "--config", str(pipeline.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "MP_TEST_DIR": str(pipeline.root), "MP_STOP_AT": "claim:starting"},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while worker.poll() is None and process_state(worker.pid) != "T":
        assert time.monotonic() < deadline, "the worker never reached claim:starting"
        time.sleep(0.02)
    stage = pipeline.staging / "3-transcoded" / "movies"
    look_alike = decoy / "movies"
    shutil.copytree(stage, look_alike)
    before = tree_snapshot(decoy)
    stage.rename(stage.with_name("movies.aside"))
    stage.symlink_to(look_alike)
    os.kill(worker.pid, signal.SIGCONT)
    out, err = worker.communicate(timeout=60)
    assert f"job {job_id} failed for good" in out + err, out + err
    log = (jobs_dir(pipeline) / "failed" / job_id / "log").read_text()
    assert "is no longer the folder mp checked: nothing filed" in log, log
    assert tree_snapshot(decoy) == before, "something outside the roots changed"
    stage.unlink()
    stage.with_name("movies.aside").rename(stage)
    shutil.rmtree(look_alike)  # the decoy fixture holds the tree as it was at its start
    pipeline.mp("reconcile")
    pipeline.mp("retry", HONEST.uid)  # the person, once the share is put right
    carried_through(pipeline)


def test_a_flood_of_junk_in_the_queue_is_said_once_and_never_read_again(pipeline):
    """2,000 names that are no job in pending/: reconcile moves them to rejected/ and says
    so in 21 lines; after that no run reads their reason files (status and a plain
    `mp jobs` show the newest few and how many)."""
    job_id = started(pipeline)
    pending = jobs_dir(pipeline) / "pending"
    for number in range(2000):
        (pending / f"junk-{number:04d}").write_text("")
    said = pipeline.mp("reconcile", "-v").stderr
    moved = [line for line in said.splitlines() if "moved to rejected/" in line]
    assert len(moved) == 21 and "... and 1980 more entries" in moved[-1], moved[-3:]
    holders = sorted((jobs_dir(pipeline) / "rejected").iterdir())
    assert len(holders) == 2000
    watch = OpenWatch(holders[0] / "reason")
    try:
        assert pipeline.mp("reconcile", "-v").stderr.count("rejected/") == 0
        status = pipeline.mp("status", "--json").stdout
        assert json.loads(status)["rejected_total"] == 2000
        assert len(json.loads(status)["rejected"]) == 20
        listed = json.loads(pipeline.mp("jobs", "--json").stdout)
        assert sum(1 for job in listed["jobs"] if job["state"] == "rejected") == 50
        assert watch.opens() == 0, "a reason file of an old entry was read"
    finally:
        watch.close()
    assert pipeline.queue("pending") == [job_id]
    carried_through(pipeline)


def test_rejected_entries_past_retention_go_unless_they_hold_something(pipeline):
    """After retention_days, rejected/ entries that hold nothing anyone could miss (an
    empty file, a link, a FIFO, an empty folder, a job folder of mp's files) are
    removed; one holding a file with content stays, and a link's target is untouched."""
    pipeline.write_pipeline_config(jobs={"retention_days": 1, "spec_lifetime_days": 1})
    target = pipeline.root / "kept-target.mkv"
    target.write_bytes(b"media")
    pending = jobs_dir(pipeline) / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    (pending / "empty-file").write_text("")
    (pending / "a-link").symlink_to(target)
    os.mkfifo(pending / "a-fifo")
    (pending / "empty-folder").mkdir()
    (pending / "job_p500_bad-date").mkdir()
    (pending / "job_p500_bad-date" / "log").write_text("a log\n")
    (pending / "movie.mkv").write_bytes(b"someone's media")
    (pending / "a-folder").mkdir()
    (pending / "a-folder" / "film.mkv").write_bytes(b"more media")
    pipeline.mp("reconcile")
    rejected = jobs_dir(pipeline) / "rejected"
    assert len(list(rejected.iterdir())) == 7
    for holder in list(rejected.iterdir()):  # two days pass
        stamp, _, rest = holder.name.partition(".")
        holder.rename(rejected / f"{int(stamp[:4]) - 1}{stamp[4:]}.{rest}")
    said = pipeline.mp("reconcile", "-v").stderr
    assert "rejected/: 5 entries past retention_days removed; 2 kept" in said, said
    left = sorted(holder.name.partition(".")[2] for holder in rejected.iterdir())
    assert left == ["a-folder", "movie.mkv"]
    assert target.read_bytes() == b"media"
    for holder in rejected.iterdir():
        entry = holder / "entry"
        assert entry.is_dir() or entry.read_bytes() == b"someone's media"
    assert pipeline.mp("reconcile", "-v").stderr.count("rejected/") == 0, "said once"
