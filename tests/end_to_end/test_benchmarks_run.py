"""The benchmarks still run against the code as it is: a config check or an interface
change once stopped one with exit 2 and nothing noticed until `make bench`. Small sizes,
and no figure is judged here (that is `make bench`'s, on a quiet machine): only that each
runs to its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("startup.py", ["--repeat", "1"]),
        ("reconcile.py", ["--items", "50", "--repeat", "1"]),
    ],
)
def test_a_benchmark_runs_to_its_table(script, args):
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode in (0, 1), run.stderr  # 1: a target missed on a busy machine
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    assert rows and all("value" in row or "seconds" in row for row in rows), rows
