"""Crash at every step: SIGKILL `mp claim`, `mp reconcile` and `mp dispatch` at each
failpoint of their lives; then the timers' commands run until nothing changes must
converge: every job completed exactly once, every item in the library with the same
`mp status --json` as a run without kills, the database intact."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import add_fake_scripts, make_sandbox, silence

from media_pipeline.items.names import ItemKey

STEPS = (
    "claim:chosen",
    "claim:claimed",
    "claim:beating",
    "claim:starting",
    "claim:running",
    "claim:exited",
    "claim:moving",
)
ITEMS = (ItemKey("movie", "Heat (1995)"), ItemKey("tv", "The Wire", "S01 Disc1"))
MP = str(Path(sys.executable).with_name("mp"))


def command(pipeline, *args: str, crash_at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "MP_TEST_DIR": str(pipeline.root)}
    env.pop("MP_CRASH_AT", None)
    if crash_at:
        env["MP_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [MP, *args, "--config", str(pipeline.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(pipeline, *args: str) -> str:
    """A command that is not the one being killed, run in this process: the timers'
    commands after a crash need no interpreter of their own each, which made this
    file most of the suite's time."""
    saved = os.environ.get("MP_TEST_DIR")
    os.environ["MP_TEST_DIR"] = str(pipeline.root)  # where its fake scripts log
    try:
        result = pipeline.mp(*args, expect=None)
    finally:
        if saved is None:
            os.environ.pop("MP_TEST_DIR", None)
        else:
            os.environ["MP_TEST_DIR"] = saved
    assert result.exit_code in (0, 1), (args, result.output)
    return result.stdout


def kill_orphaned_scripts(pipeline) -> None:
    """What systemd does when a claim service's main process dies: the rest of its cgroup
    (the script, in its own session) is killed too."""
    for folder in (pipeline.staging / ".pipeline" / "jobs" / "running").glob("*"):
        pid_file = folder / "pid"
        if pid_file.exists():
            _worker, script = map(int, pid_file.read_text().split())
            with contextlib.suppress(ProcessLookupError):
                os.killpg(script, signal.SIGKILL)


def let_time_pass(pipeline) -> None:
    """Make every running job look silent for an hour, as the stale time passing would
    (their workers were killed)."""
    for folder in (pipeline.staging / ".pipeline" / "jobs" / "running").glob("*"):
        silence(folder)


def converge(pipeline) -> dict:
    for _round in range(12):
        let_time_pass(pipeline)
        run(pipeline, "reconcile")
        run(pipeline, "dispatch")
        while "completed" in run(pipeline, "claim", "--worker", "w1"):
            pass
        status = json.loads(run(pipeline, "status", "--json"))
        if set(status["counts"]) == {"IN_LIBRARY"}:
            return status
    return status


def settled(pipeline, status: dict) -> dict:
    """What two runs over the same items must agree on: `mp status --json` without
    database ids, times and the sandbox's own path."""
    root = str(pipeline.root)
    fields = ("type", "title", "disc_label", "state", "stopped_in", "reason", "pending_approval")
    return {
        "counts": status["counts"],
        "items": sorted(
            (
                *(item[name] for name in fields),
                (item["folder_path"] or "").replace(root, "<root>"),
                item["missing_since"] is None,
            )
            for item in status["items"]
        ),
    }


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, sample_media):
    """settled() of the same items taken through the pipeline with no kill at all."""
    found = {}

    def status_for(items) -> dict:
        if items not in found:
            reference = make_sandbox(tmp_path_factory.mktemp("undisturbed"))
            add_fake_scripts(reference, sample_media)
            for key in items:
                reference.mark(key, "1-ripped", "rip")
            found[items] = settled(reference, converge(reference))
        return found[items]

    return status_for


def assert_each_job_done_once(pipeline, items) -> None:
    done = Counter(
        (line.split()[1], next(k.uid for k in items if k.uid in line.split()[2]))
        for line in pipeline.runlog()
        if line.startswith("done")
    )
    assert done == {
        (kind, key.uid): 1 for kind in ("remux", "transcode", "filebot") for key in items
    }, done
    connection = sqlite3.connect(pipeline.database)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()


@pytest.mark.parametrize("step", STEPS)
def test_claim_killed_at_each_step_converges_with_each_job_done_once(pipeline, step, undisturbed):
    for key in ITEMS:
        pipeline.mark(key, "1-ripped", "rip")
    run(pipeline, "reconcile")
    run(pipeline, "dispatch")
    crashed = command(pipeline, "claim", "--worker", "w1", crash_at=step)
    crashed.communicate(timeout=120)
    assert crashed.returncode == -signal.SIGKILL
    kill_orphaned_scripts(pipeline)
    status = converge(pipeline)
    assert status["counts"] == {"IN_LIBRARY": len(ITEMS)}
    assert settled(pipeline, status) == undisturbed(ITEMS)
    assert_each_job_done_once(pipeline, ITEMS)


# Failpoints of the controller's commands: (the command killed, where), in the order a
# fresh item meets them.
CONTROLLER_STEPS = (
    ("reconcile", "reconcile:share-known"),
    ("reconcile", "reconcile:stale-recovered"),
    ("reconcile", "reconcile:batch-stored"),
    ("reconcile", "reconcile:files-written"),
    ("reconcile", "reconcile:jobs-synced"),
    ("dispatch", "dispatch:built"),
    ("dispatch", "dispatch:submitted"),
    ("dispatch", "dispatch:recorded"),
)


@pytest.mark.parametrize(("name", "step"), CONTROLLER_STEPS)
def test_reconcile_and_dispatch_killed_at_each_step_converge(pipeline, undisturbed, name, step):
    """Each controller command killed at each of its failpoints, with SIGKILL where it
    stands (as a power cut would): the timers' commands then bring every item to the
    library, each job done once, as if nothing had happened."""
    for key in ITEMS:
        pipeline.mark(key, "1-ripped", "rip")
    if name == "dispatch":
        run(pipeline, "reconcile")
    crashed = command(pipeline, name, crash_at=step)
    crashed.communicate(timeout=120)
    assert crashed.returncode == -signal.SIGKILL, f"{step} was never reached"
    status = converge(pipeline)
    assert status["counts"] == {"IN_LIBRARY": len(ITEMS)}
    assert settled(pipeline, status) == undisturbed(ITEMS)
    assert_each_job_done_once(pipeline, ITEMS)
