"""What each remuxed file of an item becomes in the library: its role.

A tv disc's files are episodes by default, in file-name order; a movie's are the movie
(`<title>.mkv`) and its extras. At remux_review a person can change that: reorder the
episodes, make one a double episode or a special, set the disc's first episode number,
keep a file as an extra of a given type, or leave it out. The roles are a decision like
any other (kept in the approval, signed, restored after a database loss); filing turns
them into Plex's names (`targets`), and season numbering counts the episodes they hold.

The text form, shown at the gate and typed with `mp approve --files`, lists every file
by its number in the prompt, in episode order: `2 1 3:double 4:special 5:featurette
6:drop`. A file with no role is an episode.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from media_pipeline.library.destination import bonus_disc, item_folder_name

# Plex's local extras: the role a person types, and the folder beside the movie (or in
# the show's folder) that Plex reads it from.
EXTRA_FOLDERS = {
    "featurette": "Featurettes",
    "behindthescenes": "Behind The Scenes",
    "deleted": "Deleted Scenes",
    "interview": "Interviews",
    "scene": "Scenes",
    "short": "Shorts",
    "trailer": "Trailers",
    "other": "Other",
}
TV_ROLES = ("episode", "double", "special", "drop", *EXTRA_FOLDERS)
MOVIE_ROLES = ("movie", "drop", *EXTRA_FOLDERS)
MAX_NUMBER = 999
_TOKEN = re.compile(r"(\d{1,4})(?::([a-z]+)(?:=(\d{1,4}))?)?", re.ASCII)


class RolesError(ValueError):
    """A role text or a stored roles record that cannot be used; the message says why."""


@dataclass(frozen=True)
class Role:
    file: str
    role: str
    number: int | None = None  # a special's episode number in Season 00

    @property
    def episodes(self) -> int:
        """How many episode numbers of its season the file takes."""
        return {"episode": 1, "double": 2}.get(self.role, 0)


@dataclass(frozen=True)
class Roles:
    files: tuple[Role, ...]
    first_episode: int | None = None  # set by a person; else the season decides

    @property
    def episode_count(self) -> int:
        return sum(role.episodes for role in self.files)

    def as_json(self) -> dict:
        files = [
            {"file": r.file, "role": r.role, **({"number": r.number} if r.number else {})}
            for r in self.files
        ]
        return {"files": files, "first_episode": self.first_episode}

    def text(self, names: list[str]) -> str:
        """The text form, numbering files by their place in names (the prompt's list)."""
        place = {name: index for index, name in enumerate(names, start=1)}
        tokens = []
        for role in self.files:
            token = str(place.get(role.file, "?"))
            if role.role != "episode":
                token += f":{role.role}" + (f"={role.number}" if role.number else "")
            tokens.append(token)
        return " ".join(tokens)


def media_names(names: list[str]) -> list[str]:
    """The files roles are given to: a folder's visible `*.mkv`, in name order (what the
    filing script files and what season numbering counts), whose names filing can pass
    on (unplain_media lists the others)."""
    return sorted(n for n in names if n.endswith(".mkv") and plain_name(n))


def unplain_media(names: list[str]) -> list[str]:
    """Media files whose names filing cannot pass on (a tab or newline in them)."""
    return sorted(
        n for n in names if n.endswith(".mkv") and not n.startswith(".") and not plain_name(n)
    )


def default_roles(item_type: str, title: str, names: list[str], disc_label: str = "") -> Roles:
    """tv: every file an episode, in name order (a bonus disc's: featurettes of the show,
    unless a person says specials at the gate). movie: `<title>.mkv` (else the only
    file, else the first not named 'Extra ...') is the movie, the rest extras in Other/."""
    names = media_names(names)
    if item_type == "tv":
        role = "featurette" if bonus_disc(disc_label) else "episode"
        return Roles(tuple(Role(name, role) for name in names))
    main = f"{title}.mkv"
    if main not in names:
        others = [n for n in names if not n.startswith("Extra ")]
        main = (names if len(names) == 1 else others or [""])[0]
    return Roles(tuple(Role(n, "movie" if n == main else "other") for n in names))


def roles_to_follow(
    approved: Roles | None, item_type: str, title: str, names: list[str], disc_label: str = ""
) -> Roles:
    """The roles filing follows for a folder holding names: those a person set, else the
    defaults for what is there (a transcode script of one's own may name files otherwise
    than the remux did, and an approval nobody changed should not hold on to them)."""
    if approved is not None:
        reviewed = [role.file for role in approved.files]
        if approved != default_roles(item_type, title, reviewed, disc_label):
            return approved
    return default_roles(item_type, title, names, disc_label)


def parse_roles(text: str, item_type: str, names: list[str], first_episode=None) -> Roles:
    """Roles from their text form, for the files names lists (numbered from 1)."""
    allowed = TV_ROLES if item_type == "tv" else MOVIE_ROLES
    chosen: list[Role] = []
    seen: set[int] = set()
    for token in text.replace(",", " ").split():
        match = _TOKEN.fullmatch(token.lower())
        if not match:
            raise RolesError(f"'{token}' is not a file number with a role, like 3 or 3:special")
        place, role, number = int(match[1]), match[2] or _default_role(item_type), match[3]
        if not 1 <= place <= len(names):
            raise RolesError(f"there is no file {place}: the files are 1-{len(names)}")
        if place in seen:
            raise RolesError(f"file {place} is given twice")
        if role not in allowed:
            raise RolesError(
                f"'{role}' is not a role for a {item_type} file; use one of {', '.join(allowed)}"
            )
        if number is not None and role != "special":
            raise RolesError(f"'{token}': only a special takes a number (3:special=2)")
        seen.add(place)
        chosen.append(Role(names[place - 1], role, _number(number)))
    missing = [str(place) for place in range(1, len(names) + 1) if place not in seen]
    if missing:
        which = (
            f"file {missing[0]} has" if len(missing) == 1 else f"files {', '.join(missing)} have"
        )
        raise RolesError(
            f"{which} no place: give every file one "
            f"(e.g. {missing[0]}:drop to leave it out of the library)"
        )
    return checked(Roles(tuple(chosen), _number(first_episode)), item_type)


def _default_role(item_type: str) -> str:
    return "episode" if item_type == "tv" else "movie"


def _number(value) -> int | None:
    if value is None or value == "":
        return None
    number = int(value)
    if not 1 <= number <= MAX_NUMBER:
        raise RolesError(f"{number} is not an episode number (1-{MAX_NUMBER})")
    return number


def checked(roles: Roles, item_type: str) -> Roles:
    """Roles that filing can follow: a movie has exactly one movie file; specials do not
    share a number; a first episode only where there are episodes."""
    if roles.files and all(r.role == "drop" for r in roles.files):
        raise RolesError(
            "every file is left out: to file nothing, reject it ('mp approve ITEM --reject') "
            "or 'mp forget' it"
        )
    if item_type == "movie" and sum(r.role == "movie" for r in roles.files) != 1:
        raise RolesError("a movie's files need exactly one marked movie (like 1:movie)")
    if item_type == "movie" and roles.first_episode is not None:
        raise RolesError("a first episode number is for a tv disc")
    specials = [r.number for r in numbered_specials(roles)]
    if len(set(specials)) != len(specials):
        raise RolesError("two specials have the same number")
    if roles.first_episode is not None and roles.first_episode + roles.episode_count - 1 > (
        MAX_NUMBER
    ):
        raise RolesError(f"the episodes would number past {MAX_NUMBER}")
    return roles


def special_numbers(roles: Roles, taken: frozenset[int] = frozenset()) -> set[int]:
    """The Season 00 numbers a disc's specials take, given those taken before it."""
    return {role.number for role in numbered_specials(roles, taken) if role.number}


def numbered_specials(roles: Roles, taken: frozenset[int] = frozenset()) -> list[Role]:
    """The specials with their numbers: as given, else 1, 2, ... in order on the disc,
    skipping numbers given to others and those taken (a specials disc's own episodes)."""
    given = {r.number for r in roles.files if r.role == "special" and r.number} | taken
    numbered, next_free = [], 1
    for role in roles.files:
        if role.role != "special":
            continue
        number = role.number
        if number is None:
            while next_free in given:
                next_free += 1
            number, next_free = next_free, next_free + 1
        numbered.append(Role(role.file, role.role, number))
    return numbered


def from_json(data, item_type: str) -> Roles:
    """Roles from a stored record (an approval, a decision file): checked like typed ones."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise RolesError("not a roles record")
    allowed = TV_ROLES if item_type == "tv" else MOVIE_ROLES
    files = []
    for entry in data["files"]:
        if not isinstance(entry, dict):
            raise RolesError("a file's role is not an object")
        name, role, number = entry.get("file"), entry.get("role"), entry.get("number")
        if not isinstance(name, str) or not plain_name(name) or role not in allowed:
            raise RolesError("a file's name or role is not one filing can follow")
        if number is not None and (type(number) is not int or role != "special"):
            raise RolesError("only a special has a number")
        files.append(Role(name, role, _number(number)))
    if len({r.file for r in files}) != len(files):
        raise RolesError("a file is given twice")
    first = data.get("first_episode")
    if first is not None and type(first) is not int:
        raise RolesError("the first episode is not a number")
    return checked(Roles(tuple(files), _number(first)), item_type)


def plain_name(name: str) -> bool:
    """A file name filing can pass on a line of its own: no folder, not hidden, no
    control characters (a tab or newline would split the list the script reads)."""
    return (
        bool(name)
        and "/" not in name
        and not name.startswith(".")
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
        and len(name.encode("utf-8", "surrogateescape")) <= 255
    )


def _numbers(
    roles: Roles, season: int, first: int, specials_taken: frozenset[int] = frozenset()
) -> dict[str, str]:
    """file -> its Plex number, 's01e04', 's01e05-e06' or 's00e02', for the files that
    are episodes or specials."""
    numbers: dict[str, str] = {}
    number, used = roles.first_episode or first, set[int]()
    for role in roles.files:
        if role.episodes:
            last = number + role.episodes - 1
            span = f"e{number:02d}" + (f"-e{last:02d}" if last != number else "")
            numbers[role.file] = f"s{season:02d}{span}"
            used.update(range(number, last + 1))
            number = last + 1
    # On a specials disc (season 0) its episodes hold s00 numbers already.
    taken = specials_taken | (frozenset(used) if season == 0 else frozenset())
    for special in numbered_specials(roles, taken):
        numbers[special.file] = f"s00e{special.number:02d}"
    return numbers


def targets(
    roles: Roles,
    item_type: str,
    destination: str,
    season: int = 1,
    first: int = 1,
    specials_taken: frozenset[int] = frozenset(),
) -> list[tuple[str, str]]:
    """(file, where it goes relative to the item's library folder) for every file that is
    filed. The item's folder is the movie's folder (the destination's) or the show's
    (above the destination's season folder); names are Plex's:
    `Show (Year) - s01e04.mkv`, `s01e05-e06` for a double, `Season 00/... - s00e02.mkv`
    for a special (numbered after specials_taken, those of the show's other discs),
    `Featurettes/<file>` for an extra."""
    show = item_folder_name("tv", destination)
    numbers = _numbers(roles, season, first, specials_taken) if item_type == "tv" else {}
    placed: list[tuple[str, str]] = []
    for role in roles.files:
        if role.role == "movie":
            placed.append((role.file, os.path.basename(destination)))
        elif role.role in EXTRA_FOLDERS:
            placed.append((role.file, f"{EXTRA_FOLDERS[role.role]}/{role.file}"))
        elif role.file in numbers:
            number = numbers[role.file]
            placed.append((role.file, f"Season {number[1:3]}/{show} - {number}.mkv"))
    return placed


def labels(roles: Roles, numbering: dict | None) -> dict[str, str]:
    """file -> what it becomes, in a few words, for the prompt: 's01e04' (or 'episode 1
    of the disc' before the season is settled), 'special s00e02', 'featurette', ..."""
    season = numbering["season"] if numbering else None
    numbers = _numbers(roles, season or 0, numbering["first"] if numbering else 1)
    shown, place = {}, 0
    for role in roles.files:
        if role.episodes and season is None:
            span = f"{place + 1}" + (f"-{place + role.episodes}" if role.episodes > 1 else "")
            shown[role.file] = f"episode{'s' * (role.episodes > 1)} {span} of the disc"
        place += role.episodes
        if role.file in shown:
            continue
        if role.file in numbers:
            shown[role.file] = ("special " if role.role == "special" else "") + numbers[role.file]
        elif role.role in EXTRA_FOLDERS:
            shown[role.file] = f"{role.role} (in {EXTRA_FOLDERS[role.role]}/)"
        else:
            shown[role.file] = {"movie": "the movie", "drop": "left out (stays in staging)"}[
                role.role
            ]
    return shown


_NUMBERED = re.compile(r"Season (\d\d)/(.+) - s(\d\d)e\d{2,3}(?:-e\d{2,3})?\.mkv", re.ASCII)


def place_allowed(item_type: str, destination: str, source: str, place: str, season: int) -> bool:
    """Whether a filing job may put source at place (below the item's library folder):
    only the shapes of name `targets` makes. What a worker can check of a list it cannot
    tell from a forgery: a forged one, claimed before reconcile rejects it, can file the
    item's own files under other numbers of its season or as extras, never anywhere
    outside the item's own library folder (and never over a file there)."""
    if any(place == f"{folder}/{source}" for folder in EXTRA_FOLDERS.values()):
        return True
    if item_type == "movie":
        return place == os.path.basename(destination)
    show = item_folder_name("tv", destination)
    match = _NUMBERED.fullmatch(place)
    return bool(
        match and match[1] == match[3] and int(match[1]) in (season, 0) and match[2] == show
    )
