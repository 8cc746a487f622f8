"""Start-up cost of `mp claim` on an empty queue, beside `python -c "import click, yaml"`
(the floor for any click tool with a YAML config), measured side by side in one run.

    python benchmarks/startup.py [--repeat 15]
Target: at most 1.5x.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TARGET = 1.5


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def compile_package() -> None:
    """Bytecode for our modules, as `pip install` leaves an installed package (click and
    yaml have theirs). Without it, a machine with PYTHONDONTWRITEBYTECODE set (this one,
    some containers) compiles every module on every run, and that is what would be
    measured. `make` does the same after installing."""
    import media_pipeline

    compileall.compile_dir(os.path.dirname(media_pipeline.__file__), quiet=1)


def measure(repeat: int) -> tuple[float, float]:
    compile_package()
    with tempfile.TemporaryDirectory() as scratch:
        os.makedirs(os.path.join(scratch, "staging"))
        script = os.path.join(scratch, "remux.sh")
        Path(script).write_text("#!/bin/sh\nexit 0\n")
        os.chmod(script, 0o755)
        config = os.path.join(scratch, "config.yaml")
        with open(config, "w") as handle:
            yaml.safe_dump(
                {
                    "staging_root": os.path.join(scratch, "staging"),
                    "library_root": os.path.join(scratch, "library"),
                    "database": os.path.join(scratch, "db", "s.db"),
                    "workers": {"w1": {"kinds": ["remux"]}},
                    "scripts": {"remux": {"path": script}},
                    # mp runs as whoever runs this, as a unit runs as its user: no
                    # service user to become (a root run by hand goes to the full claim).
                    "units": {"user": "root", "group": "root"},
                },
                handle,
            )
        mp = str(Path(sys.executable).with_name("mp"))
        # What the controller's first reconcile does: the id every claim checks.
        subprocess.run([mp, "reconcile", "--config", config], check=True, capture_output=True)
        claim = [mp, "claim", "--worker", "w1", "--config", config]
        floor = [sys.executable, "-c", "import click, yaml"]
        timed(claim), timed(floor)  # warm the page cache for both
        claims, floors = [], []
        for _ in range(repeat):  # interleaved, so both see the same machine
            claims.append(timed(claim))
            floors.append(timed(floor))
        return statistics.median(claims), statistics.median(floors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="rows as JSON, for report.py")
    arguments = parser.parse_args()
    claim, floor = measure(arguments.repeat)
    ratio = claim / floor
    if arguments.json:
        print(
            json.dumps(
                [
                    {
                        "name": "start-up, empty mp claim / import click, yaml",
                        "value": ratio,
                        "target": "<= 1.5x",
                        "passed": ratio <= TARGET,
                    }
                ]
            )
        )
        return 0
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(
        f"start-up: mp claim (empty queue) {claim * 1000:.0f} ms, "
        f"python -c 'import click, yaml' {floor * 1000:.0f} ms: {ratio:.2f}x "
        f"(target <= {TARGET}x) {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
