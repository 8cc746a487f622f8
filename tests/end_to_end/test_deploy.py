"""The Ansible playbook (deploy/site.yml), run for real: with ansible-core, connection
local, inside each simulated host of the real-timer test (its own namespaces and
`systemd --user` manager). It installs mp from a wheel of this tree, writes the config,
checks it, writes the units and enables each host's timers; the pipeline then carries
an item through on those timers; a second run changes nothing; a broken config stops
the play with the validator's sentence before a timer starts. ansible-lint is clean.

The units are user units here (mp_units_scope: user): a user manager is the only
systemd these machines may start in a test, and creating the service user would change
the machine's real /etc.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import AS_ROOT, build_wheel, make_sandbox, stand_in_scripts
from systemd_hosts import Hosts, cannot_run

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct303"
FAST_TIMER = "[Timer]\nOnActiveSec=\nOnActiveSec=1s\nOnUnitInactiveSec=1s\nRandomizedDelaySec=0\n"


# Every test here needs ansible (make test installs it); only the plays on simulated
# hosts need root and namespaces, not the lint nor the example inventory.
pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-playbook").exists(),
    reason="ansible-core is not installed (make test installs it)",
)
needs_hosts = pytest.mark.skipif(bool(reason := cannot_run()), reason=reason or "")


def test_ansible_lint_is_clean():
    run = subprocess.run(
        [str(BIN / "ansible-lint"), "--nocolor", "--offline", "site.yml"],
        capture_output=True, text=True, cwd=REPO / "deploy", timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture
def deployed(tmp_path):
    sandbox = make_sandbox(tmp_path)
    table = stand_in_scripts(tmp_path)
    settings = {
        "staging_root": str(sandbox.staging),
        "library_root": str(tmp_path / "library"),
        "database": str(tmp_path / "db" / "state.db"),
        "workers": {host: {"kinds": kinds} for host, kinds in HOSTS.items()},
        "scripts": table,
        "gates": ["remux_review"],
        # User units run as the user who started them, root here: no service user.
        "units": AS_ROOT,
        "jobs": {
            "heartbeat_seconds": 1,
            "stale_after_seconds": 6,
            "backoff_seconds": 1,
            "cancel_grace_seconds": 1,
        },
    }
    sandbox.write_config(**{k: v for k, v in settings.items() if k not in ("staging_root",)})
    wheel = build_wheel(tmp_path / "wheels")
    hosts = Hosts(tmp_path, [str(REPO), str(tmp_path), sys.prefix])
    inventory: dict = {"media_pipeline": {"hosts": {}, "vars": {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
        "mp_wheel": str(wheel),
        "mp_pip_extra_args": "--no-deps --no-index",
        "mp_python": sys.executable,
        "mp_units_scope": "user",
        "mp_config": settings,
    }}}  # fmt: skip
    for host in HOSTS:
        home = hosts.home(host)
        units = home / "systemd" / "user"
        # What the test adds to the units: fast timers, and where the stand-in scripts
        # keep their log. The play writes the units beside these drop-ins.
        for timer in ("mp-reconcile.timer", "mp-dispatch.timer", "mp-claim@.timer"):
            (units / f"{timer}.d").mkdir(parents=True)
            (units / f"{timer}.d" / "fast.conf").write_text(FAST_TIMER)
        (units / "mp-claim@.service.d").mkdir(parents=True)
        (units / "mp-claim@.service.d" / "test.conf").write_text(
            f"[Service]\nEnvironment=MP_TEST_DIR={tmp_path}\n"
        )
        (home / "timers").write_text("")  # the play enables them, not the host's init
        (home / "bin").mkdir()  # as /usr/local/bin is there on a host
        venv = host_virtualenv(home / "venv")
        inventory["media_pipeline"]["hosts"][host] = {
            "mp_controller": host == CONTROLLER,
            "mp_venv": str(venv),
            "mp_units_dest": str(units),
            "mp_config_path": str(home / "etc" / "config.yaml"),
            "mp_command_link": str(home / "bin" / "mp"),
            "mp_install_scripts": True,
            "mp_scripts_dest": str(home / "opt" / "scripts"),
        }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    for host in HOSTS:
        hosts.start(host)
    hosts.sandbox = sandbox
    yield hosts
    hosts.stop_all()


def host_virtualenv(venv: Path) -> Path:
    """A host's virtualenv whose dependencies, pip among them, are the test environment's
    (no network; and ensurepip would take seconds a host): the play installs the wheel
    into it with --no-deps --no-index. One per host, as on real hosts: three plays at
    once must not install into one."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The venv's own pip command, running the test environment's pip for the venv.
    pip = venv / "bin" / "pip"
    pip.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom pip._internal.cli.main import main\n"
        "sys.exit(main())\n"
    )
    pip.chmod(0o755)
    return venv


def play(hosts: Hosts, host: str, *more: str) -> subprocess.CompletedProcess:
    return hosts.run_inside(
        host,
        [str(BIN / "ansible-playbook"), "-i", str(hosts.root / "inventory.yml"),
         str(REPO / "deploy" / "site.yml"), "--limit", host, *more],
        env={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(hosts.root / "ansible-tmp"),
             "ANSIBLE_REMOTE_TEMP": str(hosts.root / "ansible-tmp"),
             "PATH": f"{BIN}:/usr/bin:/bin"},
        timeout=600,
    )  # fmt: skip


def play_all(hosts: Hosts) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(len(HOSTS)) as pool:
        return list(pool.map(lambda host: play(hosts, host), HOSTS))


def recap(output: str) -> dict[str, int]:
    found = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert found, output[-3000:]
    names = ("ok", "changed", "unreachable", "failed")
    return dict(zip(names, map(int, found.groups()), strict=True))


@needs_hosts
def test_the_playbook_deploys_three_hosts_and_a_second_run_changes_nothing(deployed):
    hosts, sandbox = deployed, deployed.sandbox
    for first in play_all(hosts):  # the three hosts at once, as one ansible-playbook would
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
        assert recap(first.stdout)["changed"] > 0
    sandbox.mp("reconcile")  # as the controller's first timer run would; the share's id
    sandbox.mp("rip", "--type", "movie", "--title", "Heat (1995)")
    deadline = time.monotonic() + 120
    while True:
        items = json.loads(sandbox.mp("status", "--json").stdout)["items"]
        if items and items[0]["state"] == "IN_LIBRARY":
            break
        assert time.monotonic() < deadline, json.dumps(items) + hosts.diagnose()
        for approval in json.loads(sandbox.mp("approve", "--list", "--json").stdout)["approvals"]:
            sandbox.mp("approve", approval["item"]["uid"], "--yes", expect=None)
        time.sleep(0.5)
    jobs = json.loads(sandbox.mp("jobs", "--state", "completed", "--json").stdout)["jobs"]
    assert {job["kind"]: job["worker"] for job in jobs} == {
        "rip": "ct302", "remux": "ct303", "transcode": "ct304", "filebot": "ct304"
    }  # fmt: skip
    assert (hosts.home("ct302") / "opt" / "scripts" / "rip-disc.sh").exists()
    link = hosts.home("ct303") / "bin" / "mp"
    assert subprocess.run([str(link), "--version"], capture_output=True).returncode == 0
    for again in play_all(hosts):
        assert again.returncode == 0, again.stdout[-4000:]
        assert recap(again.stdout)["changed"] == 0, again.stdout[-4000:]
    # A wheel built again with the same version is installed again (pip alone keeps the
    # installed one of that version).
    inventory = yaml.safe_load((hosts.root / "inventory.yml").read_text())
    wheel = Path(inventory["media_pipeline"]["vars"]["mp_wheel"])
    with zipfile.ZipFile(wheel, "a") as rebuilt:
        rebuilt.writestr("media_pipeline/rebuilt.txt", "a new build of the same version\n")
    third = play(hosts, CONTROLLER)
    assert third.returncode == 0 and recap(third.stdout)["changed"] > 0, third.stdout[-3000:]
    venv = Path(inventory["media_pipeline"]["hosts"][CONTROLLER]["mp_venv"])
    assert list(venv.glob("lib/python*/site-packages/media_pipeline/rebuilt.txt"))


@needs_hosts
def test_a_broken_config_stops_the_play_before_any_timer(deployed):
    hosts = deployed
    inventory = yaml.safe_load((hosts.root / "inventory.yml").read_text())
    inventory["media_pipeline"]["vars"]["mp_config"]["workers"]["ct304"]["kinds"] = ["encode"]
    (hosts.root / "inventory.yml").write_text(yaml.safe_dump(inventory))
    run = play(hosts, "ct304")
    assert run.returncode != 0
    assert "TASK [mp : Write the config]" in run.stdout
    said = "key 'workers.ct304.kinds' must be a list of job kinds from rip, remux"
    assert said in run.stdout, run.stdout[-3000:]
    listed = hosts.inside("ct304", "systemctl", "--user", "list-timers", "--all")
    assert "mp-claim@ct304.timer" not in listed, listed
    assert recap(run.stdout)["failed"] == 1
    assert not (hosts.home("ct304") / "etc" / "config.yaml").exists(), "never put in place"


def test_the_example_inventory_holds_a_valid_config(tmp_path):
    example = yaml.safe_load((REPO / "deploy" / "inventory.example.yml").read_text())
    config = example["media_pipeline"]["vars"]["mp_config"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = subprocess.run([str(BIN / "mp"), "config", "validate", "--config", str(path)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr


# The play's service-user tasks for real, as root, in a mount namespace of their own: a
# copy of /etc and empty /home and /var/log there, so the machine's own are untouched.
PRIVATE_ETC = r"""set -eu
mount --make-rprivate /
cp -a /etc "$1/etc" && mount --bind "$1/etc" /etc
mount -t tmpfs tmpfs /home && mount -t tmpfs tmpfs /var/log
shift
"$@"
getent passwd media && id -nG media
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="making a user, even in a namespace, needs root")
def test_the_play_makes_the_service_user(tmp_path):
    if not shutil.which("unshare") or not shutil.which("useradd"):
        pytest.skip("unshare or useradd is not installed")
    before = {name: Path("/etc", name).read_bytes() for name in ("passwd", "group", "shadow")}
    inventory = {"media_pipeline": {"hosts": {"ct302": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ansible_become": False, "mp_service_groups_extra": ["cdrom"],
        "mp_config": {"staging_root": "/mnt/staging", "workers": {"ct302": {"kinds": ["rip"]}}},
    }}}}  # fmt: skip
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "script").write_text(PRIVATE_ETC)
    play = [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
            str(REPO / "deploy" / "site.yml"), "--tags", "service-user"]  # fmt: skip
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "at"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "at")}  # fmt: skip
    run = subprocess.run(
        ["unshare", "--mount", "sh", str(tmp_path / "script"), str(tmp_path), *play],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert recap(run.stdout)["changed"] == 2  # the group, then the user
    [passwd, groups] = run.stdout.strip().splitlines()[-2:]
    assert passwd.startswith("media:") and passwd.split(":")[5] == "/home/media"
    assert groups.split() == ["media", "cdrom"]
    after = {name: Path("/etc", name).read_bytes() for name in before}
    assert after == before, "the machine's own /etc is untouched"
