"""The config as the code reads it: Config and its blocks, each an immutable NamedTuple.

NamedTuples rather than frozen dataclasses: as immutable, and a fifth of the import
time, which every timer run of every command pays.
"""

from __future__ import annotations

from typing import NamedTuple

from media_pipeline.config.hosts import DEFAULT_TIMEOUTS, ScriptSpec, WorkerSpec
from media_pipeline.logs import HIDDEN, redact_url, url_secrets


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
