"""`mp scripts install`: the reference scripts, shipped inside the package, copied where
a config points at them (`/opt/media/scripts` in `mp config example`).

They travel in the wheel as package data, so an installation from a wheel has them as
a clone does. An existing file is never overwritten: one that differs is left as it is
and named (it may be the owner's own version of the script).
"""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import media_pipeline
from media_pipeline.errors import UsageError

DEFAULT_DEST = "/opt/media/scripts"


def packaged_scripts() -> Path:
    """The folder of reference scripts inside the installed package."""
    folder = Path(media_pipeline.__file__).resolve().parent / "scripts"
    if not (folder / "rip-disc.sh").exists():
        raise UsageError(f"the reference scripts are not at {folder}: reinstall media-pipeline")
    return folder


def copy_scripts(dest: Path) -> tuple[list[str], list[str], list[str]]:
    """Copy each reference script into dest (made if missing), executable. Returns the
    names (copied, already the same, different and left as they were)."""
    copied: list[str] = []
    same: list[str] = []
    different: list[str] = []
    dest.mkdir(parents=True, exist_ok=True)
    for source in sorted(packaged_scripts().glob("*.sh")):
        target = dest / source.name
        if target.is_symlink() or target.exists():
            same_file = target.is_file() and not target.is_symlink()
            (
                same if same_file and filecmp.cmp(source, target, shallow=False) else different
            ).append(source.name)
            continue
        partial = dest / f".{source.name}.part"
        shutil.copyfile(source, partial)
        os.chmod(partial, 0o755)
        try:
            os.link(partial, target)  # never replaces a file that appeared meanwhile
        except FileExistsError:
            different.append(source.name)
        else:
            copied.append(source.name)
        finally:
            partial.unlink()
    return copied, same, different


def run_scripts_install(dest: str | None, *, dry_run: bool = False) -> str:
    folder = Path(dest or DEFAULT_DEST)
    names = sorted(path.name for path in packaged_scripts().glob("*.sh"))
    if dry_run:
        return f"would copy {len(names)} reference scripts into {folder}: {', '.join(names)}"
    try:
        copied, same, different = copy_scripts(folder)
    except OSError as error:
        raise UsageError(f"cannot install the scripts into {folder}: {error.strerror}") from None
    lines = [f"{len(copied)} reference scripts copied into {folder}" + (
        f" ({len(same)} already there, the same)" if same else ""
    )]  # fmt: skip
    if different:
        lines.append(
            f"left as they were (they differ from this version's): {', '.join(different)}; "
            f"compare with {packaged_scripts()}"
        )
    return "\n".join(lines)
