"""Every kind of event a person is told of, one function each (KINDS lists the kinds),
so what `mp notify test` sends is what the pipeline sends; and where each one leads.

Each event has a key, unique to it, by which it is recorded and sent once (send.py).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from media_pipeline.items.names import page_anchor
from media_pipeline.pipeline import ENCODE_STAGE, REVIEW_GATE
from media_pipeline.text import utc_now

if TYPE_CHECKING:
    from media_pipeline.config.settings import NotifySettings


@dataclass(frozen=True)
class Event:
    key: str  # unique per event: approval:<uid>:<gate>:<requested_at>, job_failed:<job>
    kind: str  # one of KINDS
    title: str
    message: str
    item: str
    high_priority: bool = False
    # The one item it is about, if one: its Click opens that item's own section.
    uid: str = ""


# Each kind, what it is called where a person reads it, and the section of the status
# page its notification opens (ntfy's Click): the page's own anchors (reports/page.py).
APPROVAL_OPENED = "approval_opened"
JOB_FAILED = "job_failed"
IN_LIBRARY = "in_library"
RECONCILE_FAILING = "reconcile_failing"
KINDS = {
    APPROVAL_OPENED: ("gate waiting", "approvals"),
    JOB_FAILED: ("failure", "failures"),
    IN_LIBRARY: ("in library", "items"),
    RECONCILE_FAILING: ("reconcile failing", ""),
}
HIGH_PRIORITY = {JOB_FAILED, RECONCILE_FAILING}


def approval_event(uid: str, gate: str, requested_at: str, name: str) -> Event:
    return Event(
        key=f"{APPROVAL_OPENED}:{uid}:{gate}:{requested_at}",
        kind=APPROVAL_OPENED,
        title=f"Approval needed: {name}",
        message=f"{name} waits for {gate.replace('_', ' ')}. Run 'mp approve' on the controller.",
        item=name,
        uid=uid,
    )


def approvals_event(opened: list[tuple[str, str, str, str]]) -> Event:
    """One event for many approvals: (uid, gate, requested_at, name) each."""
    names = ", ".join(name for *_rest, name in opened[:3])
    return Event(
        key=f"{APPROVAL_OPENED}:{len(opened)}:{opened[0][0]}:{opened[0][2]}",
        kind=APPROVAL_OPENED,
        title=f"{len(opened)} approvals needed",
        message=f"{len(opened)} items wait for a person ({names}, ...). "
        "Run 'mp approve' on the controller.",
        item=names,
    )


def job_failed_event(job_id: str, name: str, reason: str, uid: str = "") -> Event:
    """reason: the item's, which ends with what the script said last ("(it said: ...)")."""
    return Event(
        key=f"{JOB_FAILED}:{job_id}",
        kind=JOB_FAILED,
        title=f"Failed: {name}",
        item=name,
        uid=uid,
        high_priority=True,
        message=f"{name}: {reason}. 'mp why' explains, 'mp retry' retries.",
    )


def failures_event(failed: list[Event]) -> Event:
    """One event for many jobs that failed for good in one run (a disc image gone bad
    under a whole season, a script broken for all)."""
    names = ", ".join(event.item for event in failed[:3])
    return Event(
        key=f"{JOB_FAILED}:{len(failed)}:{failed[0].key.split(':', 1)[1]}",
        kind=JOB_FAILED,
        title=f"{len(failed)} items failed",
        message=f"{len(failed)} items failed for good ({names}, ...). 'mp status' lists them, "
        "'mp why ITEM' says why.",
        item=names,
        high_priority=True,
    )


def in_library_event(uid: str, name: str, at: str) -> Event:
    return Event(
        key=f"{IN_LIBRARY}:{uid}:{at}",
        kind=IN_LIBRARY,
        title=f"In the library: {name}",
        message=f"{name} is in the library.",
        item=name,
        uid=uid,
    )


def in_library_many_event(reached: list[tuple[str, str]], at: str) -> Event:
    """One event for many items filed in one run: (uid, name) each."""
    names = ", ".join(name for _uid, name in reached[:3])
    return Event(
        key=f"{IN_LIBRARY}:{len(reached)}:{reached[0][0]}:{at}",
        kind=IN_LIBRARY,
        title=f"{len(reached)} items in the library",
        message=f"{len(reached)} items reached the library ({names}, ...).",
        item=names,
    )


def reconcile_failing_event(failures: int, since: str, error: str) -> Event:
    return Event(
        key=f"{RECONCILE_FAILING}:{since}",
        kind=RECONCILE_FAILING,
        title="Reconcile keeps failing",
        message=f"mp reconcile failed {failures} runs in a row (since {since}); the last "
        f"said: {error}. Nothing moves on until it runs again; see "
        "'journalctl -u mp-reconcile' on the controller.",
        item="",
        high_priority=True,
    )


def click_url(settings: NotifySettings, event: Event) -> str | None:
    """The status page, at the section the event is about (its item's own, for one
    item), for ntfy's Click header (one line of ASCII: anything else percent-encoded)."""
    if not settings.status_url:
        return None
    # Whoever reads the topic gets the link: never the page's user:password@ or its
    # query (a key), which mp keeps secret everywhere else. The browser asks for them.
    parts = urllib.parse.urlsplit(settings.status_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host + (f":{parts.port}" if parts.port else "")
    url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))
    anchor = KINDS.get(event.kind, ("", ""))[1]
    if event.uid and event.uid != "test":
        anchor = page_anchor(event.uid)
    if anchor and "#" not in url:
        url += f"#{anchor}"
    return urllib.parse.quote(url, safe="%:/?#[]@!$&'()*+,;=~")


def test_events() -> list[Event]:
    """One event of each kind, as the pipeline makes them, for `mp notify test`."""
    name = "movie/Example (2024)"
    now = utc_now()
    return [
        approval_event("test", REVIEW_GATE, now, name),
        job_failed_event(
            "test",
            name,
            f"{ENCODE_STAGE.kind} failed: script exited with 1 (it said: an example error)",
        ),
        in_library_event("test", name, now),
        reconcile_failing_event(3, now, "an example error"),
    ]
