"""The console scripts' first step: timer runs with nothing to do, answered before the
command line is built.

Claim and controller timers fire every 15 s, and almost every run finds nothing to do.
Building the command line (click and every command's module) costs most of such a run.
Two answers come first, each only for exactly the command line the units run:

- idle/quick.py answers from the note the last full run left, importing nothing but os:
  `mp claim --worker NAME --config FILE` when no pending job is of NAME's kinds, and
  `mp reconcile --if-changed [--dispatch] --config FILE` when nothing the controller
  reads has changed.
- Without a note that holds, `mp claim` loads and checks the config, checks the share
  and lists `pending/` with the same code the full claim uses, leaves a note for the
  next run, and when nothing there is a job of a kind NAME runs, says so and stops.

A note is read only when this user wrote it, and a run as root whose config names a
service user (units.user) goes to the full command before the queue is looked at: that
command becomes the service user first (service_user.py), so a root run by hand never
makes a file on the share as root.

Anything else (other options, a job it might run, a drained worker, a config with a
mistake, a share or queue that is not as it should be) goes to the full command, which
decides, and says why, as it always did. Time windows matter only to a job a worker
may run, and such a job always goes to the full command.
"""

from __future__ import annotations

import os
import sys

from media_pipeline.idle import quick


def _options(
    args: list[str], names: tuple[str, ...], flags: tuple[str, ...] = ()
) -> dict[str, str] | None:
    """The options (with values) and flags in args, or None when args hold anything
    else or one twice."""
    found: dict[str, str] = {}
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in flags and arg not in found:
            found[arg] = ""
            position += 1
            continue
        name, equals, value = arg.partition("=")
        if name not in names or name in found:
            return None
        if not equals:
            if position + 1 >= len(args):
                return None
            value = args[position + 1]
            position += 1
        found[name] = value
        position += 1
    return found


def idle_claim(args: list[str]) -> str | None:
    """The sentence for `mp claim` args when the worker surely has no job to run, else
    None (the full command runs)."""
    if not args or args[0] != "claim":
        return None
    options = _options(args[1:], ("--worker", "--config", "--linger"))
    if options is None or "--worker" not in options or "--config" not in options:
        return None
    worker, config_path = options["--worker"], options["--config"]
    linger = _linger(options)
    if linger is None:
        return None  # the full command says what is wrong with it
    said = quick.idle_claim(config_path, worker, linger=linger > 0)
    if said is not None:
        return said
    try:
        from media_pipeline.config.load import load_config
        from media_pipeline.jobs.drain import is_drained
        from media_pipeline.jobs.queue import JobName, Queue
        from media_pipeline.pipeline import upstream_kinds
        from media_pipeline.service_user import must_switch
        from media_pipeline.share.identity import check_share

        config = load_config(config_path)
        if worker not in config.workers or must_switch(config):
            return None  # a root run switches user in the full command, then looks
        kinds = config.workers[worker].kinds
        check_share(config.staging_root)
        with Queue.of(config) as queue:
            if is_drained(queue, worker):
                return None
            _remember_claim(config, worker)
            names, _waits = queue.pending()
    except Exception:  # a mistake or a refusal: the full command says what it is
        return None
    for name in names:
        job = JobName.parse(name, check_date=False)
        if job is None or job.kind in kinds:
            return None
    if (
        linger > 0
        and quick.under_way(_pending(config), _running(config), upstream_kinds(kinds)) is not False
    ):
        return None  # the full command stays for the job that follows
    return f"worker {worker}: no job to run"


def _remember_claim(config, worker: str) -> None:
    """The note quick.idle_claim reads: this config, the share and the queue's folders as
    they are now that they passed the checks above, and the worker's kinds."""
    from media_pipeline.jobs.drain import DRAIN_FOLDER
    from media_pipeline.pipeline import upstream_kinds
    from media_pipeline.share.identity import share_id_path
    from media_pipeline.share.markers import PIPELINE_DIR

    share_file = share_id_path(config.staging_root)
    pending = _pending(config)
    kinds = config.workers[worker].kinds
    watched = [
        config.staging_root,
        os.path.join(config.staging_root, PIPELINE_DIR),
        config.queue_dir,
        os.path.join(config.queue_dir, DRAIN_FOLDER),
    ]
    share_id = quick.read_small(share_file)
    if share_id is None:
        return
    quick.write_note(
        quick.claim_note_name(worker),
        [
            *quick.config_lines(config.source),
            ("share_file", share_file),
            ("share_id", share_id),
            ("pending", pending),
            ("kinds", " ".join(sorted(kinds))),
            ("running", _running(config)),
            ("upstream", " ".join(sorted(upstream_kinds(kinds)))),
            *quick.watch_lines(watched, same=(pending,)),
        ],
    )


def _linger(options: dict[str, str]) -> int | None:
    """--linger's seconds, or None when the full command must say what is wrong."""
    text = options.get("--linger", "0")
    if not (text.isascii() and text.isdigit()) or int(text) > quick.LINGER_MOST:
        return None
    return int(text)


def _pending(config) -> str:
    return os.path.join(config.queue_dir, "pending")


def _running(config) -> str:
    return os.path.join(config.queue_dir, "running")


def idle_controller(args: list[str]) -> str | None:
    """The sentence for `mp reconcile --if-changed` args when nothing changed since the
    last full run, else None."""
    if not args or args[0] != "reconcile":
        return None
    options = _options(args[1:], ("--config", "--linger"), ("--if-changed", "--dispatch"))
    if options is None or "--if-changed" not in options or "--config" not in options:
        return None
    linger = _linger(options)
    if linger is None:
        return None  # the full command says what is wrong with it
    return quick.controller_unchanged(
        options["--config"], dispatch="--dispatch" in options, linger=linger > 0
    )


def _answered(args: list[str]) -> bool:
    said = idle_claim(args) or idle_controller(args)
    if said is None:
        return False
    print(said)
    return True


def main() -> None:
    if not _answered(sys.argv[1:]):
        from media_pipeline.cli import main as full

        full()


def claim_main() -> None:
    if not _answered(["claim", *sys.argv[1:]]):
        from media_pipeline.cli import claim_main as full

        full()
