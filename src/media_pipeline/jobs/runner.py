"""Run one job's script: its own process group, log captured, heartbeat, cancel, timeout.

The script runs from an argument list (never a shell) in a new session, so that cancel,
timeout and a stopping worker can signal every process it started, and nothing it does
can signal the worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from media_pipeline.faults import crash_point
from media_pipeline.jobs.queue import CANCEL_FILE, HEARTBEAT_FILE, LOG_FILE

POLL_SECONDS = 0.5


@dataclass
class RunOutcome:
    exit_code: int | None
    stopped: str | None = None  # "cancelled", "timeout", "interrupted", "taken back"
    seconds: float = 0.0


class _StopRequest:
    """Set by SIGTERM/SIGINT to the worker (systemd stopping it, a reboot)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum, _frame) -> None:
        self.requested = True


def touch(path: str) -> bool:
    """Beat: False when the job's folder is gone (taken back as stale) or unreachable.

    utime(None) asks the file server for its own time, so heartbeats from hosts whose
    clocks disagree are still judged on one clock.
    """
    try:
        os.utime(path, None)
    except FileNotFoundError:
        try:
            with open(path, "a"):
                pass
        except FileNotFoundError:
            return False
    except OSError:
        return True  # the share hiccuped; the next beat tries again
    return True


def stop_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM the script's whole process group, then SIGKILL what is left after grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)
    # Children that ignored TERM may outlive the leader; the group id still reaches them.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_script(
    argv: list[str],
    env: dict[str, str],
    job_folder: str,
    *,
    heartbeat_seconds: float,
    timeout_seconds: float | None,
    grace_seconds: float,
    slot_fd: int | None = None,
) -> RunOutcome:
    """Run argv to its end, or until cancelled, timed out, taken back or interrupted.

    slot_fd, the worker's max_running slot, is passed down to the script: the slot then
    stays held for as long as the script, or anything it started, is still running,
    even if this worker dies first."""
    heartbeat = os.path.join(job_folder, HEARTBEAT_FILE)
    cancel = os.path.join(job_folder, CANCEL_FILE)
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.monotonic()
    try:
        with open(os.path.join(job_folder, LOG_FILE), "ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
                pass_fds=() if slot_fd is None else (slot_fd,),
            )
        with open(os.path.join(job_folder, "pid"), "w") as handle:
            handle.write(f"{os.getpid()} {process.pid}\n")
        crash_point("claim:running")
        last_beat = time.monotonic()
        while True:
            try:
                code = process.wait(timeout=POLL_SECONDS)
                return RunOutcome(code, seconds=time.monotonic() - started)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            folder_gone = False
            if now - last_beat >= heartbeat_seconds:
                last_beat = now
                folder_gone = not touch(heartbeat)
            reason = None
            if folder_gone:
                # Reconcile judged us stale and put the job back: another worker may run
                # it now, so this copy stops rather than run beside it.
                reason = "taken back"
            elif os.path.exists(cancel):
                reason = "cancelled"
            elif timeout_seconds and now - started > timeout_seconds:
                reason = "timeout"
            elif stop.requested:
                reason = "interrupted"
            if reason:
                stop_group(process, grace_seconds)
                return RunOutcome(process.returncode, reason, time.monotonic() - started)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
