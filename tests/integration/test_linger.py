"""Timer runs that linger while the next job is on its way (worker/linger.py,
reconcile/watch.py): real `mp` processes, real queue folders, real stand-in scripts.

w1 remuxes, w2 transcodes. A transcode follows a remux: w2's claim stays while w1's
remux runs and takes the transcode the moment the controller queues it; the
controller's run stays while the remux runs and queues what follows the moment it ends.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import claim_in_background, process_state
from hostile import jobs_dir

from media_pipeline.idle import entry, quick
from media_pipeline.items.names import ItemKey

MP = str(Path(sys.executable).with_name("mp"))
HEAT = ItemKey("movie", "Heat (1995)")
WORKERS = {"w1": {"kinds": ["remux"]}, "w2": {"kinds": ["transcode"]}}


@pytest.fixture
def remuxing(pipeline, tmp_path, monkeypatch):
    """Heat's remux running on w1, its script held until released; the runtime folder a
    unit would give (for the notes)."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))
    pipeline.write_pipeline_config(workers=WORKERS, gates=["remux_review"])
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    assert [name for name in pipeline.queue("pending") if "_remux_" in name]
    pipeline.behave("remux", "wait")
    # The stage folder as any system past its first item has it: the job's own folder
    # (which the worker makes for its script, worker/confine.py) then changes no folder
    # the idle notes watch.
    (pipeline.staging / "2-remuxed" / "movies").mkdir(parents=True)
    started = pipeline.root
    worker = claim_in_background(pipeline, lambda: list(started.glob("started.*remux*")))
    yield pipeline, worker
    (pipeline.root / "release").touch()
    worker.wait(60)


def start(pipeline, *args: str) -> subprocess.Popen:
    """A timer's run of mp, its output unbuffered, read line by line."""
    return subprocess.Popen(
        [MP, *args, "--config", str(pipeline.config_path)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def next_line(process: subprocess.Popen, timeout: float = 60) -> str:
    """The next line the process prints; fails if none comes in time."""
    assert process.stdout is not None, "started with stdout=PIPE"
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the process said nothing"
    return process.stdout.readline()


def ends(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def release(pipeline, worker: subprocess.Popen) -> None:
    (pipeline.root / "release").touch()
    assert worker.wait(60) == 0, worker.communicate()


def test_a_claim_stays_while_an_earlier_job_runs_and_takes_the_next_one(remuxing):
    pipeline, remux = remuxing
    lingering = start(pipeline, "claim", "--worker", "w2", "--linger", "600")
    assert next_line(lingering) == "worker w2: no job to run\n"
    assert lingering.poll() is None, "a remux runs: the transcode follows it"
    release(pipeline, remux)
    # The controller records the remux's end; a person approves; the transcode is queued.
    pipeline.mp("reconcile")
    pipeline.mp("approve", "movie/Heat (1995)", "--yes")
    pipeline.mp("reconcile", "--dispatch")
    taken = next_line(lingering)
    assert "_transcode_" in taken, taken
    assert ["done transcode" in line for line in pipeline.runlog()].count(True) == 1
    lingering.send_signal(signal.SIGTERM)  # as systemd stops it: it waits holding nothing
    code, said = ends(lingering)
    assert code == -signal.SIGTERM and "Traceback" not in said, said
    assert not pipeline.queue("running") and not pipeline.queue("pending")


def test_a_claim_with_nothing_on_its_way_ends_at_once(pipeline, tmp_path):
    pipeline.write_pipeline_config(workers=WORKERS, gates=[])
    pipeline.mp("reconcile")
    started = time.monotonic()
    code, said = ends(start(pipeline, "claim", "--worker", "w2", "--linger", "600"))
    assert (code, said) == (0, "worker w2: no job to run\n")
    assert time.monotonic() - started < 30  # not the 600 s it may stay


def test_a_claim_never_stays_past_its_linger(remuxing):
    pipeline, _remux = remuxing
    started = time.monotonic()
    code, said = ends(start(pipeline, "claim", "--worker", "w2", "--linger", "2"))
    assert (code, said) == (0, "worker w2: no job to run\n")
    assert time.monotonic() - started >= 2, "a remux runs: it stayed its 2 s"


def test_the_controller_stays_while_a_job_runs_and_acts_the_moment_it_ends(remuxing):
    pipeline, remux = remuxing
    controller = start(pipeline, "reconcile", "--if-changed", "--dispatch", "--linger", "600")
    first = next_line(controller)
    assert first.startswith("reconcile:"), first
    assert controller.poll() is None, "a job runs: it stays"
    release(pipeline, remux)
    # Nobody else reconciles: the lingering run sees the remux end, records it, and,
    # the item now waiting at its gate with no job under way, ends by itself.
    code, said = ends(controller)
    assert code == 0 and "needs remux_review approval" in said, said
    [item] = pipeline.status_json()["items"]
    assert item["state"] == "REMUXED"


def test_linger_is_for_the_timers_runs(pipeline):
    said = pipeline.mp("reconcile", "--linger", "5", expect=2).stderr
    assert "--linger is for the timer's runs" in said
    said = pipeline.mp("claim", "--dry-run", "--linger", "5", expect=2).stderr
    assert "--linger is for the timer's runs" in said


def test_a_quick_answer_gives_way_to_a_lingering_run_while_jobs_are_under_way(remuxing):
    pipeline, remux = remuxing
    config = str(pipeline.config_path)
    # Notes as the timers' full runs leave them, the remux running.
    for _ in range(3):
        pipeline.mp("reconcile", "--if-changed", "--dispatch")
    entry.idle_claim(["claim", "--worker", "w2", "--config", config])
    assert quick.controller_unchanged(config) is not None
    assert quick.controller_unchanged(config, linger=True) is None, "a job runs: stay"
    assert quick.idle_claim(config, "w2") == "worker w2: no job to run"
    assert quick.idle_claim(config, "w2", linger=True) is None, "a remux runs: stay"
    assert quick.idle_claim(config, "w1", linger=True) is not None, (
        "only a rip comes before a remux"
    )
    lingering = ["claim", "--worker", "w2", "--config", config, "--linger", "600"]
    assert entry.idle_claim(lingering) is None
    release(pipeline, remux)
    assert entry.idle_claim(lingering) == "worker w2: no job to run", "nothing runs now"
    assert quick.idle_claim(config, "w2", linger=True) == "worker w2: no job to run"


@pytest.fixture
def queued_remux(pipeline, tmp_path, monkeypatch):
    """Heat's remux queued for w1, its script held until released."""
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    pipeline.write_pipeline_config(workers=WORKERS, gates=["remux_review"])
    pipeline.mark(HEAT, "1-ripped", "rip")
    pipeline.mp("reconcile", "--dispatch")
    pipeline.behave("remux", "wait")
    return pipeline


@pytest.mark.parametrize("signalled", ["the claim", "the claim and its script at once"])
def test_a_lingering_claim_stopped_mid_job_puts_it_back_and_ends(queued_remux, signalled):
    """SIGTERM to the claim (or, as systemd stops a unit, to every process of it at
    once): the job goes back to pending/ as not an attempt, the process ends, and the
    script was started once."""
    pipeline = queued_remux
    lingering = start(pipeline, "claim", "--worker", "w1", "--linger", "600")
    deadline = time.monotonic() + 30
    while not list(pipeline.root.glob("started.*remux*")):
        assert time.monotonic() < deadline, "the remux never started"
        time.sleep(0.05)
    [running] = pipeline.queue("running")
    worker, script = map(
        int, (jobs_dir(pipeline) / "running" / running / "pid").read_text().split()
    )
    if signalled != "the claim":
        # The script's end first (its group: the guard, the script and what it runs),
        # as when systemd's signal reaches them before the claim's: the claim must not
        # count it as the script's failure.
        os.killpg(script, signal.SIGTERM)
        while process_state(script) not in (None, "Z"):
            time.sleep(0.01)
    os.kill(worker, signal.SIGTERM)
    code, said = ends(lingering)
    assert code == 0 and "put back in the queue: worker stopped" in said, said
    assert "failed" not in said and "Traceback" not in said, said
    assert [line.split()[:2] for line in pipeline.runlog()] == [["start", "remux"]]
    assert pipeline.queue("pending") == [running.partition(".")[0]]


def test_a_job_seen_but_not_taken_is_looked_at_again(remuxing):
    """A lingering claim that could not take a job (its worker drained) takes it once it
    can (resumed), within the timer's interval, not only when a new job appears."""
    pipeline, remux = remuxing
    pipeline.mp("worker", "drain", "w2")
    lingering = start(pipeline, "claim", "--worker", "w2", "--linger", "600")
    assert "is drained" in next_line(lingering)
    release(pipeline, remux)
    pipeline.mp("reconcile")
    pipeline.mp("approve", "movie/Heat (1995)", "--yes")
    pipeline.mp("reconcile", "--dispatch")
    assert "is drained" in next_line(lingering)  # the new transcode, seen and not taken
    pipeline.mp("worker", "resume", "w2")
    taken = next_line(lingering, timeout=60)
    assert "_transcode_" in taken and "completed" in taken, taken
    lingering.send_signal(signal.SIGTERM)
    ends(lingering)


def test_an_earlier_job_long_waiting_keeps_no_claim_up(queued_remux):
    """A remux waiting in pending/ for over a minute (its worker off) does not keep the
    transcode worker's claim lingering."""
    pipeline = queued_remux
    pending = jobs_dir(pipeline) / "pending"
    os.utime(pending, (time.time() - 120, time.time() - 120))
    started = time.monotonic()
    code, said = ends(start(pipeline, "claim", "--worker", "w2", "--linger", "600"))
    assert (code, said) == (0, "worker w2: no job to run\n")
    assert time.monotonic() - started < 30


def test_a_lingering_claim_ends_when_its_config_changes(remuxing):
    pipeline, _remux = remuxing
    lingering = start(pipeline, "claim", "--worker", "w2", "--linger", "600")
    assert next_line(lingering) == "worker w2: no job to run\n"
    pipeline.write_pipeline_config(workers=WORKERS, gates=[])  # an edit: the next run reads it
    code, said = ends(lingering)
    assert code == 0 and "Traceback" not in said, said


def test_a_share_writer_touching_folders_costs_a_run_every_few_seconds(remuxing):
    """Touches that lead nowhere wake the lingering controller at most once per
    QUIET_GAP_SECONDS (5 s), not every second."""
    pipeline, _remux = remuxing
    controller = start(pipeline, "reconcile", "--if-changed", "--dispatch", "--linger", "11")
    assert next_line(controller).startswith("reconcile:")
    while controller.poll() is None:
        os.utime(pipeline.staging)
        time.sleep(0.2)
    _code, said = ends(controller)
    runs = [line for line in said.splitlines() if line.startswith("reconcile:")]
    assert 1 <= len(runs) <= 3, said
