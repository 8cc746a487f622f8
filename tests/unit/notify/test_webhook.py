"""A webhook: the JSON an event is posted as, with the configured headers beside mp's
own, and the checks of its header table, whose sentences never show a value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from media_pipeline.config.settings import NotifySettings
from media_pipeline.logs import HIDDEN
from media_pipeline.notify import webhook
from media_pipeline.notify.events import in_library_event, job_failed_event, reconcile_failing_event

HOOK = "http://homeassistant.lan:8123/api/webhook/media-pipeline-secret-id"
PAGE_WITH_SECRETS = "https://owner:page-pass-123@ct303.lan/status.html?key=page-key-456"
UID = "0123456789abcdef"
AT = "2027-01-15T08:00:00+00:00"
EVENT = in_library_event(UID, "movie/Amélie (2001)", AT)
TOKEN_HEADERS = {"Authorization": "Bearer long-lived-token-123456"}


def settings(**given: Any) -> NotifySettings:
    return NotifySettings(webhook_url=HOOK, **given)


def test_an_event_is_posted_as_json_with_its_kind_key_and_texts():
    body, headers = webhook.request(settings(), EVENT)
    sent = json.loads(body.decode("utf-8"))
    at = datetime.fromisoformat(sent.pop("at"))
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=1), "when it was sent"
    assert sent == {
        "event": "in_library",
        "key": f"in_library:{UID}:{AT}",
        "title": "In the library: movie/Amélie (2001)",
        "message": "movie/Amélie (2001) is in the library.",
        "item": "movie/Amélie (2001)",
    }
    assert "Amélie".encode() in body, "text as UTF-8, not \\u escapes"
    assert headers == {"Content-Type": "application/json"}


def test_the_page_link_is_the_items_section_without_the_pages_credentials():
    body, _headers = webhook.request(settings(status_url=PAGE_WITH_SECRETS), EVENT)
    assert json.loads(body)["url"] == "https://ct303.lan/status.html#item-0123456789ab"
    failing = reconcile_failing_event(3, AT, "x")
    body, _headers = webhook.request(settings(status_url=PAGE_WITH_SECRETS), failing)
    assert json.loads(body)["url"] == "https://ct303.lan/status.html"


def test_the_configured_headers_go_with_it_beside_mps_own():
    given = settings(webhook_headers={**TOKEN_HEADERS, "X-Source": "mp"})
    _body, headers = webhook.request(given, job_failed_event("job_1", "x", "y"))
    assert headers == {**TOKEN_HEADERS, "X-Source": "mp", "Content-Type": "application/json"}


def test_no_secret_is_in_the_body():
    given = settings(webhook_headers=TOKEN_HEADERS, status_url=PAGE_WITH_SECRETS)
    secrets = [*given.secrets, "media-pipeline-secret-id"]
    assert "long-lived-token-123456" in secrets and "page-key-456" in secrets
    body, headers = webhook.request(given, EVENT)
    assert [secret for secret in secrets if secret in body.decode()] == []
    assert headers["Authorization"] == TOKEN_HEADERS["Authorization"]


# -- the header table --------------------------------------------------------------------

KEY = "notify.webhook_headers"


def check(value: Any) -> tuple[dict[str, str] | None, list[str]]:
    problems: list[str] = []
    return webhook.header_table(value, KEY, problems), problems


def test_a_header_table_of_names_and_values():
    # Latin-1 values are what HTTP carries: "café" may be sent.
    good = {"Authorization": "Bearer tok", "X-Value": "café", "x-empty": ""}
    assert check(good) == (good, [])
    assert check(None) == ({}, []), "null: none"


def test_a_header_table_that_is_not_a_mapping():
    assert check(["Authorization: Bearer x"]) == (
        None,
        [f"key '{KEY}' must be a mapping of header name to value"],
    )


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"Bad Name": "x"}, f"key '{KEY}' has 'Bad Name', not a header name "
                            "(letters, digits and !#$%&'*+-.^_`|~ only)"),
        ({"X-Ümlaut": "x"}, f"key '{KEY}' has 'X-Ümlaut', not a header name "
                            "(letters, digits and !#$%&'*+-.^_`|~ only)"),
        ({12: "x"}, f"key '{KEY}' has '12', not a header name "
                    "(letters, digits and !#$%&'*+-.^_`|~ only)"),
        ({"content-type": "text/plain"}, f"key '{KEY}.content-type': mp sets content-type itself"),
        ({"Host": "evil.example"}, f"key '{KEY}.Host': mp sets Host itself"),
        ({"Authorization": "a", "authorization": "b"},
         f"key '{KEY}.authorization' names a header already given (names ignore case)"),
    ],
)  # fmt: skip
def test_a_header_name_that_cannot_be_sent_is_refused(table, problem):
    headers, problems = check(table)
    assert problems == [problem]
    assert headers is not None and set(headers) < set(table)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Bearer tok\r\nX-Injected: 1", "text"),
        ("Bearer tok\x00", "text"),
        ("Bearer 日本", "text"),  # not Latin-1: HTTP cannot carry it
        (12345, "int"),
        (None, "NoneType"),
        (["Bearer", "tok"], "a list"),
    ],
)
def test_a_header_value_that_cannot_be_sent_is_refused_without_showing_it(value, kind):
    headers, problems = check({"Authorization": value})
    assert headers == {}
    assert problems == [
        f"key '{KEY}.Authorization' must be text on one line, without control characters, "
        f"got {HIDDEN} ({kind})"
    ]


def test_every_bad_header_is_reported_at_once_and_the_good_ones_kept():
    headers, problems = check({"Bad Name": "x", "X-Good": "1", "Connection": "close"})
    assert headers == {"X-Good": "1"} and len(problems) == 2


@pytest.mark.parametrize(
    ("notify", "refused"),
    [
        ({"webhook_url": HOOK, "webhook_headers": TOKEN_HEADERS}, False),
        ({"webhook_url": "http://u:p@hook.lan/x", "webhook_headers": {}}, False),
        ({"webhook_url": "http://u:p@hook.lan/x", "webhook_headers": None}, False),
        ({"webhook_url": "http://u:p@hook.lan/x", "webhook_headers": {"X-Key": "k"}}, False),
        ({"webhook_url": "http://u:p@hook.lan/x", "webhook_headers": TOKEN_HEADERS}, True),
        ({"webhook_url": "http://u:p@hook.lan/x", "webhook_headers": {"AUTHORIZATION": "k"}}, True),
        ({"webhook_url": None, "webhook_headers": TOKEN_HEADERS}, False),
    ],
)
def test_credentials_are_given_once(notify, refused):
    expected = [
        "key 'notify.webhook_url' holds a user and password (user:password@) and "
        "webhook_headers has an Authorization header too; give the credentials once"
    ]
    assert webhook.credential_problems(set(notify), notify) == (expected if refused else [])
