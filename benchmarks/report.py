"""Every benchmark in one table: each figure beside its target, PASS or FAIL.

    python benchmarks/report.py [--quick]   # --quick leaves out reconcile at 100,000 items
                                            # (building that tree alone takes minutes) and
                                            # shortens the real-timer hand-off run

Each benchmark runs in its own process (so none inherits another's memory or imports)
and reports its rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def rows_of(script: str, *args: str) -> list[dict]:
    run = subprocess.run(
        [sys.executable, str(HERE / script), "--json", *args], capture_output=True, text=True
    )
    if run.returncode != 0:
        return [
            {
                "name": f"{script} {' '.join(args)}",
                "value": None,
                "target": "runs",
                "passed": False,
                "error": run.stderr.strip().splitlines()[-1:],
            }
        ]
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out 100,000 items")
    arguments = parser.parse_args()
    rows = rows_of("reconcile.py", "--items", "10000")
    if not arguments.quick:
        rows += rows_of("reconcile.py", "--items", "100000", "--repeat", "1")
    rows += rows_of("job_queue.py") + rows_of("startup.py")
    # Three simulated hosts under real systemd timers: about 9 minutes (4 with --quick).
    rows += rows_of("handoff.py", *(["--quick"] if arguments.quick else []))
    # The same figures on three deployed systems (systemd-nspawn): about 9 minutes.
    rows += rows_of("deployed.py", *(["--quick"] if arguments.quick else []))
    # Builds a 2-hour MKV (about 1.8 GB, removed after) and copies it a few times.
    rows += rows_of("verify.py")
    width = max(len(row["name"]) for row in rows)
    print(f"{'benchmark':<{width}}  {'measured':>9}  {'target':<8}  result")
    for row in rows:
        value = "error" if row["value"] is None else f"{row['value']:.2f}"
        # A row without a target (passed None) is there to explain the rows that have one.
        verdict = {None: "", True: "PASS", False: "FAIL"}[row["passed"]]
        print(f"{row['name']:<{width}}  {value:>9}  {row['target']:<8}  {verdict}")
        for line in row.get("error", []):
            print(f"  {line}")
    return 0 if all(row["passed"] is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
