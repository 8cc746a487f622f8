"""Simulated hosts for real systemd timers: one `systemd --user` manager per host, each
in its own namespaces with its own hostname and private /run, /tmp, /var/tmp and
journal, sharing the folders the caller names (a sandbox's staging and library). Used
by the real-timer test and the hand-off benchmark.

Never a system manager: systemd runs here as a user manager, never as PID 1 of a
namespace (its boot would clean the machine's real /tmp). See DESIGN section 11.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Sandbox

SYSTEMD = "/lib/systemd/systemd"
JOURNALD = "/lib/systemd/systemd-journald"

# The init of one simulated host: PID 1 of its namespaces is this shell, never systemd.
HOST_INIT = r"""#!/bin/bash
set -eu
name=$1; shift
hostname "$name"
mount --make-rprivate /
# Private /run, /tmp, /var/tmp and journal; the folders the test needs (the clone, the
# sandbox) stay visible at their paths.
mount -t tmpfs tmpfs /mnt
mkdir -p /mnt/keep && mount --bind /tmp /mnt/keep
mount -t tmpfs tmpfs /tmp
for keep in "$@"; do
  case "$keep" in
    /tmp/*) mkdir -p "$keep" && mount --bind "/mnt/keep/${keep#/tmp/}" "$keep" ;;
  esac
done
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/tmp
mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal
mount -t cgroup2 none /sys/fs/cgroup
mkdir -p /run/systemd/system /run/user/0
JOURNALD &
export XDG_RUNTIME_DIR=/run/user/0
SYSTEMD --user &
for _ in $(seq 1 200); do
  state=$(systemctl --user is-system-running 2>/dev/null || true)
  [ "$state" = running ] || [ "$state" = degraded ] && break
  sleep 0.05
done
systemctl --user daemon-reload
timers=$(cat "$XDG_CONFIG_HOME/timers" 2>/dev/null || true)
[ -z "$timers" ] || systemctl --user enable --now $timers
echo up > "$XDG_CONFIG_HOME/up"
wait
""".replace("JOURNALD", JOURNALD).replace("SYSTEMD", SYSTEMD)


def cannot_run() -> str | None:
    """Why this machine cannot make the namespaces and managers, or None."""
    if os.geteuid() != 0:
        return "needs root to make mount, pid, cgroup and uts namespaces"
    for tool in ("unshare", "systemctl", SYSTEMD, JOURNALD):
        if not (shutil.which(tool) or os.path.exists(tool)):
            return f"{tool} is not installed"
    probe = subprocess.run(
        ["unshare", "--pid", "--mount", "--cgroup", "--uts", "--fork", "--mount-proc",
         "sh", "-c", "mount -t tmpfs tmpfs /mnt && mount -t cgroup2 none /sys/fs/cgroup"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"namespaces cannot be made here: {probe.stderr.strip()[:200]}"
    return None


class Hosts:
    """The three simulated hosts; each can be killed (as a host that loses power) and
    started again."""

    # The sandbox whose folders the hosts share, where the test's fixture sets one.
    sandbox: Sandbox

    def __init__(self, root: Path, keep: list[str]):
        self.root, self.keep = root, keep
        self.processes: dict[str, subprocess.Popen] = {}
        (root / "host-init").write_text(HOST_INIT)

    def home(self, host: str) -> Path:
        return self.root / "hosts" / host

    def start(self, host: str) -> None:
        home = self.home(host)
        (home / "up").unlink(missing_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "LANG": "C.UTF-8",
        }
        with open(home / "init.log", "a") as log:
            self.processes[host] = subprocess.Popen(
                ["unshare", "--pid", "--mount", "--cgroup", "--uts", "--fork", "--mount-proc",
                 "--kill-child=SIGKILL", "bash", str(self.root / "host-init"), host, *self.keep],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (home / "up").exists():
            if self.processes[host].poll() is not None or time.monotonic() > deadline:
                raise AssertionError((home / "init.log").read_text()[-3000:])
            time.sleep(0.05)

    def inside(self, host: str, *command: str) -> str:
        """Run a command inside a host's namespaces (its init's), for what it says."""
        done = self.run_inside(host, list(command))
        return done.stdout + done.stderr

    def run_inside(
        self, host: str, command: list[str], env: dict[str, str] | None = None, timeout=30
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.enter(host), "env", *(f"{key}={value}" for key, value in (env or {}).items()),
             *command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def enter(self, host: str) -> list[str]:
        """The command words that run what follows them inside a host's namespaces (its
        init's), with its user manager's runtime folder."""
        unshare = self.processes[host].pid
        children = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
        return ["nsenter", "-t", children[0], "-m", "-p", "-u",
                "env", "XDG_RUNTIME_DIR=/run/user/0"]  # fmt: skip

    def diagnose(self) -> str:
        """Each host's timers and the end of its journal, for a failure's message."""
        said = []
        for host in self.processes:
            said.append(f"== {host}")
            said.append(self.inside(host, "systemctl", "--user", "list-timers", "--all"))
            said.append(self.inside(host, "systemctl", "--user", "status", f"mp-claim@{host}.timer",
                                    f"mp-claim@{host}.service", "--no-pager"))  # fmt: skip
            said.append(self.inside(host, "systemctl", "--user", "cat", f"mp-claim@{host}.timer"))
            said.append(self.inside(host, "journalctl", "--no-pager", "-n", "25"))
        return "\n".join(said)

    def cpu_seconds(self, host: str) -> float:
        """CPU time spent so far by everything in the host: its init, journald, the
        manager and every unit it ran."""
        return tree_cpu_seconds(self.processes[host].pid)

    def kill(self, host: str) -> None:
        """The host's power goes: every process in its namespaces dies at once."""
        process = self.processes.pop(host)
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop_all(self) -> None:
        for host in list(self.processes):
            self.kill(host)


def install_units(
    home: Path,
    host: str,
    config_path: Path,
    *,
    controller: bool,
    drop_ins: dict[str, str],
) -> None:
    """The units `mp timers install --user` writes for host, the drop-ins (unit folder
    name -> text), and the timers the host's init enables."""
    mp = str(Path(sys.executable).with_name("mp"))
    units = home / "systemd" / "user"
    subprocess.run(
        [mp, "timers", "install", "--user", "--dest", str(units), "--worker", host,
         "--controller" if controller else "--no-controller", "--config", str(config_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    for folder, text in drop_ins.items():
        (units / folder).mkdir(parents=True, exist_ok=True)
        (units / folder / "50-test.conf").write_text(text)
    timers = [f"mp-claim@{host}.timer"]
    if controller:
        timers += ["mp-reconcile.timer", "mp-dispatch.timer"]
    home.mkdir(parents=True, exist_ok=True)
    (home / "timers").write_text(" ".join(timers) + "\n")


def tree_cpu_seconds(root: int) -> float:
    """CPU time of process root and every process below it, living or reaped (a reaped
    child's time is in its parent's cutime and cstime)."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(value) for value in fields[11:15])
    total = 0
    for pid, ticks in cpu.items():
        ancestor = pid
        while ancestor in parents and ancestor != root:
            ancestor = parents[ancestor]
        if ancestor == root:
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")
