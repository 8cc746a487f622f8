"""A stand-in for TMDB's v3 API on 127.0.0.1, for the lookup tests: synthetic answers in
TMDB's shapes (nothing recorded from the real service), answers a test scripts (401,
404, 429, silence, invalid JSON, a redirect), and every request it gets recorded."""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Synthetic credentials of the two shapes: a v3 API key (32 hex digits) and a v4 read
# access token (a JWT's three base64url parts; not a real token of anyone's).
API_KEY = "0123456789abcdef0123456789abcdef"
ACCESS_TOKEN = (
    "eyJhbGciOiJIUzI1NiJ9."
    "eyJhdWQiOiJzdGFuZC1pbi1hdWRpZW5jZSIsInN1YiI6InN0YW5kLWluLXN1YmplY3QiLCJzY29wZXMiOlsiYXBpX3JlYWQiXX0."
    "c3RhbmQtaW4tc2lnbmF0dXJlLW5vdC1hLXJlYWwtb25lLWF0LWFsbA"
)

INVALID_KEY = {
    "status_code": 7,
    "status_message": "Invalid API key: You must be granted a valid key.",
    "success": False,
}
NOT_FOUND = {
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
    "success": False,
}

# The catalogue: a movie and a show with the same numeric id (1399), non-ASCII titles,
# and a show with specials in season 0.
MOVIES: dict[int, dict[str, Any]] = {
    949: {
        "id": 949,
        "title": "Heat",
        "release_date": "1995-12-15",
        "overview": "A synthetic overview of a heist film.",
        "external_ids": {"imdb_id": "tt0113277"},
    },
    1399: {
        "id": 1399,
        "title": "Same Number, a Film",
        "release_date": "2001-04-25",
        "overview": "The film that shares its number with a show.",
        "external_ids": {"imdb_id": "tt0211915"},
    },
    5000: {
        "id": 5000,
        "title": "Le Fabuleux Destin d'Amélie Poulain",
        "release_date": "2001-04-25",
        "overview": "Une vue synthétique.",
        "external_ids": {"imdb_id": "tt0200000"},
    },
    5001: {
        "id": 5001,
        "title": "千と千尋の神隠し",
        "release_date": "2001-07-20",
        "overview": "",
        "external_ids": {"imdb_id": None},
    },
}
SHOWS: dict[int, dict[str, Any]] = {
    4607: {
        "id": 4607,
        "name": "Lost",
        "first_air_date": "2004-09-22",
        "overview": "A synthetic overview of an island.",
        "external_ids": {"tvdb_id": 81189, "imdb_id": "tt0411008"},
    },
    1399: {
        "id": 1399,
        "name": "Same Number, a Show",
        "first_air_date": "2011-04-17",
        "overview": "The show that shares its number with a film.",
        "external_ids": {"tvdb_id": 121361, "imdb_id": "tt0944947"},
    },
}
SEASONS: dict[tuple[int, int], list[dict[str, Any]]] = {
    (4607, 0): [
        {"episode_number": 1, "name": "Destination: Ø Special"},
        {"episode_number": 2, "name": "The Journey"},
    ],
    (4607, 1): [
        {"episode_number": 1, "name": "Pilot (1)"},
        {"episode_number": 2, "name": "Pilot (2)"},
        {"episode_number": 3, "name": "Tabula Rasa"},
    ],
}


@dataclass
class Answer:
    """What the stand-in answers one request with, instead of its catalogue's answer:
    a status, a body and headers (a Location among them), or silence (silent: no
    answer until the stand-in closes)."""

    status: int = 200
    body: bytes | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    silent: bool = False


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: str  # the request target as it came, path and query


class TmdbStandIn:
    """TMDB's v3 API as the lookup uses it, on 127.0.0.1 and a port of its own.

    It takes `accepted` (the API key or the token it lets in; anything else is answered
    401 status_code 7) and answers from its catalogue, unless the test queued answers in
    `scripted`: each request takes the next one there first."""

    def __init__(self, accepted: str = API_KEY) -> None:
        self.accepted = accepted
        self.requests: list[Request] = []
        # None in the list: the catalogue's answer, in its turn.
        self.scripted: list[Answer | None] = []
        self.released = threading.Event()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                standin._answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll: shutdown() waits for it at the end of every test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, *answers: Answer | None) -> None:
        self.scripted.extend(answers)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.requests.append(Request(parts.path, query, dict(handler.headers), handler.path))
        answer = self.scripted.pop(0) if self.scripted else None
        if answer is None:
            answer = self._catalogue_answer(handler, parts.path, query)
        if answer.silent:
            # Bounded: the client's timeout ends the wait long before this does.
            self.released.wait(30)
            return
        body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _catalogue_answer(
        self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]
    ) -> Answer:
        given = query.get("api_key", [""])[0]
        authorization = handler.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            given = authorization[len("Bearer ") :]
        if given != self.accepted:
            return Answer(401, INVALID_KEY)
        found = self._found(path, query)
        return Answer(200, found) if found is not None else Answer(404, NOT_FOUND)

    def _found(self, path: str, query: dict[str, list[str]]) -> dict[str, Any] | None:
        parts = path.split("/")[1:]
        if parts[:1] != ["3"]:
            return None
        parts = parts[1:]
        text = query.get("query", [""])[0].casefold()
        if parts == ["search", "movie"]:
            year = query.get("year", [""])[0]
            return {
                "results": [
                    _summary(movie)
                    for movie in MOVIES.values()
                    if text in movie["title"].casefold() and movie["release_date"].startswith(year)
                ]
            }
        if parts == ["search", "tv"]:
            year = query.get("first_air_date_year", [""])[0]
            return {
                "results": [
                    _summary(show)
                    for show in SHOWS.values()
                    if text in show["name"].casefold() and show["first_air_date"].startswith(year)
                ]
            }
        if len(parts) == 2 and parts[0] in ("movie", "tv") and parts[1].isdigit():
            catalogue = MOVIES if parts[0] == "movie" else SHOWS
            entry = catalogue.get(int(parts[1]))
            if entry is None:
                return None
            if query.get("append_to_response") == ["external_ids"]:
                return entry
            return _summary(entry)
        if len(parts) == 4 and parts[0] == "tv" and parts[2] == "season":
            episodes = SEASONS.get((int(parts[1]), int(parts[3])))
            if episodes is None:
                return None
            return {"season_number": int(parts[3]), "episodes": episodes}
        if len(parts) == 2 and parts[0] == "find":
            source = query.get("external_source", [""])[0]

            def known(entry: dict[str, Any]) -> bool:
                return str(entry["external_ids"].get(source)) == parts[1]

            return {
                "movie_results": [_summary(m) for m in MOVIES.values() if known(m)],
                "tv_results": [_summary(s) for s in SHOWS.values() if known(s)],
            }
        return None


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as a search lists it: without its external ids."""
    return {key: value for key, value in entry.items() if key != "external_ids"}
