"""Hand-offs and idle CPU under real systemd timers at the shipped intervals, on three
simulated hosts (a `systemd --user` manager each, in its own namespaces, as the
real-timer test makes them; tests/systemd_hosts.py), with 1,000 items in the library.

  hand-off  from a stage script's end (its done marker written) to the next stage's
            script starting, for movies carried one after another by nothing but the
            timers (no gates). Target: median <= 30 s.
  idle      the CPU time each host spends while nothing is to be done (its init,
            journald, its systemd manager and every unit it runs), as a share of one
            core, over 5 minutes: that includes the controller's full run every 5
            minutes. Target: <= 1% per host.
  beside    in the same run, what one idle run costs answered from its note (idle/quick.py)
            and as the full command: a claim, and the controller's reconcile + dispatch.

    python benchmarks/handoff.py [--items 4] [--idle-seconds 300] [--quick] [--json]

Needs root and namespaces; where they cannot be made it says why in a row of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from conftest import FAKE_SCRIPT, make_sandbox, stand_in_scripts  # noqa: E402
from reconcile import build_tree  # noqa: E402
from systemd_hosts import Hosts, cannot_run, install_units  # noqa: E402

HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct303"
LIBRARY_ITEMS = 1000
NEXT_KIND = {"rip": "remux", "remux": "transcode", "transcode": "filebot"}
MP = str(Path(sys.executable).with_name("mp"))
# The stand-in scripts of the tests, with the time on each start and done line.
TIMED_SCRIPT = FAKE_SCRIPT.replace(
    '"$kind" "$MP_JOB_ID" >>', '"$kind" "$MP_JOB_ID $(date +%s.%N)" >>'
)
assert TIMED_SCRIPT.count("date +%s.%N") == 2, "the test script's log lines changed"


def make_share(root: Path):
    sandbox = make_sandbox(root)
    table = stand_in_scripts(root, TIMED_SCRIPT)
    sandbox.write_config(
        workers={host: {"kinds": kinds} for host, kinds in HOSTS.items()},
        scripts=table,
        gates=[],
    )
    build_tree(str(sandbox.staging), LIBRARY_ITEMS, depth=3)
    sandbox.database.parent.mkdir(parents=True)
    sandbox.mp("reconcile")  # the 1,000 items, and the share's identity
    return sandbox


def start_hosts(root: Path, sandbox) -> Hosts:
    repo = str(HERE.parent)
    hosts = Hosts(root, [repo, str(root), sys.prefix])
    drop_ins = {"mp-claim@.service.d": f"[Service]\nEnvironment=MP_TEST_DIR={root}\n"}
    for host in HOSTS:
        install_units(
            hosts.home(host),
            host,
            sandbox.config_path,
            controller=host == CONTROLLER,
            drop_ins=drop_ins,
        )
    for host in HOSTS:
        hosts.start(host)
    return hosts


def state_of(sandbox, title: str) -> str | None:
    items = json.loads(sandbox.mp("status", "--json").stdout)["items"]
    return next((item["state"] for item in items if item["title"] == title), None)


def carry(sandbox, hosts: Hosts, count: int, say) -> None:
    """Rip count movies one after another; each is carried to the library by the timers
    alone before the next is ripped."""
    for number in range(count):
        title = f"Bench Film {number} (2001)"
        sandbox.mp("rip", "--type", "movie", "--title", title)
        deadline = time.monotonic() + 300
        while state_of(sandbox, title) != "IN_LIBRARY":
            if time.monotonic() > deadline:
                raise SystemExit(f"{title} did not arrive in 5 minutes:\n{hosts.diagnose()}")
            time.sleep(1)
        say(f"{title}: in the library")


def handoffs(runlog: list[str]) -> list[float]:
    """Seconds from each done line to the start line of the same item's next kind."""
    done: dict[tuple[str, str], float] = {}
    started: dict[tuple[str, str], float] = {}
    for line in runlog:
        what, kind, job, at = line.split()
        item = job.split("_")[5]
        (done if what == "done" else started)[(kind, item)] = float(at)
    return [
        started[(NEXT_KIND[kind], item)] - at
        for (kind, item), at in done.items()
        if (NEXT_KIND.get(kind), item) in started
    ]


def idle_share(sandbox, hosts: Hosts, seconds: float) -> dict[str, float]:
    """Each host's CPU over seconds of nothing to do, as % of one core."""
    before = {host: hosts.cpu_seconds(host) for host in HOSTS}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    assert not sandbox.queue("pending") and not sandbox.queue("running"), "not idle"
    return {host: (hosts.cpu_seconds(host) - before[host]) / elapsed * 100 for host in HOSTS}


def cpu_per_run(argv: list[str], env: dict[str, str], repeat: int) -> float:
    """Milliseconds of CPU one run of argv takes (children's rusage)."""
    subprocess.run(argv, env=env, capture_output=True, check=True)  # leaves the note
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(repeat):
        subprocess.run(argv, env=env, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return spent / repeat * 1000


def side_by_side(sandbox, root: Path, repeat: int) -> dict[str, float]:
    runtime = root / "runtime"
    runtime.mkdir()
    noted = {**os.environ, "RUNTIME_DIRECTORY": str(runtime)}
    bare = {key: value for key, value in os.environ.items() if key != "RUNTIME_DIRECTORY"}
    config = ["--config", str(sandbox.config_path)]
    claim = [MP, "claim", "--worker", "ct302", *config]
    control = [MP, "reconcile", "--if-changed", "--dispatch", *config]
    return {
        "claim, noted": cpu_per_run(claim, noted, repeat),
        "claim, full": cpu_per_run(claim, bare, repeat),
        "controller, noted": cpu_per_run(control, noted, repeat),
        "controller, full": cpu_per_run([MP, "reconcile", "--dispatch", *config], bare, 3),
    }


def rows(handed: list[float], idle: dict[str, float], runs: dict[str, float]) -> list[dict]:
    median = statistics.median(handed)
    found = [
        {"name": f"hand-off, median s ({len(handed)} of them)", "value": median,
         "target": "<= 30", "passed": median <= 30},
        {"name": "hand-off, longest s", "value": max(handed), "target": "", "passed": None},
    ]  # fmt: skip
    for host, share in idle.items():
        found.append(
            {
                "name": f"idle {host}, % of one core ({LIBRARY_ITEMS:,} items)",
                "value": share,
                "target": "<= 1",
                "passed": share <= 1.0,
            }
        )
    for what in ("claim", "controller"):
        noted, full = runs[f"{what}, noted"], runs[f"{what}, full"]
        found.append(
            {
                "name": f"idle {what} run, ms CPU, from its note (without: {full:.0f})",
                "value": noted,
                "target": "",
                "passed": None,
            }
        )
    return found


def command_line(description: str) -> tuple[argparse.Namespace, Callable[[str], None]]:
    """The options of this benchmark and of deployed.py, and where progress is said."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument("--quick", action="store_true", help="2 items, 2 minutes idle")
    parser.add_argument("--json", action="store_true", help="rows as JSON, for report.py")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.items, arguments.idle_seconds = 2, 120
    say = (lambda text: print(text, file=sys.stderr)) if arguments.json else print
    return arguments, say


def report(found: list[dict], as_json: bool) -> int:
    """Print the rows (or why none were measured); the exit code."""
    if as_json:
        print(json.dumps(found))
    else:
        for row in found:
            if row["value"] is None:
                print(f"{row['name']}: {row['error'][0]}")
            else:
                print(f"{row['name']:<58} {row['value']:8.2f}  {row['target']}")
    return 0 if all(row["passed"] is not False for row in found) else 1


def skipped(name: str, reason: str) -> list[dict]:
    return [{"name": name, "value": None, "target": "", "passed": None,
             "error": [f"skipped: {reason}"]}]  # fmt: skip


def main() -> int:
    arguments, say = command_line(__doc__.splitlines()[0])
    reason = cannot_run()
    if reason is not None:
        return report(skipped("hand-off and idle (real timers)", reason), arguments.json)
    logging.getLogger("media_pipeline").setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="mp-handoff-"))
    hosts = None
    try:
        sandbox = make_share(root)
        say(f"{LIBRARY_ITEMS} items in the library; starting three hosts")
        hosts = start_hosts(root, sandbox)
        carry(sandbox, hosts, arguments.items, say)
        handed = handoffs(sandbox.runlog())
        time.sleep(30)  # the full runs that follow a change, then quiet
        say(f"measuring idle CPU for {arguments.idle_seconds:.0f} s")
        idle = idle_share(sandbox, hosts, arguments.idle_seconds)
        hosts.stop_all()
        hosts = None
        runs = side_by_side(sandbox, root, repeat=20)
    finally:
        if hosts is not None:
            hosts.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    return report(rows(handed, idle, runs), arguments.json)


if __name__ == "__main__":
    sys.exit(main())
