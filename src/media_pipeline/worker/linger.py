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

An earlier job that has waited in pending/ for over a minute (for a ripper that is off,
or a backoff) keeps no claim up. Jobs of its kinds it saw but could not take (a backoff,
a closed window, a drained worker) are looked at again every RECHECK_SECONDS.

It stops at SECONDS after the command started (a job it started by then still runs to
its end; the timer starts the next claim 15 s later), at once when the queue cannot be
listed or the config changed (the next timer run reads it), after a job that failed, so
that the unit shows the failure, and on SIGTERM (a shutdown, `systemctl stop`): where it
waits it holds nothing, and a job it runs is put back, not taken again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from media_pipeline.idle.quick import config_signature, jobs_in, under_way
from media_pipeline.jobs.outcome import ClaimResult
from media_pipeline.jobs.queue import PENDING, RUNNING
from media_pipeline.pipeline import upstream_kinds

POLL_SECONDS = 1.0
# How often jobs it saw but could not take are looked at again: a timer's interval.
RECHECK_SECONDS = 15.0
# How long after an earlier job (or its own) ended a claim still expects the next job:
# the controller's run that queues it may start up to one timer interval (15 s) late.
FOLLOW_SECONDS = 20.0


def stay(
    queue_dir: str,
    kinds: tuple[str, ...] | list[str],
    until: float,
    first: ClaimResult,
    claim: Callable[[], ClaimResult],
    config: tuple[str, str],
) -> Iterator[ClaimResult]:
    """The results of the claims made while staying (until: a time.monotonic()); config:
    the config's path and its signature when it was loaded."""
    mine, upstream = set(kinds), upstream_kinds(kinds)
    pending, running = os.path.join(queue_dir, PENDING), os.path.join(queue_dir, RUNNING)
    config_path, config_seen = config
    last, claimed_at = first, time.monotonic()
    # After a claim that ran a job, any job of its kinds is new; after one that found
    # none, those it saw then wait for something (a backoff, a window, a resume), and
    # are looked at again every RECHECK_SECONDS, as often as the timer would.
    seen = set() if first.outcome is not None else (jobs_in(pending, mine) or set())
    expect_until = time.monotonic() + FOLLOW_SECONDS if first.outcome is not None else 0.0
    while not last.stops:
        now = time.monotonic()
        coming = under_way(pending, running, upstream) if upstream else False
        if coming is None or config_signature(config_path) != config_seen:
            return  # the queue cannot be listed, or the config changed: the next run's
        if coming:
            expect_until = now + FOLLOW_SECONDS
        if now >= min(expect_until, until):
            return
        time.sleep(POLL_SECONDS)
        waiting = jobs_in(pending, mine)
        if waiting is None:
            return
        recheck = waiting and time.monotonic() - claimed_at >= RECHECK_SECONDS
        if not (waiting - seen or recheck):
            continue
        last, claimed_at = claim(), time.monotonic()
        yield last
        if last.outcome is None:
            seen = jobs_in(pending, mine) or set()
        else:
            seen = set()
            expect_until = time.monotonic() + FOLLOW_SECONDS
