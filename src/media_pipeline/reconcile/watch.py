"""What the controller's timer runs: reconcile, then dispatch, in one process; and what
it remembers so that the next run, when nothing changed, stops at once (idle/quick.py).

One run for both halves the time from a stage's end to the next stage's job: the job
is queued in the same run that saw the done marker, not a dispatch timer later.

The note is written only when nothing the run watches changed while it ran: its own
writes (a job queued, a state changed) count as changes too, so the run after a
change is a full one, which finds nothing and leaves the note. A change made by
someone else during the run is therefore never taken for the run's own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from media_pipeline.config.settings import Config
from media_pipeline.idle import quick
from media_pipeline.items.names import TYPE_FOLDERS
from media_pipeline.jobs.queue import PENDING, RUNNING
from media_pipeline.pipeline import STAGE_FOLDERS
from media_pipeline.share.markers import PIPELINE_DIR


def watched_folders(config: Config) -> list[str]:
    """Everything whose change should wake the controller: the database (a decision, a
    retry), the queue's folders (a job claimed, finished or queued), and the stage
    folders down to the shows (an item or disc that appears). Markers written inside an
    item folder by a script run by hand are not watched: the full run every few minutes
    sees them."""
    paths = [
        config.database,
        config.staging_root,
        os.path.join(config.staging_root, PIPELINE_DIR),
        config.queue_dir,
    ]
    paths += _subfolders(config.queue_dir)
    for stage in STAGE_FOLDERS:
        stage_folder = os.path.join(config.staging_root, stage)
        paths.append(stage_folder)
        for type_folder in TYPE_FOLDERS.values():
            paths.append(os.path.join(stage_folder, type_folder))
        paths += _subfolders(os.path.join(stage_folder, TYPE_FOLDERS["tv"]))
    return paths


def _subfolders(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []  # missing or unreadable: its parent's signature covers it


def _busy(config: Config) -> bool:
    """A job running (its heartbeat can go stale) or backing off (its wait ends)."""
    for state, waits_only in ((RUNNING, False), (PENDING, True)):
        try:
            names = os.listdir(os.path.join(config.queue_dir, state))
        except OSError:
            continue
        if any(name.startswith(".") or not waits_only for name in names):
            return True
    return False


def full_run_every(config: Config) -> int:
    """Seconds the note is trusted: a running job's heartbeat must be seen going stale
    in time (half its limit), whatever the folders say."""
    if not _busy(config):
        return quick.FULL_RUN_EVERY
    half_stale = config.jobs.stale_after_seconds // 2
    return max(1, min(quick.FULL_RUN_EVERY_BUSY, half_stale, config.jobs.backoff_seconds))


@dataclass
class Watch:
    """The watched folders as a full run found them before it began."""

    config: Config
    started: float = field(default_factory=time.time)
    before: list[tuple[str, str]] = field(default_factory=list)
    config_lines: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def begin(cls, config: Config) -> Watch:
        quick.forget_note(quick.CONTROLLER_NOTE)  # a run that fails leaves none behind
        watch = cls(config, config_lines=quick.config_lines(config.source))
        watch.before = watch.now()
        return watch

    def now(self) -> list[tuple[str, str]]:
        # An empty -wal is made and removed by every reader of the database (mp status):
        # only one that holds a write counts.
        wal = self.config.database + "-wal"
        return quick.watch_lines(watched_folders(self.config), content=(wal,))

    after: list[tuple[str, str]] | None = None  # as a run that changed nothing left them
    until: float = 0.0

    def remember(self, *, dispatched: bool) -> bool:
        """Leave the note when nothing changed while the run ran; whether it did."""
        after = self.now()
        if after != self.before:
            return False
        self.after, self.until = after, self.started + full_run_every(self.config)
        quick.write_note(
            quick.CONTROLLER_NOTE,
            [
                *self.config_lines,
                ("at", f"{self.started:.3f}"),
                ("until", f"{self.until:.3f}"),
                ("dispatched", "1" if dispatched else "0"),
                ("queue", self.config.queue_dir),
                *after,
            ],
        )
        return True

    def holds(self) -> bool:
        """What the note says, asked in the same process: whether the last run changed
        nothing, nothing changed since, and a full run is not due yet."""
        return self.after is not None and time.time() < self.until and self.now() == self.after


# -- lingering -----------------------------------------------------------------------
#
# `mp reconcile --if-changed --dispatch --linger SECONDS`: while jobs are under way the
# controller's run stays, asks every POLL_SECONDS what a new run of its timer would ask
# (Watch.holds: a few dozen stat() calls, nothing imported, no process started), and
# runs again the moment the answer changes. A stage's end is then queued as the next
# stage's job within about a second, not a timer interval later, and a decision made
# at a gate likewise. Idle (no job running or just queued) it ends at once as before.

POLL_SECONDS = 1.0
# After a run that found nothing to do, the next waits this long: what a share writer
# touching folders can cost is then a run every few seconds, not every second, while a
# job's end (a run that does something) is still acted on within a second.
QUIET_GAP_SECONDS = 5.0


def keep_watching(first: Watch, until: float, run: Callable[[Watch], bool], did: bool) -> None:
    """Run again (run(watch): whether that run changed anything) each time a run is due,
    until time.monotonic() reaches until, no job is under way or the config changed. did:
    whether the first run changed anything."""
    watch = first
    while time.monotonic() < until and quick.queue_under_way(watch.config.queue_dir):
        time.sleep(POLL_SECONDS)
        if watch.holds():
            continue
        if quick.config_lines(watch.config.source) != watch.config_lines:
            return  # the next timer run reads it
        if not did and time.time() - watch.started < QUIET_GAP_SECONDS:
            continue  # the last run found nothing to do: a change that leads nowhere waits
        watch = Watch.begin(watch.config)
        did = run(watch)
