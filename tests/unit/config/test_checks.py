"""The checkers of the config's values: each gives back the clean value, or None and one
sentence naming the key and what it must be; a secret's sentence never shows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from media_pipeline.config.checks import (
    Setting,
    absolute_path,
    account_name,
    check_keys,
    checked_default,
    gate_list,
    has_control,
    has_user_info,
    http_url,
    io_class,
    library_names_rule,
    nice_value,
    path_list,
    positive_int,
    secret_path_url,
    secret_problem,
    text_list,
    type_name,
    umask_text,
    unwritable_in_unit,
    whole_number_in,
)
from media_pipeline.logs import HIDDEN

Checker = Callable[[Any, str, list[str]], Any]


def check(checker: Checker, value: Any, key: str = "k") -> tuple[Any, list[str]]:
    problems: list[str] = []
    return checker(value, key, problems), problems


def refused(checker: Checker, value: Any, key: str = "k") -> str:
    """The one sentence checker refuses value with."""
    clean, problems = check(checker, value, key)
    assert clean is None and len(problems) == 1, (clean, problems)
    return problems[0]


@pytest.mark.parametrize(
    ("value", "name"),
    [({}, "a mapping"), ([], "a list"), ("x", "text"), (True, "true/false"), (3, "int"),
     (None, "NoneType"), (1.5, "float")],
)  # fmt: skip
def test_a_values_type_in_words(value, name):
    assert type_name(value) == name


# -- paths -------------------------------------------------------------------------------


def test_an_absolute_path_is_kept_normalised():
    assert check(absolute_path, "/mnt/staging/") == ("/mnt/staging", [])
    assert check(absolute_path, "/mnt//staging/../library") == ("/mnt/library", [])
    assert check(absolute_path, "/mnt/Amélie 日本") == ("/mnt/Amélie 日本", [])


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("relative/path", "key 'staging_root' must be an absolute path, got 'relative/path'"),
        ("", "key 'staging_root' must be a path, not text"),
        ("   ", "key 'staging_root' must be a path, not text"),
        (None, "key 'staging_root' must be a path, not NoneType"),
        (["/mnt"], "key 'staging_root' must be a path, not a list"),
    ],
)
def test_a_path_that_is_not_absolute_is_refused(value, sentence):
    assert refused(absolute_path, value, "staging_root") == sentence


@pytest.mark.parametrize("value", ["/mnt/a\nb", "/mnt/a\tb", "/mnt/\x1b[2J", "/mnt/a\x85b",
                                   "/mnt/a\x00b", "/mnt/a\x7fb", "/mnt/bad\udc80name"])  # fmt: skip
def test_a_path_that_cannot_be_written_into_a_unit_is_refused(value):
    assert unwritable_in_unit(value)
    assert refused(absolute_path, value, "library_root") == (
        f"key 'library_root' holds a control character (a newline, a tab, an escape): "
        f"{value!r}; a path with one cannot be written safely into a systemd unit, "
        "rename the folder"
    )


def test_a_path_a_unit_can_hold():
    assert not unwritable_in_unit("/mnt/Amélie (2001) 日本 'quoted' \"too\" $HOME %h")


def test_a_path_list_keeps_the_good_paths_and_names_each_bad_one():
    assert check(path_list, ["/a/", "/b"]) == (("/a", "/b"), [])
    assert check(path_list, []) == ((), [])
    clean, problems = check(path_list, ["/a", "b", 3], "script_writable_paths")
    assert clean == ("/a",)
    assert problems == [
        "key 'script_writable_paths[1]' must be an absolute path, got 'b'",
        "key 'script_writable_paths[2]' must be a path, not int",
    ]
    assert refused(path_list, "/a", "script_writable_paths") == (
        "key 'script_writable_paths' must be a list of paths, not text"
    )


# -- numbers and words -------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, True, "3", 2.5, None])
def test_a_positive_whole_number_is_at_least_1(value):
    assert check(positive_int, 1) == (1, [])
    assert refused(positive_int, value, "jobs.max_attempts") == (
        f"key 'jobs.max_attempts' must be a whole number of at least 1, got {value!r}"
    )


def test_a_whole_number_in_a_range_names_what_it_is():
    percent = whole_number_in(0, 100, "a percentage")
    assert check(percent, 0) == (0, []) and check(percent, 100) == (100, [])
    assert refused(percent, 101, "x") == "key 'x' must be a percentage from 0 to 100, got 101"
    assert refused(percent, False, "x") == "key 'x' must be a percentage from 0 to 100, got False"
    assert check(nice_value, 19) == (19, [])
    assert refused(nice_value, 20, "units.transcode_nice") == (
        "key 'units.transcode_nice' must be a nice level from 0 to 19, got 20"
    )
    assert (
        refused(whole_number_in(1, 5), "3", "y") == "key 'y' must be a number from 1 to 5, got '3'"
    )


@pytest.mark.parametrize("value", ["media", "_svc", "media-pipeline", "a" * 32, "m9_-"])
def test_an_account_name_as_useradd_takes_it(value):
    assert check(account_name, value) == (value, [])


@pytest.mark.parametrize("value", ["Media", "9media", "", "a" * 33, "me dia", "root\n", 1000])
def test_an_account_name_useradd_would_refuse(value):
    assert refused(account_name, value, "units.user") == (
        f"key 'units.user' must be a user or group name like 'media', got {value!r}"
    )


def test_the_choices_of_io_class_and_library_names():
    assert check(io_class, "idle") == ("idle", []) and check(io_class, "best-effort")[1] == []
    assert refused(io_class, "realtime", "units.transcode_io_class") == (
        "key 'units.transcode_io_class' must be 'idle' or 'best-effort', got 'realtime'"
    )
    assert check(library_names_rule, "smb") == ("smb", [])
    assert check(library_names_rule, "as-is") == ("as-is", [])
    assert refused(library_names_rule, "SMB", "library_names") == (
        "key 'library_names' must be 'smb' or 'as-is', got 'SMB'"
    )


def test_gates_are_known_ones_each_once():
    assert check(gate_list, ["filebot_confirm", "remux_review", "filebot_confirm"]) == (
        ("filebot_confirm", "remux_review"),
        [],
    )
    assert check(gate_list, []) == ((), [])
    assert refused(gate_list, "remux_review", "gates") == (
        "key 'gates' must be a list of gates (remux_review, filebot_confirm)"
    )
    assert refused(gate_list, ["remux_review", "bogus", 3], "gates") == (
        "key 'gates' names unknown gate(s) 'bogus', 3; known gates are "
        "remux_review, filebot_confirm"
    )


def test_a_text_list_is_a_list_of_words():
    assert check(text_list, ["film_projector", "tv"]) == (("film_projector", "tv"), [])
    for value in ("film_projector", ["a", 1], None):
        assert refused(text_list, value, "notify.ntfy_tags") == (
            "key 'notify.ntfy_tags' must be a list of words"
        )


@pytest.mark.parametrize(
    ("value", "mask"), [("022", 0o22), ("0002", 0o2), ("777", 0o777), ("0", 0)]
)
def test_a_umask_is_octal_text(value, mask):
    assert check(umask_text, value) == (mask, [])


@pytest.mark.parametrize(
    ("value", "shown"),
    [(22, "the number 22"), (18, "the number 18"), ("888", "'888'"), ("1777", "'1777'"),
     ("", "''"), ("0o22", "'0o22'"), (None, "None"), (True, "True")],
)  # fmt: skip
def test_a_umask_that_is_no_octal_text_is_refused_saying_why(value, shown):
    assert refused(umask_text, value, "umask") == (
        f"key 'umask' must be an octal umask in quotes from '000' to '777', like '022', got {shown}"
    )


# -- the keys of a block -----------------------------------------------------------------


def test_unknown_keys_are_each_named_with_the_closest_known_one():
    problems: list[str] = []
    assert check_keys({"jobs": {}, "gates": []}, ("jobs", "gates"), "", problems)
    assert problems == []
    assert not check_keys({"jobz": 1, "zzz": 2, 3: 4}, ("jobs", "gates"), "", problems)
    assert problems == [
        "unknown key 'jobz' (did you mean 'jobs'?)",
        "unknown key 'zzz'",
        "unknown key '3'",
    ]
    problems.clear()
    assert not check_keys({"heartbeat": 30}, ("heartbeat_seconds",), "jobs", problems)
    assert problems == ["unknown key 'jobs.heartbeat' (did you mean 'heartbeat_seconds'?)"]


def test_a_default_goes_through_its_checker():
    tags = Setting("ntfy_tags", "Tags.", ["x"], text_list, default=["film_projector"])
    problems: list[str] = []
    assert checked_default(tags, "notify.ntfy_tags", problems) == ("film_projector",)
    assert checked_default(tags._replace(default=None), "k", problems) is None
    assert checked_default(tags._replace(check=None), "k", problems) is None
    assert problems == []


# -- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://ct303.lan/status.html", "https://ntfy.sh/topic", "http://h:65535/",
     "http://u:p@h:1/x?y=z#w", "http://[::1]:8080/x", "https://h"],
)  # fmt: skip
def test_an_http_url(url):
    assert check(http_url, url) == (url, [])
    assert check(secret_path_url, url) == (url, [])


def test_no_url_is_none():
    assert check(http_url, None) == (None, []) and check(secret_path_url, None) == (None, [])


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("ftp://h/x", "must be an http:// or https:// URL, got 'ftp://h/x'"),
        ("ct303.lan/status", "must be an http:// or https:// URL, got 'ct303.lan/status'"),
        (8080, "must be an http:// or https:// URL, got 'int'"),
        ("http://h/a b", "holds a space or a control character: 'http://h/a b'"),
        ("http://h/a\nb", "holds a space or a control character: 'http://h/a\\nb'"),
        ("http://:80/x", "names no host: 'http://:80/x'"),
        ("http://user@/x", "names no host: 'http://***@/x'"),
        ("http://h:0/", "has port 0; a port is 1 to 65535"),
        ("http://h:65536/", "has port 65536; a port is 1 to 65535"),
        # Once taken, and every notification linking to the page failed as it was built.
        ("http://ct303.lan:abc/status.html", "has a port that is not a number from 1 to 65535: "
         "'http://ct303.lan:abc/status.html'"),
        ("https://user:pw@h:8x/", "has a port that is not a number from 1 to 65535: "
         "'https://***@h:8x/'"),
    ],
)  # fmt: skip
def test_a_url_that_is_not_one_to_post_to(url, sentence):
    assert refused(http_url, url, "notify.status_url") == f"key 'notify.status_url' {sentence}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://owner:pw-123456@h.example/x?token=tok-123456 x", "'https://***@h.example/x?token=***'"),
        ("http://h.example/a b?key=tok-123456", "'http://h.example/a b?key=***'"),
    ],
)  # fmt: skip
def test_a_bad_urls_credentials_and_query_are_never_shown(url, shown):
    sentence = refused(http_url, url, "notify.status_url")
    assert sentence.endswith(shown) and "pw-123456" not in sentence and "tok-123456" not in sentence


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ntfy.sh/my secret topic", "'https://ntfy.sh/...'"),
        ("https://owner:pw-123456@ntfy.sh/topic\x00", "'https://ntfy.sh/...'"),
        ("ntfy.sh/my-secret-topic", "'/...'"),
        ("ftp://ntfy.sh/my-secret-topic", "'ftp://ntfy.sh/...'"),
        ("https://@/my-secret-topic", "'https:///...'"),
    ],
)
def test_a_secret_paths_url_is_shown_by_its_host_only(url, shown):
    sentence = refused(secret_path_url, url, "notify.ntfy_url")
    assert sentence.endswith(shown)
    assert "secret-topic" not in sentence and "pw-123456" not in sentence


def test_user_info_in_a_url():
    assert has_user_info("https://owner:pw@ntfy.sh/topic")
    assert has_user_info("https://owner@ntfy.sh/topic")
    assert not has_user_info("https://ntfy.sh/topic?mail=a@b.example")
    assert not has_user_info("https://ntfy.sh/a@b")
    assert not has_user_info(None) and not has_user_info("")


# -- secrets -----------------------------------------------------------------------------


def test_a_secrets_problem_says_what_is_wrong_never_what_it_is():
    problems: list[str] = []
    secret_problem("tk_hunter2 with space", "notify.ntfy_token", problems, "one word")
    assert problems == [f"key 'notify.ntfy_token' must be one word, got {HIDDEN} (text)"]


def test_control_characters_are_c0_and_del():
    assert has_control("a\nb") and has_control("\x00") and has_control("a\x7f")
    # C1 controls are not counted here (unwritable_in_unit counts them).
    assert not has_control("Amélie 日本 \x85")
