"""The job queue's claim against python-dirq's QueueSimple, side by side in one run.

1. Throughput: 2,000 jobs, 4 processes claiming until none is left, library level (no
   process start per claim). Ours: Claimer.claim_next (a sorted snapshot of pending/,
   rename into running/) plus the move to completed/. dirq: QueueSimple lock (a rename) plus remove.
   Every claimed job is logged by id; a job claimed twice is a failure.
2. Picking from 10,000 pending jobs: one claim_next call on a new Claimer (library level), and for
   reference the whole `mp claim --dry-run` process.

    pip install dirq   # benchmark only, never a runtime dependency
    python benchmarks/job_queue.py [--jobs 2000] [--processes 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from media_pipeline.config import load_config
from media_pipeline.items import ItemKey
from media_pipeline.jobs.claim import Claimer
from media_pipeline.jobs.queue import Queue
from media_pipeline.jobs.spec import build_spec


def make_config(root: str, processes: int) -> str:
    script = os.path.join(root, "remux.sh")
    with open(script, "w") as handle:
        handle.write("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o755)
    path = os.path.join(root, "config.yaml")
    workers = {f"w{n}": {"kinds": ["remux"], "max_running": 10**6} for n in range(processes)}
    with open(path, "w") as handle:
        yaml.safe_dump(
            {
                "staging_root": os.path.join(root, "staging"),
                "library_root": os.path.join(root, "library"),
                "database": os.path.join(root, "db", "state.db"),
                "workers": workers,
                "scripts": {"remux": {"path": script}},
            },
            handle,
        )
    os.makedirs(os.path.join(root, "staging"))
    return path


def fill_queue(config_path: str, count: int) -> None:
    config = load_config(config_path)
    queue = Queue(config.queue_dir)
    start = datetime.now(UTC) - timedelta(days=1)
    for number in range(count):
        key = ItemKey("movie", f"Film {number:05d}")
        spec = build_spec(
            config, "remux", key, priority=number % 3, now=start + timedelta(microseconds=number)
        )
        queue.submit(spec)


def our_claimer(config_path: str, worker: str, log_path: str) -> None:
    config = load_config(config_path)
    queue = Queue(config.queue_dir)
    claimer = Claimer(config, queue, worker, ("remux",))
    with open(log_path, "w") as log:
        while True:
            job, folder, _missing = claimer.claim_next()
            if job is None:
                return
            queue.move(folder, "completed", job.job_id)
            log.write(job.job_id + "\n")


def dirq_claimer(path: str, log_path: str) -> None:
    from dirq.QueueSimple import QueueSimple

    queue = QueueSimple(path)
    with open(log_path, "w") as log:
        name = queue.first()
        while name:
            if queue.lock(name):
                queue.remove(name)
                log.write(name + "\n")
            name = queue.next()


def run_processes(target, argument_lists) -> float:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=args) for args in argument_lists]
    start = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a claimer process failed ({process.exitcode})")
    return time.perf_counter() - start


def claimed(log_paths: list[str]) -> Counter:
    counts: Counter = Counter()
    for path in log_paths:
        counts.update(Path(path).read_text().split())
    return counts


def throughput(jobs: int, processes: int) -> tuple[float, float, int, int]:
    scratch = tempfile.mkdtemp(prefix="mp-bench-queue-")
    try:
        config_path = make_config(scratch, processes)
        fill_queue(config_path, jobs)
        logs = [os.path.join(scratch, f"ours.{n}") for n in range(processes)]
        ours = run_processes(
            our_claimer, [(config_path, f"w{n}", logs[n]) for n in range(processes)]
        )
        our_counts = claimed(logs)

        from dirq.QueueSimple import QueueSimple

        dirq_path = os.path.join(scratch, "dirq")
        queue = QueueSimple(dirq_path)
        for number in range(jobs):
            queue.add(f"job {number}")
        dirq_logs = [os.path.join(scratch, f"dirq.{n}") for n in range(processes)]
        theirs = run_processes(dirq_claimer, [(dirq_path, dirq_logs[n]) for n in range(processes)])
        dirq_counts = claimed(dirq_logs)
        problems = 0
        for name, counts in (("ours", our_counts), ("dirq", dirq_counts)):
            if len(counts) != jobs or max(counts.values()) != 1:
                print(
                    f"FAIL {name}: {len(counts)} distinct jobs claimed, "
                    f"{sum(c - 1 for c in counts.values())} double claims"
                )
                problems += 1
        return jobs / ours, jobs / theirs, problems, sum(c - 1 for c in our_counts.values())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def pick_time(pending: int, repeat: int) -> tuple[float, float]:
    scratch = tempfile.mkdtemp(prefix="mp-bench-pick-")
    try:
        config_path = make_config(scratch, 1)
        fill_queue(config_path, pending)
        config = load_config(config_path)
        queue = Queue(config.queue_dir)
        library = []
        for _ in range(repeat):
            start = time.perf_counter()
            job, folder, _ = Claimer(config, queue, "w0", ("remux",)).claim_next()
            library.append(time.perf_counter() - start)
            queue.move(folder, "pending", job.job_id)  # put it back for the next round
        mp = Path(sys.executable).with_name("mp")
        process = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(
                [str(mp), "claim", "--worker", "w0", "--dry-run", "--config", config_path],
                check=True,
                capture_output=True,
            )
            process.append(time.perf_counter() - start)
        return statistics.median(library), statistics.median(process)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="rows as JSON, for report.py")
    arguments = parser.parse_args()
    try:
        import dirq  # noqa: F401
    except ImportError:
        print("this benchmark compares against python-dirq: pip install dirq")
        return 2
    ours, theirs, problems, doubles = throughput(arguments.jobs, arguments.processes)
    library, process = pick_time(arguments.pending, arguments.repeat)
    if arguments.json:
        print(
            json.dumps(
                [
                    {
                        "name": "claims/s, ours / dirq QueueSimple",
                        "value": ours / theirs,
                        "target": ">= 1x",
                        "passed": ours >= theirs,
                    },
                    {
                        "name": "double claims",
                        "value": doubles,
                        "target": "0",
                        "passed": doubles == 0 and problems == 0,
                    },
                    {
                        "name": f"pick from {arguments.pending:,} pending, ms",
                        "value": library * 1000,
                        "target": "< 50",
                        "passed": library < 0.050,
                    },
                ]
            )
        )
        return 0
    print(
        f"queue benchmark: {arguments.jobs} jobs, {arguments.processes} processes; "
        f"pick from {arguments.pending} pending (median of {arguments.repeat})"
    )
    rows = [
        ("claims/s, ours", f"{ours:.0f}", f"{ours / theirs:.2f}x dirq", ">= 1x", ours >= theirs),
        ("claims/s, dirq", f"{theirs:.0f}", "", "", None),
        ("double claims", str(doubles), "", "0", doubles == 0 and problems == 0),
        ("pick, library", f"{library * 1000:.1f} ms", "", "< 50 ms", library < 0.050),
        ("pick, mp claim", f"{process * 1000:.0f} ms", "(whole process)", "", None),
    ]
    failed = False
    for name, value, ratio, target, passed in rows:
        verdict = "" if passed is None else ("PASS" if passed else "FAIL")
        failed |= passed is False
        print(f"{name:<16}{value:>10}  {ratio:<16}{target:<8}{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
