"""The unit layer alone covers at least 80% of every module that does no I/O: checked on
the JSON report of a coverage run of tests/unit (`make unit` makes it, then runs this).

    python tests/unit_coverage.py REPORT.json

Exits 1 naming each listed module below the mark, or missing from the report.
"""

from __future__ import annotations

import json
import sys
from pathlib import PurePosixPath

MINIMUM_PERCENT = 80.0
PACKAGE = "media_pipeline"

# The modules that do no I/O, under src/media_pipeline/. "No I/O" here: what they do is
# compute (names, rules, plans, signatures, request bodies, texts) from the values they
# are given, and they open no file, database, socket or process. A convenience that only
# fetches its input first (signature.signed reads this host's key file, text.utc_now
# reads the clock) leaves a module on the list: the rest of it is still pure, and the
# unit layer must reach it without a filesystem. A new module of that kind belongs here.
PURE_MODULES = (
    "pipeline.py",
    "text.py",
    "said.py",
    "errors.py",
    "items/names.py",
    "library/destination.py",
    "library/file_roles.py",
    "library/filing_place.py",
    "reconcile/plan.py",
    "reconcile/queue_rules.py",
    "control/retry_plan.py",
    "approve/restore_plan.py",
    "config/checks.py",
    "config/schema.py",
    "config/settings.py",
    "config/output.py",
    "jobs/job_id.py",
    "jobs/signature.py",
    "notify/channels.py",
    "notify/events.py",
    "notify/ntfy.py",
    "notify/webhook.py",
)


def figures(report: dict) -> dict[str, float]:
    """Module (as PURE_MODULES names it) -> percent of its lines covered, for every
    module of the package in the report, whatever path coverage measured it under."""
    found: dict[str, float] = {}
    for path, measured in report.get("files", {}).items():
        parts = PurePosixPath(path.replace("\\", "/")).parts
        if PACKAGE in parts:
            inside = parts[len(parts) - parts[::-1].index(PACKAGE) :]
            found["/".join(inside)] = float(measured["summary"]["percent_covered"])
    return found


def shortfalls(report: dict, minimum: float = MINIMUM_PERCENT) -> list[str]:
    """A sentence for each module of PURE_MODULES the report shows below minimum."""
    covered = figures(report)
    problems = []
    for module in PURE_MODULES:
        where = f"src/{PACKAGE}/{module}"
        if module not in covered:
            problems.append(
                f"{where}: not in the report (renamed or removed? then update PURE_MODULES "
                "in tests/unit_coverage.py)"
            )
        elif covered[module] < minimum:
            problems.append(
                f"{where}: {covered[module]:.1f}% of its lines covered by tests/unit, "
                f"under {minimum:.0f}%"
            )
    return problems


def main(arguments: list[str]) -> int:
    if len(arguments) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(arguments[0], encoding="utf-8") as report_file:
        report = json.load(report_file)
    problems = shortfalls(report)
    if problems:
        print(
            f"The unit layer covers less than {MINIMUM_PERCENT:.0f}% of modules that do no "
            "I/O (tests/unit mirrors the package; add tests there):",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    covered = figures(report)
    lowest = min(PURE_MODULES, key=lambda module: covered[module])
    print(
        f"unit coverage: each of the {len(PURE_MODULES)} modules that do no I/O at least "
        f"{MINIMUM_PERCENT:.0f}% (lowest: {lowest}, {covered[lowest]:.1f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
