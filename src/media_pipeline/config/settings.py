"""The config as the code reads it: Config and its blocks, each an immutable NamedTuple.

NamedTuples rather than frozen dataclasses: as immutable, and a fifth of the import
time, which every timer run of every command pays. A field's default is the schema's
(`default("jobs.heartbeat_seconds")`): each default is written once, in SCHEMA.
"""

from __future__ import annotations

from typing import NamedTuple

from media_pipeline.config.hosts import DEFAULT_TIMEOUTS, ScriptSpec, WorkerSpec
from media_pipeline.config.schema import default
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


class NotifySettings(NamedTuple):
    ntfy_url: str | None = default("notify.ntfy_url")
    ntfy_priority: int = default("notify.ntfy_priority")
    ntfy_tags: tuple[str, ...] = default("notify.ntfy_tags")
    ntfy_token: str | None = default("notify.ntfy_token")
    ntfy_username: str | None = default("notify.ntfy_username")
    ntfy_password: str | None = default("notify.ntfy_password")
    webhook_url: str | None = default("notify.webhook_url")
    # header name -> value, sent with every webhook POST (an Authorization, say)
    webhook_headers: dict[str, str] = default("notify.webhook_headers")
    timeout_seconds: int = default("notify.timeout_seconds")
    # The status page as a person opens it: where a notification leads (ntfy's Click)
    status_url: str | None = default("notify.status_url")

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
