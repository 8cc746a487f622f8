"""Soak: many items through the whole pipeline, the three hosts' timer commands running
concurrently in loops (reconcile + dispatch on the controller, two claim instances per
worker), each a real `mp` process as systemd would start it, with fast fake scripts.

At the end: every item IN_LIBRARY, no item lost, no job run twice (each script logs its
start and end), and items per minute.

    python benchmarks/soak.py [--items 1000] [--minutes 30]
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
printf 'start %s %s\n' "$kind" "$MP_JOB_ID" >> "$SOAK_DIR/runlog"
mkdir -p "$out/.pipeline"
echo "$kind output" > "$out/$kind.out"
if [ "$kind" = filebot ]; then
  mkdir -p "$(dirname "$MP_DESTINATION")"
  cp "$SOAK_DIR/sample.mkv" "$MP_DESTINATION" 2>/dev/null || echo filed > "$MP_DESTINATION"
fi
touch "$out/.pipeline/$kind.done"
date -Iseconds > "$out/.pipeline/$kind.timestamp"
printf 'done %s %s\n' "$kind" "$MP_JOB_ID" >> "$SOAK_DIR/runlog"
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
                "jobs": {"heartbeat_seconds": 5, "stale_after_seconds": 120},
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
    parser.add_argument("--minutes", type=float, default=30, help="give up after this long")
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mp-soak-"))
    mp = str(Path(sys.executable).with_name("mp"))
    try:
        config = prepare(root, arguments.items)
        env = {**os.environ, "SOAK_DIR": str(root), "MP": mp, "CONFIG": str(config)}
        loops = [["reconcile", "dispatch"]] + [
            [f"claim --worker {worker}"] for worker in ("ct302", "ct303", "ct304") for _ in (1, 2)
        ]
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
        runlog = (root / "runlog").read_text().splitlines()
        done = Counter(tuple(line.split()[1:]) for line in runlog if line.startswith("done"))
        starts = Counter(tuple(line.split()[1:]) for line in runlog if line.startswith("start"))
        twice = [job for job, count in done.items() if count > 1]
        final = status.get("counts", {})
        lost = arguments.items - sum(final.values())
        errors = (root / "errors").read_text().strip().splitlines()
        print(
            f"soak: {arguments.items} items, {elapsed:.0f} s, "
            f"{final.get('IN_LIBRARY', 0) / (elapsed / 60):.0f} items per minute"
        )
        print(
            f"jobs completed: {sum(done.values())}, started: {sum(starts.values())}, "
            f"run twice: {len(twice)}, items lost: {lost}, stderr lines: {len(errors)}"
        )
        for line in errors[:10]:
            print(f"  stderr: {line}")
        ok = final == {"IN_LIBRARY": arguments.items} and not twice and lost == 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
