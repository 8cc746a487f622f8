"""The console scripts' first step: an idle claim answered before the command line is
built.

A claim timer fires every few seconds on every worker, and almost every run finds no
job. Building the command line (click and every command's module) costs most of such a
run; here `mp claim --worker NAME` loads and checks the config, checks the share and
lists `pending/` with the same code the full claim uses, and when nothing there is a job
of a kind NAME runs, says so and stops. Anything else (other options, a job it might run,
a drained worker, time windows, a config with a mistake, a share or queue that is not
as it should be) goes to the full command, which decides, and says why, as it always did.
"""

from __future__ import annotations

import sys


def _options(args: list[str]) -> dict[str, str] | None:
    """--worker and --config from args, or None when args hold anything else."""
    found: dict[str, str] = {}
    position = 0
    while position < len(args):
        arg = args[position]
        name, equals, value = arg.partition("=")
        if name not in ("--worker", "--config") or name in found:
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
    options = _options(args[1:])
    if options is None or "--worker" not in options or "--config" not in options:
        return None
    worker = options["--worker"]
    try:
        from media_pipeline.config import load_config
        from media_pipeline.identity import check_share
        from media_pipeline.jobs.drain import is_drained
        from media_pipeline.jobs.queue import JobName, Queue

        config = load_config(options["--config"])
        if worker not in config.workers or config.windows:
            return None
        kinds = config.workers[worker].kinds
        check_share(config.staging_root)
        with Queue.of(config) as queue:
            if is_drained(queue, worker):
                return None
            names, _waits = queue.pending()
    except Exception:  # a mistake or a refusal: the full command says what it is
        return None
    for name in names:
        job = JobName.parse(name, check_date=False)
        if job is None or job.kind in kinds:
            return None
    return f"worker {worker}: no job to run"


def _answered(args: list[str]) -> bool:
    said = idle_claim(args)
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
