"""`mp scripts install`: the reference scripts, shipped inside the package, copied where
a config points at them (`/opt/media/scripts` in `mp config example`).

They travel in the wheel as package data, so an installation from a wheel has them as
a clone does. A script is a program the owner may have changed, so an install tells the
two kinds of difference apart with a manifest it keeps beside them (MANIFEST: the
sha256 of each script as mp last wrote it):

- a script still as mp wrote it, from an earlier version, is updated in place (a
  rename: a worker that started the old one keeps running it to its end);
- one changed since, or one from before manifests were kept, is left as it is; this
  version's is written beside it as NAME.new, to compare and take by hand.

A link in the folder is never followed, and nothing but the scripts, their .new
versions and the manifest is written.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import media_pipeline
from media_pipeline.errors import UsageError
from media_pipeline.said import Said
from media_pipeline.share.files import BadEntry, Folder

DEFAULT_DEST = "/opt/media/scripts"
MANIFEST = ".mp-scripts.sha256"


def packaged_scripts() -> Path:
    """The folder of reference scripts inside the installed package."""
    folder = Path(media_pipeline.__file__).resolve().parent / "scripts"
    if not (folder / "rip-disc.sh").exists():
        raise UsageError(f"the reference scripts are not at {folder}: reinstall media-pipeline")
    return folder


@dataclass
class Installed:
    copied: list[str] = field(default_factory=list)  # there was none
    updated: list[str] = field(default_factory=list)  # mp's own earlier version replaced
    same: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # changed by someone: left, NAME.new beside


def _digest(path: Path) -> str | None:
    """The sha256 of a regular file (never through a link), or None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return hashlib.sha256(handle.read()).hexdigest()


def _read_manifest(dest: Path) -> dict[str, str]:
    manifest: dict[str, str] = {}
    if (dest / MANIFEST).is_symlink():
        return manifest
    try:
        text = (dest / MANIFEST).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return manifest
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name:
            manifest[name] = digest
    return manifest


def copy_scripts(dest: Path) -> Installed:
    """Bring each reference script in dest (made if missing) to this version's where
    that is safe; see the module's docstring."""
    done = Installed()
    dest.mkdir(parents=True, exist_ok=True)
    found_manifest = _read_manifest(dest)
    manifest = dict(found_manifest)
    # Each file written whole, by a rename, with its mode before it shows (a worker
    # starting the script meanwhile runs the old one or the new one, never a part).
    with Folder.open_root(str(dest)) as folder:
        for source in sorted(packaged_scripts().glob("*.sh")):
            name, data = source.name, source.read_bytes()
            shipped = hashlib.sha256(data).hexdigest()
            target = dest / name
            found = None if target.is_symlink() else _digest(target)
            if found == shipped:
                done.same.append(name)
            elif not target.exists() and not target.is_symlink():
                folder.write_atomic(name, data, mode=0o755)
                done.copied.append(name)
            elif found is not None and manifest.get(name) == found:
                folder.write_atomic(name, data, mode=0o755)
                done.updated.append(name)
            else:
                if _digest(dest / f"{name}.new") != shipped:
                    folder.write_atomic(f"{name}.new", data, mode=0o644)
                done.kept.append(name)
                continue
            manifest[name] = shipped
        if manifest != found_manifest:  # a second run writes nothing
            listed = "".join(f"{digest}  {name}\n" for name, digest in sorted(manifest.items()))
            folder.write_atomic(MANIFEST, listed, mode=0o644)
    return done


def run_scripts_install(dest: str | None, *, dry_run: bool = False) -> Said:
    folder = Path(dest or DEFAULT_DEST)
    names = sorted(path.name for path in packaged_scripts().glob("*.sh"))
    if dry_run:
        return Said(f"would copy {len(names)} reference scripts into {folder}: {', '.join(names)}")
    try:
        done = copy_scripts(folder)
    except (OSError, BadEntry) as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"cannot install the scripts into {folder}: {detail}") from None
    written = len(done.copied) + len(done.updated)
    notes = []
    if done.updated:
        notes.append(f"{len(done.updated)} of them updated from an earlier version")
    if done.same:
        notes.append(f"{len(done.same)} already there, the same")
    lines = [f"{written} reference scripts copied into {folder}"
             + (f" ({'; '.join(notes)})" if notes else "")]  # fmt: skip
    if done.kept:
        lines.append(
            f"left as they were (not as mp wrote them): {', '.join(done.kept)}; this "
            "version of each is beside it, its name ending in .new: compare, and take it by hand"
        )
    return Said("\n".join(lines))
