"""Secrets and file modes: notification credentials sent but never shown, the umask,
private database and key files, and config files that must not be trusted blindly.

Real files under tmp_path, a real HTTP server on 127.0.0.1, `mp` as a real subprocess
where the process itself (its umask, its memory) is what is tested.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import resource
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from email.header import decode_header, make_header
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import run_mp

from media_pipeline.cli import mp
from media_pipeline.config.load import parse_config
from media_pipeline.config.output import example_yaml
from media_pipeline.errors import ConfigError, SafetyRefusal
from media_pipeline.items.names import ItemKey
from media_pipeline.logs import JsonFormatter, TextFormatter, redact_url
from media_pipeline.notify.events import Event
from media_pipeline.notify.ntfy import header_value
from media_pipeline.notify.send import notify
from media_pipeline.store import controller_database, private_key

MOVIE = ItemKey("movie", "Heat (1995)")
MINIMAL = {"staging_root": "/mnt/staging", "library_root": "/mnt/library"}

TOKEN = "tk_Token0123456789abcdefghijkl"
PASSWORD = "Pa55-word-that-is-secret"
URL_PASSWORD = "UrlPassword-9876"
QUERY_SECRET = "QueryAuth-5555"
HOOK_SECRET = "HookBearer-4242"
HOOK_QUERY = "HookQuery-3131"


def problems_of(data) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "conf.yaml")
    return caught.value.problems


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def remuxed_with_gate(pipeline, **notify_settings):
    """An item waiting at remux_review: reconcile opens the approval and notifies it."""
    pipeline.write_pipeline_config(
        gates=["remux_review"], notify={"timeout_seconds": 5, **notify_settings}
    )
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mark(MOVIE, "2-remuxed", "remux")


def notification_rows(pipeline) -> list[dict]:
    with sqlite3.connect(pipeline.database) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM notifications")]


def database_bytes(pipeline) -> bytes:
    folder = pipeline.database.parent
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


# ---------------------------------------------------------------------------
# Notification credentials: sent as the services expect.


def test_an_ntfy_token_is_sent_as_a_bearer_with_a_utf8_text_body(pipeline, receiver):
    remuxed_with_gate(pipeline, ntfy_url=f"{receiver.url}/topic", ntfy_token=TOKEN)
    pipeline.mp("reconcile")
    ((path, headers, body),) = receiver.requests
    assert path == "/topic"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "mp approve" in body.decode("utf-8")


def test_an_ntfy_user_and_password_are_sent_with_basic_auth(pipeline, receiver):
    remuxed_with_gate(
        pipeline,
        ntfy_url=f"{receiver.url}/topic",
        ntfy_username="alice",
        ntfy_password=PASSWORD,
    )
    pipeline.mp("reconcile")
    ((_path, headers, _body),) = receiver.requests
    expected = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"


def test_webhook_headers_are_sent_and_user_info_in_a_url_becomes_basic_auth(pipeline, receiver):
    remuxed_with_gate(
        pipeline,
        ntfy_url=f"http://bob:{URL_PASSWORD}@{receiver.address}/topic?auth={QUERY_SECRET}",
        webhook_url=f"{receiver.url}/hook",
        webhook_headers={"Authorization": f"Bearer {HOOK_SECRET}", "X-Source": "mp"},
    )
    pipeline.mp("reconcile")
    requests = {path: headers for path, headers, _body in receiver.requests}
    expected = base64.b64encode(f"bob:{URL_PASSWORD}".encode()).decode()
    assert requests[f"/topic?auth={QUERY_SECRET}"]["Authorization"] == f"Basic {expected}"
    assert requests["/hook"]["Authorization"] == f"Bearer {HOOK_SECRET}"
    assert requests["/hook"]["X-Source"] == "mp"
    assert requests["/hook"]["Content-Type"] == "application/json"


# ---------------------------------------------------------------------------
# ... and never shown: not in logs, text or JSON, not in the database.

SECRETS = (TOKEN, PASSWORD, URL_PASSWORD, QUERY_SECRET, HOOK_SECRET, HOOK_QUERY)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failing_notification_shows_no_secret_in_logs_or_database(pipeline, receiver, log_format):
    remuxed_with_gate(
        pipeline,
        ntfy_url=f"http://bob:{URL_PASSWORD}@{receiver.address}/topic?auth={QUERY_SECRET}",
        webhook_url=f"{receiver.url}/hook?token={HOOK_QUERY}",
        webhook_headers={"Authorization": f"Bearer {HOOK_SECRET}"},
    )
    receiver.status = 500
    outputs = []
    for _attempt in range(3):
        result = pipeline.mp("reconcile", "-v", "--log-format", log_format)
        outputs.append(result.stdout + result.stderr)
    assert len(receiver.requests) == 6, "every attempt reached the server"
    logged = "\n".join(outputs)
    assert f"ntfy http://{receiver.address}: HTTP Error 500" in logged
    assert f"webhook http://{receiver.address}: HTTP Error 500" in logged
    rows = notification_rows(pipeline)
    assert rows and all(receiver.address in row["last_error"] for row in rows)
    stored = database_bytes(pipeline)
    for secret in SECRETS:
        assert secret not in logged
        assert secret.encode() not in stored


def test_an_error_text_that_quotes_the_url_is_redacted(pipeline):
    # urllib quotes the path and query of a URL it refuses. Config validation refuses
    # such a URL; a Config built around it shows that the error text is cleaned anyway.
    pipeline.write_pipeline_config()
    pipeline.mp("reconcile")  # the database
    config = pipeline.config
    config = config._replace(
        notify=config.notify._replace(ntfy_url=f"http://127.0.0.1:9/t?auth={QUERY_SECRET} x")
    )
    with controller_database(config) as db:
        notify(config, db, Event("test:1", "test", "Title", "Message", "movie/Heat (1995)"))
        (row,) = db.query("SELECT last_error FROM notifications")
    assert "URL can't contain control characters" in row["last_error"]
    assert QUERY_SECRET not in row["last_error"] and "***" in row["last_error"]


def test_a_redirect_is_not_followed_with_the_credentials(pipeline, receiver):
    remuxed_with_gate(pipeline, ntfy_url=f"{receiver.url}/topic", ntfy_token=TOKEN)
    receiver.redirecting = {"/topic"}
    result = pipeline.mp("reconcile")
    assert receiver.paths() == ["/topic"], "nothing went to /elsewhere"
    assert "HTTP Error 302" in result.stderr


def test_a_server_that_answers_garbage_never_fails_the_command(pipeline):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_garbage():
        for _ in range(2):
            connection, _address = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"this is not HTTP\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        remuxed_with_gate(
            pipeline,
            ntfy_url=f"http://127.0.0.1:{port}/topic",
            webhook_url=f"http://127.0.0.1:{port}/hook",
        )
        result = pipeline.mp("reconcile")
    finally:
        thread.join(10)
        listener.close()
    assert "notification not sent" in result.stderr
    assert pipeline.status_json()["items"][0]["pending_approval"] == "remux_review"


# ---------------------------------------------------------------------------
# The ntfy Title header: one line, whatever the title holds.


def decoded(header: str) -> str:
    return str(make_header(decode_header(header)))


def test_a_long_non_ascii_title_is_one_header_line_that_decodes_back(pipeline, receiver):
    pipeline.write_pipeline_config(notify={"ntfy_url": f"{receiver.url}/topic"})
    title = ("Amélie — Le fabuleux destin 東京物語 " * 10)[:300]
    assert len(title) == 300
    pipeline.mp("reconcile")  # the database
    config = pipeline.config
    with controller_database(config) as db:
        notify(config, db, Event("test:1", "test", title, "Ünïcode body ✓", "movie/x"))
        (row,) = db.query("SELECT status, last_error FROM notifications")
    assert row["status"] == "sent", row["last_error"]
    ((_path, headers, body),) = receiver.requests
    assert decoded(headers["Title"]) == title
    assert body.decode("utf-8") == "Ünïcode body ✓"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Plain title", "Plain title"),
        ("Line one\nLine two\r\nInjected: yes", "Line one Line two Injected: yes"),
        ("Café", "Café"),
        ("=?utf-8?b?SGk=?=", "=?utf-8?b?SGk=?="),
        ("x" * 500, "x" * 500),
    ],
)
def test_header_values_are_one_line_of_ascii_that_decodes_to_the_title(title, expected):
    value = header_value(title)
    assert all(32 <= ord(character) < 127 for character in value)
    assert decoded(value) == expected
    assert all(len(word) <= 75 for word in value.split(" ") if word.startswith("=?"))


# ---------------------------------------------------------------------------
# redact_url, and config messages that never echo a secret.


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@ntfy.example/topic", "https://***@ntfy.example/topic"),
        ("https://:tk_abc@ntfy.example/topic", "https://***@ntfy.example/topic"),
        ("https://ntfy.sh/topic?auth=abc&x=1", "https://ntfy.sh/topic?auth=***&x=***"),
        ("https://ntfy.sh/topic?tk_abc", "https://ntfy.sh/topic?***"),
        ("http://a:b@host:81/p?q=1#frag", "http://***@host:81/p?q=***#***"),
        ("user:pass@host/topic", "***@host/topic"),
        ("http://host/path@not-userinfo", "http://host/path@not-userinfo"),
        ("https://ntfy.sh/topic", "https://ntfy.sh/topic"),
        ("", ""),
    ],
)
def test_redact_url_hides_credentials_query_values_and_fragment(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("notify_settings", "key"),
    [
        ({"ntfy_token": f"two words {TOKEN}"}, "notify.ntfy_token"),
        ({"ntfy_token": 123456789}, "notify.ntfy_token"),
        ({"ntfy_username": "bob", "ntfy_password": 12345678}, "notify.ntfy_password"),
        ({"ntfy_username": "bob", "ntfy_password": f"{PASSWORD}\n"}, "notify.ntfy_password"),
        (
            {"webhook_headers": {"Authorization": f"Bearer {HOOK_SECRET}\r\nX-Evil: 1"}},
            "notify.webhook_headers.Authorization",
        ),
        ({"webhook_headers": {"X-Key": 12345678}}, "notify.webhook_headers.X-Key"),
        ({"ntfy_url": f"ftp://bob:{URL_PASSWORD}@host/x?auth={QUERY_SECRET}"}, "notify.ntfy_url"),
        ({"ntfy_url": f"http://bob:{URL_PASSWORD}@host/a b"}, "notify.ntfy_url"),
        ({"webhook_url": f"https://host/hook?token={HOOK_QUERY}\t"}, "notify.webhook_url"),
    ],
)
def test_a_bad_secret_is_named_by_its_key_and_never_echoed(tmp_path, notify_settings, key):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "notify": notify_settings}))
    result = CliRunner().invoke(mp, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"mp: {path}: key '{key}'")
    # Redacted (***), or for a URL whose path is the secret, its host only (/...).
    assert "***" in result.stderr or "/...'" in result.stderr
    assert "Traceback" not in result.output
    for secret in (*SECRETS, "12345678", "123456789"):
        assert secret not in result.stderr


def test_ntfy_user_and_password_go_together():
    assert problems_of({**MINIMAL, "notify": {"ntfy_username": "bob"}}) == [
        "key 'notify.ntfy_password' is missing: ntfy_username and ntfy_password go together"
    ]
    assert problems_of({**MINIMAL, "notify": {"ntfy_password": PASSWORD}}) == [
        "key 'notify.ntfy_username' is missing: ntfy_username and ntfy_password go together"
    ]


@pytest.mark.parametrize(
    ("notify_settings", "expected"),
    [
        (
            {"ntfy_token": TOKEN, "ntfy_username": "bob", "ntfy_password": PASSWORD},
            "key 'notify.ntfy_token' is set with ntfy_username/ntfy_password",
        ),
        (
            {"ntfy_url": "https://bob:pw@ntfy.example/t", "ntfy_token": TOKEN},
            "key 'notify.ntfy_url' holds a user and password",
        ),
        (
            {
                "webhook_url": "https://bob:pw@hooks.example/h",
                "webhook_headers": {"authorization": "Bearer x"},
            },
            "key 'notify.webhook_url' holds a user and password",
        ),
        ({"webhook_headers": {"Bad Name": "x"}}, "key 'notify.webhook_headers' has 'Bad Name'"),
        (
            {"webhook_headers": {"Content-Type": "text/plain"}},
            "key 'notify.webhook_headers.Content-Type': mp sets Content-Type itself",
        ),
        (
            {"webhook_headers": {"X-A": "1", "x-a": "2"}},
            "key 'notify.webhook_headers.x-a' names a header already given",
        ),
        ({"ntfy_url": "http://127.0.0.1:99999/t"}, "key 'notify.ntfy_url' has port 99999"),
        ({"ntfy_url": "http://bob:pw@/t"}, "key 'notify.ntfy_url' names no host"),
    ],
)
def test_credentials_and_headers_that_cannot_work_are_refused(notify_settings, expected):
    problems = problems_of({**MINIMAL, "notify": notify_settings})
    assert any(problem.startswith(expected) for problem in problems), problems


def test_new_settings_have_their_defaults_and_are_in_the_example():
    config = parse_config(dict(MINIMAL), "conf.yaml")
    assert config.umask == 0o022
    assert config.decision_key == "/var/lib/media-pipeline/decision.key"
    assert config.jobs.log_max_bytes == 10 * 1024 * 1024
    assert config.notify.ntfy_token is None and config.notify.webhook_headers == {}
    example = example_yaml()
    for key in (
        "ntfy_token:",
        "ntfy_username:",
        "ntfy_password:",
        "webhook_headers:",
        "umask: '022'",
        "decision_key:",
        "log_max_bytes:",
    ):
        assert key in example


@pytest.mark.parametrize(
    "notify_settings",
    [
        {
            "ntfy_url": f"https://bob:{URL_PASSWORD}@ntfy.example/t?auth={QUERY_SECRET}",
            "webhook_url": "https://hooks.example/h",
            "webhook_headers": {"Authorization": f"Bearer {HOOK_SECRET}"},
        },
        {"ntfy_url": "https://ntfy.example/t", "ntfy_token": TOKEN},
        {"ntfy_url": "https://ntfy.example/t", "ntfy_username": "bob", "ntfy_password": PASSWORD},
    ],
)
def test_a_config_repr_shows_no_secret(notify_settings):
    # A Config in a traceback or a failing assertion is printed whole.
    shown = repr(parse_config({**MINIMAL, "notify": notify_settings}, "conf.yaml"))
    assert "ntfy.example" in shown
    for secret in SECRETS:
        assert secret not in shown


def test_decision_key_defaults_beside_the_database_and_stays_off_the_share():
    config = parse_config({**MINIMAL, "database": "/srv/mp/state.db"}, "conf.yaml")
    assert config.decision_key == "/srv/mp/decision.key"
    config = parse_config({**MINIMAL, "decision_key": "/root/mp.key"}, "conf.yaml")
    assert config.decision_key == "/root/mp.key"
    assert problems_of({**MINIMAL, "decision_key": "relative.key"}) == [
        "key 'decision_key' must be an absolute path, got 'relative.key'"
    ]
    (problem,) = problems_of({**MINIMAL, "decision_key": "/mnt/staging/decision.key"})
    assert problem.startswith("key 'decision_key' (/mnt/staging/decision.key) is inside")


@pytest.mark.parametrize(
    ("value", "expected"), [("022", 0o022), ("0002", 0o002), ("077", 0o077), ("777", 0o777)]
)
def test_umask_is_octal_text(value, expected):
    assert parse_config({**MINIMAL, "umask": value}, "conf.yaml").umask == expected


@pytest.mark.parametrize("value", ["888", "1000", "0o22", "", 22, 18, None])
def test_a_umask_that_is_not_octal_text_is_refused(value):
    (problem,) = problems_of({**MINIMAL, "umask": value})
    assert problem.startswith("key 'umask' must be an octal umask in quotes")


def test_log_max_bytes_is_a_positive_number():
    assert problems_of({**MINIMAL, "jobs": {"log_max_bytes": 0}}) == [
        "key 'jobs.log_max_bytes' must be a whole number of at least 1, got 0"
    ]
    config = parse_config({**MINIMAL, "jobs": {"log_max_bytes": 4096}}, "conf.yaml")
    assert config.jobs.log_max_bytes == 4096


# ---------------------------------------------------------------------------
# YAML aliases and oversized files.


def test_a_yaml_alias_is_refused_naming_file_and_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "staging_root: /mnt/staging\n"
        "library_root: &root /mnt/library\n"
        "database: /var/lib/mp/state.db\n"
        "queue_dir: *root\n"
    )
    result = CliRunner().invoke(mp, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"mp: {path}: line 4: uses the YAML alias '*root'; aliases are not allowed, "
        "write the value out\n"
    )


def billion_laughs(path: Path) -> None:
    """Ten levels of ten: 10^10 strings once expanded, far more than the 1 GiB the
    process below may use; two aliases of it go where an error message would quote it."""
    lines = ["staging_root: /mnt/staging", "library_root: /mnt/library", "x:"]
    lines.append('  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]')
    for level in range(1, 10):
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    lines.append("jobs: {max_attempts: *l9}")
    lines.append("gates: *l9")
    path.write_text("\n".join(lines) + "\n")


def limit_memory_to_1_gib():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_a_billion_laughs_is_refused_without_being_expanded(tmp_path):
    path = tmp_path / "bomb.yaml"
    billion_laughs(path)
    for command in (["config", "validate"], ["status"], ["claim", "--worker", "ct302"]):
        run = run_mp(*command, "--config", str(path), preexec=limit_memory_to_1_gib)
        assert run.returncode == 2, run.stderr[-2000:]
        assert run.stderr == (
            f"mp: {path}: line 5: uses the YAML alias '*l0'; aliases are not allowed, "
            "write the value out\n"
        )


def test_an_oversized_config_is_refused_before_parsing(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("staging_root: /mnt/staging\n" + "# padding\n" * 200_000)
    result = CliRunner().invoke(mp, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (f"mp: {path}: is larger than 1 MiB; a config is a few kilobytes\n")


# ---------------------------------------------------------------------------
# The umask: 022 first, then the config's; whatever mp was started with.


@pytest.fixture
def umask_000():
    previous = os.umask(0)
    yield
    os.umask(previous)


def new_paths(before: set[str], *roots: Path) -> dict[str, int]:
    """Paths under roots that are not in before, with their permission bits."""
    found = {}
    for root in roots:
        for folder, folders, files in os.walk(root):
            for name in [*folders, *files, ""]:
                path = os.path.join(folder, name) if name else folder
                if path not in before:
                    found[path] = mode_of(path)
    return found


def all_paths(*roots: Path) -> set[str]:
    return set(new_paths(set(), *roots))


def test_every_command_starts_by_setting_umask_022(tmp_path, umask_000):
    # Before any config is read: this one is refused, and the umask is 022 all the same.
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "umask": "bad"}))
    path.chmod(0o644)  # made 0666 under umask 000, which mp refuses before reading it
    result = CliRunner().invoke(mp, ["status", "--config", str(path)])
    assert result.exit_code == 2
    assert os.umask(0) == 0o022


def test_under_umask_000_mp_makes_nothing_that_others_may_write(sandbox):
    sandbox.write_config(scripts={"remux": "/opt/remux.sh"}, workers={"w1": {"kinds": ["remux"]}})
    sandbox.mark(MOVIE, "1-ripped", "rip")
    before = all_paths(sandbox.root)
    for command in ("reconcile", "dispatch", "reconcile"):
        run = run_mp(command, "--config", str(sandbox.config_path), umask=0)
        assert run.returncode == 0, run.stderr
    made = new_paths(before, sandbox.root)
    queue = sandbox.staging / ".pipeline" / "jobs"
    state = sandbox.folder(MOVIE, "1-ripped") / ".pipeline" / "state"
    assert {str(queue / "pending"), str(state), str(sandbox.database)} <= set(made)
    writable_by_others = {path: f"{mode:04o}" for path, mode in made.items() if mode & 0o022}
    assert writable_by_others == {}
    assert made[str(sandbox.database)] == 0o600
    assert made[str(sandbox.database) + ".lock"] == 0o600


def test_the_configured_umask_applies_to_mp_and_its_scripts(pipeline):
    pipeline.write_pipeline_config(umask="027")
    pipeline.mark(MOVIE, "1-ripped", "rip")
    before = all_paths(pipeline.root)
    env = {"MP_TEST_DIR": str(pipeline.root)}
    for command in (["reconcile"], ["dispatch"], ["claim", "--worker", "w1"]):
        run = run_mp(*command, "--config", str(pipeline.config_path), umask=0, env=env)
        assert run.returncode == 0, run.stderr
    made = new_paths(before, pipeline.staging, pipeline.database.parent)
    script_output = pipeline.folder(MOVIE, "2-remuxed") / "remux.out"
    assert str(script_output) in made, "the remux script ran"
    too_open = {path: f"{mode:04o}" for path, mode in made.items() if mode & 0o027}
    assert too_open == {}


# ---------------------------------------------------------------------------
# The database, its WAL files and its lock: 0600.


def test_the_database_and_its_wal_files_are_made_0600(sandbox, umask_000):
    config = sandbox.config
    made: list[str] = []  # as reconcile, the one command that makes a database
    with controller_database(config, on_create=made.append) as db:
        db.table("probe").insert({"value": 1})
        for suffix in ("", "-wal", "-shm", ".lock"):
            assert mode_of(f"{config.database}{suffix}") == 0o600, suffix
    assert made == [config.database]


def test_a_wider_database_is_narrowed_at_open_and_that_is_logged_once(sandbox):
    config = sandbox.config
    sandbox.mp("reconcile")
    # A reader holding the database open keeps its -wal and -shm on disk.
    reader = sqlite3.connect(config.database)
    reader.execute("SELECT * FROM sqlite_master").fetchall()
    try:
        for suffix in ("", "-wal", "-shm", ".lock"):
            os.chmod(f"{config.database}{suffix}", 0o644)
        first = run_mp("reconcile", "-v", "--config", str(sandbox.config_path))
        for suffix in ("", "-wal", "-shm", ".lock"):
            assert mode_of(f"{config.database}{suffix}") == 0o600, suffix
        second = run_mp("reconcile", "-v", "--config", str(sandbox.config_path))
    finally:
        reader.close()
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    narrowed = [line for line in first.stderr.splitlines() if "narrowed" in line]
    assert len(narrowed) == 2, first.stderr  # one for the database files, one for the lock
    assert all(line.startswith("INFO ") for line in narrowed)
    database_line = next(line for line in narrowed if "narrowed lock" not in line)
    for suffix in ("", "-wal", "-shm"):
        assert f"{config.database}{suffix} (was 0644)" in database_line
    assert "narrowed" not in second.stderr


# ---------------------------------------------------------------------------
# private_key: the decision key.


def test_a_private_key_is_made_once_with_mode_0600(tmp_path, umask_000):
    path = tmp_path / "keys" / "decision.key"
    key = private_key(str(path))
    assert len(key) == 32 and path.read_bytes() == key
    assert mode_of(path) == 0o600
    assert private_key(str(path)) == key
    assert os.listdir(path.parent) == ["decision.key"], "no temporary file is left"


def test_an_existing_key_is_never_overwritten_and_a_wide_one_is_narrowed(tmp_path):
    path = tmp_path / "decision.key"
    path.write_bytes(b"k" * 40)
    path.chmod(0o644)
    assert private_key(str(path)) == b"k" * 40
    assert mode_of(path) == 0o600


def test_the_first_uses_at_once_all_get_the_same_key(tmp_path):
    path = tmp_path / "decision.key"
    probe = (
        "import sys; from media_pipeline.store import private_key; "
        "print(private_key(sys.argv[1]).hex())"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", probe, str(path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    keys = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    assert bytes.fromhex(keys.pop()) == path.read_bytes()


def make_symlink(path: Path) -> None:
    target = path.with_name("elsewhere.key")
    target.write_bytes(b"s" * 32)
    path.symlink_to(target)


def make_dangling_symlink(path: Path) -> None:
    path.symlink_to(path.with_name("missing.key"))


def make_short_file(path: Path) -> None:
    path.write_bytes(b"short")


def make_folder(path: Path) -> None:
    path.mkdir()


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (make_symlink, "is a symlink"),
        (make_dangling_symlink, "is a symlink"),
        (make_short_file, "holds 5 bytes"),
        (make_folder, "is not a regular file"),
        (make_fifo, "is not a regular file"),
    ],
)
def test_a_key_mp_did_not_make_is_refused(tmp_path, make, reason):
    path = tmp_path / "decision.key"
    make(path)
    with pytest.raises(SafetyRefusal) as refused:
        private_key(str(path))
    assert str(refused.value).startswith(f"decision key {path} {reason}")
    assert refused.value.exit_code == 3


def test_log_lines_hide_the_configured_secrets_whatever_logs_them(pipeline, receiver):
    # A secret that reaches a log line by a path nobody foresaw (a library's exception
    # text, say) is still hidden, in text and in JSON.
    remuxed_with_gate(pipeline, ntfy_url=f"{receiver.url}/topic", ntfy_token=TOKEN)
    pipeline.mp("reconcile")
    record = logging.LogRecord(
        "media_pipeline", logging.WARNING, __file__, 1, "token %s", (TOKEN,), None
    )
    assert json.loads(JsonFormatter().format(record))["message"] == "token ***"
    assert TextFormatter("%(message)s").format(record) == "token ***"
