"""`mp rip --device /dev/srN`: a disc went into a drive (udev started mp-rip@srN); queue
its rip, once, with a title guessed from its label.

It runs on the ripper, which has no database: where the controller's database is not on
this host, the job goes straight into the queue and the controller's next reconcile
takes the item in from it (as it does for any live job whose item it lacks). On the
controller it is `mp rip` with the guessed title. Either way the guess is shown at the
first gate, where `mp rename` corrects it.

A disc seen twice (udev reads it again, the tray bounces) must queue one job: the
checks and the queueing happen under one lock on this host (two drives may hold discs
with one label), and nothing is queued for a drive that has a live rip job already (a
drive holds one disc), nor for an item with a live job, a ripped folder or a row in the
database. The job names this host beside the drive: with two rippers, only this one's
worker claims it (the disc is in its drive).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import filelock

from media_pipeline.config.hosts import HOST_NAME, host_name
from media_pipeline.config.settings import Config
from media_pipeline.control.item_command import key_from_parts, live_rip_in
from media_pipeline.control.rip import rip_stopped, run_rip
from media_pipeline.errors import UsageError
from media_pipeline.items.names import ItemKey, printable
from media_pipeline.jobs.queue import Queue
from media_pipeline.jobs.signature import signed
from media_pipeline.jobs.spec import build_spec
from media_pipeline.library.disc import Disc, Drive, guess, read_disc
from media_pipeline.pipeline import DISC_STAGE
from media_pipeline.said import Said
from media_pipeline.share.fsutil import local_lock_folder
from media_pipeline.share.identity import check_share
from media_pipeline.share.markers import has_marker

LOCK_SECONDS = 60


def run_rip_device(
    config: Config, device: str, worker: str | None = None, *, dry_run: bool = False
) -> Said:
    _check_ripper(config, worker or host_name())
    disc = read_disc(device)
    guessed = guess(disc.label, uuid=disc.uuid)
    key = key_from_parts(guessed.type, guessed.title, guessed.disc_label)
    seen = f"{disc.media.upper()} '{printable(disc.label)}' in {device}"
    lock_path = os.path.join(local_lock_folder(), "mp-rip-device.lock")
    try:
        with filelock.FileLock(lock_path, timeout=LOCK_SECONDS):
            return _queue_once(config, disc, key, seen, dry_run)
    except filelock.Timeout:
        raise UsageError("another 'mp rip --device' held its lock for a minute") from None


def _check_ripper(config: Config, worker: str) -> None:
    """The job names this host: refused where no worker here rips (it would wait for
    ever), or where the host's name is not one a job may name."""
    if not HOST_NAME.fullmatch(host_name()):
        raise UsageError(
            f"this host's name '{printable(host_name())}' is not one a job can name "
            "(letters, digits, - and _, at most 63): rename the host to rip from its drives"
        )
    found = config.workers.get(worker)
    if found is None or DISC_STAGE.kind not in found.kinds:
        raise UsageError(
            f"no worker '{printable(worker)}' rips in {config.source}: nothing on this host "
            "would rip the disc (a ripper whose worker has another name: --worker NAME)"
        )


def _queue_once(config: Config, disc: Disc, key: ItemKey, seen: str, dry_run: bool):
    check_share(config.staging_root)
    with Queue.of(config) as queue:
        drive = Drive(host_name(), disc.device)
        live = queue.live_job_for(key.uid) or live_rip_in(queue, drive)
        if live is not None:
            return Said(f"{seen}: {printable(key.name)} is queued already ({live[1]})")
        on_controller = os.path.exists(config.database)
        ripped = key.folder(config.staging_root, DISC_STAGE.writes or "")
        # On the controller, an item whose rip failed is retried from this drive: its
        # folder holds what the failed rip left (the rip script makes it first).
        if os.path.lexists(ripped) and not (on_controller and rip_stopped(config, key)):
            if not has_marker(config.staging_root, ripped, DISC_STAGE.kind):
                return Said(
                    f"{seen}: the rip of {printable(key.name)} did not finish ({ripped} has "
                    "no rip.done); nothing queued. Once 'mp status' shows it FAILED, 'mp "
                    "retry' it on the controller (it reads the drive the disc was last in)"
                )
            return Said(
                f"{seen}: {printable(key.name)} is ripped already ({ripped}); nothing queued. "
                "To rip it again, 'mp forget' it first, or 'mp rip --edition' another copy"
            )
        if on_controller:
            result = run_rip(
                config, key.type, key.title, key.disc_label, drive=drive, dry_run=dry_run
            )
            return Said(f"{seen}: {result.message}")
        if dry_run:
            return Said(f"{seen}: would queue a rip job for {printable(key.name)}")
        now = datetime.now(UTC)
        # Signed with this ripper's own key: the controller and this host's worker
        # trust it for the rips of this host's drives (jobs/keys.py).
        spec = build_spec(config, DISC_STAGE.kind, key, priority=0, now=now, drive=drive)
        job_id = queue.submit(signed(config, spec))
    return Said(
        f"{seen}: queued {job_id} for {printable(key.name)} (the controller takes the item "
        "in at its next reconcile; 'mp rename' corrects the title)"
    )
