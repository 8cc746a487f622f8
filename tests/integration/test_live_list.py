"""The controller's signed list of live jobs (jobs/live.py): a signed job a person
cancelled, put back in pending/ by a share writer, is never run; a job queued after the
list waits for the next one; a list gone stale, or not the controller's, starts nothing
of the controller's. Real `mp` commands on a sandbox, the stand-in scripts' own log."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime

from hostile import claim_refuses, controller_signer, jobs_dir, live_file, runs_of

from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.live import FRESH_SECONDS, REFRESH_SECONDS
from media_pipeline.jobs.signature import sign_spec, signed_live
from media_pipeline.jobs.spec import build_spec

HEAT = ItemKey("movie", "Heat (1995)")


def remux_pending(pipeline) -> str:
    """Heat ripped and its remux job queued by the controller; the job's id."""
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    [job_id] = pipeline.queue("pending")
    assert "_remux_" in job_id
    return job_id


def waits_for_the_controller(pipeline, job_id: str, why: str) -> None:
    """The claim runs nothing and says why; once the controller has run, the job runs."""
    said = pipeline.mp("claim", "--worker", "w1").stdout
    assert why in said, said
    assert runs_of(pipeline, "remux") == 0
    pipeline.mp("reconcile")
    assert f"job {job_id} completed" in pipeline.mp("claim", "--worker", "w1").stdout


def test_a_cancelled_job_put_back_is_refused_and_never_run(pipeline):
    job_id = remux_pending(pipeline)
    kept = pipeline.root / "copy-of-the-job"
    shutil.copytree(jobs_dir(pipeline) / "pending" / job_id, kept)  # a share writer's copy
    # A person cancels it (in a later second than it was signed: lists and specs say
    # their time in whole seconds, and a job of the list's own second waits, unrefused).
    issued = json.loads((kept / "spec.json").read_text())["issued_at"]
    while time.time() < issued + 1:
        time.sleep(0.01)
    assert "cancelled pending job" in pipeline.mp("cancel", "movie/Heat (1995)").stdout
    # The writer removes every trace of the cancel and puts the job back as it was.
    shutil.rmtree(jobs_dir(pipeline) / "cancelled" / job_id)
    shutil.copytree(kept, jobs_dir(pipeline) / "pending" / job_id)
    claim_refuses(pipeline, job_id, "the controller's list of live jobs of")
    assert runs_of(pipeline, "remux") == 0
    pipeline.mp("reconcile")
    [item] = pipeline.status_json()["items"]
    assert item["state"] == "CANCELLED"


def test_a_job_queued_after_the_list_waits_for_the_next_one(pipeline):
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mp("reconcile")  # the item RIPPED, and a list naming no job
    # A job the controller signed after that list (as dispatch does before it writes the
    # next list): not refused, left pending.
    spec = build_spec(pipeline.config, "remux", HEAT, priority=0, now=datetime.now(UTC))
    folder = jobs_dir(pipeline) / "pending" / spec["id"]
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(sign_spec(spec, controller_signer(pipeline))))
    said = pipeline.mp("claim", "--worker", "w1").stdout
    assert "1 pending job(s) of its kinds wait for the controller's live list" in said, said
    assert pipeline.queue("pending") == [spec["id"]] and runs_of(pipeline, "remux") == 0
    pipeline.mp("reconcile")  # takes the job in for its item, and lists it
    assert f"job {spec['id']} completed" in pipeline.mp("claim", "--worker", "w1").stdout


def test_a_stale_list_starts_nothing_of_the_controllers_until_it_runs_again(pipeline):
    job_id = remux_pending(pipeline)
    # The controller's last list, from before it stopped.
    old = time.time() - FRESH_SECONDS - 60
    live_file(pipeline).write_text(
        json.dumps(signed_live(controller_signer(pipeline), [job_id], old))
    )
    waits_for_the_controller(pipeline, job_id, "minutes old: is the controller's timer running")


def test_a_list_not_the_controllers_is_not_claimed_by(pipeline):
    job_id = remux_pending(pipeline)
    forged = json.loads(live_file(pipeline).read_text())
    forged["jobs"] = [job_id, "job_p500_20990101T000000000000_remux_movie_0123456789ab_x"]
    live_file(pipeline).write_text(json.dumps(forged))
    waits_for_the_controller(pipeline, job_id, "not trusted: it does not verify with the")


def test_an_unchanged_list_is_not_written_again(pipeline):
    remux_pending(pipeline)
    before = live_file(pipeline).stat().st_mtime_ns, live_file(pipeline).read_bytes()
    for _ in range(3):
        pipeline.mp("reconcile")
    assert (live_file(pipeline).stat().st_mtime_ns, live_file(pipeline).read_bytes()) == before


def test_a_job_given_a_new_priority_is_never_refused_by_the_list_before(pipeline):
    """mp priority names the job anew (keeping its time, so it keeps its place) and signs
    it again: the list from before, still fresh and genuine, put back by a share writer
    (or read by a worker just before the next is written) does not refuse it."""
    job_id = remux_pending(pipeline)
    before = live_file(pipeline).read_bytes()
    assert job_id in json.loads(before)["jobs"]
    pipeline.mp("priority", "movie/Heat (1995)", "7")
    [new_id] = pipeline.queue("pending")
    live_file(pipeline).write_bytes(before)
    said = pipeline.mp("claim", "--worker", "w1").stdout
    assert "refused" not in said and "wait for the controller's live list" in said, said
    pipeline.mp("reconcile")
    assert f"job {new_id} completed" in pipeline.mp("claim", "--worker", "w1").stdout
    pipeline.mp("reconcile")
    [item] = pipeline.status_json()["items"]
    assert item["state"] == "REMUXED"


def test_a_folder_where_the_list_goes_stops_no_command(pipeline):
    """Commands do their work and say the list was not written; the controller's jobs
    wait (the claim says why) until the folder is moved away."""
    job_id = remux_pending(pipeline)
    live_file(pipeline).unlink()
    (live_file(pipeline) / "planted").mkdir(parents=True)
    pipeline.mark(ItemKey("movie", "Ronin (1998)"), "1-ripped", "rip")
    said = pipeline.mp("-v", "reconcile", "--dispatch")
    assert "the list of live jobs was not written" in said.stderr, said.stderr
    assert len(pipeline.queue("pending")) == 2, "Ronin's remux was queued all the same"
    assert "not a regular file" in pipeline.mp("claim", "--worker", "w1").stdout
    assert runs_of(pipeline, "remux") == 0
    shutil.rmtree(live_file(pipeline))
    pipeline.mp("reconcile")
    assert f"job {job_id} completed" in pipeline.mp("claim", "--worker", "w1").stdout


def test_a_list_that_does_not_verify_is_written_again(pipeline):
    job_id = remux_pending(pipeline)
    forged = json.loads(live_file(pipeline).read_text())
    forged["signature"] = "AAAA"
    forged["issued_at"] = int(time.time())
    live_file(pipeline).write_text(json.dumps(forged))
    pipeline.mp("reconcile")
    assert f"job {job_id} completed" in pipeline.mp("claim", "--worker", "w1").stdout


def test_an_empty_list_is_left_as_it_is_however_old(pipeline):
    """Idle, the list names no job: writing it again would change the queue's folder and
    send every host's next timer run to the full command, for nothing."""
    pipeline.mp("reconcile")
    old = time.time() - REFRESH_SECONDS - 60
    live_file(pipeline).write_text(json.dumps(signed_live(controller_signer(pipeline), [], old)))
    before = live_file(pipeline).read_bytes()
    pipeline.mp("reconcile", "--dispatch")
    assert live_file(pipeline).read_bytes() == before


RONIN = ItemKey("movie", "Ronin (1998)")


def test_an_older_list_put_back_after_a_newer_one_was_read_starts_nothing(pipeline):
    """A worker remembers the newest list it read: after a cancel, the list from before
    it (still fresh, and naming the cancelled job) put back with the job starts nothing;
    the controller's next list refuses the job as cancelled."""
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mark(RONIN, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    [heat] = [job for job in pipeline.queue("pending") if "Heat" in job]
    before = live_file(pipeline).read_text()
    kept = pipeline.root / "copy-of-the-job"
    shutil.copytree(jobs_dir(pipeline) / "pending" / heat, kept)
    assert "cancelled pending job" in pipeline.mp("cancel", "movie/Heat (1995)").stdout
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout  # Ronin's, by the new list
    shutil.rmtree(jobs_dir(pipeline) / "cancelled" / heat)
    shutil.copytree(kept, jobs_dir(pipeline) / "pending" / heat)
    live_file(pipeline).write_text(before)
    said = pipeline.mp("claim", "--worker", "w1").stdout
    assert "this host has read: a list put back on the share" in said, said
    assert runs_of(pipeline, "remux") == 1
    pipeline.mp("reconcile")
    claim_refuses(pipeline, heat, "a person cancelled it")
    assert runs_of(pipeline, "remux") == 1


def test_an_unsigned_empty_list_is_written_again_by_an_idle_controller(pipeline):
    pipeline.mp("reconcile")
    forged: dict[str, list[str]] = {
        "jobs": [],
        "stopped": [],
    }  # what an idle list says, with no signature
    live_file(pipeline).write_text(json.dumps(forged))
    pipeline.mp("reconcile")
    assert json.loads(live_file(pipeline).read_text()).get("signature"), "the forged one stayed"


def test_a_clock_gone_back_holds_no_work(pipeline):
    """This host read a list while its clock ran an hour ahead (the note says a time in
    its future now): the note is forgotten, not every list taken for one put back."""
    job_id = remux_pending(pipeline)
    ahead = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y%m%dT%H%M%S%f")
    ledger = pipeline.database.parent / "ledger"
    ledger.mkdir(exist_ok=True)
    (ledger / "newest_live_list").write_text(ahead + "\n")
    result = pipeline.mp("claim", "--worker", "w1", "-v")
    assert f"job {job_id} completed" in result.stdout, result.stdout + result.stderr
    assert "from its future: the clock has gone back" in result.stderr
