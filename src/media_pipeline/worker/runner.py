"""Run one job's script: behind its guard, in its own process group, log captured,
heartbeat, cancel, timeout.

The script runs from an argument list (never a shell) in a new session, so that cancel,
timeout and a stopping worker can signal every process it started, and nothing it does
can signal the worker. Between the two sits `guard.py`, which writes the script's
output into the job's log (capped) and stops the whole group if this worker dies,
however it dies.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_pipeline.faults import crash_point
from media_pipeline.jobs.queue import JobFolder, Queue
from media_pipeline.share.files import BadEntry
from media_pipeline.worker import guard

POLL_SECONDS = 0.5
# How long a stopped job's processes are waited for after SIGKILL: one stuck in the
# kernel (a hard NFS mount that vanished) may never end, and the worker must.
GROUP_EXIT_SECONDS = 30


@dataclass
class RunOutcome:
    exit_code: int | None
    # "cancelled", "timeout", "interrupted", "taken back", "duplicate"
    stopped: str | None = None
    seconds: float = 0.0


class _StopRequest:
    """Set by SIGTERM/SIGINT to the worker (systemd stopping it, a reboot)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum, _frame) -> None:
        self.requested = True

    def arrives(self, seconds: float) -> bool:
        """Whether a stop is requested within seconds (a signal sent to this worker and
        its script together may reach the script first)."""
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requested


# How a script ends when a stop signal reached it (killed by it, or a shell's 128 + it),
# and how long its worker waits for its own signal after such an end.
_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_SIGNAL_CODES = frozenset({-int(sig) for sig in _STOPS} | {128 + int(sig) for sig in _STOPS})
STOP_ARRIVES_SECONDS = 1.0


def beat(job: JobFolder) -> None:
    """Touch the heartbeat; a share that hiccups is tried again at the next beat."""
    # A heartbeat replaced by a link or a FIFO is not written through: the job then looks
    # stale, and reconcile takes it back.
    with contextlib.suppress(OSError, BadEntry):
        job.beat()


def _ended(pidfd: int, timeout: float) -> bool:
    """Whether the guard has ended, waiting up to timeout. It is not reaped here: while
    it is a zombie its pid, and so its group's id, cannot be reused, so signalling the
    group can never reach an unrelated process."""
    ready, _, _ = select.select([pidfd], [], [], timeout)
    return bool(ready)


def finish_group(process: subprocess.Popen) -> int:
    """SIGKILL what is left of the group once its guard has ended, wait until it has
    really ended, then reap the guard: a child the script left behind must not go on
    writing into the job's folders after its outcome is recorded, nor hold the worker's
    slot, nor run beside a copy that another worker starts once this one has returned."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    # SIGKILL is delivered, not done: on a busy host a killed process can run on for a
    # moment. The guard is not reaped before the group is gone, so the group's id, its
    # pid, cannot be taken by an unrelated process meanwhile.
    deadline = time.monotonic() + GROUP_EXIT_SECONDS
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.wait()


def group_members(group: int) -> list[int]:
    """The processes of a process group that still run. A zombie is not counted: it has
    closed its files (the slot's lock among them) and runs nothing."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # ended meanwhile
        # After the command name (in parentheses, and free to hold anything): the state,
        # the parent, the process group.
        fields = stat.rpartition(b")")[2].split()
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def stop_group(process: subprocess.Popen, pidfd: int, grace_seconds: float) -> int:
    """SIGTERM the job's whole process group, then SIGKILL what is left after grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    _ended(pidfd, grace_seconds)
    return finish_group(process)


def _start(
    argv, env, job: JobFolder, slot_fd, log_max_bytes, grace_seconds, cwd_fd=-1, writable=None
):
    """Start the guard and, through it, the script. Returns (process, lifeline): the
    worker holds the lifeline's writing end until the job is over. writable: the
    descriptors of the only folders the script may write below (None: no such limit)."""
    log = job.open_log_to_append()  # first: a log mp refuses leaves nothing open
    lifeline_read, lifeline = os.pipe()
    slot = -1 if slot_fd is None else slot_fd
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                guard.__file__,
                str(lifeline_read),
                str(log),
                str(slot),
                str(log_max_bytes),
                str(grace_seconds),
                str(cwd_fd),
                "-" if writable is None else ",".join(str(fd) for fd in writable),
                "--",
                *argv,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(
                fd for fd in (lifeline_read, log, slot, cwd_fd, *(writable or ())) if fd >= 0
            ),
        )
    except BaseException:
        os.close(lifeline)
        raise
    finally:
        os.close(lifeline_read)
        os.close(log)
    return process, lifeline


def _cancel_counts(job: JobFolder, cancel_verifies: Callable[[str], bool] | None) -> bool:
    if cancel_verifies is None:
        return True
    try:
        text = job.cancel()
    except (OSError, BadEntry):
        return False  # a link or a FIFO: not what mp cancel writes
    return cancel_verifies(text)


def run_script(
    argv: list[str],
    env: dict[str, str],
    queue: Queue,
    running_name: str,
    job: JobFolder,
    other_runs: Callable[[], list[str]],
    *,
    heartbeat_seconds: float,
    timeout_seconds: float | None,
    grace_seconds: float,
    log_max_bytes: int,
    slot_fd: int | None = None,
    cancel_verifies: Callable[[str], bool] | None = None,
    cwd_fd: int = -1,
    writable: tuple[int, ...] | None = None,
) -> RunOutcome:
    """Run argv to its end, or until cancelled, timed out, taken back or interrupted.

    cancel_verifies tells a cancel file the controller signed from one anyone wrote
    (None: any cancel file counts).

    writable: the folders (descriptors) the script may write below, nowhere else.

    slot_fd, the worker's max_running slot, is passed down to the script: the slot then
    stays held for as long as the script, or anything it started, is still running."""
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.monotonic()
    lifeline = pidfd = -1
    try:
        process, lifeline = _start(
            argv, env, job, slot_fd, log_max_bytes, grace_seconds, cwd_fd, writable
        )
        job.write_pids(os.getpid(), process.pid)
        pidfd = os.pidfd_open(process.pid)
        crash_point("claim:running")
        last_beat = time.monotonic()
        while True:
            if _ended(pidfd, POLL_SECONDS):
                code = finish_group(process)
                # systemd stopping the unit signals every process in it at once: the
                # script may end of it before this worker's own signal is handled. Its
                # end is then the stop's, not a failure of the script's.
                if code in STOP_SIGNAL_CODES and stop.arrives(STOP_ARRIVES_SECONDS):
                    return RunOutcome(code, "interrupted", time.monotonic() - started)
                return RunOutcome(code, seconds=time.monotonic() - started)
            now = time.monotonic()
            if now - last_beat >= heartbeat_seconds:
                last_beat = now
                beat(job)
            reason = None
            # Looked at every poll, not every beat: once reconcile has put the job back
            # (its heartbeat judged stale, or forged stale), another worker may start it.
            if not queue.still_holds(running_name, job):
                # No grace: the other run may have begun; this copy stops at once.
                code = stop_group(process, pidfd, 0)
                return RunOutcome(code, "taken back", time.monotonic() - started)
            if other_runs():
                # A second job of this item is running (a copy made on the share, slipped
                # past the check at its start). Both copies see each other and stop; the
                # item is queued again from the controller's own spec.
                code = stop_group(process, pidfd, 0)
                return RunOutcome(code, "duplicate", time.monotonic() - started)
            if job.has_cancel() and _cancel_counts(job, cancel_verifies):
                reason = "cancelled"
            elif timeout_seconds and now - started > timeout_seconds:
                reason = "timeout"
            elif stop.requested:
                reason = "interrupted"
            if reason:
                code = stop_group(process, pidfd, grace_seconds)
                return RunOutcome(code, reason, time.monotonic() - started)
    finally:
        for descriptor in (lifeline, pidfd):
            if descriptor >= 0:
                os.close(descriptor)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
