"""A job's id, made and taken apart: `job_p<rank>_<made>_<kind>_<type>_<uid>[_<words>]`.

The one writer and the one parser of job ids. It imports nothing, so the idle shortcut
(idle/quick.py) reads the names in pending/ with it before anything else is loaded; the
queue (jobs/queue.py, `JobName`) takes the same parts and checks each of them. No part
holds the separator: kinds and item types are single words, the uid is hex, and the words
of the title keep only letters, digits and dashes.
"""

SEPARATOR = "_"
PREFIX = "job"


def make_job_id_text(
    rank: int, made: str, kind: str, item_type: str, uid: str, words: str = ""
) -> str:
    """The id of those parts; the words of a title are left out when there are none."""
    parts = [PREFIX, f"p{rank:03d}", made, kind, item_type, uid]
    return SEPARATOR.join([*parts, words] if words else parts)


def job_id_parts(name: str) -> tuple[str, str, str, str, str, str | None] | None:
    """(rank, made, kind, item type, item uid, words or None) of a name shaped as a job
    id, none of them checked; None when the name has not that shape. Of a running job's
    folder name (`ID.WORKER.PID.tCLAIMED`) the parts are its id's, the last of them
    running on into the rest of the name."""
    parts = name.split(SEPARATOR, 6)
    if len(parts) < 6 or parts[0] != PREFIX or parts[1][:1] != "p":
        return None
    return (
        parts[1][1:],
        parts[2],
        parts[3],
        parts[4],
        parts[5],
        parts[6] if len(parts) == 7 else None,
    )


def job_kind(name: str) -> str | None:
    """The kind a job's id (or a running job's folder name) says, unchecked."""
    parts = job_id_parts(name)
    return None if parts is None else parts[2]
