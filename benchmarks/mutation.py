"""Mutation testing of the modules that guard safety, with cosmic-ray.

Each module is mutated one change at a time (a comparison flipped, a `not` dropped, a
constant changed, an exception swallowed...) and the tests that should notice run
against each mutant: a mutant they fail on is killed, one they pass is a survivor,
a gap in the tests (or a change that means nothing). Prints, per module, the mutants
run, killed and survived, and each survivor's diff.

cosmic-ray rewrites the module's file in place while it tests a mutant, so this runs in
a clone of the current commit, never in the working tree; the tests run with that
clone's src/ first on PYTHONPATH, so the `mp` processes they start import the mutant.

    python benchmarks/mutation.py                    # every module, sampled
    python benchmarks/mutation.py --module signing --sample 0   # all of one module

Slow: each mutant runs a set of tests on two processes (a few seconds when killed, half
a minute or more when it survives). `--sample N` tests a random N of a module's mutants
(fixed seed).
"""

from __future__ import annotations

import argparse
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# module -> the tests that guard it (run with -x: the first failure kills the mutant).
MODULES = {
    "approve/signing": [
        "tests/unit/approve/test_signing.py",
        "tests/integration/test_hostile_share.py",
        "tests/integration/test_file_roles.py",
        "tests/integration/test_rename.py",
    ],
    "share/files": [
        "tests/unit/share/test_files.py",
        "tests/integration/test_hostile_share.py",
        "tests/integration/test_hostile_specs.py",
    ],
    "jobs/queue": [
        "tests/unit/jobs/test_queue.py",
        "tests/integration/test_jobs.py",
        "tests/integration/test_hostile_share.py",
        "tests/end_to_end/test_claim_processes.py",
    ],
    "worker/claim": [
        "tests/integration/test_jobs.py",
        "tests/end_to_end/test_claim_processes.py",
        "tests/integration/test_hostile_specs.py",
    ],
}

# `a | b` of disjoint flags equals `a + b` and `a ^ b`, and the other replacements of
# `|` only make a call fail at once: of the twelve, one (`&`, which drops the flags) is
# kept, so the count is not made of mutants no test could ever tell apart.
DROPPED_OPERATORS = [
    f"core/ReplaceBinaryOperator_BitOr_{name}"
    for name in ("Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow", "LShift", "RShift",
                 "BitXor")
]  # fmt: skip


def run_module(clone: Path, module: str, tests: list[str], sample: int):
    """(killed, survived, not valid Python, the survivors' diffs) of module's mutants."""
    name = module.replace("/", "_")
    config = clone / f"mutation-{name}.toml"
    session = clone / f"mutation-{name}.sqlite"
    command = (
        f"env PYTHONPATH={clone / 'src'} PYTHONDONTWRITEBYTECODE=1 "
        f"{BIN / 'pytest'} -x -q -p no:cacheprovider -n 2 "
        f"{' '.join(tests)}"
    )
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "src/media_pipeline/{module}.py"\n'
        "timeout = 900.0\n"
        "excluded-modules = []\n"
        f"test-command = {command!r}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    # The tests must pass on the module as it is, or every mutant would count as killed.
    subprocess.run(shlex.split(command), cwd=clone, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([BIN / "cosmic-ray", "init", config, session], cwd=clone, check=True)
    with sqlite3.connect(session) as db:
        marks = ",".join("?" * len(DROPPED_OPERATORS))
        dropped = {
            row[0]
            for row in db.execute(
                f"SELECT job_id FROM mutation_specs WHERE operator_name IN ({marks})",
                DROPPED_OPERATORS,
            )
        }
        every = [row[0] for row in db.execute("SELECT job_id FROM work_items ORDER BY job_id")]
        kept = [job_id for job_id in every if job_id not in dropped]
        if sample:
            kept = random.Random(7).sample(kept, min(sample, len(kept)))
        for job_id in set(every) - set(kept):
            db.execute("DELETE FROM mutation_specs WHERE job_id = ?", [job_id])
            db.execute("DELETE FROM work_items WHERE job_id = ?", [job_id])
    subprocess.run([BIN / "cosmic-ray", "exec", config, session], cwd=clone, check=True)
    with sqlite3.connect(session) as db:
        results = db.execute("SELECT test_outcome, output, diff FROM work_results").fetchall()
    # cosmic-ray also turns `**mapping` into `-mapping` and the like: not Python, so the
    # tests fail at import. Such a mutant is counted apart, never as killed.
    invalid = [diff for outcome, output, diff in results if "SyntaxError:" in (output or "")]
    killed = sum(
        1
        for outcome, output, _diff in results
        if outcome.lower() == "killed" and "SyntaxError:" not in (output or "")
    )
    survivors = [diff for outcome, _output, diff in results if outcome.lower() == "survived"]
    return killed, len(survivors), len(invalid), survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", choices=sorted(MODULES), action="append")
    parser.add_argument("--sample", type=int, default=40, help="mutants per module; 0: all")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mp-mutation-") as folder:
        clone = Path(folder) / "repo"
        subprocess.run(["git", "clone", "-q", REPO, clone], check=True)
        # No bytecode, ever: a mutant of the same size written within the second of the
        # last compile would otherwise run as the cached original (Python checks a .pyc
        # by the source's size and whole-second mtime), and count as a survivor.
        for cache in clone.rglob("__pycache__"):
            shutil.rmtree(cache)
        rows = []
        for module in arguments.module or MODULES:
            killed, survived, invalid, diffs = run_module(
                clone, module, MODULES[module], arguments.sample
            )
            rows.append((module, killed, survived, invalid))
            for diff in diffs:
                print(f"--- survivor in {module} ---\n{diff}", flush=True)
        print("\nmodule         killed  survived  not Python")
        for module, killed, survived, invalid in rows:
            print(f"{module:<14} {killed:>6}  {survived:>8}  {invalid:>10}")


if __name__ == "__main__":
    main()
