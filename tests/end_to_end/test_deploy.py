"""The Ansible playbook (deploy/site.yml), run for real: one ansible-core run reaches the
three simulated hosts of the real-timer test (each its own namespaces and `systemd
--user` manager), each module of a host run inside that host's namespaces. It installs
mp from a wheel of this tree, writes the config, checks it, runs the controller's first
reconcile, gives every host the controller's and the ripper's public keys, writes the
units and enables each host's timers; a disc put into the ripper's drive then goes
through on those timers, each job signed by its own host's key; a second run changes
nothing; a broken config stops the play with the validator's sentence before a timer
starts, and a controller without its share stops it with mp's. ansible-lint is clean.

The units are user units here (mp_units_scope: user): a user manager is the only
systemd these machines may start in a test, and creating the service user would change
the machine's real /etc. Each host's local disk is its private /var/tmp: the database
(on the controller only) and each host's keys are there, so no host sees another's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import AS_ROOT, build_wheel, make_sandbox, recap, stand_in_scripts
from systemd_hosts import Hosts, cannot_run

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = {"ct302": ["rip"], "ct303": ["remux"], "ct304": ["transcode", "filebot"]}
CONTROLLER = "ct303"
FAST_TIMER = "[Timer]\nOnActiveSec=\nOnActiveSec=1s\nOnUnitInactiveSec=1s\nRandomizedDelaySec=0\n"
# On each host's own disk (a tmpfs of its own): the controller's database, every host's keys.
LOCAL = Path("/var/tmp/media-pipeline")


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
        "database": str(LOCAL / "state.db"),
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
    wheel = build_wheel(tmp_path / "wheels")
    hosts = Hosts(tmp_path, [str(REPO), str(tmp_path), sys.prefix])
    inventory: dict = {"media_pipeline": {"hosts": {}, "vars": {
        "ansible_connection": "local",
        "ansible_become": False,
        "mp_wheel": str(wheel),
        "mp_pip_extra_args": "--no-deps --no-index",
        "mp_python": sys.executable,
        "mp_units_scope": "user",
        # The hosts share this machine's root: the play must not install packages on it.
        "mp_host_packages": [],
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
            # Connection local, and every module runs inside the host (see below).
            "ansible_python_interpreter": str(home / "python"),
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
        # The host's Python for Ansible: the test environment's, inside the host's
        # namespaces, so each host's modules see its hostname, /var/tmp and manager.
        python = hosts.home(host) / "python"
        enter = shlex.join([*hosts.enter(host), sys.executable])
        python.write_text(f'#!/bin/sh\nexec {enter} "$@"\n')
        python.chmod(0o755)
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


def play(hosts: Hosts, *limit: str) -> subprocess.CompletedProcess:
    """One ansible-playbook run for the hosts named (all when none)."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(hosts.root / "inventory.yml"),
         str(REPO / "deploy" / "site.yml"), *(["--limit", ",".join(limit)] if limit else [])],
        env={**os.environ, "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_LOCAL_TEMP": str(hosts.root / "ansible-tmp"),
             "ANSIBLE_REMOTE_TEMP": str(hosts.root / "ansible-tmp"),
             "PATH": f"{BIN}:/usr/bin:/bin"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def mp_on(hosts: Hosts, host: str, *args: str, env: dict | None = None, check=True) -> str:
    """mp as the play installed it on host, run there with the host's config; its output."""
    home = hosts.home(host)
    mp, config = home / "venv" / "bin" / "mp", home / "etc" / "config.yaml"
    done = hosts.run_inside(host, [str(mp), *args, "--config", str(config)], env=env, timeout=120)
    assert done.returncode == 0 or not check, (host, args, done.stdout, done.stderr)
    return done.stdout


def a_disc_in(hosts: Hosts, host: str, label: str) -> str:
    """`mp rip --device /dev/sr0` on host, as its udev rule starts it, with a stand-in
    udevadm that says a DVD labelled label is in the drive (there is no drive here)."""
    drive = hosts.root / "drive"
    drive.mkdir(exist_ok=True)
    (drive / "udevadm").write_text(
        f'#!/bin/sh\nprintf "ID_CDROM_MEDIA=1\\nID_CDROM_MEDIA_DVD=1\\nID_FS_LABEL={label}\\n"\n'
    )
    (drive / "udevadm").chmod(0o755)
    return mp_on(hosts, host, "rip", "--device", "/dev/sr0", env={"PATH": f"{drive}:/usr/bin:/bin"})


@needs_hosts
def test_the_playbook_deploys_three_hosts_and_a_second_run_changes_nothing(deployed):
    hosts, sandbox = deployed, deployed.sandbox
    first = play(hosts)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
    assert set(recap(first.stdout)) == set(HOSTS)
    assert all(counts["changed"] > 0 for counts in recap(first.stdout).values())
    # The play ran the controller's first reconcile: the share has its id.
    assert (sandbox.staging / ".pipeline" / "share.id").exists()
    # Keys: each host's own, shown there (every host signs: jobs, rips or outcomes);
    # every host trusts the others', each in its own trusted_keys file.
    shown = {host: mp_on(hosts, host, "keys", "show").splitlines()[-1].split()[3:]
             for host in HOSTS}  # fmt: skip
    assert shown[CONTROLLER][0] == "controller"
    assert all(shown[host][0] == host for host in HOSTS if host != CONTROLLER)
    for host in HOSTS:
        trusted = hosts.inside(host, "cat", str(LOCAL / "trusted_keys")).splitlines()
        others = [" ".join(line) for signer, line in shown.items() if signer != host]
        assert sorted(trusted) == sorted(others), (host, trusted)
        listed = mp_on(hosts, host, "keys", "list").splitlines()
        assert sorted(listed) == sorted(" ".join(line) for line in shown.values())
    # A disc in the ripper's drive: its rip is signed with the ripper's key, which the
    # controller trusts (it takes the item in); the controller's jobs, signed with its
    # key, are run by ct303 and ct304, which trust it. Only the timers move the jobs.
    assert "queued job_" in a_disc_in(hosts, "ct302", "HEAT")
    deadline = time.monotonic() + 120
    while True:
        items = json.loads(mp_on(hosts, CONTROLLER, "status", "--json"))["items"]
        if items and items[0]["state"] == "IN_LIBRARY":
            break
        assert time.monotonic() < deadline, json.dumps(items) + hosts.diagnose()
        listed = json.loads(mp_on(hosts, CONTROLLER, "approve", "--list", "--json"))
        for approval in listed["approvals"]:
            mp_on(hosts, CONTROLLER, "approve", approval["item"]["uid"], "--yes", check=False)
        time.sleep(0.5)
    assert items[0]["title"] == "Heat"
    jobs = json.loads(mp_on(hosts, CONTROLLER, "jobs", "--state", "completed", "--json"))["jobs"]
    assert {job["kind"]: job["worker"] for job in jobs} == {
        "rip": "ct302", "remux": "ct303", "transcode": "ct304", "filebot": "ct304"
    }  # fmt: skip
    completed = sandbox.staging / ".pipeline" / "jobs" / "completed"
    signers = {(spec := json.loads(path.read_text()))["kind"]: spec["signed_by"]
               for path in completed.glob("*/spec.json")}  # fmt: skip
    assert signers == {
        "rip": "ct302", "remux": "controller", "transcode": "controller", "filebot": "controller"
    }  # fmt: skip
    assert not list((sandbox.staging / ".pipeline" / "jobs" / "rejected").glob("*"))
    assert (hosts.home("ct302") / "opt" / "scripts" / "rip-disc.sh").exists()
    link = hosts.home("ct303") / "bin" / "mp"
    assert subprocess.run([str(link), "--version"], capture_output=True).returncode == 0
    again = play(hosts)
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
    # A wheel built again with the same version is installed again (pip alone keeps the
    # installed one of that version).
    inventory = yaml.safe_load((hosts.root / "inventory.yml").read_text())
    wheel = Path(inventory["media_pipeline"]["vars"]["mp_wheel"])
    with zipfile.ZipFile(wheel, "a") as rebuilt:
        rebuilt.writestr("media_pipeline/rebuilt.txt", "a new build of the same version\n")
    third = play(hosts, CONTROLLER)
    assert third.returncode == 0, third.stdout[-3000:]
    assert recap(third.stdout)[CONTROLLER]["changed"] > 0, third.stdout[-3000:]
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
    assert recap(run.stdout)["ct304"]["failed"] == 1
    assert not (hosts.home("ct304") / "etc" / "config.yaml").exists(), "never put in place"


@needs_hosts
def test_a_controller_without_its_share_stops_the_play_at_the_first_reconcile(deployed):
    hosts = deployed
    inventory = yaml.safe_load((hosts.root / "inventory.yml").read_text())
    missing = str(hosts.root / "not-mounted")
    inventory["media_pipeline"]["vars"]["mp_config"]["staging_root"] = missing
    (hosts.root / "inventory.yml").write_text(yaml.safe_dump(inventory))
    run = play(hosts, CONTROLLER)
    assert run.returncode != 0
    assert "TASK [mp : Run the controller's first reconcile]" in run.stdout
    said = f"staging_root {missing} does not exist; is the share mounted?"
    assert said in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)[CONTROLLER]["failed"] == 1
    listed = hosts.inside(CONTROLLER, "systemctl", "--user", "list-timers", "--all")
    assert "mp-reconcile.timer" not in listed, listed
    made = hosts.inside(CONTROLLER, "ls", str(LOCAL)).split()
    assert "share.id" not in made and "job.key" not in made, made
    # The share mounted (here: the config names it again), the next run sets it up.
    inventory["media_pipeline"]["vars"]["mp_config"]["staging_root"] = str(hosts.sandbox.staging)
    (hosts.root / "inventory.yml").write_text(yaml.safe_dump(inventory))
    again = play(hosts, CONTROLLER)
    assert again.returncode == 0, again.stdout[-3000:]
    assert (hosts.sandbox.staging / ".pipeline" / "share.id").exists()
    assert "controller" in mp_on(hosts, CONTROLLER, "keys", "show").splitlines()[-1].split()


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
    assert recap(run.stdout)["ct302"]["changed"] == 2  # the group, then the user
    [passwd, groups] = run.stdout.strip().splitlines()[-2:]
    assert passwd.startswith("media:") and passwd.split(":")[5] == "/home/media"
    assert groups.split() == ["media", "cdrom"]
    after = {name: Path("/etc", name).read_bytes() for name in before}
    assert after == before, "the machine's own /etc is untouched"
