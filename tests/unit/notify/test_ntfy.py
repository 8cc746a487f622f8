"""ntfy: the request an event becomes (the message as the body; title, priority, tags,
the Click link and the credentials as headers), its RFC 2047 titles, and the checks of
its settings, whose sentences never hold a secret."""

from __future__ import annotations

import base64
import email.header
from typing import Any

import pytest

from media_pipeline.config.checks import type_name
from media_pipeline.config.settings import NotifySettings
from media_pipeline.logs import HIDDEN
from media_pipeline.notify import ntfy
from media_pipeline.notify.events import (
    approval_event,
    in_library_event,
    job_failed_event,
)

TOPIC = "https://ntfy.example/mp-topic-only-i-know"
PAGE_WITH_SECRETS = "https://owner:page-pass-123@ct303.lan/status.html?key=page-key-456"
UID = "0123456789abcdef"
AT = "2027-01-15T08:00:00+00:00"
EVENT = approval_event(UID, "remux_review", AT, "movie/Heat (1995)")
FAILED = job_failed_event("job_1", "movie/Heat (1995)", "remux failed", uid=UID)


def settings(**given: Any) -> NotifySettings:
    return NotifySettings(ntfy_url=TOPIC, **given)


def test_the_message_is_the_body_and_the_rest_are_headers():
    body, headers = ntfy.request(settings(), EVENT)
    assert body == EVENT.message.encode("utf-8")
    assert headers == {
        "Content-Type": "text/plain; charset=utf-8",
        "Title": "Approval needed: movie/Heat (1995)",
        "Priority": "3",
        "Tags": "film_projector",
    }


def test_the_body_is_utf8_whatever_the_title():
    event = in_library_event(UID, "movie/Amélie (2001) 日本", AT)
    body, _headers = ntfy.request(settings(), event)
    assert body.decode("utf-8") == "movie/Amélie (2001) 日本 is in the library."


@pytest.mark.parametrize(
    ("priority", "event", "sent"),
    [(3, EVENT, "3"), (3, FAILED, "4"), (1, EVENT, "1"), (1, FAILED, "2"), (5, FAILED, "5")],
)
def test_an_urgent_event_is_sent_one_priority_higher_up_to_the_most(priority, event, sent):
    _body, headers = ntfy.request(settings(ntfy_priority=priority), event)
    assert headers["Priority"] == sent


def test_an_urgent_event_gets_a_warning_tag_beside_the_configured_ones():
    tags = ("film_projector", "tv")
    assert ntfy.request(settings(ntfy_tags=tags), EVENT)[1]["Tags"] == "film_projector,tv"
    assert ntfy.request(settings(ntfy_tags=tags), FAILED)[1]["Tags"] == "film_projector,tv,warning"
    assert ntfy.request(settings(ntfy_tags=()), FAILED)[1]["Tags"] == "warning"


def test_the_click_link_opens_the_items_section_without_the_pages_credentials():
    _body, headers = ntfy.request(settings(status_url=PAGE_WITH_SECRETS), EVENT)
    assert headers["Click"] == "https://ct303.lan/status.html#item-0123456789ab"
    assert "Click" not in ntfy.request(settings(), EVENT)[1]


def test_a_token_is_sent_as_a_bearer_and_a_user_with_http_basic():
    _body, headers = ntfy.request(settings(ntfy_token="tk_abcdef123456"), EVENT)
    assert headers["Authorization"] == "Bearer tk_abcdef123456"
    _body, headers = ntfy.request(
        settings(ntfy_username="owner", ntfy_password="pässword: 1"), EVENT
    )
    scheme, _, encoded = headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode("utf-8") == "owner:pässword: 1"
    assert "Authorization" not in ntfy.request(settings(ntfy_username="owner"), EVENT)[1]
    assert "Authorization" not in ntfy.request(settings(), EVENT)[1]


def test_no_secret_is_anywhere_but_the_authorization_header():
    given = settings(ntfy_token="tk_abcdef123456", status_url=PAGE_WITH_SECRETS)
    secrets = [*given.secrets, "mp-topic-only-i-know"]
    assert "tk_abcdef123456" in secrets and "page-pass-123" in secrets
    for event in (EVENT, FAILED):
        body, headers = ntfy.request(given, event)
        shown = [body.decode(), *(v for k, v in headers.items() if k != "Authorization")]
        assert not [secret for secret in secrets if any(secret in text for text in shown)]
    assert headers["Authorization"] == "Bearer tk_abcdef123456"


def decoded(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


@pytest.mark.parametrize(
    "title",
    [
        "Approval needed: movie/Heat (1995)",
        "Failed: movie/Amélie (2001)",
        "In the library: tv/東京物語 S01 D1",
        "Failed: " + "Ωmega " * 30,  # long: many encoded-words
        "Failed: movie/=?utf-8?q?looks-encoded?=",
    ],
)
def test_a_title_is_one_header_line_that_reads_back_as_it_was(title):
    value = ntfy.header_value(title)
    assert value.isascii() and value.isprintable()
    assert decoded(value) == title
    if value != title:
        words = value.split(" ")
        assert all(word.startswith("=?utf-8?b?") and len(word) <= 75 for word in words)


def test_plain_ascii_is_sent_as_it_is():
    assert ntfy.header_value("Failed: movie/Heat (1995)") == "Failed: movie/Heat (1995)"
    assert ntfy.header_value("") == ""


def test_line_breaks_and_controls_in_a_title_cannot_start_a_header():
    value = ntfy.header_value("Failed: x\r\nAuthorization: Bearer stolen\x1b[2J")
    assert value == "Failed: x Authorization: Bearer stolen [2J"
    encoded = ntfy.header_value("Amélie\r\nX-Evil: 1")
    assert "\r" not in encoded and "\n" not in encoded
    assert decoded(encoded) == "Amélie X-Evil: 1"


def test_a_title_with_a_lone_surrogate_still_makes_a_header():
    value = ntfy.header_value("Failed: bad\udc80name")
    assert value.isascii() and decoded(value) == "Failed: bad?name"


# -- the settings' checks ----------------------------------------------------------------


def check(checker, value: Any, key: str = "notify.x") -> tuple[Any, list[str]]:
    problems: list[str] = []
    return checker(value, key, problems), problems


@pytest.mark.parametrize("token", ["tk_abcdef123456", "!~"])
def test_a_token_is_one_word_of_printable_ascii(token):
    assert check(ntfy.token_text, token) == (token, [])


@pytest.mark.parametrize(
    ("token", "kind"),
    [("tk_abc def", "text"), ("tk_abcé", "text"), ("tk_abc\n", "text"), ("", "text"),
     (123456, "int"), (["tk_abc"], "a list")],
)  # fmt: skip
def test_a_bad_token_is_refused_without_showing_it(token, kind):
    value, problems = check(ntfy.token_text, token, "notify.ntfy_token")
    assert value is None
    assert problems == [
        "key 'notify.ntfy_token' must be text in quotes, one word of printable ASCII, "
        f"got {HIDDEN} ({kind})"
    ]


def test_a_user_name_has_no_colon_and_a_password_no_control_character():
    assert check(ntfy.user_name_text, "owner") == ("owner", [])
    assert check(ntfy.password_text, "a pässword: with spaces") == ("a pässword: with spaces", [])
    for checker in (ntfy.token_text, ntfy.user_name_text, ntfy.password_text):
        assert check(checker, None) == (None, []), "null: none"
    for bad in ("own:er", "", "own\ner", 12):
        assert check(ntfy.user_name_text, bad, "notify.ntfy_username") == (
            None,
            [
                "key 'notify.ntfy_username' must be text in quotes, without ':' or control "
                f"characters, got {HIDDEN} ({type_name(bad)})"
            ],
        )
    for bad in ("pass\nword", "", 12345):
        assert check(ntfy.password_text, bad, "notify.ntfy_password") == (
            None,
            [
                "key 'notify.ntfy_password' must be text in quotes, without control "
                f"characters, got {HIDDEN} ({type_name(bad)})"
            ],
        )


def test_a_priority_is_from_1_to_5():
    assert check(ntfy.priority_1_to_5, 5) == (5, [])
    assert check(ntfy.priority_1_to_5, 6, "notify.ntfy_priority")[1] == [
        "key 'notify.ntfy_priority' must be a number from 1 to 5, got 6"
    ]


USER_URL = "https://owner:pass@ntfy.example/topic"


@pytest.mark.parametrize(
    ("given", "url", "expected"),
    [
        (set(), TOPIC, []),
        ({"ntfy_token"}, TOPIC, []),
        ({"ntfy_username", "ntfy_password"}, TOPIC, []),
        (set(), USER_URL, []),
        ({"ntfy_username"}, TOPIC, [
            "key 'notify.ntfy_password' is missing: ntfy_username and ntfy_password go together"
        ]),
        ({"ntfy_password"}, TOPIC, [
            "key 'notify.ntfy_username' is missing: ntfy_username and ntfy_password go together"
        ]),
        ({"ntfy_token", "ntfy_username", "ntfy_password"}, TOPIC, [
            "key 'notify.ntfy_token' is set with ntfy_username/ntfy_password; give one: "
            "a token, or a user name and password"
        ]),
        ({"ntfy_token"}, USER_URL, [
            "key 'notify.ntfy_url' holds a user and password (user:password@) and "
            "ntfy_token or ntfy_username is set too; give the credentials once"
        ]),
        ({"ntfy_username", "ntfy_password"}, USER_URL, [
            "key 'notify.ntfy_url' holds a user and password (user:password@) and "
            "ntfy_token or ntfy_username is set too; give the credentials once"
        ]),
    ],
)  # fmt: skip
def test_credentials_are_given_once_and_whole(given, url, expected):
    assert ntfy.credential_problems(given, {"ntfy_url": url}) == expected
