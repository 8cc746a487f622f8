"""Soak: many items through the whole pipeline, the three hosts' timer commands running
concurrently in loops (reconcile + dispatch on the controller, two claim instances per
worker), each a real `mp` process as systemd would start it, with fast fake scripts,
heartbeats every second and a job stale after 5 s without one, while a load generator
keeps every core busy (started and stopped here).

At the end: every item IN_LIBRARY, no item lost, no script run twice for one item and
kind (counted from the scripts' own log of their starts), and items per minute.

    python benchmarks/soak.py [--items 1000] [--minutes 60] [--load 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

FAKE_SCRIPT = r"""#!/usr/bin/env bash
set -eu
kind="$(basename "$0" .sh)"
case "$kind" in filebot) out="$MP_INPUT_DIR" ;; *) out="$MP_OUTPUT_DIR" ;; esac
printf 'start %s %s %s\n' "$kind" "$MP_JOB_ID" "$MP_ITEM_TITLE" >> "$SOAK_DIR/runlog"
mkdir -p "$out/.pipeline"
echo "$kind output" > "$out/$kind.out"
if [ "$kind" = filebot ]; then
  mkdir -p "$(dirname "$MP_DESTINATION")"
  cp "$SOAK_DIR/sample.mkv" "$MP_DESTINATION" 2>/dev/null || echo filed > "$MP_DESTINATION"
fi
touch "$out/.pipeline/$kind.done"
date -Iseconds > "$out/.pipeline/$kind.timestamp"
printf 'done %s %s %s\n' "$kind" "$MP_JOB_ID" "$MP_ITEM_TITLE" >> "$SOAK_DIR/runlog"
"""

LOOP = """
while [ ! -e "$SOAK_DIR/stop" ]; do
  for command in "$@"; do
    "$MP" $command --config "$CONFIG" -q >/dev/null 2>>"$SOAK_DIR/errors" || true
  done
done
"""


def prepare(root: Path, count: int) -> Path:
    scripts = root / "scripts"
    scripts.mkdir()
    for kind in ("rip", "remux", "transcode", "filebot"):
        path = scripts / f"{kind}.sh"
        path.write_text(FAKE_SCRIPT)
        path.chmod(0o755)
    config = root / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "staging_root": str(root / "staging"),
                "library_root": str(root / "library"),
                "database": str(root / "db" / "state.db"),
                "workers": {
                    "ct302": {"kinds": ["rip"], "max_running": 2},
                    "ct303": {"kinds": ["remux"], "max_running": 2},
                    "ct304": {"kinds": ["transcode", "filebot"], "max_running": 2},
                },
                "scripts": {
                    kind: {
                        "path": str(scripts / f"{kind}.sh"),
                        **({"args": ["{input_dir}", "{destination}"]} if kind == "filebot" else {}),
                    }
                    for kind in ("rip", "remux", "transcode", "filebot")
                },
                "gates": [],
                # As issue 22's soak: a busy machine's late heartbeat must never make a
                # live claim look stale (the grace keeps stale > heartbeat + grace).
                "jobs": {
                    "heartbeat_seconds": 1,
                    "stale_after_seconds": 5,
                    "cancel_grace_seconds": 2,
                },
                # mp runs as whoever runs this: no service user to become.
                "units": {"user": "root", "group": "root"},
            }
        )
    )
    # The items arrive ripped (by hand, as the owner's scripts would leave them).
    for number in range(count):
        folder = root / "staging" / "1-ripped" / "movies" / f"Film {number:04d}"
        (folder / ".pipeline").mkdir(parents=True)
        (folder / "title_t00.mkv").write_text("ripped")
        (folder / ".pipeline" / "rip.done").touch()
    (root / "library").mkdir()
    if shutil.which("ffmpeg"):  # filed outputs are verified as media where ffprobe exists
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=64x48:rate=5:duration=1",
                str(root / "sample.mkv"),
            ],
            check=True,
        )
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=60, help="give up after this long")
    parser.add_argument(
        "--load",
        type=int,
        default=os.cpu_count() or 2,
        help="busy processes to run beside it (default: one per core)",
    )
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mp-soak-"))
    mp = str(Path(sys.executable).with_name("mp"))
    load: list[subprocess.Popen] = []
    ok = False
    try:
        config = prepare(root, arguments.items)
        env = {**os.environ, "SOAK_DIR": str(root), "MP": mp, "CONFIG": str(config)}
        loops = [["reconcile", "dispatch"]] + [
            [f"claim --worker {worker}"] for worker in ("ct302", "ct303", "ct304") for _ in (1, 2)
        ]
        # The load: busy loops at the same priority as mp, one per core by default.
        load.extend(
            subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(arguments.load)
        )
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                ["bash", "-c", LOOP, "loop", *commands], env=env, start_new_session=True
            )
            for commands in loops
        ]
        deadline = started + arguments.minutes * 60
        status: dict = {}
        while time.monotonic() < deadline:
            time.sleep(5)
            out = subprocess.run(
                [mp, "status", "--json", "--config", str(config)], capture_output=True, text=True
            ).stdout
            status = json.loads(out) if out else {}
            done = status.get("counts", {}).get("IN_LIBRARY", 0)
            print(
                f"{time.monotonic() - started:6.0f} s: {done} of {arguments.items} in the "
                f"library; {status.get('counts')}",
                flush=True,
            )
            if done == arguments.items:
                break
        elapsed = time.monotonic() - started
        (root / "stop").touch()
        for process in processes:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        stop(load)
        runlog = (root / "runlog").read_text().splitlines()

        def runs(word: str) -> Counter:
            # (kind, item title): one run of each kind's script per item, whatever its job.
            return Counter(
                (line.split(" ", 3)[1], line.split(" ", 3)[3])
                for line in runlog
                if line.startswith(word + " ")
            )

        done, starts = runs("done"), runs("start")
        twice = [run for run, count in starts.items() if count > 1]
        final = status.get("counts", {})
        lost = arguments.items - sum(final.values())
        errors = (root / "errors").read_text().strip().splitlines()
        print(
            f"soak: {arguments.items} items, {elapsed:.0f} s, "
            f"{final.get('IN_LIBRARY', 0) / (elapsed / 60):.0f} items per minute"
        )
        print(
            f"jobs completed: {sum(done.values())}, started: {sum(starts.values())}, "
            f"scripts run twice for one item: {len(twice)}, items lost: {lost}, "
            f"stderr lines: {len(errors)}, load: {arguments.load} busy processes"
        )
        for kind, title in twice[:10]:
            print(f"  run twice: {kind} of {title}")
        for line in errors[:10]:
            print(f"  stderr: {line}")
        ok = final == {"IN_LIBRARY": arguments.items} and not twice and lost == 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        stop(load)
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept for a look: {root}")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
