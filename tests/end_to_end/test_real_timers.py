"""The pipeline run by real systemd timers: three `systemd --user` managers, one per host
(ct302 rips, ct303 is the controller and remuxes, ct304 transcodes and files), each in
its own namespaces with its own hostname and private /run, /tmp, /var/tmp and journal,
sharing one staging and library folder. The units are the ones `mp timers install
--user` writes (with a drop-in making the timers fire every second or two, so the test
takes seconds, not the minutes of the shipped intervals). Nothing but the timers, and
`mp approve --yes` for the gates, carries items from rip to the library.

Never a system manager: systemd runs here as a user manager, never as PID 1 of a
namespace (its boot would clean the machine's real /tmp). See DESIGN section 11.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from conftest import KINDS, make_sandbox, stand_in_scripts
from systemd_hosts import Hosts, cannot_run, install_units

HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct303"
DEADLINE_SECONDS = 150
# The test's intervals: a drop-in over the installed timers.
FAST_TIMER = "[Timer]\nOnActiveSec=\nOnActiveSec=1s\nOnUnitInactiveSec=1s\nRandomizedDelaySec=0\n"

pytestmark = pytest.mark.skipif(bool(reason := cannot_run()), reason=reason or "")


@pytest.fixture
def hosts(tmp_path):
    sandbox = make_sandbox(tmp_path)
    script_table = stand_in_scripts(tmp_path)
    sandbox.write_config(
        workers={host: {"kinds": kinds} for host, kinds in HOSTS.items()},
        scripts=script_table,
        gates=["remux_review", "filebot_confirm"],
        jobs={"heartbeat_seconds": 1, "stale_after_seconds": 6, "cancel_grace_seconds": 1,
              "backoff_seconds": 1, "max_attempts": 3},
    )  # fmt: skip
    sandbox.database.parent.mkdir(parents=True, exist_ok=True)
    sandbox.mp("reconcile")  # the share's identity, made once by the controller
    repo = str(Path(__file__).resolve().parents[2])
    simulated = Hosts(tmp_path, [repo, str(tmp_path), sys.prefix])
    drop_ins = {f"{timer}.d": FAST_TIMER for timer in
                ("mp-reconcile.timer", "mp-dispatch.timer", "mp-claim@.timer")}  # fmt: skip
    drop_ins["mp-claim@.service.d"] = f"[Service]\nEnvironment=MP_TEST_DIR={tmp_path}\n"
    for host in HOSTS:
        install_units(simulated.home(host), host, sandbox.config_path,
                      controller=host == CONTROLLER, drop_ins=drop_ins)  # fmt: skip
    for host in HOSTS:
        simulated.start(host)
    simulated.sandbox = sandbox
    yield simulated
    simulated.stop_all()


def status(sandbox) -> dict:
    return json.loads(sandbox.mp("status", "--json").stdout)


def carry(hosts, until, deadline: float) -> None:
    """Approve what waits at a gate (as a person would), until until() holds."""
    sandbox = hosts.sandbox
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(json.dumps(status(sandbox))[:2000] + "\n" + hosts.diagnose())
        listed = json.loads(sandbox.mp("approve", "--list", "--json").stdout)["approvals"]
        for approval in listed:
            sandbox.mp("approve", approval["item"]["uid"], "--yes", expect=None)
        time.sleep(0.5)


def state_of(sandbox, title: str) -> str | None:
    found = [i for i in status(sandbox)["items"] if i["title"] == title]
    return found[0]["state"] if found else None


def controller_journal(hosts) -> str:
    return hosts.inside(CONTROLLER, "journalctl", "--no-pager", "-o", "cat")


def runs(sandbox, kind: str, title: str) -> list[str]:
    slug = title.replace(" ", "-")
    return [line for line in sandbox.runlog() if f"_{kind}_" in line and slug in line]


def test_the_timers_carry_an_item_from_rip_to_the_library_once(hosts):
    sandbox = hosts.sandbox
    deadline = time.monotonic() + DEADLINE_SECONDS
    sandbox.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    carry(hosts, lambda: state_of(sandbox, "Heat (1995)") == "IN_LIBRARY", deadline)
    assert (sandbox.root / "library" / "Movies" / "Heat (1995)" / "Heat (1995).mkv").exists()
    for kind in KINDS:
        started = [line for line in runs(sandbox, kind, "Heat") if line.startswith("start")]
        assert len(started) == 1, (kind, sandbox.runlog())
    # Each job ran on the host that does its kind, under that host's name.
    jobs = json.loads(sandbox.mp("jobs", "--state", "completed", "--json").stdout)["jobs"]
    workers = {job["kind"]: job["worker"] for job in jobs}
    assert workers == {"rip": "ct302", "remux": "ct303", "transcode": "ct304", "filebot": "ct304"}
    # Once nothing is left to do, the controller's runs are answered from its note in the
    # unit's runtime folder, as systemd made it. (Whether one came between the jobs is
    # chance: with stale_after_seconds 6, a running job forces a full run every 3 s.)
    carry(hosts, lambda: "reconcile: nothing changed since" in controller_journal(hosts),
          deadline)  # fmt: skip
    notes = hosts.inside("ct302", "ls", "/run/user/0/media-pipeline")
    assert "claim-ct302.note" in notes, notes

    # ct304 loses power in the middle of a transcode; when it is back, the item arrives,
    # and its transcode completes once.
    sandbox.behave("transcode", "wait")  # the script waits for a file that never comes
    sandbox.mp("rip", "--type", "movie", "--title", "Ronin (1998)")
    carry(hosts, lambda: bool(list(sandbox.root.glob("started.*transcode*Ronin*"))), deadline)
    hosts.kill("ct304")
    (sandbox.root / "behaviour.transcode").unlink()
    hosts.start("ct304")
    carry(hosts, lambda: state_of(sandbox, "Ronin (1998)") == "IN_LIBRARY", deadline)
    jobs = json.loads(sandbox.mp("jobs", "--state", "completed", "--json").stdout)["jobs"]
    assert [j["kind"] for j in jobs if "Ronin" in j["id"]].count("transcode") == 1
    done = [line for line in runs(sandbox, "transcode", "Ronin") if line.startswith("done")]
    assert len(done) == 1, sandbox.runlog()
