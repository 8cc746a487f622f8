"""The process between a worker and its script: the script never outlives its worker.

    python -I -S guard.py LIFELINE_FD LOG_FD SLOT_FD LOG_MAX_BYTES GRACE_SECONDS CWD_FD
        WRITABLE_FDS -- ARGV...

The worker starts this guard in a new session; the guard starts the script in the
same process group and waits. Three things wake it:

- the script ends: the guard ends the same way (its exit code, or the same signal);
- the script writes output: the guard appends it to the job's log, which it keeps to
  LOG_MAX_BYTES by dropping the oldest half when it grows past that (the tail is what
  says why a job failed);
- the lifeline, a pipe whose only writer is the worker, reads end-of-file: the worker
  is gone, whatever killed it (SIGKILL included, which no handler sees). The guard then
  stops the whole group as a cancel does (SIGTERM, then SIGKILL after the grace), so
  the job cannot run on unwatched while reconcile gives it to another worker.

Before it starts the script it gives up writing anywhere but below the folders open as
WRITABLE_FDS (comma-separated; '-' for no such limit), for itself and the script
(worker/landlock.py); where the kernel cannot, the log says so and the script runs as
before.

A parent-death signal would reach only the script itself, not the encoder it started;
the group is what has to go. Run by path with -I -S, it imports nothing of the package
and only what starts fast.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import sys
import time

CHUNK = 1 << 16


class Log:
    """The job's log descriptor (opened O_APPEND by the worker), kept to max_bytes."""

    def __init__(self, descriptor: int, max_bytes: int):
        self.descriptor = descriptor
        self.max_bytes = max_bytes
        self.capped = True
        self.size = os.fstat(descriptor).st_size
        self.dropped = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.descriptor, view) :]
        self.size += len(data)
        if self.capped and self.size > self.max_bytes:
            try:
                self._drop_oldest()
            except OSError:
                self.capped = False  # keep logging, uncapped, rather than fail

    def _drop_oldest(self) -> None:
        keep = self.max_bytes // 2
        tail = os.pread(self.descriptor, keep, max(0, self.size - keep))
        # Start the kept part at a line's start, so no line is shown cut.
        newline = tail.find(b"\n")
        if 0 <= newline < len(tail) - 1:
            tail = tail[newline + 1 :]
        self.dropped += self.size - len(tail)
        note = (
            f"[media-pipeline: {self.dropped} bytes of earlier output dropped; the log keeps "
            f"about its last {keep} bytes]\n"
        ).encode()
        os.ftruncate(self.descriptor, 0)
        self.size = 0
        self.write(note + tail)


def _stop_group(script: int, pidfd: int, output: int, log: Log, grace: float) -> None:
    """The worker is gone: TERM the group (the guard survives it), wait out the grace
    while still logging, then KILL whatever is left, the guard included."""
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    watching = [pidfd, output]
    while time.monotonic() < deadline and pidfd in watching:
        ready, _, _ = select.select(watching, [], [], max(0.0, deadline - time.monotonic()))
        if output in ready and not _pump(output, log):
            watching.remove(output)
        if pidfd in ready:
            os.waitpid(script, 0)
            watching.remove(pidfd)
    os.killpg(0, signal.SIGKILL)


def _pump(output: int, log: Log) -> bool:
    """Copy what the script wrote; False at end of output."""
    try:
        data = os.read(output, CHUNK)
    except BlockingIOError:
        return True
    if data:
        log.write(data)
    return bool(data)


def _drain(output: int, log: Log) -> None:
    """Copy what is buffered now, without waiting for writers that keep the pipe open
    (a child the script left behind)."""
    while True:
        try:
            data = os.read(output, CHUNK)
        except BlockingIOError:
            return
        if not data:
            return
        log.write(data)


def _exit_like(status: int) -> None:
    """End as the script ended: the same exit code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


def _confine(writable: str, log: Log) -> None:
    """Write only below the folders the worker opened for this job (the item's own),
    from here on; a kernel that cannot is said in the log."""
    if writable == "-":
        return
    folders = [int(descriptor) for descriptor in writable.split(",") if descriptor]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "landlock.py")
    spec = importlib.util.spec_from_file_location("media_pipeline_landlock", path)
    assert spec is not None and spec.loader is not None
    landlock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(landlock)
    reason = landlock.unavailable()
    if reason is None:
        try:
            landlock.restrict_writes(folders)
        except OSError as error:
            reason = f"Landlock refused: {error.strerror or error}"
    for descriptor in folders:
        os.close(descriptor)
    if reason is not None:
        log.write(
            f"media-pipeline: this script may write outside its item's folders: {reason}\n".encode()
        )


def main(arguments: list[str]) -> None:
    lifeline, log_fd, slot_fd = (int(value) for value in arguments[:3])
    max_bytes, grace, cwd_fd = int(arguments[3]), float(arguments[4]), int(arguments[5])
    writable = arguments[6]
    argv = arguments[8:]
    if cwd_fd >= 0:
        # The script starts in its item's folder as the worker opened it after its
        # checks (a name on the share may lead elsewhere by now: see run_job).
        os.fchdir(cwd_fd)
        os.close(cwd_fd)
    # The worker's cancel and timeout signal the whole group; the guard outlives them so
    # it can log the script's last words and report how it ended. A handler, not
    # SIG_IGN: handlers are reset in the script at exec, an ignored signal would not be.
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda *_: None)
    # Only the slot reaches the script: the lifeline must close when the worker dies.
    os.set_inheritable(lifeline, False)
    os.set_inheritable(log_fd, False)
    log = Log(log_fd, max_bytes)
    _confine(writable, log)
    output, script_output = os.pipe()
    if slot_fd >= 0:
        os.set_inheritable(slot_fd, True)  # held by the script: see worker/slots.py
    try:
        script = os.posix_spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, script_output, 1),
                (os.POSIX_SPAWN_DUP2, script_output, 2),
            ],
            setsigdef=(signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE),
        )
    except OSError as error:
        log.write(f"media-pipeline: cannot run {argv[0]}: {error.strerror}\n".encode())
        os._exit(127 if isinstance(error, FileNotFoundError) else 126)
    os.close(script_output)
    os.set_blocking(output, False)
    pidfd = os.pidfd_open(script)
    watching = [lifeline, pidfd, output]
    while True:
        ready, _, _ = select.select(watching, [], [])
        if output in ready and not _pump(output, log):
            watching.remove(output)
        if lifeline in ready and not os.read(lifeline, 1):
            _stop_group(script, pidfd, output, log, grace)
        if pidfd in ready:
            _pid, status = os.waitpid(script, 0)
            if output in watching:
                _drain(output, log)
            _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
