"""The console scripts' first step: an idle claim answered before the command line is
built.

A claim timer fires every few seconds on every worker, and almost every run finds no
job. Building the command line (click, the config's full check, the queue) costs most
of such a run; here `mp claim --worker NAME` reads the config with yaml alone and lists
`pending/` once, and when nothing there is a job of a kind NAME runs, says so and stops.
Anything else (other options, a job it might run, a drained worker, time windows, a
share that is not set up, a config it cannot read plainly) goes to the full command,
which decides as it always did.
"""

from __future__ import annotations

import os
import sys

# As markers.PIPELINE_DIR, identity.SHARE_ID_FILE and jobs.drain.DRAIN_FOLDER (a test
# holds them equal): importing those modules is what this step avoids.
PIPELINE_DIR = ".pipeline"
SHARE_ID_FILE = "share.id"
DRAIN_FOLDER = "drained"


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
    if options is None or "--worker" not in options:
        return None
    worker = options["--worker"]
    path = options.get("--config") or os.environ.get("MP_CONFIG")
    if not path:
        return None
    try:
        import yaml

        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        staging = config["staging_root"]
        kinds = config["workers"][worker]["kinds"]
        queue = config.get("queue_dir") or os.path.join(staging, PIPELINE_DIR, "jobs")
        if config.get("windows") or not (isinstance(kinds, list) and kinds):
            return None
        if not os.path.isfile(os.path.join(staging, PIPELINE_DIR, SHARE_ID_FILE)):
            return None
        if os.path.lexists(os.path.join(queue, DRAIN_FOLDER, worker)):
            return None
        pending = os.path.join(queue, "pending")
        if os.path.islink(pending):
            return None
        # No queue folder yet (no job was ever queued): nothing to run either.
        names = os.listdir(pending) if os.path.lexists(pending) else []
    except Exception:  # anything unusual: the full command says what it is
        return None
    for name in names:
        if name.startswith("."):
            continue  # back-off and temporary files
        parts = name.split("_")
        if len(parts) < 4 or parts[0] != "job" or parts[3] in kinds:
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
