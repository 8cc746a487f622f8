"""`mp demo [DIR]`: a sandbox with its own config, staging, library and database, driven
from disc to library so that `mp status --config DIR/config.yaml` shows the result.

Until the job queue lands (issue #3) the stage scripts are simulated: each step writes
what the script would write (a file and its three marker lines' worth of markers), and
the real reconcile picks it up.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime

import yaml

from media_pipeline.config import load_config
from media_pipeline.errors import UsageError
from media_pipeline.items import ItemKey
from media_pipeline.reconcile import run_reconcile
from media_pipeline.status import format_status, run_status

DEMO_ITEMS = (
    ItemKey("movie", "Big Buck Bunny (2008)"),
    ItemKey("tv", "Demo Show", "S01 Disc1"),
    ItemKey("tv", "Demo Show", "S01 Disc2"),
)

# (step title, stage folder the script writes, marker it writes, file it leaves)
SIMULATED_STEPS = (
    ("rip: the discs are ripped", "1-ripped", "rip", "title_t00.mkv"),
    ("remux: main feature and episodes remuxed", "2-remuxed", "remux", "remuxed.mkv"),
    ("transcode: files transcoded", "3-transcoded", "transcode", "transcoded.mkv"),
    ("filebot: items filed into the library", "3-transcoded", "filebot", None),
)


def write_demo_config(sandbox: str) -> str:
    config = {
        "staging_root": os.path.join(sandbox, "staging"),
        "library_root": os.path.join(sandbox, "library"),
        "database": os.path.join(sandbox, "state.db"),
        # The gates need `mp approve` (issue #4); the foundation demo runs with them off.
        "gates": [],
    }
    path = os.path.join(sandbox, "config.yaml")
    with open(path, "x", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    for root in ("staging_root", "library_root"):
        os.makedirs(config[root], exist_ok=True)
    return path


def _simulate_script(staging_root: str, key: ItemKey, stage: str, marker: str, file: str | None):
    folder = key.folder(staging_root, stage)
    os.makedirs(os.path.join(folder, ".pipeline"), exist_ok=True)
    if file:
        with open(os.path.join(folder, file), "wb") as handle:
            handle.write(b"simulated video for " + key.name.encode())
    with open(os.path.join(folder, ".pipeline", f"{marker}.done"), "w"):
        pass
    with open(os.path.join(folder, ".pipeline", f"{marker}.timestamp"), "w") as handle:
        handle.write(datetime.now().astimezone().isoformat(timespec="seconds") + "\n")


def run_demo(directory: str | None, echo: Callable[[str], None]) -> str:
    sandbox = os.path.abspath(directory or tempfile.mkdtemp(prefix="mp-demo-"))
    os.makedirs(sandbox, exist_ok=True)
    if os.path.exists(os.path.join(sandbox, "config.yaml")):
        raise UsageError(
            f"{sandbox} already holds a demo (config.yaml); give an empty or new folder"
        )
    echo("media-pipeline demo (foundation): scripts are SIMULATED by writing their markers;")
    echo("the job queue, approvals and real ffmpeg arrive with issues #3 to #5.")
    config_path = write_demo_config(sandbox)
    config = load_config(config_path)
    echo(f"sandbox: {sandbox}")
    for number, (title, stage, marker, file) in enumerate(SIMULATED_STEPS, start=1):
        echo(f"\n[{number}/{len(SIMULATED_STEPS)}] {title} (simulated)")
        for key in DEMO_ITEMS:
            _simulate_script(config.staging_root, key, stage, marker, file)
        result = run_reconcile(config)
        for transition in result.plan.transitions:
            echo(f"  reconcile: {transition.describe()}")
    echo("\n" + format_status(run_status(config)))
    echo(f"\nSee it again with: mp status --config {config_path}")
    return sandbox
