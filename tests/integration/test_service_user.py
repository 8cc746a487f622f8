"""mp run as root becomes the service user (units.user) before it opens anything, so a
root run by hand makes nothing the units cannot use; the install commands stay root.

Real processes, a real system user made for the test (and removed), `runuser` for the
service's own runs. Only root can make a user or switch to one: elsewhere these skip.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import FAKE_SCRIPT, KINDS, make_sandbox, stand_in_scripts, tree_snapshot

import media_pipeline
from media_pipeline.items.names import ItemKey

MP = str(Path(sys.executable).with_name("mp"))
MOVIE = ItemKey("movie", "Heat (1995)")
MISSING = "mp-no-such-user"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="making a user and switching to it need root"
)


class ServiceUser(NamedTuple):
    name: str
    uid: int
    gid: int
    extra_gid: int
    home: str


@pytest.fixture(scope="module")
def service_user() -> Iterator[ServiceUser]:
    """A system user like the one docs/install.md has the owner make, with a supplementary
    group (a ripper's cdrom), named for this process (xdist workers each make their own)."""
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "runuser"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    name, extra = f"mp-service-{os.getpid()}", f"mp-svx-{os.getpid()}"
    home = f"/nonexistent/{name}"
    subprocess.run(["groupadd", "--system", extra], check=True)
    try:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--groups", extra, "--no-create-home",
             "--home-dir", home, "--shell", "/usr/sbin/nologin", name],
            check=True,
        )  # fmt: skip
        try:
            account = pwd.getpwnam(name)
            yield ServiceUser(
                name, account.pw_uid, account.pw_gid, grp.getgrnam(extra).gr_gid, home
            )
        finally:
            subprocess.run(["userdel", name], check=True)  # and its own group
    finally:
        subprocess.run(["groupdel", extra], check=True)


@pytest.fixture(scope="module")
def service_mp(service_user) -> Iterator[str]:
    """An `mp` the service user can run, as on a host (/opt/media-pipeline): this
    environment's Python may live where only root can reach (/root/.pyenv). A virtualenv
    of a Python of the same version that it can run, with this environment's packages and
    this tree's source on its path."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{version}",
                  f"/usr/local/bin/python{version}"]  # fmt: skip
    usable = [
        python
        for python in candidates
        if os.path.exists(python)
        and run_as(service_user.name, [python, "-I", "-c", "import encodings.ascii, sqlite3"])
    ]
    if not usable:
        pytest.skip(f"no Python {version} that {service_user.name} can run")
    folder = Path(tempfile.mkdtemp(prefix="mp-service-venv-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield str(make_venv(folder, usable[0]) / "bin" / "mp")
    finally:
        shutil.rmtree(folder)


def make_venv(folder: Path, python: str) -> Path:
    """A virtualenv of python in folder, with this environment's packages and this
    tree's source on its path, and an `mp` script."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = subprocess.run(
        [str(folder / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    source = Path(media_pipeline.__file__).parents[1]
    Path(site, "test-environment.pth").write_text(f"{source}\n{sysconfig.get_paths()['purelib']}\n")
    mp = folder / "bin" / "mp"
    mp.write_text(
        f"#!{folder}/bin/python\nimport sys\nfrom media_pipeline.idle.entry import main\n"
        "sys.exit(main())\n"
    )
    mp.chmod(0o755)
    return folder


def run_as(user: str, command: list[str]) -> bool:
    return (
        subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True).returncode == 0
    )


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder the service user can reach: pytest's tmp_path is under a folder only root
    may enter."""
    root = Path(tempfile.mkdtemp(prefix="mp-service-user-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


# The stand-in scripts, saying first who they run as.
WHO_SCRIPT = FAKE_SCRIPT.replace(
    "set -u\n",
    'set -u\n{ id -u; id -g; id -G; echo "$HOME"; } > "$MP_TEST_DIR/id.$(basename "$0" .sh)"\n',
    1,
)


def run(
    user: str | None, *args: str, env: dict[str, str], mp: str = MP
) -> subprocess.CompletedProcess:
    """mp as root (user None) or as user, the way a person or a unit starts it."""
    command = [mp, *args]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_root_runs_by_hand_make_only_what_the_service_user_can_use(
    service_user, service_mp, shared_root
):
    """The issue's case: a person runs rip, claim, status and approve as root on the
    controller, between the service's own reconcile, dispatch and claim runs."""
    service = service_user
    sandbox = make_sandbox(shared_root / "box")
    table = stand_in_scripts(sandbox.root, WHO_SCRIPT)
    sandbox.write_config(
        workers={"w1": {"kinds": list(KINDS)}},
        scripts=table,
        gates=["remux_review"],
        jobs={"heartbeat_seconds": 1, "backoff_seconds": 1},
        units={"user": service.name, "group": service.name},
        umask="027",
    )
    locks = sandbox.root / "locks"
    locks.mkdir()
    # What the owner sets up (the deploy role does it): the share, the library and the
    # database's folder are the service's; the config is root's, readable by the group.
    for path in (sandbox.root, sandbox.staging, sandbox.root / "library", locks):
        os.chown(path, service.uid, service.gid)
    sandbox.database.parent.mkdir(mode=0o750)
    os.chown(sandbox.database.parent, service.uid, service.gid)
    os.chown(sandbox.config_path, 0, service.gid)
    ours = {sandbox.config_path, sandbox.root / "scripts", sandbox.root / "sample.mkv"}
    env = {**os.environ, "MP_TEST_DIR": str(sandbox.root), "MP_LOCK_DIR": str(locks)}
    config = ("--config", str(sandbox.config_path))

    def as_root(*args: str) -> str:
        done = run(None, *args, *config, env=env, mp=service_mp)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def as_service(*args: str) -> str:
        done = run(service.name, *args, *config, env=env, mp=service_mp)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    # Root only: it is read as root, before the switch.
    sandbox.config_path.chmod(0o600)
    as_root("reconcile")  # a new install: the share's id, the database, the known id
    as_root("claim", "--worker", "w1")  # nothing to claim yet: the quick path
    as_root("rip", "--type", "movie", "--title", MOVIE.title)
    as_root("claim", "--worker", "w1")  # runs the rip job
    sandbox.config_path.chmod(0o640)
    as_service("reconcile", "--dispatch")
    as_service("claim", "--worker", "w1")  # remux
    as_service("reconcile")
    assert "remux_review approved" in as_root("approve", MOVIE.uid, "--yes")
    for _ in range(2):  # transcode, then filing
        as_service("reconcile", "--dispatch")
        as_service("claim", "--worker", "w1")
    as_service("reconcile")
    # Readers last. (SQLite run as root gives the -wal and -shm it makes the database's
    # owner: those were never the trouble.) Tab completion, as bash runs it for root.
    database = sandbox.database
    words = "mp history "
    completion = {"_MP_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "2"}
    offered = subprocess.run(
        [service_mp], env={**env, **completion, "MP_CONFIG": str(sandbox.config_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "movie/Heat (1995)" in offered.stdout, offered.stderr
    [item] = json.loads(as_root("status", "--json"))["items"]
    assert item["state"] == "IN_LIBRARY", item

    # The rip job, claimed by root, ran its script as the service, with its groups.
    uid, gid, groups, home = (sandbox.root / "id.rip").read_text().splitlines()
    assert (int(uid), int(gid), home) == (service.uid, service.gid, service.home)
    assert {service.gid, service.extra_gid} <= {int(group) for group in groups.split()}

    made = {
        database,
        Path(f"{database}-wal"),
        Path(f"{database}-shm"),
        database.parent / "decision.key",
        sandbox.staging / ".pipeline" / "jobs" / "pending",
        sandbox.staging / ".pipeline" / "jobs" / "completed",
        sandbox.staging / "1-ripped" / "movies" / MOVIE.title / ".pipeline" / "state",
        sandbox.staging / "2-remuxed" / "movies" / MOVIE.title / ".pipeline" / "metadata.json",
    }
    assert not made - set(everything(sandbox.root)), "every kind of file was looked at"
    [job] = (sandbox.staging / ".pipeline" / "jobs" / "completed").glob("*_rip_*")
    assert (job / "log").exists() and (job / "spec.json").exists()
    wrong = {
        str(path): (st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode)))
        for path in everything(sandbox.root)
        if not any(path == mine or mine in path.parents for mine in ours)
        and ((st := path.lstat()).st_uid, st.st_gid) != (service.uid, service.gid)
    }
    assert wrong == {}, "made by a root run and not the service's"
    others_may = [
        str(path)
        for path in everything(sandbox.staging, database.parent)
        if path.lstat().st_mode & 0o007 and not path.is_symlink()
    ]
    assert others_may == [], "the config's umask 027 holds after the switch"


def everything(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        for folder, folders, files in os.walk(root):
            found.extend(Path(folder, name) for name in [*folders, *files])
    return found


@pytest.fixture
def no_such_user(sandbox):
    """A share set up by a run as root, then a config naming a user this host lacks."""
    sandbox.write_config(workers={"w1": {"kinds": ["remux"]}})
    sandbox.mp("reconcile")
    sandbox.write_config(units={"user": MISSING}, workers={"w1": {"kinds": ["remux"]}})
    return sandbox


@pytest.mark.parametrize(
    "command",
    [
        ["reconcile"],
        ["claim", "--worker", "w1"],  # the timer's line: the quick path, which has no job
        ["rip", "--type", "movie", "--title", "Heat (1995)"],
        ["status"],
        ["approve", "--list"],
    ],
)
def test_a_service_user_this_host_lacks_refuses_root_runs_and_makes_nothing(no_such_user, command):
    sandbox = no_such_user
    # Where a unit's quick path leaves its note: none may be written either.
    runtime = sandbox.root / "runtime"
    runtime.mkdir()
    env = {**os.environ, "RUNTIME_DIRECTORY": str(runtime)}
    before = tree_snapshot(sandbox.root)
    done = run(None, *command, "--config", str(sandbox.config_path), env=env)
    assert done.returncode == 3, (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert line.startswith(f"mp: units.user in {sandbox.config_path} is '{MISSING}'")
    assert f"useradd --system --user-group --create-home {MISSING}" in line
    assert "set units.user to root" in line
    assert tree_snapshot(sandbox.root) == before


def test_validate_warns_of_a_missing_service_user_and_the_installers_do_not_switch(
    no_such_user, tmp_path
):
    sandbox = no_such_user
    config = ("--config", str(sandbox.config_path))
    env = dict(os.environ)
    checked = run(None, "config", "validate", *config, env=env)
    assert checked.returncode == 0, checked.stderr
    assert f"units.user '{MISSING}' is not a user on this host" in checked.stderr
    # Where only root may write (tmp_path's parents are root's, 0700): a switch to any
    # user would fail here, and to one this host lacks would be refused.
    units, scripts = tmp_path / "units", tmp_path / "scripts"
    installed = run(None, "timers", "install", "--dest", str(units), "--controller", *config,
                    env=env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert f"User={MISSING}" in (units / "mp-reconcile.service").read_text()
    copied = run(None, "scripts", "install", "--dest", str(scripts), env=env)
    assert copied.returncode == 0, copied.stderr
    assert {path.stat().st_uid for path in [*units.iterdir(), *scripts.iterdir()]} == {0}
    assert run(None, "--help", env=env).returncode == 0
    assert run(None, "config", "example", env=env).returncode == 0


def test_the_installers_stay_root_when_the_service_user_exists(
    service_user, service_mp, tmp_path, sandbox
):
    sandbox.write_config(units={"user": service_user.name, "group": service_user.name})
    config = ("--config", str(sandbox.config_path))
    env = dict(os.environ)
    # tmp_path is root's alone (its parents are 0700): only root can write there.
    units, scripts = tmp_path / "units", tmp_path / "scripts"
    installed = run(None, "timers", "install", "--dest", str(units), "--controller", *config,
                    env=env, mp=service_mp)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert f"User={service_user.name}" in (units / "mp-reconcile.service").read_text()
    copied = run(None, "scripts", "install", "--dest", str(scripts), env=env, mp=service_mp)
    assert copied.returncode == 0, copied.stderr
    assert {path.stat().st_uid for path in [*units.iterdir(), *scripts.iterdir()]} == {0}
    # Any other command switches first: the service user cannot reach this sandbox.
    refused = run(None, "reconcile", *config, env=env, mp=service_mp)
    assert refused.returncode == 3, refused.stderr
    assert f"database {sandbox.database} cannot be reached (Permission denied)" in refused.stderr
    assert not sandbox.database.parent.exists()


def test_a_service_user_that_cannot_reach_mp_is_refused_in_one_sentence(
    service_user, service_mp, tmp_path, sandbox
):
    """mp installed where only root reaches (a virtualenv under /root): said at once,
    rather than an import failing halfway through the command."""
    sandbox.write_config(units={"user": service_user.name, "group": service_user.name})
    python = Path(service_mp).parent / "python"
    hidden = make_venv(tmp_path / "venv", os.path.realpath(python)) / "bin" / "mp"
    done = run(None, "status", "--config", str(sandbox.config_path), env=dict(os.environ),
               mp=str(hidden))  # fmt: skip
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    assert f"runs as units.user '{service_user.name}', who cannot reach {tmp_path}" in line
    assert "set units.user to root" in line


def test_a_person_who_is_not_the_service_user_is_told_to_run_as_it(
    service_user, service_mp, shared_root
):
    """The database is the service's (0600, in a folder of its own): another user is told
    whose it is and how to run mp as that user, never "no database yet"."""
    person = "nobody"
    service = service_user.name
    sandbox = make_sandbox(shared_root / "box")
    sandbox.write_config(units={"user": service, "group": service})
    for path in (sandbox.root, sandbox.staging, sandbox.root / "library"):
        os.chown(path, service_user.uid, service_user.gid)
    sandbox.database.parent.mkdir(mode=0o750)
    os.chown(sandbox.database.parent, service_user.uid, service_user.gid)
    config = ("--config", str(sandbox.config_path))
    made = run(None, "reconcile", *config, env=dict(os.environ), mp=service_mp)
    assert made.returncode == 0, made.stderr
    hint = f"run mp as root (it becomes {service}) or as {service} (sudo -u {service} mp ...)"
    for folder_mode, said in ((0o750, "cannot be reached"), (0o755, "cannot be read")):
        sandbox.database.parent.chmod(folder_mode)
        for command in (["status"], ["why", "1"], ["cancel", "1"], ["reconcile"]):
            done = run(person, *command, *config, env=dict(os.environ), mp=service_mp)
            assert done.returncode == 3, (command, done.stdout, done.stderr)
            [line] = done.stderr.splitlines()
            assert line.startswith(f"mp: database {sandbox.database} {said} (Permission denied)")
            assert line.endswith(
                f"the database is the service user's, units.user '{service}': {hint}"
            )
    # Deployed, the config itself is root's and the service group's (0640).
    sandbox.config_path.chmod(0o640)
    done = run(person, "status", *config, env=dict(os.environ), mp=service_mp)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "cannot be read (permission denied)" in line and "run mp as root" in line
