"""Find the item a person means by ITEM: an id, a uid or its prefix, or type/title[/disc]."""

from __future__ import annotations

from sqlite_utils import Database

from media_pipeline.errors import UsageError
from media_pipeline.items.names import ItemKey, normal_name, printable

UID_LENGTH = 12  # ItemKey.uid


def find_item(db: Database, text: str) -> dict:
    """The media_items row ITEM names; UsageError (exit 2) if none or several do."""
    # Titles may begin or end with spaces: only the id and uid forms are trimmed.
    if not text.strip():
        raise UsageError("ITEM is empty; give an id, a uid or type/title[/disc label]")
    if "/" in text:
        item_type, _, rest = text.partition("/")
        title, _, disc_label = rest.partition("/")
        if item_type not in ("movie", "tv"):
            raise UsageError(
                f"item '{printable(text)}' must start with movie/ or tv/ (type/title/disc label)"
            )
        # Typed in either Unicode form (a Mac's terminal sends é as e and an accent).
        key = ItemKey(item_type, normal_name(title), normal_name(disc_label))
        rows = list(db.query("SELECT * FROM media_items WHERE uid = ?", [key.uid]))
    else:
        text = text.strip()
        # A number is an id, never a uid prefix: `mp retry 7` once retried the item whose
        # uid began with 7 because no item had id 7. Only a whole uid may be all digits.
        if text.isascii() and text.isdigit() and len(text) < UID_LENGTH:
            rows = list(db.query("SELECT * FROM media_items WHERE id = ?", [int(text)]))
            if not rows:
                raise UsageError(
                    f"no item has id {text} (see 'mp status'); a uid prefix made only of "
                    "digits is taken as an id, so give the whole uid"
                )
            return rows[0]
        rows = []
        # A uid is hex; anything else is no uid (and cannot smuggle LIKE's wildcards in).
        if all(ch in "0123456789abcdef" for ch in text.lower()):
            pattern = text.lower() + "%"
            rows = list(db.query("SELECT * FROM media_items WHERE uid LIKE ?", [pattern]))
    if not rows:
        raise UsageError(f"no item matches '{printable(text)}' (see 'mp status')")
    if len(rows) > 1:
        names = ", ".join(f"{row['uid']} ({printable(row['title'])})" for row in rows[:5])
        raise UsageError(f"'{printable(text)}' matches {len(rows)} items: {names}; be more exact")
    return rows[0]
