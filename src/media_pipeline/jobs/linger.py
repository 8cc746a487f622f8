"""`mp claim --linger SECONDS`: a claim that stays while the next job is on its way.

A claim timer fires every 15 s, and the controller's as often, so a stage's end used to
reach the next stage's script in two timers' waits: 16 s, median. Yet the next job is
foreseeable. It follows a job of an earlier kind, queued or running (a transcode follows
a remux and the rip before it, whoever runs them), and on a host that runs two kinds in
a row it follows the job the claim itself just ran (a filing follows its transcode). So
a claim that found nothing, or has run its job, stays while such a job is under way and
for FOLLOW_SECONDS after, looking at the queue once a second: folder listings, no
process started, no lock held. When a job of its kinds appears it claims it as `mp
claim` does, every check included.

It stops at SECONDS after the command started (a job it started by then still runs to
its end; the timer starts the next claim 15 s later), at once when the queue cannot be
listed (the full claim of the next timer run says why), and after a job that failed, so
that the unit shows the failure. SIGTERM (a shutdown, `systemctl stop`) ends it where
it waits: it holds nothing then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from media_pipeline.jobs.outcome import ClaimResult
from media_pipeline.quick import job_kind
from media_pipeline.states import upstream_kinds

POLL_SECONDS = 1.0
# How long after an earlier job (or its own) ended a claim still expects the next job:
# the controller's run that queues it may start up to one timer interval (15 s) late.
FOLLOW_SECONDS = 20.0


def jobs_of(folder: str, kinds: set[str]) -> set[str] | None:
    """The names in a queue folder of jobs of kinds (a running job's folder name starts
    with its job's); None when the folder cannot be listed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    return {name for name in names if not name.startswith(".") and job_kind(name) in kinds}


def stay(
    queue_dir: str,
    kinds: tuple[str, ...] | list[str],
    until: float,
    first: ClaimResult,
    claim: Callable[[], ClaimResult],
) -> Iterator[ClaimResult]:
    """The results of the claims made while staying (until: a time.monotonic())."""
    mine, upstream = set(kinds), upstream_kinds(kinds)
    pending, running = os.path.join(queue_dir, "pending"), os.path.join(queue_dir, "running")
    last = first
    # After a claim that ran a job, any job of its kinds is new; after one that found
    # none, those it saw then wait for something (a backoff, a window, another drive).
    seen = set() if first.outcome is not None else (jobs_of(pending, mine) or set())
    expect_until = time.monotonic() + FOLLOW_SECONDS if first.outcome is not None else 0.0
    while not last.failed:
        now = time.monotonic()
        coming = [jobs_of(folder, upstream) for folder in (pending, running)] if upstream else []
        if None in coming:
            return
        if any(coming):
            expect_until = now + FOLLOW_SECONDS
        if now >= min(expect_until, until):
            return
        time.sleep(POLL_SECONDS)
        waiting = jobs_of(pending, mine)
        if waiting is None:
            return
        if not waiting - seen:
            continue
        last = claim()
        yield last
        if last.outcome is None:
            seen = jobs_of(pending, mine) or set()
        else:
            seen = set()
            expect_until = time.monotonic() + FOLLOW_SECONDS
