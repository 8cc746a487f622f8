"""The configuration file: described once in SCHEMA, from which come validation and the example.

Every setting is a `Setting` with its help text, its example and its default; `load_config`
checks a file against the schema and reports every problem at once, naming the key, and
`example_yaml` prints the same schema as a commented file that `load_config` accepts.
"""

from __future__ import annotations

import os
import re
import stat
import string
from collections.abc import Callable
from typing import Any, NamedTuple

import yaml

from media_pipeline.errors import ConfigError, SafetyRefusal
from media_pipeline.logs import HIDDEN, redact_url, url_secrets
from media_pipeline.pipeline import GATES, JOB_KINDS
from media_pipeline.share.files import relative_parts
from media_pipeline.text import encodable

DEFAULT_CONFIG_PATH = "/etc/media-pipeline/config.yaml"
ITEM_TYPES = ("movie", "tv")
TEMPLATE_FIELDS = (
    "input_dir",
    "output_dir",
    "title",
    "type",
    "disc_label",
    "destination",
    "job_id",
)
DEFAULT_SCRIPT_ARGS = ("{input_dir}", "{output_dir}")
# A config is a few kilobytes; the cap keeps a wrong path (a video, /dev/zero) from
# being read into memory.
MAX_CONFIG_BYTES = 1 << 20
# The C parser when PyYAML has it: every timer run parses the config.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# NamedTuples rather than frozen dataclasses: as immutable, and a fifth of the import
# time, which every timer run of every command pays.
class ScriptSpec(NamedTuple):
    path: str
    args: tuple[str, ...] = DEFAULT_SCRIPT_ARGS
    timeout_seconds: int | None = None


# How long a script of each kind may run when its config names no timeout_seconds: a
# script that never ends (blocked on a FIFO planted in the library, a hung drive) would
# hold its worker for ever while its heartbeat stays fresh. Generous: a UHD encode on a
# small CPU takes a day and more.
DEFAULT_TIMEOUTS = {
    "rip": 12 * 3600,
    "remux": 12 * 3600,
    "transcode": 72 * 3600,
    "filebot": 6 * 3600,
}


class WorkerSpec(NamedTuple):
    kinds: tuple[str, ...]
    max_running: int = 1
    # A ripper opens its drive's tray when a rip that a disc started has succeeded.
    eject: bool = False


class UnitSettings(NamedTuple):
    """How `mp timers install` writes the system units."""

    user: str = "media"
    group: str = "media"
    transcode_nice: int = 10
    transcode_io_class: str = "idle"


class JobSettings(NamedTuple):
    heartbeat_seconds: int = 30
    stale_after_seconds: int = 300
    max_attempts: int = 3
    retention_days: int = 30
    spec_lifetime_days: int = 7
    backoff_seconds: int = 60
    cancel_grace_seconds: int = 30
    log_max_bytes: int = 10 * 1024 * 1024


class NotifySettings(NamedTuple):
    ntfy_url: str | None = None
    ntfy_priority: int = 3
    ntfy_tags: tuple[str, ...] = ("film_projector",)
    ntfy_token: str | None = None
    ntfy_username: str | None = None
    ntfy_password: str | None = None
    webhook_url: str | None = None
    # header name -> value, sent with every webhook POST (an Authorization, say)
    webhook_headers: dict[str, str] = {}  # noqa: RUF012 - never mutated
    timeout_seconds: int = 10
    # The status page as a person opens it: where a notification leads (ntfy's Click)
    status_url: str | None = None

    @property
    def secrets(self) -> list[str]:
        """Every text that must never be shown: tokens, passwords, header values (and
        their last word, the token in 'Bearer <token>'), the URLs' credentials and
        query values."""
        found = [self.ntfy_token, self.ntfy_password]
        for value in self.webhook_headers.values():
            found.extend((value, value.rsplit(" ", 1)[-1]))
        for url in (self.ntfy_url, self.webhook_url, self.status_url):
            found.extend(url_secrets(url or ""))
        return [secret for secret in found if secret]

    def __repr__(self) -> str:
        # A Config in a traceback or a test failure must not print the secrets.
        shown = {
            name: redact_url(value) if name.endswith("_url") and value else value
            for name, value in self._asdict().items()
        }
        for name in ("ntfy_token", "ntfy_password"):
            if shown[name] is not None:
                shown[name] = HIDDEN
        shown["webhook_headers"] = dict.fromkeys(self.webhook_headers, HIDDEN)
        return "NotifySettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


class Config(NamedTuple):
    source: str
    staging_root: str
    library_root: str
    database: str
    queue_dir: str
    # The key that signs approval decisions; on the controller's disk, never the share.
    decision_key: str
    workers: dict[str, WorkerSpec]
    # kind -> item type -> script; a kind given one script maps both types to it.
    scripts: dict[str, dict[str, ScriptSpec]]
    gates: tuple[str, ...]
    jobs: JobSettings = JobSettings()
    lock_timeout_seconds: int = 60
    # kind -> (start minute, end minute) of the day, local time; may wrap midnight
    windows: dict[str, tuple[int, int]] = {}  # noqa: RUF012 - never mutated
    notify: NotifySettings = NotifySettings()
    # Applied once the config is loaded; also the umask of the scripts mp runs.
    umask: int = 0o022
    units: UnitSettings = UnitSettings()
    # Where reconcile writes the HTML status page, if anywhere.
    status_page: str | None = None
    # How a title becomes a name in the library (destination.library_name).
    library_names: str = "smb"
    # This host's Ed25519 key that signs the job specs it writes, and the public keys
    # of the hosts whose specs it trusts (jobs/keys.py); both on this host's own disk.
    signing_key: str = ""
    trusted_keys: str = ""
    # Folders beside each job's own that its script may write (worker/confine.py).
    script_writable_paths: tuple[str, ...] = ()

    @property
    def lock_path(self) -> str:
        return self.database + ".lock"

    def script_for(self, kind: str, item_type: str) -> ScriptSpec | None:
        return self.scripts.get(kind, {}).get(item_type)

    def timeout_for(self, script: ScriptSpec, kind: str) -> int:
        return script.timeout_seconds or DEFAULT_TIMEOUTS[kind]

    def longest_job_seconds(self) -> int:
        """The most any job's script may run, by this config: what the claim unit's
        TimeoutStartSec= must stay above."""
        return max(
            self.timeout_for(script, kind)
            for kind, by_type in self.scripts.items()
            for script in by_type.values()
        )


# ---------------------------------------------------------------------------
# Value checkers. Each takes (value, key, problems) and returns the clean value, or
# None after appending one sentence to problems. `key` is the dotted path of the value.


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def absolute_path(value: Any, key: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"key '{key}' must be a path, not {_type_name(value)}")
        return None
    if unwritable_in_unit(value):
        # A newline in a root would start a line of its own in the systemd units
        # (ExecStartPre=+... runs as root); no quoting holds it in every setting.
        problems.append(
            f"key '{key}' holds a control character (a newline, a tab, an escape): "
            f"{value!r}; a path with one cannot be written safely into a systemd unit, "
            "rename the folder"
        )
        return None
    if not os.path.isabs(value):
        problems.append(f"key '{key}' must be an absolute path, got {value!r}")
        return None
    return os.path.normpath(value)


# C0 and C1 control characters and DEL (NUL included).
_UNWRITABLE_IN_UNIT = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def unwritable_in_unit(text: str) -> bool:
    """Whether text cannot be written safely into a systemd unit, quoted or not."""
    return _UNWRITABLE_IN_UNIT.search(text) is not None or not encodable(text)


def path_list(value: Any, key: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        problems.append(f"key '{key}' must be a list of paths, not {_type_name(value)}")
        return None
    found = [absolute_path(item, f"{key}[{n}]", problems) for n, item in enumerate(value)]
    return tuple(path for path in found if path is not None)


def positive_int(value: Any, key: str, problems: list[str]) -> int | None:
    # bool is an int in Python; `max_attempts: yes` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"key '{key}' must be a whole number of at least 1, got {value!r}")
        return None
    return value


_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def account_name(value: Any, key: str, problems: list[str]) -> str | None:
    """A user or group name as useradd takes it."""
    if not isinstance(value, str) or not _ACCOUNT.fullmatch(value):
        problems.append(f"key '{key}' must be a user or group name like 'media', got {value!r}")
        return None
    return value


def whole_number_in(low: int, high: int, what: str = "a number"):
    """A checker of a whole number from low to high (true/false is no number)."""

    def check(value: Any, key: str, problems: list[str]) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"key '{key}' must be {what} from {low} to {high}, got {value!r}")
            return None
        return value

    return check


nice_value = whole_number_in(0, 19, "a nice level")


def io_class(value: Any, key: str, problems: list[str]) -> str | None:
    if value not in ("idle", "best-effort"):
        problems.append(f"key '{key}' must be 'idle' or 'best-effort', got {value!r}")
        return None
    return value


def library_names_rule(value: Any, key: str, problems: list[str]) -> str | None:
    if value not in ("smb", "as-is"):
        problems.append(f"key '{key}' must be 'smb' or 'as-is', got {value!r}")
        return None
    return value


def gate_list(value: Any, key: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        problems.append(f"key '{key}' must be a list of gates ({', '.join(GATES)})")
        return None
    unknown = [gate for gate in value if gate not in GATES]
    if unknown:
        problems.append(
            f"key '{key}' names unknown gate(s) {', '.join(map(repr, unknown))}; "
            f"known gates are {', '.join(GATES)}"
        )
        return None
    return tuple(dict.fromkeys(value))


def _check_keys(mapping: dict, allowed: tuple[str, ...], key: str, problems: list[str]) -> bool:
    good = True
    for name in mapping:
        if name not in allowed:
            where = f"{key}.{name}" if key else str(name)
            import difflib  # only on a mistake

            hint = difflib.get_close_matches(str(name), allowed, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(f"unknown key '{where}'{suggestion}")
            good = False
    return good


def _template_problems(template: str) -> list[str]:
    """Fields in a script argument that are not plain known names."""
    found = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return [f"is not a valid template ({error})"]
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        # Attribute and index lookups ({title.__class__}) would let a template reach
        # into Python objects; only bare names are allowed.
        if name not in TEMPLATE_FIELDS or spec or conversion:
            fields = ", ".join("{" + known + "}" for known in TEMPLATE_FIELDS)
            found.append(f"uses '{{{name}}}'; the fields are {fields}")
    return found


def _script_spec(value: Any, key: str, problems: list[str]) -> ScriptSpec | None:
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        problems.append(f"key '{key}' must be a mapping with 'path' (and 'args')")
        return None
    # Every key is checked whatever the others hold: every problem at once.
    known = _check_keys(value, ("path", "args", "timeout_seconds"), key, problems)
    path = None
    if "path" not in value:
        problems.append(f"key '{key}.path' is missing")
    else:
        path = absolute_path(value["path"], f"{key}.path", problems)
    args = value.get("args", list(DEFAULT_SCRIPT_ARGS))
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        problems.append(f"key '{key}.args' must be a list of text arguments")
        args = None
    for index, template in enumerate(args or ()):
        for problem in _template_problems(template):
            problems.append(f"key '{key}.args[{index}]' {problem}")
    timeout = value.get("timeout_seconds")
    if timeout is not None:
        timeout = positive_int(timeout, f"{key}.timeout_seconds", problems)
    if path is None or args is None or not known:
        return None
    return ScriptSpec(path=path, args=tuple(args), timeout_seconds=timeout)


def script_table(value: Any, key: str, problems: list[str]) -> dict | None:
    if not isinstance(value, dict):
        problems.append(f"key '{key}' must be a mapping of job kind to script")
        return None
    known = _check_keys(value, JOB_KINDS, key, problems)
    table: dict[str, dict[str, ScriptSpec]] = {}
    for kind, entry in value.items():
        if kind not in JOB_KINDS:
            continue  # said by _check_keys; the known kinds are still checked
        where = f"{key}.{kind}"
        if isinstance(entry, dict) and set(entry) & set(ITEM_TYPES):
            _check_keys(entry, ITEM_TYPES, where, problems)
            per_type = {
                item_type: _script_spec(spec, f"{where}.{item_type}", problems)
                for item_type, spec in entry.items()
                if item_type in ITEM_TYPES
            }
            table[kind] = {t: s for t, s in per_type.items() if s is not None}
        else:
            spec = _script_spec(entry, where, problems)
            if spec is not None:
                table[kind] = dict.fromkeys(ITEM_TYPES, spec)
    return table if known else None


def worker_table(value: Any, key: str, problems: list[str]) -> dict | None:
    if not isinstance(value, dict) or not value:
        problems.append(f"key '{key}' must be a mapping of host name to {{kinds: [...]}}")
        return None
    workers = {}
    for name, entry in value.items():
        where = f"{key}.{name}"
        # The name goes into running/ID.WORKER.PID folder names.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(name)):
            problems.append(f"key '{where}': a worker name may hold only letters, digits, . _ -")
            continue
        if not isinstance(entry, dict):
            problems.append(f"key '{where}' must be a mapping like {{kinds: [rip]}}")
            continue
        known = _check_keys(entry, ("kinds", "max_running", "eject"), where, problems)
        # Every key is checked whatever the others hold: every problem at once.
        kinds = entry.get("kinds")
        if not (isinstance(kinds, list) and kinds and all(k in JOB_KINDS for k in kinds)):
            problems.append(
                f"key '{where}.kinds' must be a list of job kinds from {', '.join(JOB_KINDS)}"
            )
            kinds = None
        max_running = positive_int(entry.get("max_running", 1), f"{where}.max_running", problems)
        eject = entry.get("eject", False)
        good_eject = isinstance(eject, bool) and not (eject and kinds and "rip" not in kinds)
        if not isinstance(eject, bool):
            problems.append(f"key '{where}.eject' must be true or false, got {eject!r}")
        elif not good_eject:
            problems.append(f"key '{where}.eject': only a worker that rips has a drive to eject")
        if known and kinds and good_eject and max_running is not None:
            workers[str(name)] = WorkerSpec(tuple(kinds), max_running, eject)
    return workers


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)-([01]?\d|2[0-3]):([0-5]\d)$")


def window_table(value: Any, key: str, problems: list[str]) -> dict | None:
    if not isinstance(value, dict):
        problems.append(f"key '{key}' must be a mapping of job kind to HH:MM-HH:MM")
        return None
    if not _check_keys(value, JOB_KINDS, key, problems):
        return None
    windows = {}
    for kind, text in value.items():
        match = _CLOCK.match(str(text).replace(" ", ""))
        if not isinstance(text, str) or match is None:
            problems.append(f"key '{key}.{kind}' must look like 01:00-07:00, got {text!r}")
            continue
        hour1, minute1, hour2, minute2 = map(int, match.groups())
        windows[kind] = (hour1 * 60 + minute1, hour2 * 60 + minute2)
    return windows


_HTTP_URL = re.compile(r"^https?://[^/?#]+")
_PORT = re.compile(r":(\d+)$")


# URLs whose path is a secret (the ntfy topic, the webhook's id): errors show the host.
SECRET_PATH_URLS = ("notify.ntfy_url", "notify.webhook_url")


def http_url(value: Any, key: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    # A URL may carry a password or a token (user:password@, ?auth=): never echoed whole.
    shown = redact_url(value) if isinstance(value, str) else _type_name(value)
    if isinstance(value, str) and key in SECRET_PATH_URLS:
        # The ntfy topic and the webhook's id are the secret for most: the host only.
        origin = re.match(r"([^:/?#]*://)([^/?#]*)", value)
        shown = (origin.group(1) + origin.group(2).rpartition("@")[2] if origin else "") + "/..."
    if not isinstance(value, str) or not _HTTP_URL.match(value):
        problems.append(f"key '{key}' must be an http:// or https:// URL, got {shown!r}")
        return None
    if re.search(r"[\x00-\x20\x7f]", value):
        problems.append(f"key '{key}' holds a space or a control character: {shown!r}")
        return None
    matched = _HTTP_URL.match(value)
    host = matched.group(0).split("://", 1)[1].rpartition("@")[2] if matched else ""
    if not host or host.startswith(":"):
        problems.append(f"key '{key}' names no host: {shown!r}")
        return None
    port = _PORT.search(host)
    if port and not 1 <= int(port.group(1)) <= 65535:
        problems.append(f"key '{key}' has port {port.group(1)}; a port is 1 to 65535")
        return None
    return value


def _secret_problem(value: Any, key: str, problems: list[str], rule: str) -> None:
    # The value is a secret: the message says what is wrong, never what it is.
    problems.append(f"key '{key}' must be {rule}, got {HIDDEN} ({_type_name(value)})")


def token_text(value: Any, key: str, problems: list[str]) -> str | None:
    """A secret sent in a header as it is: one word of printable ASCII."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[\x21-\x7e]+", value):
        _secret_problem(value, key, problems, "text in quotes, one word of printable ASCII")
        return None
    return value


def user_name_text(value: Any, key: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or ":" in value or _has_control(value):
        _secret_problem(value, key, problems, "text in quotes, without ':' or control characters")
        return None
    return value


def password_text(value: Any, key: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    # In quotes: YAML reads an unquoted 012345 as the number 5349.
    if not isinstance(value, str) or not value or _has_control(value):
        _secret_problem(value, key, problems, "text in quotes, without control characters")
        return None
    return value


def _has_control(text: str) -> bool:
    return re.search(r"[\x00-\x1f\x7f]", text) is not None


# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by mp itself: a webhook header of the same name would break the request.
_RESERVED_HEADERS = ("content-type", "content-length", "transfer-encoding", "host", "connection")


def header_table(value: Any, key: str, problems: list[str]) -> dict[str, str] | None:
    """Header name -> value. Values are secrets (an Authorization header), never echoed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"key '{key}' must be a mapping of header name to value")
        return None
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, text in value.items():
        where = f"{key}.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            problems.append(
                f"key '{key}' has {str(name)[:40]!r}, not a header name "
                "(letters, digits and !#$%&'*+-.^_`|~ only)"
            )
        elif name.lower() in _RESERVED_HEADERS:
            problems.append(f"key '{where}': mp sets {name} itself")
        elif name.lower() in seen:
            problems.append(f"key '{where}' names a header already given (names ignore case)")
        elif not isinstance(text, str) or _has_control(text) or not _latin_1(text):
            # CR or LF would start a header of the value's choosing.
            _secret_problem(text, where, problems, "text on one line, without control characters")
        else:
            headers[name] = text
        seen.add(str(name).lower())
    return headers


def _latin_1(text: str) -> bool:
    # What HTTP (and Python's http.client) can put in a header.
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def umask_text(value: Any, key: str, problems: list[str]) -> int | None:
    """An octal umask in quotes, "022" or "0002", as its number."""
    # Unquoted, YAML reads 022 as the number 18 and 22 as 22: the two cannot be told
    # apart, so only text is accepted.
    if isinstance(value, str) and re.fullmatch(r"[0-7]{1,4}", value) and int(value, 8) <= 0o777:
        return int(value, 8)
    shown = f"the number {value}" if isinstance(value, int) else repr(value)
    problems.append(
        f"key '{key}' must be an octal umask in quotes from '000' to '777', like '022', got {shown}"
    )
    return None


priority_1_to_5 = whole_number_in(1, 5)


def text_list(value: Any, key: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"key '{key}' must be a list of words")
        return None
    return tuple(value)


# What host_name() gives on any host (a label of a DNS name), and all a spec may name.
HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def host_name() -> str:
    """This host's short name: the worker it is unless told otherwise, and where a
    decision was made."""
    return os.uname().nodename.split(".")[0]


def window_open(window: tuple[int, int] | None, minute_of_day: int) -> bool:
    """Whether a kind may start now; no window means always."""
    if window is None:
        return True
    start, end = window
    if start <= end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


# ---------------------------------------------------------------------------
# The schema.

REQUIRED = object()


class Setting(NamedTuple):
    key: str
    help: str
    example: Any
    check: Callable[[Any, str, list[str]], Any] | None = None
    default: Any = REQUIRED
    children: tuple[Setting, ...] = ()


SCHEMA: tuple[Setting, ...] = (
    Setting(
        "staging_root",
        "The shared filesystem (NFS or CIFS), mounted at the same path on every host.",
        "/mnt/staging",
        absolute_path,
    ),
    Setting(
        "library_root",
        "Where the filebot script files finished items (the Plex library).",
        "/mnt/library",
        absolute_path,
    ),
    Setting(
        "database",
        "The controller's SQLite database. Keep it on local disk, never on the share: "
        "SQLite's locking is not safe over NFS.",
        "/var/lib/media-pipeline/state.db",
        absolute_path,
        default="/var/lib/media-pipeline/state.db",
    ),
    Setting(
        "queue_dir",
        "The job queue, on the share. Default: <staging_root>/.pipeline/jobs.",
        "/mnt/staging/.pipeline/jobs",
        absolute_path,
        default=None,
    ),
    Setting(
        "decision_key",
        "The key that signs approval decisions, made on first use (mode 0600). Keep it on "
        "the controller's local disk, never on the share. Default: decision.key in the "
        "database's folder.",
        "/var/lib/media-pipeline/decision.key",
        absolute_path,
        default=None,
    ),
    Setting(
        "signing_key",
        "This host's private key (Ed25519) that signs the job specs it writes, made on "
        "first use (mode 0600). Keep it on local disk, never on the share. Default: "
        "job.key in the database's folder.",
        "/var/lib/media-pipeline/job.key",
        absolute_path,
        default=None,
    ),
    Setting(
        "trusted_keys",
        "The public keys whose signed jobs this host runs, one 'NAME KEY' a line, written "
        "by 'mp keys trust' (or the Ansible role). Local disk only: a key read from the "
        "share is never trusted. Default: trusted_keys in the database's folder.",
        "/var/lib/media-pipeline/trusted_keys",
        absolute_path,
        default=None,
    ),
    Setting(
        "status_page",
        "An HTML page of the pipeline at a glance, rewritten by every full reconcile on the "
        "controller (serve it with any web server). Default: none.",
        "/var/www/html/media-pipeline.html",
        absolute_path,
        default=None,
    ),
    Setting(
        "workers",
        "Host name -> the job kinds it runs (rip, remux, transcode, filebot), how many "
        "of its jobs may run at once on that host (max_running, default 1), and for a "
        "ripper whether its drive's tray opens when a disc's rip has succeeded (eject, "
        "default false).",
        {
            "ct302": {"kinds": ["rip"], "eject": True},
            "ct303": {"kinds": ["remux"]},
            "ct304": {"kinds": ["transcode", "filebot"], "max_running": 1},
        },
        worker_table,
        default={
            "ct302": {"kinds": ["rip"]},
            "ct303": {"kinds": ["remux"]},
            "ct304": {"kinds": ["transcode", "filebot"]},
        },
    ),
    Setting(
        "scripts",
        "Job kind -> the script that does it: {path, args, timeout_seconds}, or one per item "
        "type under 'movie' and 'tv'. timeout_seconds defaults to 12 h for rip and remux, "
        "72 h for transcode and 6 h for filebot. args are templates; the default is "
        '["{input_dir}", "{output_dir}"] and the fields are ' + ", ".join(TEMPLATE_FIELDS) + ".",
        {
            "rip": {"path": "/opt/media/scripts/rip-disc.sh", "args": ["{output_dir}", "{title}"]},
            "remux": {
                "movie": {"path": "/opt/media/scripts/organize-and-remux-movie.sh"},
                "tv": {"path": "/opt/media/scripts/organize-and-remux-tv.sh"},
            },
            "transcode": {"path": "/opt/media/scripts/transcode-queue.sh"},
            "filebot": {
                "path": "/opt/media/scripts/filebot-process.sh",
                "args": ["{input_dir}", "{destination}"],
            },
        },
        script_table,
        default={
            "rip": {"path": "/opt/media/scripts/rip-disc.sh", "args": ["{output_dir}", "{title}"]},
            "remux": {
                "movie": {"path": "/opt/media/scripts/organize-and-remux-movie.sh"},
                "tv": {"path": "/opt/media/scripts/organize-and-remux-tv.sh"},
            },
            "transcode": {"path": "/opt/media/scripts/transcode-queue.sh"},
            "filebot": {"path": "/opt/media/scripts/filebot-process.sh"},
        },
    ),
    Setting(
        "gates",
        "Approval gates that are on: remux_review (look at the remux before transcoding) "
        "and filebot_confirm (confirm the library destination). [] turns both off.",
        list(GATES),
        gate_list,
        default=list(GATES),
    ),
    Setting(
        "jobs",
        "How jobs are watched and retried.",
        None,
        children=(
            Setting(
                "heartbeat_seconds",
                "A running job's worker touches its heartbeat this often.",
                30,
                positive_int,
                default=30,
            ),
            Setting(
                "stale_after_seconds",
                "A running job whose heartbeat is older than this was orphaned (its host "
                "rebooted or its worker was killed) and is put back in the queue.",
                300,
                positive_int,
                default=300,
            ),
            Setting(
                "max_attempts",
                "A job that fails this many times fails for good: the item becomes FAILED.",
                3,
                positive_int,
                default=3,
            ),
            Setting(
                "backoff_seconds",
                "A failed attempt waits this long before the next, doubling each time.",
                60,
                positive_int,
                default=60,
            ),
            Setting(
                "cancel_grace_seconds",
                "On cancel or timeout a script gets SIGTERM, then SIGKILL this much later.",
                30,
                positive_int,
                default=30,
            ),
            Setting(
                "log_max_bytes",
                "A job's log keeps at most this many bytes of its script's output; past "
                "that the tail is kept (the end, where the error is).",
                10485760,
                positive_int,
                default=10485760,
            ),
            Setting(
                "retention_days",
                "Completed and cancelled jobs are removed from the queue folders after this "
                "many days; their history stays in the database.",
                30,
                positive_int,
                default=30,
            ),
            Setting(
                "spec_lifetime_days",
                "A worker refuses a job whose signed spec was issued longer ago than this "
                "(reconcile then queues its item again with a new one): a spec copied "
                "back onto the share later cannot run. At most retention_days.",
                7,
                positive_int,
                default=7,
            ),
        ),
    ),
    Setting(
        "windows",
        "Job kind -> the hours of the day (this host's local time) when workers may start "
        "it, as HH:MM-HH:MM; a window may wrap midnight. Kinds not listed run any time.",
        {"transcode": "01:00-07:00"},
        window_table,
        default={},
    ),
    Setting(
        "notify",
        "Where to tell a person that an approval waits, a job failed for good, an item "
        "reached the library or reconcile keeps failing. Each event is sent once; a "
        "notification that fails is logged, never fatal. Try it: mp notify test.",
        None,
        children=(
            Setting(
                "ntfy_url",
                "An ntfy topic URL, like https://ntfy.sh/<a topic only you know> or your own "
                "server's. null: off.",
                None,
                http_url,
                default=None,
            ),
            Setting(
                "ntfy_priority", "ntfy priority, 1 (min) to 5 (max).", 3, priority_1_to_5, default=3
            ),
            Setting(
                "ntfy_tags",
                "ntfy tags (emoji short codes shown beside the title).",
                ["film_projector"],
                text_list,
                default=["film_projector"],
            ),
            Setting(
                "ntfy_token",
                "An ntfy access token (tk_...), sent as 'Authorization: Bearer <token>', for a "
                "server or topic that needs one. null: none. It is never logged.",
                None,
                token_text,
                default=None,
            ),
            Setting(
                "ntfy_username",
                "An ntfy user, with ntfy_password (both or neither; or a token): sent with "
                "HTTP Basic auth. null: none.",
                None,
                user_name_text,
                default=None,
            ),
            Setting(
                "ntfy_password",
                "That user's password, in quotes. null: none. It is never logged.",
                None,
                password_text,
                default=None,
            ),
            Setting(
                "webhook_url",
                "A URL that gets each event as a JSON POST, like "
                "http://homeassistant.lan:8123/api/webhook/media-pipeline. null: off.",
                None,
                http_url,
                default=None,
            ),
            Setting(
                "webhook_headers",
                "Header name -> value sent with each webhook POST, like "
                "{Authorization: Bearer <a long-lived token>}. Values are never logged.",
                {},
                header_table,
                default={},
            ),
            Setting(
                "timeout_seconds",
                "How long one notification may take.",
                10,
                positive_int,
                default=10,
            ),
            Setting(
                "status_url",
                "The status page (status_page) as a person opens it, like "
                "http://ct303.lan/media/status.html: a notification opens it when tapped "
                "(ntfy's Click; 'url' in the webhook's JSON), at the section it is about. "
                "null: none.",
                None,
                http_url,
                default=None,
            ),
        ),
    ),
    Setting(
        "lock_timeout_seconds",
        "How long a controller command waits for the database lock before it gives up (exit 3).",
        60,
        positive_int,
        default=60,
    ),
    Setting(
        "units",
        "How 'mp timers install' writes the system units (not the --user ones).",
        None,
        children=(
            Setting(
                "user",
                "The user the services run mp as; it must write the share and the database's "
                "folder. Make it on each host: useradd --system --user-group --create-home "
                "media (and on the ripper: usermod -aG cdrom media). mp run as root by hand "
                "becomes this user too, but for the install commands; root: stay root.",
                "media",
                account_name,
                default="media",
            ),
            Setting("group", "The services' group.", "media", account_name, default="media"),
            Setting(
                "transcode_nice",
                "The CPU nice level (0-19) of a worker that transcodes, so that an encode "
                "gives way to Plex playing on the same host.",
                10,
                nice_value,
                default=10,
            ),
            Setting(
                "transcode_io_class",
                "Its disk priority: idle (only when nothing else reads) or best-effort.",
                "idle",
                io_class,
                default="idle",
            ),
        ),
    ),
    Setting(
        "library_names",
        "How a title becomes a folder and file name in the library: 'smb' (the default) "
        "leaves out or replaces what SMB shares and Windows clients refuse ('Star Wars: "
        "Episode IV' is filed as 'Star Wars - Episode IV'; ? * \" < > | \\ /, a trailing "
        "dot or space, CON, NUL...); 'as-is' keeps the title as it is (but a '/').",
        "smb",
        library_names_rule,
        default="smb",
    ),
    Setting(
        "script_writable_paths",
        "Folders the scripts may write besides their item's own folders, /tmp, /var/tmp, "
        "/dev/shm, /dev/null, /dev/zero, and a rip's drives and ~/.MakeMKV: a job's script "
        "can write nothing else, the rest of the share "
        "and the library included (Landlock). Add what your own scripts need (a FileBot "
        "cache, say), and to the units' ReadWritePaths= too. Default: none.",
        ["/var/cache/filebot"],
        path_list,
        default=[],
    ),
    Setting(
        "umask",
        "The umask (octal, in quotes) for the files and folders mp and the scripts it runs "
        "make once this file is read; '002' makes them group-writable. Until then mp "
        "uses 022. mp never loosens the umask it was started with, it adds to it: the "
        "units' UMask= (this one), or a shell's umask when run by hand.",
        "022",
        umask_text,
        default="022",
    ),
)


def _check_block(
    settings: tuple[Setting, ...], data: dict, prefix: str, problems: list[str]
) -> dict:
    _check_keys(data, tuple(s.key for s in settings), prefix, problems)
    values: dict[str, Any] = {}
    for setting in settings:
        key = f"{prefix}.{setting.key}" if prefix else setting.key
        if setting.children:
            block = data.get(setting.key, {})
            if block is None:
                block = {}
            if not isinstance(block, dict):
                problems.append(f"key '{key}' must be a mapping")
                block = {}
            values[setting.key] = _check_block(setting.children, block, key, problems)
        elif setting.check is None:
            raise AssertionError(f"setting {key} has neither children nor a check")
        elif setting.key in data:
            values[setting.key] = setting.check(data[setting.key], key, problems)
        elif setting.default is REQUIRED:
            problems.append(f"key '{key}' is missing (for example: {setting.example})")
        elif setting.default is None:
            values[setting.key] = None
        else:
            values[setting.key] = setting.check(setting.default, key, problems)
    return values


def parse_config(data: Any, source: str) -> Config:
    """Check already-parsed YAML against SCHEMA; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"must be a YAML mapping of settings, not {_type_name(data)}"])
    problems: list[str] = []
    values = _check_block(SCHEMA, data, "", problems)
    database = values.get("database")
    decision_key = values.get("decision_key")
    if decision_key is None and database:
        decision_key = os.path.join(os.path.dirname(database), "decision.key")
    local_files: dict[str, str | None] = {}
    for name, default in (("signing_key", "job.key"), ("trusted_keys", "trusted_keys")):
        local_files[name] = values.get(name)
        if local_files[name] is None and database:
            local_files[name] = os.path.join(os.path.dirname(database), default)
    local_files["status_page"] = values.get("status_page")
    problems.extend(
        off_the_share_problems(
            _roots(values),
            _local_paths(database, decision_key, local_files, values.get("scripts")),
            resolve=None,
        )
    )
    problems.extend(_credential_problems(data.get("notify"), values["notify"]))
    jobs = values["jobs"]
    beat, stale, grace = (
        jobs.get(name)
        for name in ("heartbeat_seconds", "stale_after_seconds", "cancel_grace_seconds")
    )
    if beat and stale and grace and stale <= beat + grace:
        # A worker that died stops its script within the grace; only after that may
        # reconcile give the job to another, or two runs could write the same folder.
        problems.append(
            f"key 'jobs.stale_after_seconds' ({stale}) must be more than heartbeat_seconds "
            f"plus cancel_grace_seconds ({beat} + {grace})"
        )
    lifetime, retention = jobs.get("spec_lifetime_days"), jobs.get("retention_days")
    if lifetime and retention and lifetime > retention:
        # A finished job's folder is how a worker knows its spec was run already: it
        # must outlive the spec, or a copy of the spec could run again.
        problems.append(
            f"key 'jobs.spec_lifetime_days' ({lifetime}) must be at most retention_days "
            f"({retention})"
        )
    for name, worker in (values.get("workers") or {}).items():
        for kind in worker.kinds:
            if values.get("scripts") is not None and kind not in values["scripts"]:
                problems.append(f"key 'workers.{name}.kinds' names '{kind}', which has no script")
    if problems:
        raise ConfigError(source, problems)
    return Config(
        source=source,
        staging_root=values["staging_root"],
        library_root=values["library_root"],
        database=values["database"],
        queue_dir=values["queue_dir"] or os.path.join(values["staging_root"], ".pipeline", "jobs"),
        decision_key=str(decision_key),
        signing_key=str(local_files["signing_key"]),
        trusted_keys=str(local_files["trusted_keys"]),
        workers=values["workers"],
        scripts=values["scripts"],
        gates=values["gates"],
        jobs=JobSettings(**values["jobs"]),
        lock_timeout_seconds=values["lock_timeout_seconds"],
        windows=values["windows"],
        notify=NotifySettings(**values["notify"]),
        umask=values["umask"],
        units=UnitSettings(**values["units"]),
        status_page=values["status_page"],
        library_names=values["library_names"],
        script_writable_paths=values["script_writable_paths"] or (),
    )


# What each file that must stay off the share is, and what to do about it. Whoever
# writes the share (three hosts, their scripts, anyone with access to it) must not
# write, nor read, what a host trusts.
_KEEP_LOCAL = {
    "database": "keep the database on the controller's local disk: SQLite is not safe on "
    "a network share, and whoever writes the share could rewrite it (and decision.key "
    "beside it)",
    "decision_key": "keep it on the controller's local disk: whoever reads it can sign decisions",
    "signing_key": "keep it on this host's local disk: whoever reads it can sign jobs",
    "trusted_keys": "keep it on this host's local disk: whoever writes it chooses whose jobs run",
    "status_page": "keep the page on the controller's local disk (a web server's folder): "
    "whoever writes the share could swap the folder it goes into for a link, and reconcile "
    "would write there",
    "scripts": "keep the scripts on each host's local disk ('mp scripts install' copies "
    "the reference ones to /opt/media/scripts): whoever writes the share could change "
    "what every worker runs",
}


def _roots(values: dict) -> dict[str, str]:
    return {key: values[key] for key in ("staging_root", "library_root") if values.get(key)}


def _local_paths(
    database: str | None,
    decision_key: str | None,
    keys: dict[str, str | None],
    scripts: dict[str, dict[str, ScriptSpec]] | None,
) -> list[tuple[str, str, str]]:
    """(key, path, what the key is) of every file that must stay off the share, the
    database first."""
    found = [
        (key, path, key)
        for key, path in (("database", database), ("decision_key", decision_key), *keys.items())
        if path
    ]
    for kind, per_type in (scripts or {}).items():
        one_for_both = len({spec.path for spec in per_type.values()}) == 1 and len(per_type) > 1
        for item_type, spec in per_type.items():
            if one_for_both and item_type != ITEM_TYPES[0]:
                continue
            key = f"scripts.{kind}" if one_for_both else f"scripts.{kind}.{item_type}"
            found.append((f"{key}.path", spec.path, "scripts"))
    return found


def off_the_share_problems(
    roots: dict[str, str],
    local_paths: list[tuple[str, str, str]],
    resolve: Callable[[str], str] | None,
) -> list[str]:
    """A sentence for each of local_paths inside a root. With resolve (os.path.realpath,
    on the host itself), both sides are compared with their links resolved: a database
    at /var/lib/mp/state.db where /var/lib/mp links into staging is on the share."""
    found = []
    database_folder = None
    resolved_roots = {key: resolve(root) if resolve else root for key, root in roots.items()}
    for key, path, what in local_paths:
        if what != "scripts" and os.path.dirname(path) == database_folder:
            continue  # a key beside a database already refused (decision.key): said once
        resolved = resolve(path) if resolve else path
        for root_key, root in resolved_roots.items():
            if relative_parts(root, resolved) is None:
                continue
            through = f" (through a link: {resolved})" if resolved != path else ""
            found.append(
                f"key '{key}' ({path}) is inside {root_key}, on the share{through}; "
                f"{_KEEP_LOCAL[what]}"
            )
            if key == "database":
                database_folder = os.path.dirname(path)
            break
    return found


def _credential_problems(file_block: Any, notify: dict) -> list[str]:
    """Credentials that cannot go together: a user without a password, two ways to
    authenticate to the same service (which one would be sent is anyone's guess).
    What was given is read from the file's block: a key with a bad value is not missing."""
    given = set()
    if isinstance(file_block, dict):
        given = {key for key, value in file_block.items() if value is not None}
    problems = []
    if ("ntfy_username" in given) != ("ntfy_password" in given):
        missing = "ntfy_username" if "ntfy_password" in given else "ntfy_password"
        problems.append(
            f"key 'notify.{missing}' is missing: ntfy_username and ntfy_password go together"
        )
    if "ntfy_token" in given and given & {"ntfy_username", "ntfy_password"}:
        problems.append(
            "key 'notify.ntfy_token' is set with ntfy_username/ntfy_password; give one: "
            "a token, or a user name and password"
        )
    if given & {"ntfy_token", "ntfy_username"} and _has_user_info(notify.get("ntfy_url")):
        problems.append(
            "key 'notify.ntfy_url' holds a user and password (user:password@) and "
            "ntfy_token or ntfy_username is set too; give the credentials once"
        )
    headers = notify.get("webhook_headers") or {}
    if any(name.lower() == "authorization" for name in headers) and _has_user_info(
        notify.get("webhook_url")
    ):
        problems.append(
            "key 'notify.webhook_url' holds a user and password (user:password@) and "
            "webhook_headers has an Authorization header too; give the credentials once"
        )
    return problems


def _has_user_info(url: str | None) -> bool:
    matched = _HTTP_URL.match(url) if url else None
    return matched is not None and "@" in matched.group(0)


def load_config(path: str | None) -> Config:
    """Read and check the config at path (default: $MP_CONFIG, else the system path)."""
    path = path or os.environ.get("MP_CONFIG") or DEFAULT_CONFIG_PATH
    try:
        with open(path, "rb") as handle:
            _refuse_writable_by_others(path, os.fstat(handle.fileno()))
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                path, [f"is larger than {MAX_CONFIG_BYTES >> 20} MiB; a config is a few kilobytes"]
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            [
                "no such file; pass --config PATH or set MP_CONFIG "
                "('mp config example' prints a file to start from)"
            ],
        ) from None
    except PermissionError:
        # Deployed, it is root's and the service's group's: a person meets this first.
        raise ConfigError(
            path,
            [
                "cannot be read (permission denied); it is for root and the service "
                "user (units.user): run mp as root (it becomes that user) or as that user "
                "(sudo -u USER mp ...)"
            ],
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, [f"cannot be read ({error})"]) from None
    try:
        _refuse_aliases(text, path)
        data = yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError(path, [f"is not valid YAML ({where}{reason})"]) from None
    config = parse_config(data, path)
    # Again with links resolved, on this host: a database folder that links into
    # staging puts state.db and decision.key on the share as surely as a path inside it.
    placement = off_the_share_problems(
        _roots(config._asdict()),
        _local_paths(
            config.database,
            config.decision_key,
            {
                "signing_key": config.signing_key,
                "trusted_keys": config.trusted_keys,
                "status_page": config.status_page,
            },
            config.scripts,
        ),
        resolve=os.path.realpath,
    )
    if placement:
        raise ConfigError(path, placement)
    return config


def _refuse_writable_by_others(path: str, status: os.stat_result) -> None:
    """A config that any user of this host may change (the file, or a folder it could be
    swapped in) says which commands mp runs, as the service user or as root: refused."""
    if status.st_mode & stat.S_IWOTH:
        raise SafetyRefusal(
            f"{path}: every user on this host may change this config, and so what mp "
            f"runs (mode {stat.S_IMODE(status.st_mode):04o}); run: chmod o-w {_quoted(path)}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    folder_mode = os.stat(folder).st_mode
    # The sticky bit (/tmp) keeps others from replacing a file they do not own.
    if folder_mode & stat.S_IWOTH and not folder_mode & stat.S_ISVTX:
        raise SafetyRefusal(
            f"{path}: every user on this host may replace this config in {folder} "
            f"(mode {stat.S_IMODE(folder_mode):04o}), and so what mp runs; run: "
            f"chmod o-w {_quoted(folder)}"
        )


def _quoted(path: str) -> str:
    import shlex  # only on a refusal

    return shlex.quote(path)


def _refuse_aliases(text: str, path: str) -> None:
    """Refuse any YAML alias (*name) before anything is built from the file.

    An alias repeats what its anchor names, so nine lines of them can stand for a
    billion values (the 'billion laughs'); building that, or quoting it in an error
    message, took minutes and gigabytes. A config has no need of them. Scanning the
    parse events is flat work that builds nothing.
    """
    for event in yaml.parse(text, Loader=YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                path,
                [
                    f"line {event.start_mark.line + 1 if event.start_mark else '?'}: uses the "
                    "YAML alias "
                    f"'*{event.anchor}'; aliases are not allowed, write the value out"
                ],
            )


def config_warnings(config: Config) -> list[str]:
    """Paths this host cannot see. Warnings only: hosts that share a config see different
    things (the ripper has no transcode script), so only the command that needs a path
    treats its absence as an error."""
    warnings = []
    for key in ("staging_root", "library_root"):
        if not os.path.isdir(getattr(config, key)):
            warnings.append(f"key '{key}': {getattr(config, key)} is not a folder on this host")
    database_folder = os.path.dirname(config.database)
    if not os.path.isdir(database_folder):
        warnings.append(f"key 'database': folder {database_folder} does not exist on this host")
    seen = set()
    for kind, per_type in config.scripts.items():
        for item_type, spec in per_type.items():
            if spec.path in seen:
                continue
            seen.add(spec.path)
            if not os.access(spec.path, os.X_OK):
                warnings.append(
                    f"key 'scripts.{kind}' ({item_type}): {spec.path} is not an executable "
                    "file on this host"
                )
    if _holds_secrets(config.notify) and _readable_by_others(config.source):
        warnings.append(
            f"{config.source} holds notification secrets (the ntfy topic, a token, the "
            "webhook URL) and every user on this host may read it; run: chmod o-r "
            f"{_quoted(config.source)} (group {config.units.group} still reads it)"
        )
    worker = config.workers.get(host_name())
    if worker is not None and worker.eject:
        import shutil  # only `mp config validate` asks

        if shutil.which("eject") is None:
            warnings.append(
                f"key 'workers.{host_name()}.eject': eject is not installed on this host "
                "(the package is eject, or util-linux); the tray stays shut after a rip"
            )
    return warnings


def _holds_secrets(notify: NotifySettings) -> bool:
    # An ntfy topic, or a webhook's path, is the only secret most setups have: whoever
    # knows it may read the notifications, or send false ones.
    return bool(notify.ntfy_url or notify.webhook_url or notify.secrets)


def _readable_by_others(path: str) -> bool:
    """Whether a user of this host outside the file's owner and group may read it: the
    file is readable by others and each folder above it lets others through."""
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        folder = os.path.dirname(os.path.abspath(path))
        while True:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return False
            if folder == os.path.dirname(folder):
                return True
            folder = os.path.dirname(folder)
    except OSError:
        return False


def example_yaml() -> str:
    """A commented config file generated from SCHEMA; `load_config` accepts it as it is."""
    lines = [
        "# media-pipeline configuration (generated by 'mp config example').",
        "# One file for every host; each command uses the parts it needs.",
        "",
    ]
    for setting in SCHEMA:
        lines.extend(_example_lines(setting, indent=""))
        lines.append("")
    return "\n".join(lines)


REFERENCE_INTRO = """\
# Configuration reference

Generated from the schema in `src/media_pipeline/config.py` (`make docs` writes it; a test
fails when it differs), as `mp config example` is: one file for every host, each command
using the parts it needs. Only `staging_root` and `library_root` are required. `mp config
validate` reports every problem in a file at once, naming the key. Secrets (the ntfy
token or password, webhook headers) belong in this file, which lives on each host's own
disk (`/etc/media-pipeline/config.yaml`), never on the share.
"""


def reference_markdown() -> str:
    """docs/configuration.md: every setting of SCHEMA with its help, default and example."""
    lines = [REFERENCE_INTRO]
    for setting in SCHEMA:
        lines.extend(_reference_lines(setting, prefix=""))
    return "\n".join(lines).rstrip("\n") + "\n"


def _reference_lines(setting: Setting, prefix: str) -> list[str]:
    key = prefix + setting.key
    lines = [f"{'##' if not prefix else '###'} `{key}`", "", setting.help, ""]
    if setting.children:
        for child in setting.children:
            lines.extend(_reference_lines(child, prefix=key + "."))
        return lines
    if setting.default is REQUIRED:
        lines += ["Required.", ""]
    elif setting.default is not None:
        lines += [f"Default: `{_inline_yaml(setting.default)}`.", ""]
    return [*lines, f"Example: `{_inline_yaml(setting.example)}`", ""]


def _inline_yaml(value: Any) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000)
    return dumped.strip().removesuffix("...").strip()


def _example_lines(setting: Setting, indent: str) -> list[str]:
    import textwrap  # only for `mp config example`

    wrapped = textwrap.wrap(setting.help, width=86 - len(indent))
    lines = [f"{indent}# {line}" for line in wrapped]
    if setting.children:
        lines.append(f"{indent}{setting.key}:")
        for child in setting.children:
            lines.extend(_example_lines(child, indent + "  "))
        return lines
    # Nested mappings read best with their innermost level inline ({kinds: [rip]});
    # a scalar or a list at the top must stay in block style to remain `key: value`.
    flow = None if isinstance(setting.example, dict) else False
    dumped = yaml.safe_dump(
        {setting.key: setting.example}, default_flow_style=flow, sort_keys=False, width=200
    ).rstrip("\n")
    lines.extend(f"{indent}{line}" for line in dumped.splitlines())
    return lines
