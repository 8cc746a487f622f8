"""Forged and replayed jobs (issue 22): a worker runs, and reconcile acts on, only a
spec a trusted host signed, for its own folder, for now. Each case keeps a decoy outside
the roots byte for byte (the `decoy` fixture), runs no script for the forgery, and then
carries the honest item to the library."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import (
    earlier_copy_id,
    lose_the_database,
    signed_by_controller,
)
from hostile import (
    HONEST,
    at_the_filing_gate,
    carried_through,
    claim_refuses,
    held_running,
    jobs_dir,
    runs_of,
    started,
)

from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.keys import CONTROLLER, Signer, public_text
from media_pipeline.jobs.queue import make_job_id
from media_pipeline.jobs.signature import sign_spec
from media_pipeline.jobs.spec import build_spec
from media_pipeline.store import private_key

EVIL = ItemKey("movie", "Evil (2001)")
FAKE_SHOW = ItemKey("tv", "Fake Show", "S01 Disc1")


def spec_path(pipeline, state: str, job_id: str):
    return jobs_dir(pipeline) / state / job_id / "spec.json"


def pending_spec(pipeline, job_id: str):
    """The path of a pending job's spec.json, and the spec it holds."""
    path = spec_path(pipeline, "pending", job_id)
    return path, json.loads(path.read_text())


def plant(pipeline, spec: dict, state: str = "pending") -> str:
    """A job folder written straight onto the share, as a share writer can."""
    folder = jobs_dir(pipeline) / state / spec["id"]
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(spec))
    return spec["id"]


def forged_filing(pipeline, key: ItemKey, destination: str | None = None) -> dict:
    """The filing job dispatch would write for key, built with mp's own code."""
    return build_spec(
        pipeline.config,
        "filebot",
        key,
        priority=0,
        now=datetime.now(UTC),
        destination=destination,
    )


def link_into_decoy(pipeline, decoy) -> str:
    """A folder in the library that is a link to the decoy's ~/.ssh; the destination a
    forged filing job aims through it."""
    movies = pipeline.root / "library" / "Movies"
    movies.mkdir(parents=True, exist_ok=True)
    (movies / "x.b").symlink_to(decoy / "home" / ".ssh")
    return str(movies / "x.b" / "authorized_keys")


# -- forged jobs ------------------------------------------------------------------------


@pytest.mark.parametrize("seen_first_by", ["worker", "reconcile"])
def test_a_forged_filing_job_for_an_unknown_item_is_never_run_nor_taken_in(
    pipeline, decoy, seen_first_by
):
    started(pipeline)
    job_id = plant(pipeline, forged_filing(pipeline, EVIL, link_into_decoy(pipeline, decoy)))
    result = pipeline.mp("reconcile", "-v") if seen_first_by == "reconcile" else None
    if result is not None:
        assert "new item" not in result.stderr
        assert f"job {job_id} in pending/: not trusted: it carries no signature" in result.stderr
    else:
        pipeline.mp("claim", "--worker", "w1")
        pipeline.mp("claim", "--worker", "w1")
    assert EVIL.title not in {item["title"] for item in pipeline.status_json()["items"]}
    assert runs_of(pipeline, "filebot") == 0
    carried_through(pipeline)
    assert runs_of(pipeline, "filebot") == 1  # the honest item's own filing, once


def test_reconcile_takes_no_item_in_even_from_a_signed_filing_job(pipeline, decoy):
    """Only a rip (a ripper's disc) brings a new item: a filing job for an item the
    database lacks, signed with the controller's own key, leaves the database as it was
    (its item would come back from its markers after a database loss)."""
    started(pipeline)
    plant(pipeline, signed_by_controller(pipeline, forged_filing(pipeline, EVIL)))
    said = pipeline.mp("reconcile", "-v").stderr
    assert "new item" not in said
    assert EVIL.title not in {item["title"] for item in pipeline.status_json()["items"]}


def test_a_forged_filing_job_for_an_item_at_the_gate_files_nothing(pipeline, decoy):
    at_the_filing_gate(pipeline)
    (item,) = pipeline.status_json()["items"]
    assert item["state"] == "TRANSCODED"
    # Exactly what dispatch would write after an approval, but nobody approved it.
    job_id = plant(pipeline, forged_filing(pipeline, HONEST))
    said = pipeline.mp("reconcile", "-v").stderr
    assert "TRANSCODED -> FILING" not in said
    assert f"job {job_id} in pending/: not trusted" in said
    (item,) = pipeline.status_json()["items"]
    assert item["state"] == "TRANSCODED"
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    assert runs_of(pipeline, "filebot") == 0
    pipeline.mp("approve", HONEST.uid, "--yes")
    carried_through(pipeline)


def test_a_forged_fake_episode_for_an_unknown_show_is_not_filed(pipeline, decoy):
    started(pipeline)
    spec = forged_filing(pipeline, FAKE_SHOW)
    spec["episodes"] = {"season": 1, "first": 1}
    job_id = plant(pipeline, spec)
    claim_refuses(pipeline, job_id, "not trusted: it carries no signature")
    pipeline.mp("reconcile")
    assert FAKE_SHOW.title not in {item["title"] for item in pipeline.status_json()["items"]}
    assert not (pipeline.root / "library" / "TV Shows").exists()
    carried_through(pipeline)


def test_an_honest_filing_spec_edited_in_place_is_refused(pipeline, decoy):
    at_the_filing_gate(pipeline)
    pipeline.mp("approve", HONEST.uid, "--yes")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    path, spec = pending_spec(pipeline, job_id)
    path.write_text(json.dumps({**spec, "destination": link_into_decoy(pipeline, decoy)}))
    claim_refuses(pipeline, job_id, "its signature does not verify with controller's key")
    carried_through(pipeline)


def test_an_unsigned_copy_of_a_valid_spec_runs_nothing(pipeline, decoy):
    job_id = started(pipeline)
    path, spec = pending_spec(pipeline, job_id)
    del spec["signature"]
    path.write_text(json.dumps(spec))
    claim_refuses(pipeline, job_id, "not trusted: it carries no signature")
    carried_through(pipeline)
    assert runs_of(pipeline, "remux") == 1


def test_a_spec_signed_by_a_key_this_host_does_not_trust_runs_nothing(pipeline, decoy):
    job_id = started(pipeline)
    path, spec = pending_spec(pipeline, job_id)
    stranger = Signer(CONTROLLER, os.urandom(32))  # a key that calls itself the controller
    path.write_text(json.dumps(sign_spec(spec, stranger)))
    claim_refuses(pipeline, job_id, "its signature does not verify with controller's key")
    mallory = Signer("mallory", os.urandom(32))
    job_id = started_again(pipeline)
    spec_path(pipeline, "pending", job_id).write_text(json.dumps(sign_spec(spec, mallory)))
    claim_refuses(pipeline, job_id, "signed by 'mallory', whose key is not trusted here")
    carried_through(pipeline)


def started_again(pipeline) -> str:
    """The honest item's job queued again after a refusal; its id."""
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    return job_id


def test_a_rippers_key_signs_only_the_rips_of_its_own_drives(pipeline, decoy):
    job_id = started(pipeline)
    seed = os.urandom(32)
    pipeline.mp("keys", "trust", "ct302", public_text(seed))
    path, spec = pending_spec(pipeline, job_id)
    path.write_text(json.dumps(sign_spec(spec, Signer("ct302", seed))))
    claim_refuses(pipeline, job_id, "ct302's key signs only the rips of ct302's own drives")
    carried_through(pipeline)


# -- replays ----------------------------------------------------------------------------


def test_a_signed_spec_copied_under_another_job_id_is_refused(pipeline, decoy):
    job_id = started(pipeline)
    copy_id = earlier_copy_id(job_id)  # sorts first: the claim meets the copy first
    shutil.copytree(
        jobs_dir(pipeline) / "pending" / job_id, jobs_dir(pipeline) / "pending" / copy_id
    )
    claim_refuses(pipeline, copy_id, f"spec id '{job_id}' does not match the job's folder")
    carried_through(pipeline)
    assert runs_of(pipeline, "remux") == 1


@pytest.mark.parametrize("seen_first_by", ["worker", "reconcile"])
def test_a_spec_put_back_after_its_job_ran_is_refused(pipeline, decoy, seen_first_by):
    job_id = started(pipeline)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    pipeline.mp("reconcile")
    shutil.copytree(
        jobs_dir(pipeline) / "completed" / job_id, jobs_dir(pipeline) / "pending" / job_id
    )
    for name in ("result.json", "log", "heartbeat", "claimed_by", "claimed_at", "pid"):
        (jobs_dir(pipeline) / "pending" / job_id / name).unlink(missing_ok=True)
    if seen_first_by == "worker":
        claim_refuses(pipeline, job_id, "this job ran already (it is in completed/)")
    else:
        said = pipeline.mp("reconcile", "-v").stderr
        assert f"job {job_id} in pending/: not trusted: this job completed already" in said
        assert pipeline.queue("pending") == []
    carried_through(pipeline)
    assert runs_of(pipeline, "remux") == 1


def test_a_spec_put_back_after_its_folder_expired_is_refused(pipeline, decoy):
    job_id = started(pipeline)
    _path, spec = pending_spec(pipeline, job_id)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    shutil.rmtree(jobs_dir(pipeline) / "completed" / job_id)  # expired, as after 30 days
    # As the controller signed it eight days ago (its own key; the spec's time with it).
    seed = private_key(str(pipeline.signing_key))[:32]
    issued = time.time() - 8 * 86400
    replay = sign_spec(spec, Signer(CONTROLLER, seed), now=issued)
    plant(pipeline, replay)
    claim_refuses(pipeline, job_id, "issued 8.0 days ago, longer than jobs.spec_lifetime_days")
    carried_through(pipeline)
    assert runs_of(pipeline, "remux") == 1


# -- entries reconcile acts on -----------------------------------------------------------


@pytest.mark.parametrize("folder", ["failed", "cancelled"])
@pytest.mark.parametrize("dated", ["now", "in a year"])
def test_an_empty_folder_in_failed_or_cancelled_changes_no_item(pipeline, decoy, folder, dated):
    started(pipeline)
    when = datetime.now(UTC) + (timedelta(days=365) if dated == "in a year" else timedelta())
    planted = make_job_id("remux", HONEST, 0, when)
    (jobs_dir(pipeline) / folder / planted).mkdir(parents=True)
    said = pipeline.mp("reconcile", "-v").stderr
    assert f"job {planted} in {folder}/: not trusted: no spec.json" in said, said
    (item,) = pipeline.status_json()["items"]
    assert item["state"] == "REMUXING"
    history = pipeline.mp("history", HONEST.uid).stdout
    assert "cancelled" not in history.lower() and "FAILED" not in history
    carried_through(pipeline)


# -- the commands that sign -------------------------------------------------------------


def test_mp_priority_never_signs_a_spec_it_did_not_sign(pipeline, decoy):
    job_id = started(pipeline)
    with open(spec_path(pipeline, "pending", job_id)) as handle:
        spec = json.load(handle)
    forged = {**spec, "output_dir": str(decoy / "etc")}
    spec_path(pipeline, "pending", job_id).write_text(json.dumps(forged))
    said = pipeline.mp("priority", HONEST.uid, "5").stdout
    assert "was not one this controller signed: moved to rejected/" in said, said
    assert pipeline.queue("pending") == []
    carried_through(pipeline)


def test_mp_priority_signs_its_own_spec_again_for_the_new_name(pipeline):
    old_id = started(pipeline)
    pipeline.mp("priority", HONEST.uid, "5")
    (job_id,) = pipeline.queue("pending")
    assert job_id != old_id
    assert json.loads(spec_path(pipeline, "pending", job_id).read_text())["id"] == job_id
    assert f"job {job_id} completed" in pipeline.mp("claim", "--worker", "w1").stdout


# -- keys -------------------------------------------------------------------------------


def test_keys_show_prints_the_line_another_host_runs(pipeline):
    pipeline.mp("reconcile")  # the controller's database: it signs as the controller
    shown = pipeline.mp("keys", "show").stdout
    line = shown.strip().splitlines()[-1].split()
    assert line[:4] == ["mp", "keys", "trust", "controller"]
    seed = private_key(str(pipeline.signing_key))[:32]
    assert line[4] == public_text(seed)
    assert (pipeline.signing_key.stat().st_mode & 0o777) == 0o600
    listed = pipeline.mp("keys", "list").stdout
    assert f"controller {line[4]}" in listed  # its own key, trusted here


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("../x", "ed25519:" + "A" * 43 + "="), "is not a signer's name"),
        (("ct302", "ssh-ed25519 AAAA"), "is not a key as 'mp keys show' prints it"),
        (("ct302", "ed25519:" + "A" * 42), "is not a key as 'mp keys show' prints it"),
    ],
)
def test_keys_trust_refuses_what_is_not_a_name_and_a_key(pipeline, args, problem):
    result = pipeline.mp("keys", "trust", *args, expect=2)
    assert problem in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not pipeline.config.trusted_keys or not os.path.exists(pipeline.config.trusted_keys)


def test_a_trust_file_others_may_write_stops_the_claim_and_keeps_the_job(pipeline):
    job_id = started(pipeline)
    pipeline.mp("keys", "trust", "ct302", public_text(os.urandom(32)))
    os.chmod(pipeline.config.trusted_keys, 0o666)
    result = pipeline.mp("claim", "--worker", "w1", expect=3)
    assert "may be written by others (mode 0666)" in result.stderr
    assert pipeline.queue("pending") == [job_id] and pipeline.runlog() == []
    os.chmod(pipeline.config.trusted_keys, 0o644)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout


# -- from the hostile review: a genuine spec in the wrong place --------------------------


def test_another_jobs_genuine_spec_under_a_forged_name_in_failed_fails_nothing(pipeline, decoy):
    job_id = started(pipeline)
    later = make_job_id("remux", HONEST, 0, datetime.now(UTC) + timedelta(days=365))
    folder = jobs_dir(pipeline) / "failed" / later
    folder.mkdir()
    shutil.copy(spec_path(pipeline, "pending", job_id), folder / "spec.json")
    (folder / "result.json").write_text(json.dumps({"status": "failed", "reason": "forged"}))
    said = pipeline.mp("reconcile", "-v").stderr
    assert f"job {later} in failed/: not trusted: its spec is another job's" in said, said
    (item,) = pipeline.status_json()["items"]
    assert item["state"] == "REMUXING"
    carried_through(pipeline)


def test_a_finished_job_seen_again_in_another_finished_folder_changes_nothing(pipeline, decoy):
    job_id = started(pipeline)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    pipeline.mp("reconcile")
    queue = jobs_dir(pipeline)
    shutil.copytree(queue / "completed" / job_id, queue / "failed" / job_id)
    said = pipeline.mp("reconcile", "-v").stderr
    assert f"job {job_id} in failed/: not trusted: this job completed already" in said, said
    assert "FAILED" not in said
    carried_through(pipeline)


def test_a_spec_put_back_with_its_finished_folder_gone_is_refused_by_the_host_that_ran_it(
    pipeline, decoy
):
    job_id = started(pipeline)
    queue = jobs_dir(pipeline)
    kept = pipeline.root / "kept-spec.json"
    shutil.copy(queue / "pending" / job_id / "spec.json", kept)
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    shutil.rmtree(queue / "completed" / job_id)  # the share writer removes the record
    (queue / "pending" / job_id).mkdir()
    shutil.copy(kept, queue / "pending" / job_id / "spec.json")
    claim_refuses(pipeline, job_id, "this job ran on this host already: a copy put back")
    assert runs_of(pipeline, "remux") == 1


def test_refusals_of_what_a_share_writer_changed_never_fail_the_item(pipeline, decoy):
    """Three refusals of the item's job fail it when the controller's own spec is
    refused; a spec that is another job's, or a retry's field changed on the share, is
    the share writer's doing and counts for nothing."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 2})
    job_id = started(pipeline)
    spec = json.loads(spec_path(pipeline, "pending", job_id).read_text())
    for round_ in range(3):
        (job_id,) = pipeline.queue("pending")
        path = spec_path(pipeline, "pending", job_id)
        if round_ % 2:
            path.write_text(json.dumps({**spec, "attempts": -1}))
        else:
            other = make_job_id("remux", HONEST, 0, datetime.now(UTC) - timedelta(days=1))
            path.parent.rename(path.parent.with_name(other))  # another name, same spec
            job_id = other
        claim_refuses(pipeline, job_id, "not trusted:")
        pipeline.mp("reconcile")
        (item,) = pipeline.status_json()["items"]
        assert item["state"] in ("RIPPED", "REMUXING"), item
        pipeline.mp("dispatch")
    carried_through(pipeline)


def test_a_hazard_whose_name_says_not_trusted_still_counts(pipeline, decoy):
    """Whether a refusal counts is read from the start of its reason, where mp puts
    it: a link named 'not trusted: x' in the item's folder is a hazard like any other."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    job_id = started(pipeline)
    (pipeline.folder(HONEST, "1-ripped") / "not trusted: x").symlink_to(decoy / "etc" / "shadow")
    claim_refuses(pipeline, job_id, "is a link")
    said = pipeline.mp("reconcile", "-v").stderr
    assert "REMUXING -> FAILED" in said, said


def test_mp_priority_refuses_another_jobs_spec(pipeline, decoy):
    job_id = started(pipeline)
    pending = jobs_dir(pipeline) / "pending"
    later = make_job_id("remux", HONEST, 0, datetime.now(UTC) + timedelta(seconds=1))
    (pending / job_id).rename(pending / later)  # a genuine spec under another name
    said = pipeline.mp("priority", HONEST.uid, "5").stdout
    assert "was not one this controller signed: moved to rejected/" in said, said
    assert pipeline.queue("pending") == []
    carried_through(pipeline)
    assert runs_of(pipeline, "remux") == 1


def test_keys_show_warns_where_there_is_no_database_and_no_rip(pipeline):
    shown = pipeline.mp("keys", "show").stdout
    assert "warning: this host has no database" in shown
    assert "run 'mp reconcile' here once" in shown


def test_keys_trust_refuses_controller_in_other_letters(pipeline):
    said = pipeline.mp("keys", "trust", "Controller", public_text(os.urandom(32)), expect=2)
    assert "is not a signer's name" in said.stderr


def test_keys_trust_says_why_it_cannot_write(pipeline):
    # A folder nobody can make, not even root: /proc holds no new folders.
    unwritable = "/proc/self/mp-no-such-folder/trusted_keys"
    pipeline.write_pipeline_config(trusted_keys=unwritable)
    said = pipeline.mp("keys", "trust", "ct302", public_text(os.urandom(32)), expect=1)
    assert f"cannot write {unwritable}" in said.stderr, said.stderr
    assert "units.user" in said.stderr
    assert len(said.stderr.strip().splitlines()) == 1


# -- cancels ----------------------------------------------------------------------------


def beats_after(folder, moment: float, count: int = 2) -> None:
    """Wait until the worker has touched the job's heartbeat `count` times after moment:
    every poll of its loop between two beats has looked at the cancel file."""
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < count:
        assert time.monotonic() < deadline, "the worker stopped beating"
        stamp = (folder / "heartbeat").stat().st_mtime_ns
        if stamp > moment * 1e9:
            seen.add(stamp)
        time.sleep(0.02)


def test_a_cancel_file_the_controller_did_not_sign_stops_nothing(pipeline, decoy):
    job_id = started(pipeline)
    worker = held_running(pipeline, job_id)
    (name,) = pipeline.queue("running")
    folder = jobs_dir(pipeline) / "running" / name
    (folder / "cancel").write_text("controller " + "A" * 86 + "==\n")  # a forged cancel
    beats_after(folder, time.time())
    (pipeline.root / "release").touch()
    out, _err = worker.communicate(timeout=60)
    assert f"job {job_id} completed" in out.decode()
    carried_through(pipeline)


def test_a_pending_job_moved_into_cancelled_cancels_nothing(pipeline, decoy):
    job_id = started(pipeline)
    queue = jobs_dir(pipeline)
    (queue / "pending" / job_id).rename(queue / "cancelled" / job_id)
    said = pipeline.mp("reconcile", "-v").stderr
    assert f"job {job_id} in cancelled/: not trusted: no cancel the controller signed" in said
    assert "CANCELLED" not in said
    carried_through(pipeline)


@pytest.mark.parametrize("where", ["pending", "running"])
def test_mp_cancel_signs_its_cancel_and_the_item_ends_cancelled(pipeline, where):
    job_id = started(pipeline)
    worker = None
    if where == "running":
        worker = held_running(pipeline, job_id)
    pipeline.mp("cancel", HONEST.uid)
    if worker is not None:
        out, _err = worker.communicate(timeout=60)
        assert f"job {job_id} cancelled" in out.decode()
    assert pipeline.queue("cancelled") == [job_id]
    text = (jobs_dir(pipeline) / "cancelled" / job_id / "cancel").read_text()
    assert text.startswith("controller ")
    lose_the_database(pipeline)  # reconcile learns the cancel from the queue alone
    said = pipeline.mp("reconcile", "-v").stderr
    assert "rejected" not in said, said


def test_keys_untrust_removes_a_key_and_its_jobs_are_refused(pipeline, decoy):
    old_seed, new_seed = os.urandom(32), os.urandom(32)
    pipeline.mp("keys", "trust", "ct302", public_text(old_seed))
    pipeline.mp("keys", "trust", "ct302", public_text(new_seed))
    said = pipeline.mp("keys", "untrust", "ct302", public_text(old_seed)).stdout
    assert "no longer trusting 1 key(s) of ct302" in said
    listed = pipeline.mp("keys", "list").stdout
    assert public_text(new_seed) in listed and public_text(old_seed) not in listed
    again = pipeline.mp("keys", "untrust", "ct302", public_text(old_seed), expect=2)
    assert "holds no key of ct302 that is" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    # A spec signed with the key no longer trusted is refused for it.
    job_id = started(pipeline)
    path, spec = pending_spec(pipeline, job_id)
    path.write_text(json.dumps(sign_spec(spec, Signer("ct302", old_seed))))
    claim_refuses(pipeline, job_id, "its signature does not verify with ct302's key")
    carried_through(pipeline)


def test_mp_cancel_finds_the_items_own_job_past_a_planted_folder(pipeline, decoy):
    """An empty folder named like one of the item's jobs, planted in pending/ while its
    job runs, once drew mp cancel away: the item said CANCELLED and its job ran on."""
    job_id = started(pipeline)
    worker = held_running(pipeline, job_id)
    planted = make_job_id("remux", HONEST, 0, datetime.now(UTC) - timedelta(days=365))
    (jobs_dir(pipeline) / "pending" / planted).mkdir()
    said = pipeline.mp("cancel", HONEST.uid).stdout
    assert "asked the worker running" in said, said
    out, _err = worker.communicate(timeout=60)
    assert f"job {job_id} cancelled" in out.decode()


def test_the_host_ledger_keeps_its_newest_lines_past_a_prune(pipeline):
    from media_pipeline.worker.ledger import PRUNE_BYTES, ledger_path, ran_here, record_end

    config = pipeline.config
    path = ledger_path(config)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    now = int(time.time())
    line = f"{now} job_p500_20261207T000000000000_remux_movie_000000000000_x\n"
    with open(path, "w") as handle:
        handle.write(line * (4 * PRUNE_BYTES // len(line) + 100))  # over 1 MiB, all recent
    record_end(config, "job_newest")
    assert ran_here(config, "job_newest")


@pytest.mark.parametrize("ended", ["cancelled", "failed"])
def test_deleting_a_retrys_job_does_not_bring_back_the_old_end(pipeline, decoy, ended):
    """A person cancels an item (or its job fails for good), then retries it. A share
    writer deletes the retry's new job: the old job, still in cancelled/ or failed/ with
    its genuine signatures, no longer speaks for the item. The job is made again."""
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    first = started(pipeline)
    if ended == "cancelled":
        pipeline.mp("cancel", HONEST.uid)
    else:
        pipeline.behave("remux", "fail")
        pipeline.mp("claim", "--worker", "w1", expect=1)
        pipeline.behave("remux", "ok")
    pipeline.mp("reconcile")
    assert pipeline.queue(ended) == [first]
    stopped = {"cancelled": "CANCELLED", "failed": "FAILED"}[ended]
    assert state_now(pipeline) == stopped
    pipeline.mp("retry", HONEST.uid)
    pipeline.mp("dispatch")
    (second,) = pipeline.queue("pending")
    shutil.rmtree(jobs_dir(pipeline) / "pending" / second)  # the share writer
    said = pipeline.mp("reconcile", "-v").stderr
    assert stopped not in said, said
    assert state_now(pipeline) != stopped
    carried_through(pipeline)
    starts = [line for line in pipeline.runlog() if line.startswith("start remux")]
    assert first not in " ".join(starts[1:]), starts  # the old job never ran again


def state_now(pipeline, key: ItemKey = HONEST) -> str:
    return next(i["state"] for i in pipeline.status_json()["items"] if i["title"] == key.title)


def test_keys_trusted_at_once_are_all_kept(pipeline):
    """Eight `mp keys trust` at the same moment, as processes of their own: every key is
    in the file after (each read the file, added its line and wrote it whole; without a
    lock around that, one write drops another's key)."""
    import subprocess
    import sys
    from pathlib import Path

    mp = str(Path(sys.executable).with_name("mp"))
    keys = {f"ct{n:03d}": public_text(os.urandom(32)) for n in range(8)}
    runs = [
        subprocess.Popen(
            [mp, "keys", "trust", name, key, "--config", str(pipeline.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, key in keys.items()
    ]
    for run in runs:
        assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    listed = pipeline.mp("keys", "list").stdout
    assert all(f"{name} {key}" in listed for name, key in keys.items()), listed


def test_a_genuine_job_moved_into_failed_fails_nothing(pipeline, decoy):
    """A share writer moves an honest pending job into failed/: its spec verifies, but no
    host wrote an outcome, so the item is not failed; its job is made again."""
    job_id = started(pipeline)
    queue = jobs_dir(pipeline)
    (queue / "pending" / job_id).rename(queue / "failed" / job_id)
    said = pipeline.mp("reconcile", "-v").stderr
    assert f"job {job_id} in failed/: not trusted: no result.json" in said, said
    assert "FAILED" not in said
    carried_through(pipeline)


def test_an_outcome_counts_once_its_hosts_key_is_trusted(pipeline, decoy):
    """A failure signed by a worker host (not the controller): until the controller
    trusts that host's key it fails nothing; then it fails the item as any failure."""
    from media_pipeline.jobs.signature import signed_result

    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    seed = os.urandom(32)
    worker_host = Signer("ct304", seed)

    def fail_as_worker_host() -> str:
        (job_id,) = pipeline.queue("pending")
        pipeline.behave("remux", "fail")
        pipeline.mp("claim", "--worker", "w1", expect=1)
        path = spec_path(pipeline, "failed", job_id).with_name("result.json")
        result = json.loads(path.read_text())  # signed as ct304 would have signed it
        path.write_text(json.dumps(signed_result(pipeline.config, job_id, result, worker_host)))
        return job_id

    started(pipeline)
    first = fail_as_worker_host()
    said = pipeline.mp("reconcile", "-v").stderr
    assert f"job {first} in failed/: not trusted: its result.json is signed by 'ct304'" in said
    assert "mp keys trust" in said and state_now(pipeline) != "FAILED"
    pipeline.mp("dispatch")
    pipeline.mp("keys", "trust", "ct304", public_text(seed))
    second = fail_as_worker_host()
    said = pipeline.mp("reconcile", "-v").stderr
    assert "not trusted" not in said, said
    assert state_now(pipeline) == "FAILED"
    assert second != first
