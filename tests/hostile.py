"""What the tests of a hostile share writer share: an honest item to carry through,
the hosts' timers run by hand, and where the queue keeps what it refused."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from conftest import DECOY_SECRET, Sandbox, claim_in_background

from media_pipeline.items.names import ItemKey
from media_pipeline.jobs.keys import CONTROLLER, Signer
from media_pipeline.jobs.live import LIVE_FILE
from media_pipeline.store import private_key

HONEST = ItemKey("movie", "Heat (1995)")
OTHER = ItemKey("movie", "Ronin (1998)")
SECRET = DECOY_SECRET  # what the decoy fixture's root-only file holds


def jobs_dir(pipeline: Sandbox) -> Path:
    return pipeline.staging / ".pipeline" / "jobs"


def controller_signer(pipeline: Sandbox) -> Signer:
    """The sandbox's controller key, to sign what the controller would."""
    return Signer(CONTROLLER, private_key(str(pipeline.signing_key), "signing key")[:32])


def live_file(pipeline: Sandbox) -> Path:
    return jobs_dir(pipeline) / LIVE_FILE


def nothing_leaked(pipeline: Sandbox) -> None:
    """No file the pipeline can reach holds the decoy's secret (a hard link the attacker
    planted is the attacker's own copy, not a leak)."""
    for root in (pipeline.staging, pipeline.root / "library"):
        for folder, _folders, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink() and path.stat().st_nlink == 1:
                    assert SECRET not in path.read_bytes(), f"{path} holds the secret"


def drive(pipeline: Sandbox, rounds: int = 8) -> dict:
    """The hosts' timers, by hand: reconcile, dispatch, claim, until nothing changes."""
    for _round in range(rounds):
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")
        for _claim in range(4):
            result = pipeline.mp("claim", "--worker", "w1", expect=None)
            assert result.exit_code in (0, 1), result.output
            assert "Traceback" not in result.output
            if "no job to run" in result.stdout:
                break
    return pipeline.status_json()


def carried_through(pipeline: Sandbox, key: ItemKey = HONEST) -> None:
    states = {item["title"]: item["state"] for item in drive(pipeline)["items"]}
    assert states[key.title] == "IN_LIBRARY", states


def started(pipeline: Sandbox, key: ItemKey = HONEST) -> str:
    """An honest item ripped, reconciled and dispatched: its remux job id."""
    pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    return job_id


def at_the_filing_gate(pipeline: Sandbox) -> None:
    """The honest item remuxed and transcoded, waiting for filebot_confirm."""
    pipeline.write_pipeline_config(gates=["filebot_confirm"])
    started(pipeline)
    for _kind in ("remux", "transcode"):
        pipeline.mp("claim", "--worker", "w1")
        pipeline.mp("reconcile")
        pipeline.mp("dispatch")


def rejected_reasons(pipeline: Sandbox) -> list[str]:
    folder = jobs_dir(pipeline) / "rejected"
    return [(folder / holder / "reason").read_text() for holder in pipeline.queue("rejected")]


def old(path: Path, seconds: float = 3600) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment), follow_symlinks=False)


def held_running(pipeline: Sandbox, job_id: str) -> subprocess.Popen:
    """job_id's script started by a claim in the background and held there (behaviour
    "wait", until a `release` file); returns the claim's process."""
    pipeline.behave("remux", "wait")
    return claim_in_background(
        pipeline, until=lambda: (pipeline.root / f"started.{job_id}").exists()
    )


class OpenWatch:
    """Counts the opens of one path (inotify IN_OPEN) while it is watched: what shows that
    a device node on the share was never opened (opening one runs its driver). An O_PATH
    descriptor, which opens nothing, makes no event."""

    IN_OPEN, IN_NONBLOCK = 0x20, 0o4000

    def __init__(self, path: Path):
        import ctypes

        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(self.IN_NONBLOCK)
        assert self.fd >= 0, "inotify_init1 failed"
        watch = self._libc.inotify_add_watch(self.fd, str(path).encode(), self.IN_OPEN)
        assert watch >= 0, f"inotify_add_watch failed on {path}"

    def opens(self) -> int:
        import struct

        count = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return count
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                count += bool(mask & self.IN_OPEN)
                offset += 16 + length

    def close(self) -> None:
        os.close(self.fd)


def claim_refuses(pipeline: Sandbox, job_id: str, reason: str) -> None:
    """Claims (the honest job may come first) refuse job_id, and run nothing of it."""
    ran_before = len(pipeline.runlog())
    said = ""
    for _claim in range(3):
        result = pipeline.mp("claim", "--worker", "w1")
        said += result.stdout + result.stderr
        if job_id in said:
            break
    assert f"job {job_id} refused, nothing was run" in said, said
    assert reason in said, said
    new_runs = pipeline.runlog()[ran_before:]
    assert not [line for line in new_runs if job_id in line], new_runs


def runs_of(pipeline: Sandbox, kind: str) -> int:
    return sum(1 for line in pipeline.runlog() if line.split()[:2] == ["start", kind])
