"""The folders a job's script may write: its item's own, and the few a program needs.

The units let a claim write the whole share and the whole library (ReadWritePaths=),
which is what a worker needs but more than one job's script does: a share writer who
swaps a folder of the item for a link while the script runs (to another item, into the
library, out of the roots) would have the script write there. So the worker opens the
item's own folders now, each step checked for links, and the guard restricts the script
to writing below those very folders (worker/landlock.py): a name swapped afterwards leads
nowhere writable. The same holds for a claim run by hand, as root or not.

An item's own folders: the job's input folder and output folder in staging; for a
filing job, the item's folder in the library (the movie's folder, or the show's, where
its seasons and extras go). Beside them: /tmp, /var/tmp and /dev/shm, the devices
/dev/null and /dev/zero (each node, not /dev), a rip's drives and
~/.MakeMKV, and the config's script_writable_paths for what the owner's own scripts
need.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

from media_pipeline.config.settings import Config
from media_pipeline.jobs.spec import JobSpec
from media_pipeline.share.files import BadEntry, open_below, relative_parts

# Where any program may keep temporary files (under the units, the unit's own /tmp).
TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
# Devices a script writes by name: each node itself, never the rest of /dev (a link
# planted in the item's folder could lead to a disk there).
DEVICES = ("/dev/null", "/dev/zero")
# A rip's drives and the generic SCSI nodes makemkvcon talks to them through: the
# devices the claim unit lets it open (DeviceAllow=).
RIP_DEVICES = ("/dev/sr[0-9]*", "/dev/sg[0-9]*")


def library_folder(spec: JobSpec) -> str:
    """The item's folder in the library that a filing job files below: the movie's
    folder (its destination is the movie's file), or the show's (its destination is a
    season folder; specials and extras go beside it)."""
    return os.path.dirname(os.path.dirname(spec.destination.rstrip(os.sep) + os.sep))


def item_folders(config: Config, spec: JobSpec) -> list[tuple[str, str]]:
    """(root, folder) of each of the item's own folders the job may write, the ones it
    makes first."""
    folders = []
    if spec.stage.writes and spec.output_dir:
        folders.append((config.staging_root, spec.output_dir))
    if spec.stage.into_library and spec.destination:
        folders.append((config.library_root, library_folder(spec)))
    if spec.input_dir:
        folders.append((config.staging_root, spec.input_dir))
    return folders


def _remove_if_empty(root: str, folder: str) -> None:
    """Remove folder if it is still an empty folder (rmdir removes nothing else)."""
    with (
        contextlib.suppress(OSError, BadEntry),
        open_below(root, os.path.dirname(folder)) as parent,
    ):
        os.rmdir(os.path.basename(folder), dir_fd=parent.fd)


def writable_folders(config: Config, spec: JobSpec, stack: contextlib.ExitStack) -> list[int]:
    """Descriptors of every folder the job's script may write below, open until stack
    closes. The item's own folders are opened step by step below their root with no
    link followed, the output folders made where missing (and removed again after the
    script if it left them empty). Raises BadEntry for a link on the way, OSError for
    what cannot be made."""
    descriptors = []
    for root, folder in item_folders(config, spec):
        if relative_parts(root, folder) is None:
            continue  # checked with the spec; never a folder outside the roots
        create = folder != spec.input_dir and not os.path.lexists(folder)
        try:
            opened = stack.enter_context(open_below(root, folder, create=create))
        except FileNotFoundError:
            continue  # no input folder: the script says what it misses
        if create:
            # Made for the rule only: a script that wrote nothing leaves no folder, as
            # before (a rip that left none is retried differently from one that did).
            stack.callback(_remove_if_empty, root, folder)
        descriptors.append(opened.fd)
    others = [*TEMPORARY_FOLDERS, *DEVICES, *config.script_writable_paths]
    if spec.stage.from_disc:
        others.append(str(Path.home() / ".MakeMKV"))
        others.extend(sorted(path for pattern in RIP_DEVICES for path in glob.glob(pattern)))
    for path in others:
        try:
            descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # not on this host: nothing to write there
        stack.callback(os.close, descriptor)
        descriptors.append(descriptor)
    return descriptors
