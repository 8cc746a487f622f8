"""Reading the config file and checking it against the schema, every problem at once.

`load_config` reads the file (refusing one any user may change, a large one, YAML
aliases), `parse_config` checks what it holds against SCHEMA and the rules between
settings, and builds the Config.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from media_pipeline.config.checks import (
    REQUIRED,
    Setting,
    check_keys,
    checked_default,
    type_name,
)
from media_pipeline.config.local_files import local_paths, off_the_share_problems, roots
from media_pipeline.config.schema import SCHEMA
from media_pipeline.config.settings import Config, JobSettings, NotifySettings, UnitSettings
from media_pipeline.errors import ConfigError, SafetyRefusal
from media_pipeline.notify.channels import CHANNELS

DEFAULT_CONFIG_PATH = "/etc/media-pipeline/config.yaml"
# A config is a few kilobytes; the cap keeps a wrong path (a video, /dev/zero) from
# being read into memory.
MAX_CONFIG_BYTES = 1 << 20
# The C parser when PyYAML has it: every timer run parses the config.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_block(
    settings: tuple[Setting, ...], data: dict, prefix: str, problems: list[str]
) -> dict:
    check_keys(data, tuple(s.key for s in settings), prefix, problems)
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
        else:
            values[setting.key] = checked_default(setting, key, problems)
    return values


def parse_config(data: Any, source: str) -> Config:
    """Check already-parsed YAML against SCHEMA; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"must be a YAML mapping of settings, not {type_name(data)}"])
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
            roots(values),
            local_paths(database, decision_key, local_files, values.get("scripts")),
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


def _credential_problems(file_block: Any, notify: dict) -> list[str]:
    """Credentials that cannot go together, each channel's. What was given is read from
    the file's block: a key with a bad value is not missing."""
    given = set()
    if isinstance(file_block, dict):
        given = {key for key, value in file_block.items() if value is not None}
    return [
        problem for channel in CHANNELS for problem in channel.credential_problems(given, notify)
    ]


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
        roots(config._asdict()),
        local_paths(
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
            f"runs (mode {stat.S_IMODE(status.st_mode):04o}); run: chmod o-w {quoted(path)}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    folder_mode = os.stat(folder).st_mode
    # The sticky bit (/tmp) keeps others from replacing a file they do not own.
    if folder_mode & stat.S_IWOTH and not folder_mode & stat.S_ISVTX:
        raise SafetyRefusal(
            f"{path}: every user on this host may replace this config in {folder} "
            f"(mode {stat.S_IMODE(folder_mode):04o}), and so what mp runs; run: "
            f"chmod o-w {quoted(folder)}"
        )


def quoted(path: str) -> str:
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
