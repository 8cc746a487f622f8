"""What names an item: its key (type, title, disc label), its uid, and its stage folders."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass

# item type -> the folder that holds that type inside each stage.
TYPE_FOLDERS = {"movie": "movies", "tv": "tv"}
FOLDER_TYPES = {folder: item_type for item_type, folder in TYPE_FOLDERS.items()}


@dataclass(frozen=True, order=True, slots=True)
class ItemKey:
    """(type, title, disc_label): the same key names the item's folder in every stage."""

    type: str
    title: str
    disc_label: str = ""

    @classmethod
    def of(cls, row) -> ItemKey:
        """The key of a media_items row (or any mapping with those three fields)."""
        return cls(row["type"], row["title"], row["disc_label"])

    @property
    def uid(self) -> str:
        """Derived from the key alone, so it survives losing the database."""
        import hashlib  # not needed by a claim that finds nothing to do

        raw = "\0".join((self.type, self.title, self.disc_label)).encode("utf-8")
        return hashlib.sha256(raw).hexdigest()[:12]

    @property
    def name(self) -> str:
        """The `type/title[/disc_label]` form that `mp` accepts as ITEM."""
        parts = [self.type, self.title] + ([self.disc_label] if self.disc_label else [])
        return "/".join(parts)

    def folder(self, staging_root: str, stage: str) -> str:
        parts = [staging_root, stage, TYPE_FOLDERS[self.type], self.title]
        if self.disc_label:
            parts.append(self.disc_label)
        return os.path.join(*parts)


def normal_name(text: str) -> str:
    """A title or disc label in its one Unicode form, NFC. 'Amélie' typed on one host
    and copied from a Mac on another are the same letters in two forms (é, or e and a
    combining accent): told apart, they were two items with one name at the gate. The
    key, and so the uid, is of this form; a folder's name in another form is renamed to
    it when the item is taken in (reconcile/scan.py)."""
    return unicodedata.normalize("NFC", text)


def taken_for_an_option(name: str) -> bool:
    """Whether a title or disc label begins with '-': a script given it as an argument
    ("{title}") would read it as an option ('-rf', '--delete'), so mp makes no item of
    such a name and no worker runs a job for one."""
    return name.startswith("-")


OPTION_LIKE = "begins with '-', which a script given it would take for an option"


def printable(text: str) -> str:
    """Text safe to show on one terminal line: control characters (a newline in a folder
    name, an escape sequence) are shown escaped instead of acting on the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def page_anchor(uid: str) -> str:
    """The id of an item's own section on the status page (its uid is hex: safe in an
    id and a URL), which notifications about it link to."""
    return f"item-{uid[:12]}"
