"""Claimers as real processes: racing each other, killed with SIGKILL, cancelled."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import group_processes, process_state, running, silence

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")


def mp_script() -> str:
    return str(Path(sys.executable).with_name("mp"))


def wait_for(path: Path, seconds: float = 30) -> None:
    """Wait for a file a real process writes; fail the test if it never comes."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def start_claim(pipeline, worker="w1") -> subprocess.Popen:
    return subprocess.Popen(
        [mp_script(), "claim", "--worker", worker, "--config", str(pipeline.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "MP_TEST_DIR": str(pipeline.root)},
    )


def queued(pipeline, *keys):
    for key in keys:
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    return pipeline.queue("pending")


def running_job_folder(pipeline) -> Path:
    (name,) = pipeline.queue("running")
    return pipeline.staging / ".pipeline" / "jobs" / "running" / name


# One claimer: `mp claim` run again and again, as its timer would, until the queue is empty.
CLAIM_LOOP = """
while true; do
  out=$("$MP" claim --worker "$WORKER" --config "$CONFIG") || exit 1
  case "$out" in *"no job to run"*) break ;; esac
  echo "$out"
done
"""


def test_concurrent_claimers_run_every_job_exactly_once(pipeline):
    pipeline.write_pipeline_config(
        workers={
            "wa": {"kinds": ["remux"], "max_running": 10},
            "wb": {"kinds": ["remux"], "max_running": 10},
        }
    )
    keys = [ItemKey("movie", f"Film {number:03d}") for number in range(150)]
    jobs = queued(pipeline, *keys)
    assert len(jobs) == 150
    claimers = [
        subprocess.Popen(
            ["bash", "-c", CLAIM_LOOP],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "MP_TEST_DIR": str(pipeline.root),
                "MP": mp_script(),
                "WORKER": worker,
                "CONFIG": str(pipeline.config_path),
            },
        )
        for worker in ("wa", "wb") * 3
    ]
    ran = []
    for process in claimers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        ran.append(out.count("completed"))
    starts = Counter(line.split()[2] for line in pipeline.runlog() if line.startswith("start"))
    assert sum(ran) == 150
    assert set(starts) == set(jobs)
    assert max(starts.values()) == 1, "a job ran twice"
    assert sorted(pipeline.queue("completed")) == sorted(jobs)
    assert pipeline.queue("pending") == [] and pipeline.queue("running") == []
    assert sum(1 for count in ran if count) >= 2, "the work was shared"


def reboot_mid_job(pipeline) -> tuple[str, Path]:
    """Start a claim whose script blocks, then kill the worker and its script at once,
    as a reboot does: nothing gets to clean up. Returns the job id and its folder."""
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "block")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{job_id}")
    folder = running_job_folder(pipeline)
    _worker_pid, script_pid = map(int, (folder / "pid").read_text().split())
    os.killpg(worker.pid, signal.SIGKILL)
    os.killpg(script_pid, signal.SIGKILL)
    worker.wait()
    return job_id, folder


def wait_until_gone(pids, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if running(p)]}"
        time.sleep(0.05)


def test_a_worker_killed_alone_takes_its_script_and_its_children_with_it(pipeline):
    """kill -9 of `mp claim` only (a manual run, outside systemd): its guard stops the
    script and the process it started, so stale recovery never starts a second run
    beside a first one."""
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "spawn")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{job_id}")
    script_pid, child_pid = map(int, (pipeline.root / f"pids.{job_id}").read_text().split())
    assert running(script_pid) and running(child_pid)
    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its group
    worker.wait()
    wait_until_gone([script_pid, child_pid])  # within cancel_grace_seconds (1 s here)
    silence(running_job_folder(pipeline))
    assert "taken back" in pipeline.mp("reconcile", "-v").stderr
    pipeline.behave("remux", "ok")
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    log = pipeline.runlog()
    assert log.count(f"start remux {job_id}") == 2 and log.count(f"done remux {job_id}") == 1


def test_a_job_log_keeps_its_tail_within_the_cap(pipeline):
    pipeline.write_pipeline_config(
        jobs={
            "heartbeat_seconds": 1,
            "stale_after_seconds": 30,
            "cancel_grace_seconds": 1,
            "log_max_bytes": 100_000,
        }
    )
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "chatty")  # about 7 MB of output
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    log = (pipeline.staging / ".pipeline/jobs/completed" / job_id / "log").read_bytes()
    assert len(log) <= 100_000
    assert log.startswith(b"[media-pipeline: ") and b"bytes of earlier output dropped" in log
    assert log.endswith(b"output line 400000\n"), "the tail is what is kept"


def test_killed_worker_job_is_taken_back_and_completes_once(pipeline):
    job_id, folder = reboot_mid_job(pipeline)
    assert pipeline.queue("running") == [folder.name]
    # Not stale yet: reconcile leaves it alone.
    assert "taken back" not in pipeline.mp("reconcile", "-v").stderr
    silence(folder)
    result = pipeline.mp("reconcile", "-v")
    assert f"job {job_id}: worker w1 vanished" in result.stderr
    assert pipeline.queue("pending") == [job_id]
    spec = json.loads(
        (pipeline.staging / ".pipeline/jobs/pending" / job_id / "spec.json").read_text()
    )
    assert spec["attempts"] == 1 and spec["not_before"] <= time.time()
    pipeline.behave("remux", "ok")
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    log = pipeline.runlog()
    assert log.count(f"start remux {job_id}") == 2
    assert log.count(f"done remux {job_id}") == 1
    assert pipeline.queue("completed") == [job_id]
    pipeline.mp("reconcile")
    assert pipeline.status_json()["counts"] == {"REMUXED": 1}


def test_a_job_is_stale_only_past_stale_after_seconds_not_heartbeat_seconds(pipeline):
    """The fixture beats every second and calls a job stale after 30: a heartbeat ten
    beats old is late, not stale, and the job stays with its worker; past 30 s it is
    taken back."""
    config = pipeline.config.jobs
    assert (config.heartbeat_seconds, config.stale_after_seconds) == (1, 30)
    job_id, folder = reboot_mid_job(pipeline)
    folder = silence(folder, 10)
    result = pipeline.mp("reconcile", "-v")
    assert "vanished" not in result.stderr and "taken back" not in result.stderr
    assert pipeline.queue("running") == [folder.name] and pipeline.queue("pending") == []
    silence(folder, 31)
    said = re.search(
        r"worker w1 vanished \(no heartbeat for (\d+) s\)", pipeline.mp("reconcile", "-v").stderr
    )
    assert said and 31 <= int(said[1]) <= 40, "31 s, and the moment reconcile took to look"
    assert pipeline.queue("pending") == [job_id]


def claim_stopped_at(pipeline, step: str, action: str) -> subprocess.Popen:
    """`mp claim` as a real process, made to crash or stop (MP_CRASH_AT, MP_STOP_AT) at a
    step; returned once it has died or stopped there."""
    worker = subprocess.Popen(
        [mp_script(), "claim", "--worker", "w1", "--config", str(pipeline.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "MP_TEST_DIR": str(pipeline.root), action: step},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while worker.poll() is None and process_state(worker.pid) != "T":
        assert time.monotonic() < deadline, f"mp claim never reached {step}"
        time.sleep(0.02)
    return worker


def test_a_job_that_waited_long_in_pending_is_not_stale_once_claimed(pipeline):
    """A rename keeps a folder's mtime: a job that waited in pending/ longer than
    stale_after_seconds once looked stale from its claim until its first heartbeat was
    seen, and was taken back and run twice. Its claim time counts now."""
    (job_id,) = queued(pipeline, MOVIE)
    waited = time.time() - 3600
    os.utime(pipeline.staging / ".pipeline/jobs/pending" / job_id, (waited, waited))
    worker = claim_stopped_at(pipeline, "claim:claimed", "MP_CRASH_AT")  # no heartbeat yet
    assert worker.wait(timeout=30) == -signal.SIGKILL
    (name,) = pipeline.queue("running")
    assert not (running_job_folder(pipeline) / "heartbeat").exists()
    result = pipeline.mp("reconcile", "-v")
    assert "vanished" not in result.stderr and pipeline.queue("running") == [name]
    silence(running_job_folder(pipeline), 31)  # its worker really is gone
    assert f"job {job_id}: worker w1 vanished" in pipeline.mp("reconcile", "-v").stderr


def test_a_claim_taken_back_before_its_script_starts_runs_nothing(pipeline):
    """Between its claim and its script's start the job is taken back (a controller
    that judged it by an older sign of life): the worker, checking that it still holds
    its job after its first heartbeat, runs nothing; the job runs once, elsewhere."""
    (job_id,) = queued(pipeline, MOVIE)
    worker = claim_stopped_at(pipeline, "claim:beating", "MP_STOP_AT")
    assert (running_job_folder(pipeline) / "heartbeat").exists()
    silence(running_job_folder(pipeline))  # the worker is frozen: it sees none of this
    assert "taken back" in pipeline.mp("reconcile", "-v").stderr
    assert pipeline.queue("pending") == [job_id] and pipeline.queue("running") == []
    os.kill(worker.pid, signal.SIGCONT)
    out, _err = worker.communicate(timeout=60)
    assert f"job {job_id} was taken back before its script started; nothing was run" in out
    assert pipeline.runlog() == [], "its script never started"
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    assert pipeline.runlog() == [f"start remux {job_id}", f"done remux {job_id}"]


def test_a_job_that_finishes_while_reconcile_reads_the_queue_runs_once(pipeline):
    """Reconcile lists the queue, then the job moves on (its worker finishes it) before
    reconcile reads its spec: the job is still its item's, nothing goes to rejected/,
    and the item is not queued again. A soak under load once ran scripts twice so."""
    (job_id,) = queued(pipeline, MOVIE)
    worker = claim_stopped_at(pipeline, "claim:beating", "MP_STOP_AT")
    reconcile = subprocess.Popen(
        [mp_script(), "reconcile", "--config", str(pipeline.config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "MP_STOP_AT": "reconcile:jobs-listed"},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while reconcile.poll() is None and process_state(reconcile.pid) != "T":
        assert time.monotonic() < deadline, "reconcile never listed the queue"
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGCONT)  # the worker runs the job and moves it on
    out, _err = worker.communicate(timeout=60)
    assert f"job {job_id} completed" in out
    os.kill(reconcile.pid, signal.SIGCONT)
    _out, err = reconcile.communicate(timeout=60)
    assert reconcile.returncode == 0, err
    assert "rejected" not in err and pipeline.queue("rejected") == [], err
    assert "RIPPED" not in err, "its item was not sent back to be queued again"
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    assert [n for n in pipeline.queue("pending") if "_remux_" in n] == []
    assert pipeline.runlog() == [f"start remux {job_id}", f"done remux {job_id}"]


def test_a_stale_job_whose_script_finished_is_completed_not_rerun(pipeline):
    job_id, folder = reboot_mid_job(pipeline)
    # The script had written its output and marker just before the host went down.
    marker = pipeline.folder(MOVIE, "2-remuxed") / ".pipeline"
    marker.mkdir(parents=True)
    (marker.parent / "remux.out").write_text("output of remux\n")
    (marker / "remux.done").touch()
    silence(folder)
    result = pipeline.mp("reconcile", "-v")
    assert "vanished after its script finished; completed" in result.stderr
    assert pipeline.queue("completed") == [job_id] and pipeline.queue("pending") == []
    assert pipeline.runlog().count(f"start remux {job_id}") == 1


def test_a_stale_job_whose_marker_came_without_outputs_is_taken_back(pipeline):
    job_id, folder = reboot_mid_job(pipeline)
    marker = pipeline.folder(MOVIE, "2-remuxed") / ".pipeline"
    marker.mkdir(parents=True)
    (marker / "remux.done").touch()  # and no output at all
    silence(folder)
    result = pipeline.mp("reconcile", "-v")
    assert "outputs failed verification: no output files" in result.stderr
    assert pipeline.queue("pending") == [job_id]
    assert not (marker / "remux.done").exists(), "the marker no longer counts"
    assert (marker / f"remux.done.failed-{job_id}").exists(), "kept, set aside"
    assert pipeline.status_json()["counts"] == {"REMUXING": 1}


def test_cancel_a_pending_job(pipeline):
    (job_id,) = queued(pipeline, MOVIE)
    result = pipeline.mp("cancel", MOVIE.uid)
    assert "cancelled pending job" in result.stdout
    assert pipeline.queue("cancelled") == [job_id] and pipeline.queue("pending") == []
    assert pipeline.status_json()["items"][0]["state"] == "CANCELLED"
    assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
    assert "back to RIPPED" in pipeline.mp("retry", MOVIE.uid).stdout


def _cancel_running(pipeline, behaviour):
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", behaviour)
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{job_id}")
    _worker_pid, script_pid = map(int, (running_job_folder(pipeline) / "pid").read_text().split())
    result = pipeline.mp("cancel", MOVIE.uid)
    assert "asked the worker" in result.stdout
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert f"job {job_id} cancelled" in out
    assert pipeline.queue("cancelled") == [job_id] and pipeline.queue("running") == []
    outcome = json.loads(
        (pipeline.staging / ".pipeline/jobs/cancelled" / job_id / "result.json").read_text()
    )
    assert outcome["status"] == "cancelled"
    assert not running(script_pid), "the script was stopped"
    assert pipeline.status_json()["items"][0]["state"] == "CANCELLED"
    return outcome


def test_a_worker_returns_only_once_every_process_of_its_stopped_job_has_ended(pipeline):
    """SIGKILL is delivered, not done: a process with much memory to free runs on for a
    moment after it. A worker that stops its job returns only once every process of the
    job has ended, so nothing of it runs beside a copy started after."""
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "hog")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"hogging.{job_id}")
    _worker_pid, group = map(int, (running_job_folder(pipeline) / "pid").read_text().split())
    _script, hog = map(int, (pipeline.root / f"pids.{job_id}").read_text().split())
    assert running(hog)
    assert "asked the worker" in pipeline.mp("cancel", MOVIE.uid).stdout
    out, _err = worker.communicate(timeout=60)
    left = group_processes(group)  # at once: no poll, no wait
    assert f"job {job_id} cancelled" in out
    assert left == [] and not running(hog), f"still running after the worker returned: {left}"


def test_cancel_a_running_job_stops_its_script(pipeline):
    outcome = _cancel_running(pipeline, "block")
    assert outcome["exit_code"] == -signal.SIGTERM


def test_cancel_kills_a_script_that_ignores_sigterm(pipeline):
    outcome = _cancel_running(pipeline, "stubborn")
    assert outcome["exit_code"] == -signal.SIGKILL


def test_a_stopped_worker_puts_its_job_back_without_counting_an_attempt(pipeline):
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "block")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{job_id}")
    worker.send_signal(signal.SIGTERM)
    out, _err = worker.communicate(timeout=60)
    assert "put back in the queue" in out
    spec = json.loads(
        (pipeline.staging / ".pipeline/jobs/pending" / job_id / "spec.json").read_text()
    )
    assert spec["attempts"] == 0 and spec["not_before"] == 0


def one_job_running_of_two(
    pipeline, behaviour="block", **config
) -> tuple[list[str], subprocess.Popen]:
    """A worker with max_running 1, running the first of two jobs, blocked in its script."""
    pipeline.write_pipeline_config(workers={"w1": {"kinds": ["remux"], "max_running": 1}}, **config)
    jobs = queued(pipeline, MOVIE, ItemKey("movie", "Alien"))
    pipeline.behave("remux", behaviour)
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{jobs[0]}")
    return jobs, worker


def test_max_running_limits_a_worker(pipeline):
    jobs, worker = one_job_running_of_two(pipeline)
    try:
        assert "no job to run" in pipeline.mp("claim", "--worker", "w1").stdout
        assert pipeline.queue("pending") == [jobs[1]]
    finally:
        running_uid = jobs[0].split("_")[5]
        pipeline.mp("cancel", running_uid)
        worker.communicate(timeout=60)


def test_a_worker_slot_is_held_until_the_last_process_of_its_job_is_gone(pipeline):
    # A script that ignores SIGTERM outlives its worker for the grace its guard gives it
    # (long here, so the look below happens well within it).
    jobs, worker = one_job_running_of_two(
        pipeline,
        "stubborn",
        jobs={"heartbeat_seconds": 1, "stale_after_seconds": 300, "cancel_grace_seconds": 120},
    )
    _worker_pid, group = map(int, (running_job_folder(pipeline) / "pid").read_text().split())
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    try:
        assert running(group)
        assert "no job to run" in pipeline.mp("claim", "--worker", "w1", "--dry-run").stdout
    finally:
        os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + 30
    # Every process of the group, not only its leader: the script and what it started
    # each hold the slot's descriptor until they have ended (zombies hold nothing).
    while group_processes(group):
        assert time.monotonic() < deadline, f"still running: {group_processes(group)}"
        time.sleep(0.02)
    # Both gone: the slot is free at once, long before the first job would be stale.
    assert f"would claim {jobs[1]}" in pipeline.mp("claim", "--worker", "w1", "--dry-run").stdout


def test_claim_dry_run_claims_nothing(pipeline):
    (job_id,) = queued(pipeline, MOVIE)
    assert f"would claim {job_id}" in pipeline.mp("claim", "--worker", "w1", "--dry-run").stdout
    assert pipeline.queue("pending") == [job_id] and pipeline.runlog() == []


def test_a_drained_worker_finishes_its_job_and_claims_no_more(pipeline):
    jobs = queued(pipeline, MOVIE, ItemKey("movie", "Alien"))
    pipeline.behave("remux", "wait")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{jobs[0]}")
    assert "drained" in pipeline.mp("worker", "drain", "w1").stdout
    assert "drained (claim nothing): w1" in pipeline.mp("status").stdout
    (pipeline.root / "release").touch()
    out, _err = worker.communicate(timeout=60)
    assert f"job {jobs[0]} completed" in out
    assert "is drained" in pipeline.mp("claim", "--worker", "w1").stdout
    assert pipeline.queue("pending") == [jobs[1]]
    assert "resumed" in pipeline.mp("worker", "resume", "w1").stdout
    assert "completed" in pipeline.mp("claim", "--worker", "w1").stdout
    assert "not under 'workers'" in pipeline.mp("worker", "drain", "nobody", expect=2).stderr


def test_a_heartbeat_from_a_clock_ahead_is_never_stale_nor_negative(pipeline):
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "wait")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{job_id}")
    folder = running_job_folder(pipeline)
    future = time.time() + 3600  # written by a host whose clock is an hour ahead
    os.utime(folder / "heartbeat", (future, future))
    assert "taken back" not in pipeline.mp("reconcile", "-v").stderr
    jobs = json.loads(pipeline.mp("jobs", "--json", "--state", "running").stdout)["jobs"]
    assert jobs[0]["heartbeat_age_seconds"] == 0
    assert "(heartbeat 0 s ago)" in pipeline.mp("why", MOVIE.uid).stdout
    (pipeline.root / "release").touch()
    out, _err = worker.communicate(timeout=60)
    assert "completed" in out


def test_a_worker_whose_job_was_taken_back_stops_its_script(pipeline):
    (job_id,) = queued(pipeline, MOVIE)
    pipeline.behave("remux", "block")
    worker = start_claim(pipeline)
    wait_for(pipeline.root / f"started.{job_id}")
    folder = running_job_folder(pipeline)
    _worker_pid, script_pid = map(int, (folder / "pid").read_text().split())
    # The share stalled long enough for reconcile to judge the job stale: the worker is
    # frozen meanwhile, so what it finds when it goes on is reconcile's doing.
    os.kill(worker.pid, signal.SIGSTOP)
    silence(folder)
    assert "taken back" in pipeline.mp("reconcile", "-v").stderr
    assert pipeline.queue("pending") == [job_id]
    os.kill(worker.pid, signal.SIGCONT)
    out, _err = worker.communicate(timeout=60)
    assert "taken back as stale while it ran; its script was stopped" in out
    assert worker.returncode == 1
    assert not running(script_pid)
    assert pipeline.queue("pending") == [job_id] and pipeline.queue("running") == []
