"""The TMDB client against a stand-in server on 127.0.0.1 (tests/tmdb_standin.py): where
each kind of credential goes, what every refusal says, back-off, timeouts, answers that
are not TMDB's, and no request to anywhere but 127.0.0.1."""

from __future__ import annotations

import logging
import re
import socket
import time
import traceback
from collections.abc import Iterator

import pytest
from tmdb_standin import ACCESS_TOKEN, API_KEY, Answer, TmdbStandIn

from media_pipeline.library import tmdb
from media_pipeline.library.tmdb import (
    MOVIE,
    TV,
    Episode,
    ExternalIds,
    Title,
    TmdbClient,
    TmdbError,
    TmdbSettings,
)

# A credential of each shape that the stand-in does not accept.
OTHER_KEY = "fedcba9876543210fedcba9876543210"
OTHER_TOKEN = ACCESS_TOKEN[:-6] + "AAAAAA"


@pytest.fixture
def logged(caplog):
    """caplog, catching mp's own records at mp's logger: a command run earlier in this
    process (logs.configure) stops them there, and they would never reach the root
    logger caplog listens to (the test of the log lines passed alone, and saw nothing
    after another test in the same process)."""
    ours = logging.getLogger("media_pipeline")
    ours.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="media_pipeline")
    yield caplog
    ours.removeHandler(caplog.handler)


@pytest.fixture(autouse=True)
def only_127_0_0_1(monkeypatch) -> Iterator[list[tuple[str, int]]]:
    """Every connection these tests open is recorded, and one to anywhere but
    127.0.0.1 (or a name to look up) is refused before it is made."""
    connected: list[tuple[str, int]] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            connected.append((address[0], address[1]))
            if address[0] != "127.0.0.1":
                raise ConnectionRefusedError(f"test guard: no connection to {address[0]}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise socket.gaierror(f"test guard: no lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield connected
    assert {host for host, _port in connected} <= {"127.0.0.1"}


@pytest.fixture
def standin() -> Iterator[TmdbStandIn]:
    server = TmdbStandIn(accepted=API_KEY)
    yield server
    server.close()


@pytest.fixture
def token_standin() -> Iterator[TmdbStandIn]:
    server = TmdbStandIn(accepted=ACCESS_TOKEN)
    yield server
    server.close()


class Waits(list):
    """A sleep that records how long it was asked to wait, and waits not at all."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(
    server: TmdbStandIn, credential: str = API_KEY, sleep: Waits | None = None, **settings
) -> TmdbClient:
    return TmdbClient(
        TmdbSettings(credential=credential, base_url=server.url, **settings),
        sleep=Waits() if sleep is None else sleep,
    )


def everything_said(error: BaseException) -> str:
    """All an error could show: its text, repr, args and the full traceback with
    every chained cause."""
    return "\n".join(
        [str(error), repr(error), repr(error.args), *traceback.format_exception(error)]
    )


def test_a_v3_key_goes_in_the_query_and_nowhere_else(standin):
    found = client(standin).search_movie("Heat", year=1995)
    assert found == [Title(MOVIE, 949, "Heat", 1995, "A synthetic overview of a heist film.")]
    (request,) = standin.requests
    assert request.path == "/3/search/movie"
    assert request.query == {"query": ["Heat"], "year": ["1995"], "api_key": [API_KEY]}
    assert "Authorization" not in request.headers
    assert not any(API_KEY in value for value in request.headers.values())


def test_a_token_goes_in_the_header_and_never_in_the_url(token_standin):
    found = client(token_standin, ACCESS_TOKEN).search_tv("lost", first_air_year=2004)
    assert [(t.media_type, t.tmdb_id, t.title, t.year) for t in found] == [(TV, 4607, "Lost", 2004)]
    (request,) = token_standin.requests
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert ACCESS_TOKEN not in request.raw and "api_key" not in request.query
    assert request.query == {"query": ["lost"], "first_air_date_year": ["2004"]}
    assert [
        v for k, v in request.headers.items() if k != "Authorization" and ACCESS_TOKEN in v
    ] == []


def test_query_characters_arrive_intact(standin):
    query = "Tom & Jerry #1 + 50% Amélie/千と千尋?a=b"
    client(standin).search_movie(query)
    (request,) = standin.requests
    assert request.path == "/3/search/movie"
    assert request.query["query"] == [query]
    assert request.query["api_key"] == [API_KEY]


def test_non_ascii_titles_come_back_as_they_are(standin):
    lookup = client(standin)
    assert [t.title for t in lookup.search_movie("amélie")] == [
        "Le Fabuleux Destin d'Amélie Poulain"
    ]
    (spirited,) = lookup.search_movie("千と千尋")
    assert (spirited.title, spirited.year, spirited.overview) == ("千と千尋の神隠し", 2001, "")


@pytest.mark.parametrize(
    ("accepted", "given", "expected"),
    [
        (
            ACCESS_TOKEN,
            OTHER_KEY,
            "TMDB refused the v3 API key (status_code 7): if you have a read access "
            "token, give that instead",
        ),
        (
            API_KEY,
            OTHER_TOKEN,
            "TMDB refused the read access token (status_code 7): if you have a v3 API "
            "key, give that instead",
        ),
    ],
    ids=["a key where a token is taken", "a token where a key is taken"],
)
def test_a_refused_credential_names_the_other_kind_and_is_never_shown(
    accepted, given, expected, logged
):
    server = TmdbStandIn(accepted=accepted)
    try:
        with pytest.raises(TmdbError) as raised:
            client(server, given).movie_details(949)
    finally:
        server.close()
    assert raised.value.kind == "refused"
    assert str(raised.value) == expected
    assert given not in everything_said(raised.value)
    assert given not in logged.text
    assert len(server.requests) == 1  # a 401 is not tried again


@pytest.mark.parametrize("status", [400, 500])  # given up at once; tried again
def test_a_credential_echoed_by_the_server_is_hidden_in_the_error(standin, status):
    standin.script(Answer(status, {"status_code": 11, "status_message": f"bad key {API_KEY}"}))
    with pytest.raises(TmdbError) as raised:
        client(standin, max_tries=1).movie_details(949)
    assert raised.value.kind == "http"
    assert "bad key ***" in str(raised.value)
    assert API_KEY not in everything_said(raised.value)


def test_nothing_at_an_id_is_not_found(standin):
    with pytest.raises(TmdbError) as raised:
        client(standin).movie_details(999999)
    assert raised.value.kind == "not_found"
    assert str(raised.value) == "TMDB has nothing at /3/movie/999999 (status_code 34)"
    assert API_KEY not in everything_said(raised.value)


def test_429_waits_as_long_as_retry_after_says(standin):
    waits = Waits()
    standin.script(Answer(429, {"status_code": 25}, {"Retry-After": "2"}))
    found = client(standin, sleep=waits).movie_details(949)
    assert found.title == "Heat"
    assert waits == [2.0]
    assert len(standin.requests) == 2


def test_429_without_retry_after_backs_off_and_doubles(standin):
    waits = Waits()
    standin.script(Answer(429), Answer(429))
    assert client(standin, sleep=waits, max_tries=3).tv_details(4607).title == "Lost"
    assert waits == [1.0, 2.0]
    assert len(standin.requests) == 3


def test_429_on_every_try_gives_up_after_max_tries(standin, logged):
    waits = Waits()
    standin.script(*[Answer(429, headers={"Retry-After": "1"})] * 10)
    with pytest.raises(TmdbError) as raised:
        client(standin, sleep=waits, max_tries=4).search_movie("Heat")
    assert raised.value.kind == "rate_limited"
    assert len(standin.requests) == 4 and waits == [1.0, 1.0, 1.0]
    assert API_KEY not in everything_said(raised.value) and API_KEY not in logged.text


def test_a_retry_after_above_the_cap_gives_up_at_once(standin):
    waits = Waits()
    standin.script(Answer(429, headers={"Retry-After": "3600"}))
    with pytest.raises(TmdbError) as raised:
        client(standin, sleep=waits, max_wait_seconds=30).search_movie("Heat")
    assert raised.value.kind == "rate_limited"
    assert "3600 s" in str(raised.value)
    assert waits == [] and len(standin.requests) == 1


def test_a_server_error_is_tried_again(standin):
    waits = Waits()
    standin.script(Answer(503))
    assert client(standin, sleep=waits).movie_details(949).tmdb_id == 949
    assert waits == [1.0]


def test_a_silent_server_times_out(standin):
    standin.script(Answer(silent=True))
    started = time.monotonic()
    with pytest.raises(TmdbError) as raised:
        client(standin, timeout_seconds=0.3).movie_details(949)
    assert raised.value.kind == "timeout"
    assert str(raised.value) == "TMDB did not answer /3/movie/949 within 0.3 s"
    assert time.monotonic() - started < 10
    assert len(standin.requests) == 1  # a timeout is not tried again


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"results": [', "TMDB's answer to /3/search/movie is not JSON"),
        (b"\xff\xfe not even text", "TMDB's answer to /3/search/movie is not JSON"),
        (b'{"results": "none"}', "results is not a list of objects"),
        (b'{"results": [{"id": "949", "title": "Heat"}]}', "id is not a whole number"),
        (b'{"results": [{"id": 949}]}', "movie 949 has no title"),
    ],
)
def test_an_answer_that_is_not_tmdbs_is_one_clear_error(standin, body, said):
    standin.script(Answer(200, body))
    with pytest.raises(TmdbError) as raised:
        client(standin).search_movie("Heat")
    assert raised.value.kind == "invalid_answer"
    assert said in str(raised.value)
    assert API_KEY not in everything_said(raised.value)


def test_an_answer_too_large_is_refused(standin, monkeypatch):
    monkeypatch.setattr(tmdb, "MAX_ANSWER_BYTES", 1000)
    standin.script(Answer(200, b'{"results": []}' + b" " * 5000))
    with pytest.raises(TmdbError) as raised:
        client(standin).search_movie("Heat")
    assert raised.value.kind == "invalid_answer"


def test_details_carry_external_ids(standin):
    lookup = client(standin)
    heat = lookup.movie_details(949)
    assert heat == Title(
        MOVIE, 949, "Heat", 1995, "A synthetic overview of a heist film.", ExternalIds("tt0113277")
    )
    lost = lookup.tv_details(4607)
    assert (lost.media_type, lost.title, lost.year) == (TV, "Lost", 2004)
    assert lost.external_ids == ExternalIds("tt0411008", 81189)
    assert [r.query["append_to_response"] for r in standin.requests] == [["external_ids"]] * 2


def test_a_movie_and_a_show_with_the_same_id_are_told_apart(standin):
    lookup = client(standin)
    film, show = lookup.movie_details(1399), lookup.tv_details(1399)
    assert (film.media_type, film.title) == (MOVIE, "Same Number, a Film")
    assert (show.media_type, show.title) == (TV, "Same Number, a Show")
    assert [r.path for r in standin.requests] == ["/3/movie/1399", "/3/tv/1399"]


def test_a_seasons_episodes_season_0_included(standin):
    lookup = client(standin)
    specials = lookup.season(4607, 0)
    assert specials.season_number == 0
    assert specials.episodes == (
        Episode(0, 1, "Destination: Ø Special"),
        Episode(0, 2, "The Journey"),
    )
    assert [e.name for e in lookup.season(4607, 1).episodes] == [
        "Pilot (1)",
        "Pilot (2)",
        "Tabula Rasa",
    ]
    assert [r.path for r in standin.requests] == ["/3/tv/4607/season/0", "/3/tv/4607/season/1"]


def test_find_by_imdb_and_tvdb_id(standin):
    lookup = client(standin)
    (heat,) = lookup.find("tt0113277")
    assert (heat.media_type, heat.tmdb_id, heat.external_ids) == (
        MOVIE,
        949,
        ExternalIds(imdb_id="tt0113277"),
    )
    (lost,) = lookup.find(81189)
    assert (lost.media_type, lost.tmdb_id, lost.external_ids) == (
        TV,
        4607,
        ExternalIds(None, 81189),
    )
    assert lookup.find("81189") == [lost]
    assert [(r.path, r.query["external_source"]) for r in standin.requests] == [
        ("/3/find/tt0113277", ["imdb_id"]),
        ("/3/find/81189", ["tvdb_id"]),
        ("/3/find/81189", ["tvdb_id"]),
    ]


def test_a_redirect_to_another_host_is_not_followed(standin):
    elsewhere = TmdbStandIn(accepted=API_KEY)
    try:
        standin.script(Answer(302, headers={"Location": f"{elsewhere.url}/3/movie/949"}))
        with pytest.raises(TmdbError) as raised:
            client(standin).movie_details(949)
        assert elsewhere.requests == []
    finally:
        elsewhere.close()
    assert raised.value.kind == "http"
    assert "redirect (HTTP 302), not followed" in str(raised.value)


def test_an_unreachable_server_says_so_without_the_key():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    lookup = TmdbClient(TmdbSettings(API_KEY, base_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(TmdbError) as raised:
        lookup.search_movie("Heat")
    assert raised.value.kind == "unreachable"
    assert API_KEY not in everything_said(raised.value)


def test_the_credential_is_in_no_log_line(standin, logged):
    lookup = client(standin)
    standin.script(Answer(429, headers={"Retry-After": "0"}), None, Answer(404, {}))
    lookup.search_movie("Heat & Co")
    with pytest.raises(TmdbError):
        lookup.tv_details(4607)
    assert "TMDB GET /3/search/movie" in logged.text  # the log was captured
    assert API_KEY not in logged.text
    assert all(API_KEY not in str(record.args) for record in logged.records)


def test_proxies_named_by_the_environment_are_not_used(standin, monkeypatch, only_127_0_0_1):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://192.0.2.1:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert client(standin).movie_details(949).title == "Heat"
    assert only_127_0_0_1 == [("127.0.0.1", int(standin.url.rsplit(":", 1)[1]))]


def test_the_guard_refuses_any_host_but_127_0_0_1(only_127_0_0_1):
    lookup = TmdbClient(TmdbSettings(API_KEY, base_url="http://192.0.2.1"))
    with pytest.raises(TmdbError, match=re.escape("test guard: no lookup of '192.0.2.1'")):
        lookup.search_movie("Heat")
    with pytest.raises(TmdbError, match=re.escape("test guard: no lookup of 'api.themoviedb.org'")):
        TmdbClient(TmdbSettings(API_KEY, base_url=tmdb.API_URL)).search_movie("Heat")
    with socket.socket() as outside, pytest.raises(ConnectionRefusedError, match="test guard"):
        outside.connect(("192.0.2.1", 80))
    assert only_127_0_0_1 == [("192.0.2.1", 80)]
    only_127_0_0_1.clear()  # the guard's own check at teardown would fail on it
