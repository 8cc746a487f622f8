"""The TMDB client without a network: the credential told apart by its shape, refused in
a sentence that does not quote it, never in a repr; ids and years checked before any
request is made."""

from __future__ import annotations

import pytest

from media_pipeline.library.tmdb import (
    ACCESS_TOKEN,
    API_KEY,
    TmdbClient,
    TmdbError,
    TmdbSettings,
    credential_kind,
)

KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "eyJhbGciOiJIUzI1NiJ9." + "eyJhdWQiOiJ4In0" * 6 + ".c2lnbmF0dXJlLXNpZ25hdHVyZQ"
# Nothing listens on port 9 of 127.0.0.1; none of these tests gets as far as a request.
NOWHERE = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("credential", "kind"),
    [(KEY, API_KEY), (KEY.upper(), API_KEY), (TOKEN, ACCESS_TOKEN)],
)
def test_a_credential_is_told_apart_by_its_shape(credential, kind):
    assert credential_kind(credential) == kind


@pytest.mark.parametrize(
    "credential",
    [
        KEY[:-1],  # 31 hex digits
        KEY + "0",
        KEY[:-1] + "g",
        "a.b.c",  # a JWT's shape, far too short
        TOKEN + ".more",  # four parts
        TOKEN.replace("eyJhdWQ", "ey+hdWQ", 1),  # not base64url
        "",
        f"Bearer {TOKEN}",
        f" {KEY}",
    ],
)
def test_anything_else_is_refused_in_one_sentence_without_it(credential):
    with pytest.raises(TmdbError) as raised:
        TmdbClient(TmdbSettings(credential, base_url=NOWHERE))
    assert raised.value.kind == "credential"
    message = str(raised.value)
    assert message.startswith("the TMDB credential is neither a v3 API key")
    assert "\n" not in message
    assert credential == "" or credential not in message


@pytest.mark.parametrize("credential", [KEY, TOKEN])
def test_no_repr_shows_the_credential(credential):
    settings = TmdbSettings(credential, base_url=NOWHERE)
    assert credential not in repr(settings) and credential not in str(settings)
    client = TmdbClient(settings)
    assert credential not in repr(client) and credential not in str(client)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.movie_details(0),
        lambda c: c.tv_details(-1),
        lambda c: c.movie_details(True),
        lambda c: c.movie_details("949"),
        lambda c: c.season(4607, -1),
        lambda c: c.season(4607, 1.0),
        lambda c: c.search_movie("Heat", year=95),
        lambda c: c.search_tv("Lost", first_air_year="2004"),
        lambda c: c.find("tt12"),
        lambda c: c.find("nm0000001"),
        lambda c: c.find(0),
        lambda c: c.find("١٢٣"),  # digits, but not ASCII ones
        lambda c: c.find("81189/../../3/movie/949"),
    ],
)
def test_an_id_or_year_that_is_none_is_refused_before_any_request(call):
    client = TmdbClient(TmdbSettings(KEY, base_url=NOWHERE))
    with pytest.raises(TmdbError) as raised:
        call(client)
    assert raised.value.kind == "invalid_request"
