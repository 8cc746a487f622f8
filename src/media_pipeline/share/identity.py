"""Which share this is: an id file on the share, checked by every writing command.

An unmounted share leaves an empty folder at its mount point, which looks like a share
where nothing has happened yet: a dispatch there wrote jobs onto the local disk and a
worker ran a filing script against it. So the controller writes a random id to
`<staging_root>/.pipeline/share.id` once, and remembers it on its own disk beside the
database. Workers refuse a staging root without the file; the controller also refuses
one whose id is not the one it remembers (another share, or a copy of it).
"""

from __future__ import annotations

import os
import re

from media_pipeline.config.settings import Config
from media_pipeline.errors import SafetyRefusal
from media_pipeline.share.files import BadEntry, Folder
from media_pipeline.share.fsutil import check_staging_root
from media_pipeline.share.markers import PIPELINE_DIR

SHARE_ID_FILE = "share.id"
_ID = re.compile(r"^[0-9a-f]{32}$")


def share_id_path(staging_root: str) -> str:
    return os.path.join(staging_root, PIPELINE_DIR, SHARE_ID_FILE)


def known_id_path(config: Config) -> str:
    """Where the controller remembers the share's id: its own disk, beside the database."""
    return os.path.join(os.path.dirname(config.database), SHARE_ID_FILE)


def read_share_id(staging_root: str) -> str | None:
    """The id on the share, or None if it has none; SafetyRefusal if it is not one."""
    try:
        with Folder.open_root(staging_root) as top, top.child(PIPELINE_DIR) as pipeline:
            text = pipeline.read_text(SHARE_ID_FILE, 256)
    except FileNotFoundError:
        return None
    except BadEntry as error:
        raise SafetyRefusal(f"{error}; it cannot identify the share") from None
    if text is None:
        return None
    if not _ID.match(text.strip()):
        raise SafetyRefusal(f"{share_id_path(staging_root)} does not hold a share id")
    return text.strip()


def check_share(staging_root: str) -> None:
    """For commands on any host: refuse (exit 3) a staging root that is not the share
    the controller set up. Call before writing anything."""
    check_staging_root(staging_root)
    if read_share_id(staging_root) is None:
        raise SafetyRefusal(
            f"staging_root {staging_root} has no {PIPELINE_DIR}/{SHARE_ID_FILE}, so it is not "
            "the share the controller set up: is the share mounted? (On a new install, run "
            "'mp reconcile' on the controller once.) Nothing was changed"
        )


def _read_known(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(256).strip()
    except FileNotFoundError:
        return None
    return text if _ID.match(text) else None


def ensure_share(config: Config, *, dry_run: bool = False) -> list[str]:
    """For controller commands: the share must be the one this controller knows. A new
    install (no id on the share, none remembered) gets one; a controller that lost its
    own copy adopts the share's. Returns what changed, in sentences."""
    check_staging_root(config.staging_root)
    known_path = known_id_path(config)
    known = _read_known(known_path)
    on_share = read_share_id(config.staging_root)
    if on_share is not None and known == on_share:
        return []
    if on_share is None and known is not None:
        raise SafetyRefusal(
            f"staging_root {config.staging_root} has lost its {PIPELINE_DIR}/{SHARE_ID_FILE} "
            f"(this controller knows share {known[:8]}): is the share mounted? Nothing was "
            "changed"
        )
    if on_share is not None and known is not None:
        raise SafetyRefusal(
            f"staging_root {config.staging_root} holds share {on_share[:8]}, but this "
            f"controller knows share {known[:8]}; if you moved to another share on purpose, "
            f"remove {known_path}. Nothing was changed"
        )
    if dry_run:
        return ["the share's id would be " + ("remembered" if on_share else "written")]
    if on_share is None:
        import secrets  # only for a new share: every claim imports this module

        on_share = secrets.token_hex(16)
        try:
            with (
                Folder.open_root(config.staging_root) as top,
                top.child(PIPELINE_DIR, create=True) as pipeline,
            ):
                pipeline.create(SHARE_ID_FILE, on_share + "\n")
        except FileExistsError:
            return ensure_share(config)  # another controller command wrote it meanwhile
        except BadEntry as error:
            raise SafetyRefusal(f"{error}; it cannot hold the share's id") from None
        change = f"wrote the share's id {on_share[:8]} to {share_id_path(config.staging_root)}"
    else:
        change = f"remembered the share's id {on_share[:8]}"
    os.makedirs(os.path.dirname(known_path), exist_ok=True)
    temporary = f"{known_path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(on_share + "\n")
    os.replace(temporary, known_path)
    return [change]
