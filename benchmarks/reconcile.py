"""Reconcile against a bare walk of the same tree, side by side in one run.

Builds a synthetic staging tree of N items (default 10,000) spread over the stages,
then times, on a warm page cache:
  walk   - os.scandir over every folder, opening and reading every file in .pipeline/
           (also shown, for reference: the walk reading names only, and the time to
           create two small files per item atomically, which a cold run must do)
  cold   - `run_reconcile` with no database and no controller files (first run)
  no-op  - `run_reconcile` again with nothing changed
and prints each time and its ratio to the walk. Targets: no-op <= 2x, cold <= 5x. The
no-op run is also checked to write nothing: the database file and every marker are
compared byte for byte (and by mtime) before and after.

    python benchmarks/reconcile.py [--items 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

from media_pipeline.config.load import load_config
from media_pipeline.items.names import ItemKey
from media_pipeline.pipeline import STAGE_FOLDERS as STAGES
from media_pipeline.reconcile import run_reconcile

MARKERS_BY_DEPTH = ("rip", "remux", "transcode", "filebot")


def build_tree(staging: str, count: int, depth: int | None = None) -> None:
    """count items, a mix of movies and discs of shows, spread over the stages (or all at
    depth: 0 ripped, 1 remuxed, 2 transcoded, 3 in the library)."""
    fixed = depth
    for number in range(count):
        if number % 5 < 2:
            key = ItemKey("movie", f"Movie {number:05d} (19{number % 100:02d})")
        else:
            key = ItemKey(
                "tv", f"Show {number // 6:04d}", f"S{number % 9 + 1:02d} Disc{number % 4}"
            )
        depth = number % 4 if fixed is None else fixed
        for stage_index, stage in enumerate(STAGES):
            if stage_index > min(depth, 2):
                break
            pipeline = os.path.join(key.folder(staging, stage), ".pipeline")
            os.makedirs(pipeline, exist_ok=True)
            with open(os.path.join(os.path.dirname(pipeline), "video.mkv"), "wb") as handle:
                handle.write(b"x")
            markers = [MARKERS_BY_DEPTH[stage_index]]
            if stage_index == 2 and depth == 3:
                markers.append("filebot")
            for marker in markers:
                open(os.path.join(pipeline, f"{marker}.done"), "w").close()
                with open(os.path.join(pipeline, f"{marker}.timestamp"), "w") as handle:
                    handle.write("2026-11-24T12:00:00+00:00\n")


def bare_walk(staging: str) -> int:
    """The least any reconcile must do: visit every folder, read every marker file."""
    read = 0
    stack = [os.path.join(staging, stage) for stage in STAGES]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not entry.is_dir():
                continue
            if entry.name == ".pipeline":
                for marker in os.scandir(entry.path):
                    with open(marker.path, "rb") as handle:
                        read += len(handle.read())
            else:
                stack.append(entry.path)
    return read


def scandir_only(staging: str) -> int:
    """For reference: the walk without opening any file (names only)."""
    seen = 0
    stack = [os.path.join(staging, stage) for stage in STAGES]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            seen += 1
            if entry.is_dir():
                stack.append(entry.path)
    return seen


def item_pipelines(staging: str) -> list[str]:
    """The .pipeline folder of each item's furthest stage: where reconcile writes."""
    furthest = {}
    for stage in STAGES:
        for folder, folders, _files in os.walk(os.path.join(staging, stage)):
            if ".pipeline" in folders:
                furthest[os.path.relpath(folder, os.path.join(staging, stage))] = folder
                folders.clear()
    return [os.path.join(folder, ".pipeline") for folder in furthest.values()]


def create_floor(pipelines: list[str]) -> None:
    """For reference: only creating two small files per item, each written to a temporary
    name and renamed, as the contract's atomic `state` and `metadata.json` need. No cold
    run that keeps the contract can take less than the walk plus this."""
    for pipeline in pipelines:
        for name in ("floor-a", "floor-b"):
            temporary = os.path.join(pipeline, "." + name + ".tmp")
            with open(temporary, "w") as handle:
                handle.write("REMUXED\n")
            os.replace(temporary, os.path.join(pipeline, name))


def remove_floor(pipelines: list[str]) -> None:
    for pipeline in pipelines:
        for name in ("floor-a", "floor-b"):
            os.unlink(os.path.join(pipeline, name))


def remove_controller_state(staging: str, database: str) -> None:
    for folder, _folders, files in os.walk(staging):
        if os.path.basename(folder) == ".pipeline":
            for name in ("state", "metadata.json"):
                if name in files:
                    os.unlink(os.path.join(folder, name))
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(database + suffix):
            os.unlink(database + suffix)


def snapshot(staging: str, database: str) -> dict:
    found = {}
    for folder, _folders, files in os.walk(staging):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[path] = (handle.read(), os.stat(path).st_mtime_ns)
    with open(database, "rb") as handle:
        found[database] = (handle.read(), os.stat(database).st_mtime_ns)
    return found


def cold_peak_rss_mb(config_path: str, staging: str, database: str) -> float:
    """The peak memory of a cold reconcile, run alone in a child process.

    Read from the child's own /proc/self/status (VmHWM), not from getrusage: Linux
    carries the RSS of the process that forked a child into the child's ru_maxrss, and
    this benchmark holds a copy of the whole tree when it forks.
    """
    remove_controller_state(staging, database)
    code = (
        "import logging, sys; logging.disable(logging.INFO); "
        "from media_pipeline.config.load import load_config; "
        "from media_pipeline.reconcile import run_reconcile; "
        "run_reconcile(load_config(sys.argv[1])); "
        "print(next(line.split()[1] for line in open('/proc/self/status') "
        "if line.startswith('VmHWM:')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, config_path], capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        raise SystemExit(f"the cold reconcile in a child process failed: {run.stderr[-500:]}")
    return int(run.stdout.split()[-1]) / 1024  # kB


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="rows as JSON, for report.py")
    arguments = parser.parse_args()
    # Ten thousand "new item" lines would time the terminal, not reconcile.
    logging.getLogger("media_pipeline").setLevel(logging.WARNING)

    scratch = tempfile.mkdtemp(prefix="mp-bench-")
    try:
        staging = os.path.join(scratch, "staging")
        database = os.path.join(scratch, "db", "state.db")
        config_path = os.path.join(scratch, "config.yaml")
        with open(config_path, "w") as handle:
            yaml.safe_dump(
                # Gates off: opening an approval probes the item's files with ffprobe,
                # a per-item cost of its own and not what this benchmark measures.
                {
                    "staging_root": staging,
                    "library_root": os.path.join(scratch, "library"),
                    "database": database,
                    "gates": [],
                    # mp runs as whoever runs this: no service user to become.
                    "units": {"user": "root", "group": "root"},
                },
                handle,
            )
        config = load_config(config_path)
        build_tree(staging, arguments.items)
        bare_walk(staging)  # warm the page cache for everyone alike

        pipelines = item_pipelines(staging)
        walks, names, floors, colds, noops = [], [], [], [], []
        for _ in range(arguments.repeat):
            os.sync()
            floors.append(timed(create_floor, pipelines))
            remove_floor(pipelines)
            os.sync()
            walks.append(timed(bare_walk, staging))
            names.append(timed(scandir_only, staging))
            remove_controller_state(staging, database)
            os.sync()  # so the deletions' writeback is not billed to the cold run
            colds.append(timed(run_reconcile, config))
            before = snapshot(staging, database)
            os.sync()
            noops.append(timed(run_reconcile, config))
            if snapshot(staging, database) != before:
                print("FAIL: the no-op reconcile wrote to the database or a marker")
                return 1
        walk = statistics.median(walks)
        cold = statistics.median(colds)
        noop = statistics.median(noops)
        peak = cold_peak_rss_mb(config_path, staging, database)
        if arguments.json:
            scale = f"{arguments.items:,}"
            print(
                json.dumps(
                    [
                        {
                            "name": f"no-op reconcile / walk ({scale})",
                            "value": noop / walk,
                            "target": "<= 2x",
                            "passed": noop / walk <= 2.0,
                        },
                        {
                            "name": f"cold reconcile / walk ({scale})",
                            "value": cold / walk,
                            "target": "<= 5x",
                            "passed": cold / walk <= 5.0,
                        },
                        {
                            "name": f"peak RSS, cold reconcile ({scale}), MB",
                            "value": peak,
                            "target": "< 150",
                            "passed": peak < 150,
                        },
                    ]
                )
            )
            return 0
        print(f"reconcile benchmark: {arguments.items} items, median of {arguments.repeat}")
        print(f"{'run':<18}{'seconds':>9}{'x walk':>9}{'target':>9}  result")
        rows = [
            ("bare scandir walk", walk, None),
            ("(names only)", statistics.median(names), None),
            ("(create 2 files)", statistics.median(floors), None),
            ("no-op reconcile", noop, 2.0),
            ("cold reconcile", cold, 5.0),
        ]
        failed = False
        for name, seconds, target in rows:
            ratio = seconds / walk
            verdict = "" if target is None else ("PASS" if ratio <= target else "FAIL")
            failed |= verdict == "FAIL"
            target_text = "" if target is None else f"<= {target:g}x"
            print(f"{name:<18}{seconds:>9.3f}{ratio:>8.2f}x{target_text:>9}  {verdict}")
        print("no-op reconcile wrote nothing: database and markers byte-identical")
        print(f"peak RSS of a cold reconcile (own process): {peak:.0f} MB (target < 150 MB)")
        return 1 if failed else 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
