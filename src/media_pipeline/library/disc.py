"""A disc in the drive: what udev says of it, and the item its label suggests.

Disc labels are written for a disc's author, not for Plex: upper case, underscores, a
format word or two (THE_MATRIX, SEINFELD_S3_D2, LOTR_FOTR_WS). The guess here is a
start that a person confirms at the first gate (`mp rename` fixes it), so it errs on
the plain side: a title in title case, a tv disc only where the label names a season.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from media_pipeline.config.hosts import HOST_NAME
from media_pipeline.errors import UsageError
from media_pipeline.items.names import printable
from media_pipeline.pipeline import DISC_STAGE

DEVICE = re.compile(r"/dev/sr[0-9]{1,3}")  # whole strings only: DEVICE.fullmatch
UDEVADM_SECONDS = 10

# Words a label carries about the disc, not the film.
FORMAT_WORDS = frozenset(
    {"DVD", "DVD5", "DVD9", "DVDROM", "BD", "BD25", "BD50", "BDROM", "BLURAY", "UHD", "4K",
     "HD", "WS", "FS", "WIDESCREEN", "FULLSCREEN", "NTSC", "PAL", "R1", "R2", "R3", "R4",
     "SE", "CE"}
)  # fmt: skip
# Labels that name no title at all (authoring tools' defaults).
NAMELESS = frozenset(
    {"DVD_VIDEO", "DVDVIDEO", "VIDEO_TS", "DVDVOLUME", "VOLUME", "DISC", "DISC1", "BDROM",
     "BLURAY", "BD_ROM", "LOGICAL_VOLUME_ID", "NO_NAME", "UNTITLED", "CDROM"}
)  # fmt: skip
SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor", "of",
     "on", "or", "the", "to", "vs", "with"}
)  # fmt: skip
ROMAN = re.compile(r"^(?=[IVXLC])M*(C[MD]|D?C{0,3})(X[CL]|L?X{0,3})(I[XV]|V?I{0,3})$")
# The words for a season on labels: English (SEASON, SERIES in Britain), and the French,
# German, Spanish and Italian ones (SAISON, STAFFEL, TEMPORADA, STAGIONE), SERIE too.
SEASON_WORDS = ("SEASON", "SERIES", "SERIE", "SAISON", "STAFFEL", "TEMPORADA", "STAGIONE")
# S3, S03, SEASON3, SERIES3 (a season); D2, DISC2, DVD2 (a disc); or both in one word, S3D2.
SEASON = re.compile(
    rf"^(?:S|{'|'.join(SEASON_WORDS)})0*([0-9]{{1,2}})(?:D(?:ISC)?0*([0-9]{{1,2}}))?$"
)
DISC = re.compile(r"^(?:D|DISC|DISK|DVD)0*([0-9]{1,2})$")


@dataclass(frozen=True)
class Disc:
    device: str
    label: str
    media: str  # "bd", "dvd" or "cd"
    uuid: str = ""


class Drive(NamedTuple):
    """Where a disc is: the host (its short name) and the optical drive in it. A rip a
    disc started runs there, whichever rippers there are: /dev/sr0 names a drive on
    every one of them."""

    host: str
    device: str

    def __str__(self) -> str:
        return f"{self.host}:{self.device}" if self.host else self.device

    @classmethod
    def of_spec(cls, spec: dict, kind: str) -> Drive | None:
        """The drive a job's spec (untrusted) names, or None where it names none; a
        ValueError saying which field is wrong where it names one as no job may: only a
        rip names a drive, a whole /dev/srN, and maybe the host name beside it (a forged
        spec must not hand a script /dev/sda)."""
        if "device" not in spec and "host" not in spec:
            return None
        device, host = spec.get("device", ""), spec.get("host", "")
        if "device" in spec and (
            kind != DISC_STAGE.kind or not isinstance(device, str) or not DEVICE.fullmatch(device)
        ):
            raise ValueError("field 'device' is not an optical drive (/dev/srN) of a rip job")
        if "host" in spec and not (device and isinstance(host, str) and HOST_NAME.fullmatch(host)):
            raise ValueError("field 'host' is not a host name beside a rip's 'device'")
        return cls(host, device)

    @classmethod
    def named_in(cls, spec: dict, kind: str = DISC_STAGE.kind) -> Drive | None:
        """The drive a spec names, if it names one as a job may. Anything else pins
        nothing (a worker then claims the job, and parse_spec refuses it)."""
        try:
            return cls.of_spec(spec, kind)
        except ValueError:
            return None

    @classmethod
    def parse(cls, text: str | None) -> Drive | None:
        """The drive str() wrote, or None for anything else."""
        host, _colon, device = (text or "").rpartition(":")
        if not DEVICE.fullmatch(device) or (host and not HOST_NAME.fullmatch(host)):
            return None
        return cls(host, device)


@dataclass(frozen=True)
class Guess:
    type: str  # "movie" or "tv"
    title: str
    disc_label: str = ""


def read_disc(device: str) -> Disc:
    """What udev knows of the disc in device, asked of `udevadm info` (the service that
    udev starts has none of the event's properties in its environment)."""
    if not DEVICE.fullmatch(device):
        raise UsageError(f"--device {printable(device)} is not an optical drive (/dev/srN)")
    import subprocess  # here: a claim loads this module for Drive, and runs no program

    try:
        done = subprocess.run(
            ["udevadm", "info", "--query=property", f"--name={device}"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=UDEVADM_SECONDS,
        )
    except FileNotFoundError:
        raise UsageError("udevadm is not installed; it says what disc is in the drive") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"udevadm did not answer about {device} in {UDEVADM_SECONDS} s") from None
    if done.returncode != 0:
        raise UsageError(f"udevadm knows no device {device}: {done.stderr.strip()[:200]}")
    properties = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    return disc_from(device, properties)


def disc_from(device: str, properties: dict[str, str]) -> Disc:
    if properties.get("ID_CDROM_MEDIA") != "1":
        raise UsageError(f"no disc in {device}")
    if properties.get("ID_CDROM_MEDIA_BD") == "1":
        media = "bd"
    elif properties.get("ID_CDROM_MEDIA_DVD") == "1":
        media = "dvd"
    else:
        raise UsageError(f"the disc in {device} is neither a DVD nor a Blu-ray; nothing to rip")
    label = properties.get("ID_FS_LABEL_ENC") or properties.get("ID_FS_LABEL", "")
    return Disc(device, _unescape(label), media, properties.get("ID_FS_UUID", ""))


def _unescape(label: str) -> str:
    """udev's ID_FS_LABEL_ENC writes unsafe characters as \\x20 and the like."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), label)


def guess(label: str, *, uuid: str = "", now: datetime | None = None) -> Guess:
    """The item a disc label suggests: THE_MATRIX -> movie 'The Matrix', SEINFELD_S3_D2
    -> tv 'Seinfeld', 'S03 Disc2'. A label that names nothing gets a title that says so
    (the disc's id, or the time), for a person to rename at the gate."""
    # What cannot be in a folder name (a slash, control characters) separates words.
    label = "".join(ch if ch.isprintable() and ch != "/" else " " for ch in label)
    words = [w for w in re.split(r"[\s_.\-]+", label.upper().replace("BLU_RAY", "BLURAY")) if w]
    if "_".join(words) in NAMELESS:
        words = []
    title: list[str] = []
    season = disc = None
    position = 0
    while position < len(words):
        word = words[position]
        following = words[position + 1] if position + 1 < len(words) else ""
        position += 1
        if not title:  # the first word is always the title's, even S7 or 1917
            title.append(word)
        elif (
            word in (*SEASON_WORDS, "DISC", "DISK") and following.isdigit() and len(following) <= 2
        ):
            if word in SEASON_WORDS:
                season = int(following)
            else:
                disc = int(following)
            position += 1
        elif found := SEASON.match(word):
            season, disc = int(found[1]), int(found[2]) if found[2] else disc
        elif found := DISC.match(word):
            disc = int(found[1])
        elif word in FORMAT_WORDS:
            continue
        elif season is None and disc is None:
            title.append(word)  # words after the season or disc are the disc's, not the title's
    title = _fitting(title)
    if not title:
        return Guess("movie", _nameless(uuid, now))
    # No year: a number at a label's end is as often the title's (BLADE_RUNNER_2049);
    # the person adds the year at filebot_confirm (--year).
    name = _title_case(title)
    if season is not None:
        return Guess("tv", name, f"S{season:02d} Disc{disc or 1}")
    return Guess("movie", name)


def _fitting(words: list[str], most: int = 120) -> list[str]:
    """The first words, up to most bytes of UTF-8 (a title may have 180): a label is at
    most 32 characters on a real disc (ISO 9660, UDF), so anything longer is not a title
    worth keeping whole. One long word (a label in a script without spaces) is cut."""
    kept: list[str] = []
    for word in words:
        if len(" ".join([*kept, word]).encode()) > most:
            if not kept:
                kept.append(word.encode()[:most].decode("utf-8", "ignore"))
            break
        kept.append(word)
    return kept


def _title_case(words: list[str]) -> str:
    cased = []
    for position, word in enumerate(words):
        lower = word.lower()
        if ROMAN.match(word) and len(word) > 1:
            cased.append(word)
        elif 0 < position < len(words) - 1 and lower in SMALL_WORDS:
            cased.append(lower)
        else:
            cased.append(lower[:1].upper() + lower[1:])
    return " ".join(cased)


def _nameless(uuid: str, now: datetime | None) -> str:
    if re.fullmatch(r"[0-9A-Za-z-]{4,64}", uuid or ""):
        return f"Unlabelled disc {uuid[:16]}"
    return f"Unlabelled disc {(now or datetime.now()).strftime('%Y-%m-%d %H%M')}"


EJECT_SECONDS = 60


def eject(device: str) -> str | None:
    """Open the tray of device; what went wrong, in a few words, or None once it opened.
    util-linux's eject, not an ioctl of our own: it knows the ways drives want asking (a
    USB Blu-ray drive may need SCSI commands where the CD-ROM ioctl fails)."""
    if not DEVICE.fullmatch(device):
        return f"{printable(device)} is not an optical drive (/dev/srN)"
    import subprocess

    try:
        done = subprocess.run(
            ["eject", device],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=EJECT_SECONDS,
        )
    except FileNotFoundError:
        return "eject is not installed (the package is eject, or util-linux)"
    except OSError as error:  # not executable, not a program, no process to spare
        return f"eject could not start ({error.strerror or error})"
    except subprocess.TimeoutExpired:
        return f"eject did not finish in {EJECT_SECONDS} s"
    if done.returncode != 0:
        said = printable(done.stderr.strip()[:200]) or "nothing said"
        return f"eject exited with {done.returncode} ({said})"
    return None
