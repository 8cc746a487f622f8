"""Hand-offs and idle CPU as deployed: three Debian 12 systems, each booted with its own
systemd in systemd-nspawn and deployed by the unmodified deploy/site.yml
(tests/deployed_hosts.py), the shipped units and intervals running mp as `media` in
their sandbox, with 1,000 items in the library.

  hand-off  from a stage script's end (its done marker written) to the next stage's
            script starting, on another system or the same one, for movies carried one
            after another by nothing but the timers (no gates). Target: median <= 10 s.
  idle      the CPU time of each container's cgroup (its systemd, journald, every unit
            it ran) while nothing is to be done, as a share of one core, over 5 minutes:
            that includes the controller's full run every 5 minutes. Target: <= 1% on
            every system.

    python benchmarks/deployed.py [--items 4] [--idle-seconds 300] [--quick] [--json]

Needs root, systemd-nspawn and the test extras (ansible); where the machine cannot boot
the containers it says why in a row of its own. The root file system is built once and
cached outside the clone (tests/nspawn_hosts.py).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from deployed_hosts import (  # noqa: E402
    CONTROLLER,
    HOSTS,
    booted,
    make_service_user,
    mp_on,
    play,
    why_skip,
)
from handoff import TIMED_SCRIPT, command_line, handoffs, report, skipped  # noqa: E402
from reconcile import build_tree  # noqa: E402

LIBRARY_ITEMS = 1000


def carry(containers, count: int, say) -> None:
    """Rip count movies one after another, each carried to the library by the timers
    alone before the next is ripped; watched from outside the containers (the share's
    run log), so that watching costs them nothing."""
    runlog = containers.share / "test" / "runlog"
    for number in range(count):
        title = f"Bench Film {number} (2001)"
        mp_on(containers, CONTROLLER, "rip", "--type", "movie", "--title", title)
        filed = containers.share / "library" / "Movies" / title / f"{title}.mkv"
        deadline = time.monotonic() + 300
        while not (filed.exists() and runlog.read_text().count("done filebot") > number):
            if time.monotonic() > deadline:
                raise SystemExit(f"{title} did not arrive in 5 minutes:\n{containers.diagnose()}")
            time.sleep(0.5)
        say(f"{title}: in the library")


def idle_share(containers, seconds: float) -> dict[str, float]:
    """Each container's CPU over seconds of nothing to do, as % of one core."""
    jobs = containers.share / "staging" / ".pipeline" / "jobs"

    def live() -> list[str]:
        return [name for state in ("pending", "running") if (jobs / state).exists()
                for name in (jobs / state).iterdir() if not name.name.startswith(".")]  # fmt: skip

    assert not live(), f"not idle: {live()}"
    before = {host: containers.cpu_seconds(host) for host in HOSTS}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    assert not live(), f"not idle: {live()}"
    return {host: (containers.cpu_seconds(host) - before[host]) / elapsed * 100 for host in HOSTS}


def started_twice(runlog: list[str]) -> int:
    """How many jobs the scripts' own log shows started more than once."""
    starts = Counter(line.split()[2] for line in runlog if line.startswith("start "))
    return sum(1 for count in starts.values() if count > 1)


def rows(handed: list[float], idle: dict[str, float], twice: int) -> list[dict]:
    median = statistics.median(handed)
    found = [
        {"name": "deployed jobs started twice", "value": twice, "target": "0",
         "passed": twice == 0},
        {"name": f"deployed hand-off, median s ({len(handed)} of them)", "value": median,
         "target": "<= 10", "passed": median <= 10},
        {"name": "deployed hand-off, longest s", "value": max(handed), "target": "",
         "passed": None},
    ]  # fmt: skip
    for host, share in idle.items():
        found.append({"name": f"deployed idle {host}, % of one core ({LIBRARY_ITEMS:,} items)",
                      "value": share, "target": "<= 1", "passed": share <= 1.0})  # fmt: skip
    return found


def measure(root: Path, items: int, idle_seconds: float, say) -> list[dict]:
    def fill(share: Path) -> None:
        build_tree(str(share / "staging"), LIBRARY_ITEMS, depth=3)

    started = time.monotonic()
    with booted(root, fast=False, gates=(), script=TIMED_SCRIPT, before_boot=fill) as systems:
        make_service_user(systems)
        deployed = play(systems)
        if deployed.returncode != 0:
            raise SystemExit("the play failed:\n" + deployed.stdout[-4000:])
        say(f"deployed in {time.monotonic() - started:.0f} s; carrying {items} movies")
        carry(systems, items, say)
        runlog = (systems.share / "test" / "runlog").read_text().splitlines()
        handed, twice = handoffs(runlog), started_twice(runlog)
        time.sleep(30)  # the full runs that follow a change, then quiet
        say(f"measuring idle CPU for {idle_seconds:.0f} s")
        idle = idle_share(systems, idle_seconds)
    return rows(handed, idle, twice)


def main() -> int:
    arguments, say = command_line(__doc__.splitlines()[0])
    reason = why_skip()
    if reason is not None:
        return report(skipped("hand-off and idle as deployed", reason), arguments.json)
    root = Path(tempfile.mkdtemp(prefix="mp-deployed-"))
    try:
        found = measure(root, arguments.items, arguments.idle_seconds, say)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return report(found, arguments.json)


if __name__ == "__main__":
    sys.exit(main())
