"""Which host runs what: the workers, the script each kind of job runs, and when.

The values of `workers`, `scripts` and `windows` in the config file, their checkers,
and this host's own name.
"""

from __future__ import annotations

import os
import re
import string
from typing import Any, NamedTuple

from media_pipeline.config.checks import absolute_path, check_keys, positive_int
from media_pipeline.pipeline import DISC_STAGE, JOB_KINDS, PIPELINE

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


# NamedTuples rather than frozen dataclasses: as immutable, and a fifth of the import
# time, which every timer run of every command pays.
class ScriptSpec(NamedTuple):
    path: str
    args: tuple[str, ...] = DEFAULT_SCRIPT_ARGS
    timeout_seconds: int | None = None


# How long a script of each kind may run when its config names no timeout_seconds (each
# stage's row says): a script that never ends (blocked on a FIFO planted in the library, a
# hung drive) would hold its worker for ever while its heartbeat stays fresh. Generous: a
# UHD encode on a small CPU takes a day and more.
DEFAULT_TIMEOUTS = {stage.kind: stage.timeout_hours * 3600 for stage in PIPELINE}


class WorkerSpec(NamedTuple):
    kinds: tuple[str, ...]
    max_running: int = 1
    # A ripper opens its drive's tray when a rip that a disc started has succeeded.
    eject: bool = False


# What a worker's entry in the file leaves out: WorkerSpec's own defaults, written once.
_WORKER_DEFAULTS = WorkerSpec._field_defaults


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
    known = check_keys(value, ("path", "args", "timeout_seconds"), key, problems)
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
    known = check_keys(value, JOB_KINDS, key, problems)
    table: dict[str, dict[str, ScriptSpec]] = {}
    for kind, entry in value.items():
        if kind not in JOB_KINDS:
            continue  # said by check_keys; the known kinds are still checked
        where = f"{key}.{kind}"
        if isinstance(entry, dict) and set(entry) & set(ITEM_TYPES):
            check_keys(entry, ITEM_TYPES, where, problems)
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
        known = check_keys(entry, ("kinds", "max_running", "eject"), where, problems)
        # Every key is checked whatever the others hold: every problem at once.
        kinds = entry.get("kinds")
        if not (isinstance(kinds, list) and kinds and all(k in JOB_KINDS for k in kinds)):
            problems.append(
                f"key '{where}.kinds' must be a list of job kinds from {', '.join(JOB_KINDS)}"
            )
            kinds = None
        max_running = positive_int(
            entry.get("max_running", _WORKER_DEFAULTS["max_running"]),
            f"{where}.max_running",
            problems,
        )
        eject: Any = entry.get("eject", _WORKER_DEFAULTS["eject"])
        good_eject = isinstance(eject, bool) and not (
            eject and kinds and DISC_STAGE.kind not in kinds
        )
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
    if not check_keys(value, JOB_KINDS, key, problems):
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
