"""A small client of TMDB's v3 API: search, details with external ids, a season's
episodes and find by IMDb or TVDB id, with the credential kept out of every error,
log line and repr.

The credential is told apart by its shape: a v4 read access token (a JWT) goes in an
`Authorization: Bearer` header, a v3 API key (32 hex digits) in the `api_key` query
parameter, the only case where a secret is in a URL. Redirects are never followed
(urllib would carry the header, or the key in the query, to wherever they point), and
proxies named by the environment are not used: a timer's environment is no place to
decide where a secret goes.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from media_pipeline.errors import PipelineError
from media_pipeline.items.names import printable
from media_pipeline.logs import redact
from media_pipeline.notify.post import RefuseRedirects

log = logging.getLogger(__name__)

API_URL = "https://api.themoviedb.org"
MOVIE = "movie"
TV = "tv"

# A v3 API key: 32 hex digits. A v4 read access token: a JWT, three base64url parts
# joined by dots, a couple of hundred characters long; 64 keeps out a short typo.
_API_KEY = re.compile(r"[0-9a-fA-F]{32}")
_ACCESS_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_MIN_TOKEN_LENGTH = 64
API_KEY = "v3 API key"
ACCESS_TOKEN = "read access token"

_IMDB_ID = re.compile(r"tt[0-9]{7,10}")
# An answer larger than this is no answer of TMDB's to these calls (a season's list is
# tens of kilobytes): refused rather than read into memory.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# Answers worth another try after a wait: too many requests, and a server's bad moment.
_RETRIED = {429, 500, 502, 503, 504}


class TmdbError(PipelineError):
    """A lookup that gave no answer, in one sentence that never holds the credential.
    kind: "credential" (not a key or a token), "refused" (401), "not_found" (404),
    "rate_limited" (429 on every try), "timeout", "unreachable", "invalid_answer" (not
    JSON, or not TMDB's shape), "http" (any other status, a redirect among them) or
    "invalid_request" (an id or a year that is none)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class TmdbSettings:
    """Where TMDB is and how long to wait for it. The credential is left out of the
    repr, so a settings object in a log line or a traceback's locals shows no secret."""

    credential: str = field(repr=False)
    base_url: str = API_URL
    timeout_seconds: float = 10.0
    # Tries of one request in all (429 and 5xx are tried again), and the longest wait
    # between two: a Retry-After above it gives up at once rather than block the caller.
    max_tries: int = 3
    max_wait_seconds: float = 10.0


class ExternalIds(NamedTuple):
    imdb_id: str | None = None
    tvdb_id: int | None = None


class Title(NamedTuple):
    """A movie or a show, as a search, its details or a find gives it."""

    media_type: str  # MOVIE or TV
    tmdb_id: int
    title: str
    year: int | None
    overview: str
    external_ids: ExternalIds = ExternalIds()


class Episode(NamedTuple):
    season_number: int
    episode_number: int
    name: str


class Season(NamedTuple):
    show_id: int
    season_number: int
    episodes: tuple[Episode, ...]


def credential_kind(credential: str) -> str:
    """API_KEY or ACCESS_TOKEN, by the credential's shape; TmdbError for anything else,
    in a sentence that does not quote it."""
    if _API_KEY.fullmatch(credential):
        return API_KEY
    if len(credential) >= _MIN_TOKEN_LENGTH and _ACCESS_TOKEN.fullmatch(credential):
        return ACCESS_TOKEN
    raise TmdbError(
        "credential",
        "the TMDB credential is neither a v3 API key (32 hex digits) nor a v4 read access "
        "token (three base64url parts joined by dots); give one of them as TMDB shows it",
    )


class TmdbClient:
    """The calls this project makes to TMDB. sleep is what waits between tries (a test
    gives one that records the waits)."""

    def __init__(
        self, settings: TmdbSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._kind = credential_kind(settings.credential)
        self._settings = settings
        self._sleep = sleep
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), RefuseRedirects)

    def __repr__(self) -> str:
        return f"TmdbClient({self._settings.base_url!r}, {self._kind})"

    def search_movie(self, query: str, year: int | None = None) -> list[Title]:
        parameters: dict[str, str] = {"query": query}
        if year is not None:
            parameters["year"] = str(_year(year))
        answer = self._get("/3/search/movie", parameters)
        return [_title(MOVIE, entry) for entry in _list(answer, "results")]

    def search_tv(self, query: str, first_air_year: int | None = None) -> list[Title]:
        parameters: dict[str, str] = {"query": query}
        if first_air_year is not None:
            parameters["first_air_date_year"] = str(_year(first_air_year))
        answer = self._get("/3/search/tv", parameters)
        return [_title(TV, entry) for entry in _list(answer, "results")]

    def movie_details(self, movie_id: int) -> Title:
        answer = self._get(f"/3/movie/{_tmdb_id(movie_id)}", {"append_to_response": "external_ids"})
        return _title(MOVIE, answer, with_external_ids=True)

    def tv_details(self, show_id: int) -> Title:
        answer = self._get(f"/3/tv/{_tmdb_id(show_id)}", {"append_to_response": "external_ids"})
        return _title(TV, answer, with_external_ids=True)

    def season(self, show_id: int, season_number: int) -> Season:
        """A season's episodes; season 0 holds the specials."""
        if type(season_number) is not int or season_number < 0:
            raise TmdbError("invalid_request", "a season number is a whole number, 0 or more")
        answer = self._get(f"/3/tv/{_tmdb_id(show_id)}/season/{season_number}", {})
        episodes = tuple(
            Episode(
                season_number,
                _whole(entry, "episode_number"),
                _text(entry, "name"),
            )
            for entry in _list(answer, "episodes")
        )
        return Season(show_id, season_number, episodes)

    def find(self, external_id: str | int) -> list[Title]:
        """The movies and shows TMDB knows by an IMDb id ("tt0113277") or a TVDB id (a
        number, or its digits)."""
        if isinstance(external_id, str) and _IMDB_ID.fullmatch(external_id):
            source, known = "imdb_id", ExternalIds(imdb_id=external_id)
        elif isinstance(external_id, str) and external_id.isascii() and external_id.isdigit():
            source, known = "tvdb_id", ExternalIds(tvdb_id=int(external_id))
        elif type(external_id) is int and external_id > 0:
            source, known = "tvdb_id", ExternalIds(tvdb_id=external_id)
        else:
            raise TmdbError(
                "invalid_request",
                "an external id is an IMDb id (tt and 7 or more digits) or a TVDB id (a number)",
            )
        found = str(known.imdb_id or known.tvdb_id)
        answer = self._get(f"/3/find/{found}", {"external_source": source})
        return [
            _title(MOVIE, entry)._replace(external_ids=known)
            for entry in _list(answer, "movie_results")
        ] + [
            _title(TV, entry)._replace(external_ids=known) for entry in _list(answer, "tv_results")
        ]

    def _get(self, path: str, parameters: Mapping[str, str]) -> Any:
        """The JSON answer to GET path, tried again after 429 and 5xx within the
        settings' bounds; TmdbError otherwise."""
        settings = self._settings
        query = dict(parameters)
        headers = {"Accept": "application/json", "User-Agent": "media-pipeline"}
        if self._kind == ACCESS_TOKEN:
            headers["Authorization"] = f"Bearer {settings.credential}"
        else:
            query["api_key"] = settings.credential
        url = settings.base_url.rstrip("/") + path
        url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        for attempt in range(1, settings.max_tries + 1):
            log.debug("TMDB GET %s (try %d of %d)", path, attempt, settings.max_tries)
            try:
                return self._hidden(lambda: self._answer(url, headers, path))
            except _TryAgain as again:
                if attempt == settings.max_tries:
                    raise self._error(again.kind, again.message) from None
                wait = again.wait if again.wait is not None else float(2 ** (attempt - 1))
                if wait > settings.max_wait_seconds:
                    raise self._error(
                        again.kind,
                        f"{again.message}; TMDB asks to wait {wait:g} s, more than "
                        f"max_wait_seconds ({settings.max_wait_seconds:g})",
                    ) from None
                log.info("TMDB %s: %s; trying again in %g s", path, again.message, wait)
                self._sleep(wait)
        raise AssertionError("unreachable: max_tries is at least 1")  # pragma: no cover

    def _hidden(self, call: Callable[[], Any]) -> Any:
        """call(), with any TmdbError's text cleared of the credential once more (a
        server may echo it back in a status message) and no cause chained to it."""
        try:
            return call()
        except TmdbError as error:
            raise self._error(error.kind, str(error)) from None

    def _error(self, kind: str, message: str) -> TmdbError:
        return TmdbError(kind, redact(message, [self._settings.credential]))

    def _answer(self, url: str, headers: dict[str, str], path: str) -> Any:
        settings = self._settings
        request = urllib.request.Request(url, headers=headers, method="GET")
        # urllib's timeout is for each wait; the whole answer gets the timeout too.
        deadline = time.monotonic() + settings.timeout_seconds
        try:
            with self._opener.open(request, timeout=settings.timeout_seconds) as response:
                body = _read(response, deadline)
        except urllib.error.HTTPError as error:
            try:
                body = _read(error, deadline)
            except (OSError, http.client.HTTPException, TmdbError):
                body = b""
            self._refusal(path, error.code, error.headers, body)
        except TimeoutError:
            raise TmdbError(
                "timeout",
                f"TMDB did not answer {path} within {settings.timeout_seconds:g} s",
            ) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise TmdbError(
                    "timeout",
                    f"TMDB did not answer {path} within {settings.timeout_seconds:g} s",
                ) from None
            raise TmdbError(
                "unreachable", f"TMDB could not be reached for {path}: {error.reason}"
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise TmdbError(
                "unreachable", f"TMDB could not be reached for {path}: {error}"
            ) from None
        try:
            return json.loads(body)
        except ValueError:
            raise TmdbError("invalid_answer", f"TMDB's answer to {path} is not JSON") from None

    def _refusal(self, path: str, status: int, headers: Any, body: bytes) -> None:
        """Raise what an answer other than 2xx means."""
        code, message = _status_of(body)
        said = f"status_code {code}" if code is not None else f"HTTP {status}"
        if status == 401:
            other = API_KEY if self._kind == ACCESS_TOKEN else ACCESS_TOKEN
            raise TmdbError(
                "refused",
                f"TMDB refused the {self._kind} ({said}): if you have a {other}, give that instead",
            )
        if status == 404:
            raise TmdbError("not_found", f"TMDB has nothing at {path} ({said})")
        if status in _RETRIED:
            kind = "rate_limited" if status == 429 else "http"
            raise _TryAgain(
                kind,
                f"TMDB answered {path} with HTTP {status}" + (f" ({message})" if message else ""),
                _retry_after(headers),
            )
        if 300 <= status < 400:
            raise TmdbError(
                "http", f"TMDB answered {path} with a redirect (HTTP {status}), not followed"
            )
        raise TmdbError(
            "http",
            f"TMDB answered {path} with HTTP {status}" + (f" ({message})" if message else ""),
        )


class _TryAgain(Exception):
    def __init__(self, kind: str, message: str, wait: float | None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.wait = wait


def _read(response: Any, deadline: float) -> bytes:
    """The answer's body, within the deadline and MAX_ANSWER_BYTES."""
    chunks, size = [], 0
    while chunk := response.read(65536):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise TmdbError("invalid_answer", f"TMDB's answer is over {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() > deadline:
            raise TimeoutError
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds, when it is given as seconds (an HTTP date is not used:
    the back-off's own wait stands in for it)."""
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,3})?", value):
        return float(value)
    return None


def _status_of(body: bytes) -> tuple[int | None, str]:
    """TMDB's status_code and status_message in an error's body, when it has them; the
    message shown printable and short."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None, ""
    if not isinstance(answer, dict):
        return None, ""
    code = answer.get("status_code")
    message = answer.get("status_message")
    return (
        code if type(code) is int else None,
        printable(message[:200]) if isinstance(message, str) else "",
    )


def _invalid(what: str) -> TmdbError:
    return TmdbError("invalid_answer", f"TMDB's answer is not what TMDB answers: {what}")


def _list(answer: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(answer, dict):
        raise _invalid("not an object")
    entries = answer.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise _invalid(f"{key} is not a list of objects")
    return entries


def _whole(entry: Any, key: str) -> int:
    if not isinstance(entry, dict):
        raise _invalid("not an object")
    value = entry.get(key)
    if type(value) is not int or value < 0:
        raise _invalid(f"{key} is not a whole number")
    return value


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{key} is not text")
    return value


def _title(media_type: str, entry: Any, with_external_ids: bool = False) -> Title:
    tmdb_id = _whole(entry, "id")
    name = _text(entry, "title" if media_type == MOVIE else "name")
    if not name:
        raise _invalid(
            f"{media_type} {tmdb_id} has no {'title' if media_type == MOVIE else 'name'}"
        )
    date = _text(entry, "release_date" if media_type == MOVIE else "first_air_date")
    year = int(date[:4]) if re.match(r"[0-9]{4}-", date) else None
    external = ExternalIds()
    if with_external_ids:
        ids = entry.get("external_ids") or {}
        if not isinstance(ids, dict):
            raise _invalid("external_ids is not an object")
        imdb_id = ids.get("imdb_id")
        tvdb_id = ids.get("tvdb_id")
        external = ExternalIds(
            imdb_id if isinstance(imdb_id, str) and _IMDB_ID.fullmatch(imdb_id) else None,
            tvdb_id if type(tvdb_id) is int and tvdb_id > 0 else None,
        )
    return Title(media_type, tmdb_id, name, year, _text(entry, "overview"), external)


def _tmdb_id(value: int) -> int:
    if type(value) is not int or value <= 0:
        raise TmdbError("invalid_request", "a TMDB id is a whole number above 0")
    return value


def _year(value: int) -> int:
    if type(value) is not int or not 1800 <= value <= 9999:
        raise TmdbError("invalid_request", "a year is a whole number like 1995")
    return value
