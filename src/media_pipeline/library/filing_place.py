"""Where a filing job may file an item: its own place in the library, by its shape.

A forged filing spec once named `<library>/Movies/x.b/authorized_keys`: inside
library_root with no link on the way, so the worker ran it, and the filing script made
its temporary name from the text after the path's last dot ('b/authorized_keys'), which
went through a link planted in the library to a file outside the roots. A worker cannot
tell a forged destination from one a person approved (a person may give another title or
year at filebot_confirm), but every real one has the same shape: the movie's file in its
own folder of the library's Movies folder, or the disc's season folder in its show's
folder. The worker refuses any other before the script starts; the gate and dispatch
hold a destination to the same rule, so a person hears of it at the gate. Where each
file goes below that place (extras folders, Season 00 for specials) is file_roles'
place_allowed.
"""

from __future__ import annotations

import os

from media_pipeline.items.names import ItemKey, printable
from media_pipeline.library.destination import TYPE_LIBRARY_FOLDERS, disc_season
from media_pipeline.share.files import link_in_path, relative_parts


def _one_name(text: str) -> bool:
    """One visible name, as an item's folder may have (its title): no '/', not hidden.
    (A name too long for the filesystem is dispatch's to explain: library/filing.py.)"""
    return bool(text) and "/" not in text and not text.startswith(".")


def place_problem(library_root: str, key: ItemKey, destination: str) -> str | None:
    """Why destination is not a place the filing job of key's item may file it, or None
    when it is: `<library_root>/Movies/<Folder>/<Name>.mkv` for a movie and
    `<library_root>/TV Shows/<Show>/Season NN/` for a tv disc, NN the season its label
    names (disc_season: 00 for a specials disc). Folder, Name and Show are any visible
    names, the title a person chose. Read as '<destination> <problem>'."""
    if "\0" in destination or not os.path.isabs(destination):
        return "is not inside library_root"
    parts = relative_parts(library_root, destination)
    if not parts:
        return "is not inside library_root"
    top = TYPE_LIBRARY_FOLDERS[key.type]
    if key.type == "movie":
        if (
            len(parts) != 3
            or parts[0] != top
            or not all(_one_name(part) for part in parts[1:])
            or not parts[2].endswith(".mkv")
            or destination.endswith(os.sep)
        ):
            return f"is not a movie's file in its own folder, '{top}/<Title (Year)>/<name>.mkv'"
        return None
    if len(parts) != 3 or parts[0] != top or not _one_name(parts[1]):
        return f"is not a show's season folder, '{top}/<Show (Year)>/Season NN/'"
    season = f"Season {disc_season(key.disc_label):02d}"
    if parts[2] != season:
        return f"is not its disc's season folder, '{season}' by the disc's label"
    return None


def link_problem(library_root: str, destination: str) -> str | None:
    """Why a filing job could not file at destination as the library stands now, or
    None: a step on its way is a link (or a file), which its worker refuses before the
    script starts (jobs/spec.py, by the same link_in_path), and the item would end
    FAILED. The gate and dispatch ask this first, so a person hears of it at the gate
    and can make the folder real, or give another destination. Reads the library."""
    link = link_in_path(library_root, destination)
    if link is None:
        return None
    shown = printable(link)
    return f"goes through {shown}, which is a link or not a folder (no filing job runs through one)"
