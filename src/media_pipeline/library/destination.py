"""Where an item goes in the library, in Plex's naming. Pure: a person may edit it."""

from __future__ import annotations

import os
import re

from media_pipeline.items.names import ItemKey

_SEASON = re.compile(
    r"(?:^|[^A-Za-z0-9])(?:S|Season[ _.-]?|Series[ _.-]?)(\d{1,2})(?![0-9])", re.IGNORECASE
)
# Plex files specials (and a disc of them) in Season 00.
_SPECIALS = re.compile(r"(?:^|[^A-Za-z])Specials?(?:$|[^A-Za-z])", re.IGNORECASE)
# A bonus disc holds the show's extras (featurettes, interviews), not episodes: Plex wants
# them in the show's folder (Featurettes/), not in Season 00.
_BONUS = re.compile(
    r"(?:^|[^A-Za-z])(?:Bonus|Extras?|Special[ _.-]?Features?)(?:$|[^A-Za-z])", re.IGNORECASE
)
_DISC = re.compile(r"(?:^|[^A-Za-z])(?:Disc|Disk|D)[ _.-]?(\d{1,2})(?![0-9])", re.IGNORECASE)


_YEAR = re.compile(r"\((?:18|19|20)\d\d\)")
_EDITION = re.compile(r"\{edition-[^{}]*\}")
# The library's folder for each item type: where proposed destinations start, and the
# only ones a filing job may file into (library/filing_place.py).
TYPE_LIBRARY_FOLDERS = {"movie": "Movies", "tv": "TV Shows"}
FIRST_YEAR, LAST_YEAR = 1870, 2100  # films before 1870 there are none
MAX_EDITION_BYTES = 48  # with a title of 180 bytes, the name still fits in 255
# Plex reads an edition's name up to 32 characters; a longer one is cut in its listing.
MAX_EDITION_CHARACTERS = 32


def has_year(name: str) -> bool:
    return bool(_YEAR.search(name))


def has_edition(name: str) -> bool:
    return bool(_EDITION.search(name))


def item_folder(item_type: str, destination: str) -> str:
    """The item's folder in the library: the movie's (its file's), or the show's (above
    its season folder). Filing places the item's files below it."""
    if item_type == "movie":
        return os.path.dirname(destination)
    return os.path.dirname(destination.rstrip(os.sep))


def item_folder_name(item_type: str, destination: str) -> str:
    """The folder Plex matches an item by: the movie's, or the show's."""
    return os.path.basename(item_folder(item_type, destination))


def naming_notes(item_type: str, destination: str) -> list[str]:
    """What in a destination keeps Plex from matching it, for the person at the gate."""
    name = item_folder_name(item_type, destination)
    if has_year(name):
        return []
    what = "movie" if item_type == "movie" else "show"
    return [
        f"the title has no year: Plex matches a {what} by 'Title (Year)'; give it at the "
        f"prompt or with --year (e.g. '{name} (1999)'), and the files are named so"
    ]


def check_year(year: str) -> int:
    """A year a person gave; ValueError with the reason when it is none."""
    text = year.strip()
    if not (text.isascii() and text.isdigit() and FIRST_YEAR <= int(text) <= LAST_YEAR):
        raise ValueError(f"'{year}' is not a year ({FIRST_YEAR}-{LAST_YEAR})")
    return int(text)


def check_edition(edition: str) -> str:
    """An edition's name as Plex reads it in '{edition-NAME}'; ValueError when it
    cannot be one (braces, a '/', control characters, or longer than 60)."""
    name = edition.strip()
    too_long = (
        len(name) > MAX_EDITION_CHARACTERS
        or len(name.encode("utf-8", "surrogateescape")) > MAX_EDITION_BYTES
    )
    if not name or too_long or any(c in name for c in "{}/\\") or not name.isprintable():
        raise ValueError(
            f"'{edition}' cannot be an edition's name (up to {MAX_EDITION_CHARACTERS} "
            f"characters, Plex's limit, and {MAX_EDITION_BYTES} bytes; no braces or '/')"
        )
    return name


def with_year_and_edition(
    item_type: str, destination: str, year: int | None, edition: str | None
) -> str:
    """The destination with a year added to the item's folder (and a movie's file) where
    it has none, and for a movie an edition: 'Movies/Heat (1995) {edition-Director's
    Cut}/Heat (1995) {edition-Director's Cut}.mkv' (Plex's naming)."""
    name = item_folder_name(item_type, destination)
    renamed = name
    if year is not None and not has_year(name):
        base, marker, rest = name.partition(" {edition-")
        # "Doctor Who 2005" from a label, given 2005: the bare year becomes Plex's.
        base = base.removesuffix(f" {year}") if base != str(year) else base
        renamed = f"{base} ({year})" + (marker + rest if marker else "")
    if edition is not None and item_type == "movie" and not has_edition(renamed):
        renamed = f"{renamed} {{edition-{edition}}}"
    if renamed == name:
        return destination
    if item_type == "movie":
        library = os.path.dirname(os.path.dirname(destination))
        file_name = os.path.basename(destination)
        if file_name == f"{name}.mkv":
            file_name = f"{renamed}.mkv"
        return os.path.join(library, renamed, file_name)
    season = os.path.basename(destination.rstrip(os.sep))
    shows = os.path.dirname(os.path.dirname(destination.rstrip(os.sep)))
    return os.path.join(shows, renamed, season) + os.sep


def bonus_disc(disc_label: str) -> bool:
    """A disc of the show's extras: 'S01 Disc3 Bonus', 'Special Features D2', 'Extras'."""
    return bool(_BONUS.search(disc_label))


def season_number(disc_label: str) -> int | None:
    """The season a disc label names: 'S02 Disc1', 'Season 3 Disc 2', 'Series 3 Disc 1';
    0 for 'Specials Disc1' (a bonus disc's is the season it names). None when it names
    none."""
    if _SPECIALS.search(disc_label) and not bonus_disc(disc_label):
        return 0
    match = _SEASON.search(disc_label)
    return int(match.group(1)) if match else None


_SEASON_WORD = re.compile(r"season|series", re.IGNORECASE)


def season_unreadable(disc_label: str) -> bool:
    """A label that speaks of a season but names none mp can read ('Season 2019')."""
    return bool(_SEASON_WORD.search(disc_label)) and season_number(disc_label) is None


def disc_season(disc_label: str) -> int:
    """The season a disc goes to: what its label names, else 1."""
    season = season_number(disc_label)
    return 1 if season is None else season


def disc_number(disc_label: str) -> int:
    """The disc's place in its season: 'S01 Disc2' is 2, 'Lost D3' is 3; 1 if unsaid."""
    match = _DISC.search(disc_label)
    return int(match.group(1)) if match else 1


# What SMB shares and Windows clients refuse in a name, and what the library gets
# instead (as the *arr apps do): "Star Wars: Episode IV" -> "Star Wars - Episode IV",
# "What If...?" -> "What If...", "Face/Off" -> "Face-Off".
_SMB_REPLACED = (
    (re.compile(r"\s*:\s+"), " - "),
    (re.compile(r"[:/\\|*]"), "-"),
    (re.compile(r'"'), "'"),
    (re.compile(r"[?<>]"), ""),
    (re.compile(r"[\x00-\x1f]"), ""),
    (re.compile(r"  +"), " "),
)
_RESERVED = re.compile(r"^(?:CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(?:\..*)?$", re.IGNORECASE)
LIBRARY_NAMES = ("smb", "as-is")


def library_name(title: str, rule: str = "smb") -> str:
    """A title as the library names it: with the 'smb' rule (the default), without what
    an SMB share or a Windows client refuses (: ? * " < > | \\ /, a trailing dot or
    space, a reserved name such as CON or NUL); 'as-is' keeps it (a '/' becomes '-'
    whatever the rule: it cannot be in a name)."""
    if rule != "smb":
        return title.replace("/", "-")
    name = title
    for pattern, replacement in _SMB_REPLACED:
        name = pattern.sub(replacement, name)
    name = name.strip().rstrip(". ").strip()
    if _RESERVED.match(name):
        name = f"{name}_"
    return name or "Untitled"


def proposed_destination(key: ItemKey, library_root: str, names: str = "smb") -> str:
    """`Movies/<Title>/<Title>.mkv`, or `TV Shows/<Show>/Season NN/` (Season 01 when the
    disc label does not say, Season 00 for specials), the title as library_name makes it
    by the config's `library_names` rule. A TV disc's files are named in that folder by
    its filing job: `<Show> - sNNeMM.mkv`, numbered across the season's discs
    (library/seasons.py)."""
    title = library_name(key.title, names)
    if key.type == "movie":
        return os.path.join(library_root, TYPE_LIBRARY_FOLDERS["movie"], title, f"{title}.mkv")
    season = disc_season(key.disc_label)
    shows = TYPE_LIBRARY_FOLDERS["tv"]
    return os.path.join(library_root, shows, title, f"Season {season:02d}") + os.sep
