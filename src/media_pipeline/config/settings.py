"""The config as the code reads it: Config and its blocks, each an immutable NamedTuple.

NamedTuples rather than frozen dataclasses: as immutable, and a fifth of the import
time, which every timer run of every command pays. A field's default is the schema's
(`default("jobs.heartbeat_seconds")`): each default is written once, in SCHEMA.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, NamedTuple

from media_pipeline.config.hosts import DEFAULT_TIMEOUTS, ScriptSpec, WorkerSpec
from media_pipeline.config.schema import default, setting_at
from media_pipeline.logs import HIDDEN, redact_url, url_secrets


class UnitSettings(NamedTuple):
    """How `mp timers install` writes the system units."""

    user: str = default("units.user")
    group: str = default("units.group")
    transcode_nice: int = default("units.transcode_nice")
    transcode_io_class: str = default("units.transcode_io_class")


class JobSettings(NamedTuple):
    heartbeat_seconds: int = default("jobs.heartbeat_seconds")
    stale_after_seconds: int = default("jobs.stale_after_seconds")
    max_attempts: int = default("jobs.max_attempts")
    retention_days: int = default("jobs.retention_days")
    spec_lifetime_days: int = default("jobs.spec_lifetime_days")
    backoff_seconds: int = default("jobs.backoff_seconds")
    cancel_grace_seconds: int = default("jobs.cancel_grace_seconds")
    log_max_bytes: int = default("jobs.log_max_bytes")


def _tuple_of(name: str, block: str) -> Any:
    """A NamedTuple class with a field for each setting of block, its default the
    schema's. Its fields are known only from the schema: to mypy, the class is Any."""
    children = setting_at(block).children
    keys, defaults = [s.key for s in children], [default(f"{block}.{s.key}") for s in children]
    return namedtuple(name, keys, defaults=defaults)


# The notify block's settings are its channels' (notify/ntfy.py, notify/webhook.py) and
# those they share: its class is made from them, so that a new channel is one module.
_NOTIFY = setting_at("notify").children
_NotifyFields: Any = _tuple_of("NotifyFields", "notify")


class NotifySettings(_NotifyFields):
    """Where notifications go: a field for each setting of the notify block, by its key
    (ntfy_url, webhook_headers, timeout_seconds, status_url...)."""

    __slots__ = ()

    @property
    def secrets(self) -> list[str]:
        """Every text that must never be shown: the values of the settings marked secret
        (tokens, passwords, header values and their last word), the URLs' credentials
        and query values."""
        found: list[str] = []
        for setting in _NOTIFY:
            value = getattr(self, setting.key)
            if setting.key.endswith("_url"):
                found.extend(url_secrets(value or ""))
            elif setting.secret and isinstance(value, dict):
                for text in value.values():
                    found.extend((text, text.rsplit(" ", 1)[-1]))
            elif setting.secret:
                found.append(value)
        return [secret for secret in found if secret]

    def __repr__(self) -> str:
        # A Config in a traceback or a test failure must not print the secrets.
        shown = {}
        for setting in _NOTIFY:
            value = getattr(self, setting.key)
            if setting.secret and isinstance(value, dict):
                value = dict.fromkeys(value, HIDDEN)
            elif setting.secret and value is not None:
                value = HIDDEN
            elif setting.key.endswith("_url") and value:
                value = redact_url(value)
            shown[setting.key] = value
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
    lock_timeout_seconds: int = default("lock_timeout_seconds")
    # kind -> (start minute, end minute) of the day, local time; may wrap midnight
    windows: dict[str, tuple[int, int]] = default("windows")
    notify: NotifySettings = NotifySettings()
    # Applied once the config is loaded; also the umask of the scripts mp runs.
    umask: int = default("umask")
    units: UnitSettings = UnitSettings()
    # Where reconcile writes the HTML status page, if anywhere.
    status_page: str | None = default("status_page")
    # How a title becomes a name in the library (destination.library_name).
    library_names: str = default("library_names")
    # This host's Ed25519 key that signs the job specs it writes, and the public keys
    # of the hosts whose specs it trusts (jobs/keys.py); both on this host's own disk.
    # Not the schema's default (none: parse_config puts them beside the database): a
    # Config made in code has none.
    signing_key: str = ""
    trusted_keys: str = ""
    # Folders beside each job's own that its script may write (worker/confine.py).
    script_writable_paths: tuple[str, ...] = default("script_writable_paths")

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
