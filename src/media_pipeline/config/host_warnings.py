"""What this host lacks of a valid config: warnings, for `mp config validate`."""

from __future__ import annotations

import os
import stat

from media_pipeline.config.hosts import host_name
from media_pipeline.config.load import quoted
from media_pipeline.config.settings import Config, NotifySettings
from media_pipeline.notify.channels import configured


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
            f"{quoted(config.source)} (group {config.units.group} still reads it)"
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
    return bool(configured(notify) or notify.secrets)


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
