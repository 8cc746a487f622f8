"""The configuration as a hostile review tried it (issue 23, "Configuration"): paths
that would rewrite the systemd units, local files reached through the share, a config
anyone may rewrite or read, notification URLs in log lines, and the units' umask.

Real config files under tmp_path, `mp` as a real subprocess, and where a unit's meaning
is the question, a real systemd (a user manager in namespaces of its own, DESIGN
section 11) reading the units back.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import run_mp
from hostile import HONEST
from systemd_hosts import Hosts, cannot_run

from media_pipeline.notify.events import Event
from media_pipeline.notify.send import notify
from media_pipeline.setup.timers import UnitPaths, render_units
from media_pipeline.store import controller_database


def write_config(path: Path, **settings) -> Path:
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def one_error(run: subprocess.CompletedProcess, code: int) -> str:
    """The one sentence a refused command says, after checking it said only that."""
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert len(run.stderr.splitlines()) == 1, run.stderr
    return run.stderr


# ---------------------------------------------------------------------------
# Paths in the systemd units.

INJECTED = "/srv/staging\nExecStartPre=+/bin/sh -c 'id > /tmp/owned'"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("staging_root", INJECTED),
        ("library_root", "/srv/library\tX"),
        ("database", "/var/lib/mp\x1b]0;title\x07/state.db"),
        ("queue_dir", "/srv/staging/jobs\r"),
        ("status_page", "/var/www/\x85page.html"),
    ],
)
def test_a_path_with_a_control_character_is_refused_and_no_unit_is_written(tmp_path, key, value):
    settings = {"staging_root": "/srv/staging", "library_root": "/srv/library", key: value}
    config = write_config(tmp_path / "config.yaml", **settings)
    validate = one_error(run_mp("config", "validate", "--config", str(config)), 2)
    assert validate.startswith(f"mp: {config}: key '{key}' holds a control character")
    assert "cannot be written safely into a systemd unit" in validate
    assert value not in validate, "the value is shown escaped, never as it is"
    units = tmp_path / "units"
    install = run_mp("timers", "install", "--dest", str(units), "--config", str(config))
    assert one_error(install, 2) == validate
    assert not units.exists()


def test_a_config_file_whose_own_path_holds_a_newline_gets_no_units(tmp_path):
    folder = tmp_path / "etc\nExecStartPre=+"
    folder.mkdir()
    config = write_config(
        folder / "config.yaml", staging_root="/srv/staging", library_root="/srv/library"
    )
    units = tmp_path / "units"
    install = run_mp("timers", "install", "--dest", str(units), "--config", str(config))
    said = one_error(install, 2)
    assert said.startswith("mp: the path of the config file, ") and "\\n" in said
    assert not units.exists()


# Everything systemd would take for syntax in a path: a space (a word's end), both
# quotes, a backslash, a specifier and a variable.
ODD_NAME = "My Media %i $HOME \"q\" 'x' back\\slash"


def odd_install(tmp_path: Path) -> tuple[dict, Path]:
    """Units installed for a config whose every path holds ODD_NAME; (paths, folder)."""
    odd = tmp_path / ODD_NAME
    paths = {
        "staging_root": f"{odd}/staging",
        "library_root": f"{odd}/library",
        "database": f"{odd}/db/state.db",
        "status_page": f"{odd}/www/status.html",
    }
    odd.mkdir()
    config = write_config(odd / "config.yaml", **paths)
    units = tmp_path / "units"
    install = run_mp("timers", "install", "--dest", str(units), "--config", str(config))
    assert install.returncode == 0, install.stderr
    return {**paths, "config": str(config)}, units


def systemd_words(shown: str) -> list[str]:
    """The words of a list setting as `systemctl show` prints it: a word with anything
    odd in double quotes, with a backslash before \\, " and $."""
    words = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', shown)
    return [re.sub(r"\\(.)", r"\1", quoted) if quoted else bare for quoted, bare in words]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_odd_paths_are_quoted_so_that_systemd_analyze_finds_nothing_wrong(tmp_path):
    _paths, units = odd_install(tmp_path)
    # A template is verified as an instance, the way systemd would start it.
    for name in ("mp-claim@.service", "mp-rip@.service"):
        (units / name.replace("@.", "@w1.")).write_text((units / name).read_text())
    checked = [
        str(units / name)
        for name in ("mp-reconcile.service", "mp-dispatch.service", "mp-claim@w1.service",
                     "mp-rip@w1.service")
    ]  # fmt: skip
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *checked], capture_output=True, text=True
    )
    # Unquoted, '/…/My' and 'Media' were two ReadWritePaths= (the second "not absolute").
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr


@pytest.mark.skipif(bool(reason := cannot_run()), reason=reason or "")
def test_systemd_reads_odd_paths_back_whole_from_the_installed_units(tmp_path):
    paths, units = odd_install(tmp_path)
    database_folder = os.path.dirname(paths["database"])
    status_folder = os.path.dirname(paths["status_page"])
    queue = f"{paths['staging_root']}/.pipeline/jobs"
    # A stand-in for mp that says what it was given: its words and its MP_CONFIG.
    said = tmp_path / "said"
    stand_in = tmp_path / "mp-stand-in"
    stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" "$MP_CONFIG" > "{said}"\n')
    stand_in.chmod(0o755)
    hosts = Hosts(tmp_path, [str(tmp_path)])
    user_units = hosts.home("h1") / "systemd" / "user"
    user_units.mkdir(parents=True)
    for name in ("mp-reconcile.service", "mp-claim@.service"):
        (user_units / name).write_text((units / name).read_text())
    # The same paths as user units (no sandbox to set up), started for real.
    odd_paths = UnitPaths(
        mp=str(stand_in),
        config=paths["config"],
        staging_root=paths["staging_root"],
        library_root=paths["library_root"],
        queue_dir=queue,
        database_folder=database_folder,
    )
    (user_units / "mp-dispatch.service").write_text(
        render_units(odd_paths, user=True)["mp-dispatch.service"]
    )
    hosts.start("h1")
    try:
        shown = {}
        for unit in ("mp-reconcile.service", "mp-claim@w1.service"):
            out = hosts.inside(
                "h1", "systemctl", "--user", "show", unit,
                "-p", "ReadWritePaths", "-p", "RequiresMountsFor", "-p", "Environment",
            )  # fmt: skip
            shown[unit] = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        started = hosts.run_inside("h1", ["systemctl", "--user", "start", "mp-dispatch.service"])
        assert started.returncode == 0, started.stderr
    finally:
        hosts.stop_all()
    reconcile, claim = shown["mp-reconcile.service"], shown["mp-claim@w1.service"]
    assert systemd_words(reconcile["ReadWritePaths"]) == [
        f"-{path}" for path in (paths["staging_root"], queue, database_folder, status_folder)
    ]
    assert systemd_words(claim["ReadWritePaths"])[:3] == [
        f"-{path}" for path in (paths["staging_root"], queue, paths["library_root"])
    ]
    assert paths["staging_root"] in systemd_words(claim["RequiresMountsFor"])
    assert systemd_words(claim["Environment"]) == [f"MP_CONFIG={paths['config']}"]
    assert said.read_text().splitlines() == [
        "dispatch", "--config", paths["config"], paths["config"],
    ]  # fmt: skip


# ---------------------------------------------------------------------------
# Local files reached through the share, and a config others may change or read.


@pytest.fixture
def roots(tmp_path) -> dict[str, Path]:
    """A staging and a library folder (the share), and a folder of this host's own."""
    found = {name: tmp_path / name for name in ("staging", "library", "local")}
    for folder in found.values():
        folder.mkdir()
    return found


def config_with(roots: dict[str, Path], **settings) -> Path:
    base = {
        "staging_root": str(roots["staging"]),
        "library_root": str(roots["library"]),
        "database": str(roots["local"] / "db" / "state.db"),
        "units": {"user": "root", "group": "root"},
    }
    return write_config(roots["local"] / "config.yaml", **{**base, **settings})


def test_a_database_folder_that_links_into_staging_is_refused(roots):
    (roots["staging"] / "hidden").mkdir()
    (roots["local"] / "db").symlink_to(roots["staging"] / "hidden")
    config = config_with(roots)
    database = roots["local"] / "db" / "state.db"
    said = one_error(run_mp("config", "validate", "--config", str(config)), 2)
    assert said == (
        f"mp: {config}: key 'database' ({database}) is inside staging_root, on the share "
        f"(through a link: {roots['staging'] / 'hidden' / 'state.db'}); keep the database "
        "on the controller's local disk: SQLite is not safe on a network share, and "
        "whoever writes the share could rewrite it (and decision.key beside it)\n"
    )
    assert one_error(run_mp("reconcile", "--config", str(config)), 2) == said
    assert list((roots["staging"] / "hidden").iterdir()) == [], "no state.db, no key there"


@pytest.mark.parametrize("linked", [False, True], ids=["inside", "through-a-link"])
def test_a_status_page_on_the_share_is_refused(roots, linked):
    """A share writer could swap the page's folder for a link, and reconcile would write
    the page wherever it leads (a hostile review wrote one into a folder outside)."""
    (roots["staging"] / "www").mkdir()
    page = roots["staging"] / "www" / "status.html"
    if linked:
        (roots["local"] / "www").symlink_to(roots["staging"] / "www")
        page = roots["local"] / "www" / "status.html"
    config = config_with(roots, status_page=str(page))
    said = one_error(run_mp("config", "validate", "--config", str(config)), 2)
    assert f"key 'status_page' ({page}) is inside staging_root" in said
    assert "keep the page on the controller's local disk" in said
    assert one_error(run_mp("reconcile", "--config", str(config)), 2) == said
    assert list((roots["staging"] / "www").iterdir()) == []


def test_a_staging_root_that_is_a_link_is_compared_by_where_it_leads(roots, tmp_path):
    # The share mounted elsewhere and linked at the configured root: a database given
    # by the share's real path is on it all the same.
    share = tmp_path / "nfs"
    roots["staging"].rmdir()
    share.mkdir()
    roots["staging"].symlink_to(share)
    config = config_with(roots, database=str(share / "state.db"))
    said = one_error(run_mp("config", "validate", "--config", str(config)), 2)
    assert f"key 'database' ({share / 'state.db'}) is inside staging_root" in said


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("database", "library/state.db"),
        ("decision_key", "library/keys/decision.key"),
        ("signing_key", "local/keys/job.key"),  # made a link into the library below
    ],
)
def test_a_local_file_in_the_library_is_refused(roots, key, where):
    (roots["local"] / "keys").symlink_to(roots["library"])
    path = roots[where.split("/")[0]].joinpath(*where.split("/")[1:])
    config = config_with(roots, **{key: str(path)})
    said = one_error(run_mp("config", "validate", "--config", str(config)), 2)
    assert said.startswith(f"mp: {config}: key '{key}' ({path}) is inside library_root")
    assert "local disk" in said


@pytest.mark.parametrize("root", ["staging", "library"])
def test_scripts_on_the_share_are_refused(roots, root):
    on_share = roots[root] / "scripts" / "remux.sh"
    linked = roots["local"] / "transcode.sh"
    linked.symlink_to(roots[root] / "scripts" / "transcode.sh")
    config = config_with(
        roots,
        workers={"w1": {"kinds": ["remux", "transcode"]}},
        scripts={"remux": {"movie": str(on_share), "tv": "/opt/tv.sh"}, "transcode": str(linked)},
    )
    said = one_error(run_mp("config", "validate", "--config", str(config)), 2)
    root_key = f"{root}_root"
    assert f"key 'scripts.remux.movie.path' ({on_share}) is inside {root_key}" in said
    assert "'mp scripts install' copies the reference ones" in said
    # Lexically clean, so only found with links resolved (a second refusal, alone).
    config = config_with(
        roots, workers={"w1": {"kinds": ["transcode"]}}, scripts={"transcode": str(linked)}
    )
    said = one_error(run_mp("claim", "--worker", "w1", "--config", str(config)), 2)
    assert said.startswith(
        f"mp: {config}: key 'scripts.transcode.path' ({linked}) is inside {root_key}, "
        f"on the share (through a link: {roots[root] / 'scripts' / 'transcode.sh'})"
    )


def test_a_config_others_may_change_is_refused(roots, tmp_path):
    config = config_with(roots)
    config.chmod(0o666)
    said = one_error(run_mp("config", "validate", "--config", str(config)), 3)
    assert said == (
        f"mp: {config}: every user on this host may change this config, and so what mp "
        f"runs (mode 0666); run: chmod o-w {config}\n"
    )
    assert one_error(run_mp("reconcile", "--config", str(config)), 3) == said
    assert not (roots["local"] / "db").exists(), "nothing was made"
    config.chmod(0o644)
    roots["local"].chmod(0o777)
    said = one_error(run_mp("config", "validate", "--config", str(config)), 3)
    assert said.startswith(f"mp: {config}: every user on this host may replace this config")
    roots["local"].chmod(0o1777)  # sticky, as /tmp: others cannot replace root's file
    assert run_mp("config", "validate", "--config", str(config)).returncode == 0


@pytest.fixture
def open_folder():
    """A folder every user may reach (tmp_path's parents are closed to others)."""
    folder = Path(tempfile.mkdtemp(prefix="mp-test-open-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    "notify",
    [
        {"ntfy_url": "https://ntfy.sh/a-topic-only-we-know"},
        {"webhook_url": "http://ha.lan:8123/api/webhook/secret-id"},
    ],
)
def test_secrets_in_a_config_others_may_read_are_warned_about(roots, open_folder, notify):
    config = write_config(
        open_folder / "config.yaml",
        staging_root=str(roots["staging"]),
        library_root=str(roots["library"]),
        notify=notify,
    )
    config.chmod(0o644)
    run = run_mp("config", "validate", "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert (
        f"warning: {config} holds notification secrets (the ntfy topic, a token, the "
        f"webhook URL) and every user on this host may read it; run: chmod o-r {config} "
        "(group media still reads it)"
    ) in run.stderr.splitlines()
    for topic in notify.values():
        assert topic.rsplit("/", 1)[1] not in run.stderr
    config.chmod(0o640)
    assert "secrets" not in run_mp("config", "validate", "--config", str(config)).stderr
    config.chmod(0o644)
    open_folder.chmod(0o750)  # others cannot reach the file: nothing to say
    assert "secrets" not in run_mp("config", "validate", "--config", str(config)).stderr


# ---------------------------------------------------------------------------
# Notification URLs: the topic and the webhook's id are the secret of most setups.

TOPIC = "mp-topic-only-we-know-4711"
HOOK_ID = "hook-id-only-we-know-0815"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failing_notification_shows_the_host_only(pipeline, receiver, log_format):
    pipeline.write_pipeline_config(
        gates=["remux_review"],
        notify={
            "ntfy_url": f"{receiver.url}/{TOPIC}",
            "webhook_url": f"{receiver.url}/api/webhook/{HOOK_ID}",
            "timeout_seconds": 5,
        },
    )
    pipeline.mark(HONEST, "1-ripped", "rip")
    pipeline.mark(HONEST, "2-remuxed", "remux")
    receiver.status = 500
    run = run_mp(
        "reconcile", "-v", "--log-format", log_format, "--config", str(pipeline.config_path)
    )
    assert run.returncode == 0, run.stderr
    assert {request[0] for request in receiver.requests} == {
        f"/{TOPIC}",
        f"/api/webhook/{HOOK_ID}",
    }, "both were sent"
    warnings = [line for line in run.stderr.splitlines() if "notification not sent" in line]
    assert len(warnings) == 2, run.stderr
    assert f"ntfy {receiver.url}: HTTP Error 500" in warnings[0]
    assert f"webhook {receiver.url}: HTTP Error 500" in warnings[1]
    with sqlite3.connect(pipeline.database) as connection:
        (last_error,) = connection.execute("SELECT last_error FROM notifications").fetchone()
    assert last_error == (
        f"ntfy {receiver.url}: HTTP Error 500: Internal Server Error; "
        f"webhook {receiver.url}: HTTP Error 500: Internal Server Error"
    )
    stored = b"".join(path.read_bytes() for path in pipeline.database.parent.iterdir())
    for secret in (TOPIC, HOOK_ID):
        assert secret not in run.stdout + run.stderr
        assert secret.encode() not in stored


def test_an_error_quoting_the_path_shows_no_topic(pipeline):
    # urllib quotes the path of a URL it refuses; validation refuses such a URL, so the
    # Config is built around it here.
    pipeline.write_pipeline_config()
    pipeline.mp("reconcile")  # the database
    config = pipeline.config
    bad = f"http://127.0.0.1:9/{TOPIC} x"
    config = config._replace(notify=config.notify._replace(ntfy_url=bad))
    with controller_database(config) as db:
        notify(config, db, Event("test:1", "test", "Title", "Message", "movie/Heat (1995)"))
        (row,) = db.query("SELECT last_error FROM notifications")
    assert row["last_error"].startswith("ntfy http://127.0.0.1:9: URL can't contain control")
    assert TOPIC not in row["last_error"]


# ---------------------------------------------------------------------------
# The umask: the stricter of the one mp was started with and the config's.


def made_modes(before: set[str], *roots: Path) -> dict[str, int]:
    """What appeared under roots since before, with its permission bits."""
    found = {}
    for root in roots:
        for folder, folders, files in os.walk(root):
            for name in [*folders, *files]:
                path = os.path.join(folder, name)
                if path not in before:
                    found[path] = os.lstat(path).st_mode & 0o777
    return found


def every_path(*roots: Path) -> set[str]:
    return set(made_modes(set(), *roots))


@pytest.mark.parametrize(
    ("started_with", "configured", "kept_from"),
    [
        (0o027, "022", 0o027),  # started with 027 (a unit's UMask=0027 by hand)
        (0o077, "002", 0o077),  # a person's umask 077 by hand
        (0o022, "027", 0o027),  # the config's, when it is the stricter
    ],
    ids=["unit-0027", "shell-077", "config-027"],
)
def test_the_stricter_umask_holds_for_mp_and_its_scripts(
    pipeline, started_with, configured, kept_from
):
    pipeline.write_pipeline_config(umask=configured)
    pipeline.mark(HONEST, "1-ripped", "rip")
    before = every_path(pipeline.root)
    env = {"MP_TEST_DIR": str(pipeline.root)}
    for command in (["reconcile"], ["dispatch"], ["claim", "--worker", "w1"]):
        run = run_mp(*command, "--config", str(pipeline.config_path), env=env, umask=started_with)
        assert run.returncode == 0, run.stderr
    made = made_modes(before, pipeline.staging, pipeline.database.parent)
    script_output = pipeline.folder(HONEST, "2-remuxed") / "remux.out"
    assert str(script_output) in made, "the remux script ran"
    too_open = {path: f"{mode:04o}" for path, mode in made.items() if mode & kept_from}
    assert too_open == {}


@pytest.mark.parametrize(("configured", "unit"), [("022", "0022"), ("002", "0002")])
def test_the_units_umask_is_the_configs(tmp_path, configured, unit):
    config = write_config(
        tmp_path / "config.yaml",
        staging_root="/srv/staging",
        library_root="/srv/library",
        umask=configured,
    )
    units = tmp_path / "units"
    install = run_mp("timers", "install", "--dest", str(units), "--config", str(config))
    assert install.returncode == 0, install.stderr
    for name in ("mp-reconcile.service", "mp-claim@.service", "mp-rip@.service"):
        assert f"\nUMask={unit}\n" in (units / name).read_text()
