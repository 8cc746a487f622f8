"""The events a person is told of: one function per kind, each with a key of its own (by
which it is sent once), and the status page's section its notification opens."""

from __future__ import annotations

import pytest

from media_pipeline.config.settings import NotifySettings
from media_pipeline.notify.events import (
    APPROVAL_OPENED,
    HIGH_PRIORITY,
    IN_LIBRARY,
    JOB_FAILED,
    KINDS,
    RECONCILE_FAILING,
    Event,
    approval_event,
    approvals_event,
    click_url,
    failures_event,
    in_library_event,
    in_library_many_event,
    job_failed_event,
    reconcile_failing_event,
)
from media_pipeline.notify.events import test_events as made_for_notify_test

UID = "0123456789abcdef"
AT = "2027-01-15T08:00:00+00:00"
JOB_ID = "job_p500_20270115T080000000000_remux_movie_0123456789ab_Heat-1995"
REASON = "remux failed: script exited with 1 (it said: no video stream)"


def test_an_approval_says_what_waits_and_where_to_decide():
    event = approval_event(UID, "remux_review", AT, "movie/Heat (1995)")
    assert event == Event(
        key=f"approval_opened:{UID}:remux_review:{AT}",
        kind=APPROVAL_OPENED,
        title="Approval needed: movie/Heat (1995)",
        message="movie/Heat (1995) waits for remux review. Run 'mp approve' on the controller.",
        item="movie/Heat (1995)",
        uid=UID,
    )
    assert not event.high_priority


def test_each_opening_of_a_gate_is_an_event_of_its_own():
    keys = {
        approval_event(UID, "remux_review", AT, "x").key,
        approval_event(UID, "filebot_confirm", AT, "x").key,  # the next gate
        approval_event(UID, "remux_review", "2027-01-16T08:00:00+00:00", "x").key,  # again
        approval_event("fedcba9876543210", "remux_review", AT, "x").key,
    }
    assert len(keys) == 4


def test_many_approvals_are_one_event_naming_the_first_three():
    opened = [(f"uid{n}", "remux_review", f"at{n}", f"movie/Film {n}") for n in range(5)]
    event = approvals_event(opened)
    assert event.key == "approval_opened:5:uid0:at0"
    assert event.kind == APPROVAL_OPENED and event.title == "5 approvals needed"
    assert event.item == "movie/Film 0, movie/Film 1, movie/Film 2"
    assert event.message == (
        "5 items wait for a person (movie/Film 0, movie/Film 1, movie/Film 2, ...). "
        "Run 'mp approve' on the controller."
    )
    assert event.uid == "", "about many items: it opens the page's approvals, no item's"
    assert approvals_event(opened[:4]).key != event.key


def test_a_failed_job_is_urgent_and_says_why_and_what_to_run():
    event = job_failed_event(JOB_ID, "movie/Heat (1995)", REASON, uid=UID)
    assert event.key == f"job_failed:{JOB_ID}"
    assert event.kind == JOB_FAILED and event.high_priority and event.uid == UID
    assert event.title == "Failed: movie/Heat (1995)"
    assert event.message == (f"movie/Heat (1995): {REASON}. 'mp why' explains, 'mp retry' retries.")


def test_many_failures_are_one_urgent_event_keyed_by_the_first_job():
    failed = [job_failed_event(f"job_{n}", f"tv/Show S01 D{n}", REASON) for n in range(1, 6)]
    event = failures_event(failed)
    assert event.key == "job_failed:5:job_1"
    assert event.high_priority and event.kind == JOB_FAILED
    assert event.title == "5 items failed"
    assert event.item == "tv/Show S01 D1, tv/Show S01 D2, tv/Show S01 D3"
    assert event.message.startswith("5 items failed for good (tv/Show S01 D1, ")
    assert event.message.endswith("'mp status' lists them, 'mp why ITEM' says why.")


def test_an_item_in_the_library_and_many_of_them():
    one = in_library_event(UID, "movie/Heat (1995)", AT)
    assert one.key == f"in_library:{UID}:{AT}" and one.kind == IN_LIBRARY
    assert one.title == "In the library: movie/Heat (1995)" and one.uid == UID
    assert one.message == "movie/Heat (1995) is in the library."
    assert not one.high_priority
    reached = [(f"uid{n}", f"tv/Show S01 D{n}") for n in range(1, 5)]
    many = in_library_many_event(reached, AT)
    assert many.key == f"in_library:4:uid1:{AT}" and many.kind == IN_LIBRARY
    assert many.title == "4 items in the library"
    assert many.message == (
        "4 items reached the library (tv/Show S01 D1, tv/Show S01 D2, tv/Show S01 D3, ...)."
    )


def test_a_reconcile_failing_says_how_long_and_where_to_look():
    event = reconcile_failing_event(3, AT, "database is locked")
    assert event.key == f"reconcile_failing:{AT}" and event.high_priority
    assert event.kind == RECONCILE_FAILING
    assert event.title == "Reconcile keeps failing" and event.item == ""
    assert "failed 3 runs in a row (since " + AT + "); the last said: database is locked." in (
        event.message
    )
    assert "journalctl -u mp-reconcile" in event.message


def test_the_test_events_are_one_of_each_kind_as_the_pipeline_makes_them():
    events = made_for_notify_test()
    assert [event.kind for event in events] == list(KINDS)
    assert [event.high_priority for event in events] == [kind in HIGH_PRIORITY for kind in KINDS]
    assert len({event.key for event in events}) == len(events)
    assert all(event.uid in ("test", "") for event in events), "no real item's section"


# -- where a notification leads ----------------------------------------------------------

PAGE = "http://ct303.lan/media/status.html"


def settings(status_url: str | None) -> NotifySettings:
    return NotifySettings(status_url=status_url)


def test_no_status_page_no_link():
    assert click_url(settings(None), made_for_notify_test()[0]) is None


TWO_APPROVALS = approvals_event([("a", "remux_review", AT, "x"), ("b", "remux_review", AT, "y")])
TWO_FAILURES = failures_event([job_failed_event(job, "x", REASON) for job in ("j1", "j2")])
TWO_IN_LIBRARY = in_library_many_event([("a", "x"), ("b", "y")], AT)


@pytest.mark.parametrize(
    ("event", "anchor"),
    [
        (TWO_APPROVALS, "approvals"),
        (TWO_FAILURES, "failures"),
        (TWO_IN_LIBRARY, "items"),
        (job_failed_event(JOB_ID, "x", REASON, uid=UID), "item-0123456789ab"),
        (in_library_event(UID, "x", AT), "item-0123456789ab"),
        (approval_event(UID, "remux_review", AT, "x"), "item-0123456789ab"),
        # `mp notify test`'s events are about no real item: each opens its kind's section.
        (approval_event("test", "remux_review", AT, "x"), "approvals"),
    ],
)  # fmt: skip
def test_the_link_opens_the_section_the_event_is_about(event, anchor):
    assert click_url(settings(PAGE), event) == f"{PAGE}#{anchor}"


def test_a_reconcile_failing_opens_the_page_itself():
    assert click_url(settings(PAGE), reconcile_failing_event(3, AT, "x")) == PAGE


def test_the_link_never_carries_the_pages_credentials_or_query():
    url = "https://owner:s3cret-pass@ct303.lan:8443/media/status.html?key=tok-123456"
    link = click_url(settings(url), in_library_event(UID, "x", AT))
    assert link == "https://ct303.lan:8443/media/status.html#item-0123456789ab"
    for secret in settings(url).secrets:
        assert secret not in link


def test_the_link_is_one_line_of_ascii():
    url = "http://[fe80::1]:8080/médias/état du jour.html"
    link = click_url(settings(url), approval_event("test", "remux_review", AT, "x"))
    assert link == "http://[fe80::1]:8080/m%C3%A9dias/%C3%A9tat%20du%20jour.html#approvals"
    assert link.isascii() and link.isprintable()
    encoded = "http://ct303.lan/m%C3%A9dias/status.html"
    assert click_url(settings(encoded), reconcile_failing_event(1, AT, "x")) == encoded


def test_a_page_address_with_a_section_of_its_own_gets_no_second_one():
    link = click_url(settings("http://ct303.lan/status.html#top"), in_library_event(UID, "x", AT))
    assert link is not None and link.count("#") == 1 and "item-" not in link
