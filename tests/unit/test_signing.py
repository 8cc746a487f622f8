"""A decision's signature covers every field but itself, and nothing else verifies."""

from __future__ import annotations

import pytest

from media_pipeline.signing import SIGNATURE, sign, sign_text, text_verifies, verifies

KEY = b"k" * 32
DECISION = {
    "status": "approved",
    "at": "2026-11-25T00:00:00+00:00",
    "by": "owner@ct303",
    "reason": None,
    "destination": "/library/Movies/Heat (1995)/Heat (1995).mkv",
    "gate": "filebot_confirm",
    "requested_at": "2026-11-24T00:00:00+00:00",
    "item": {"uid": "ab12", "type": "movie", "title": "Heat (1995)", "disc_label": ""},
    "prompt": {"destination": "/library/Movies/Heat (1995)/Heat (1995).mkv"},
    "roles": None,
}


def test_a_signed_decision_verifies_with_its_key_only():
    signed = sign(DECISION, KEY)
    assert verifies(signed, KEY)
    assert not verifies(signed, b"x" * 32)
    assert not verifies(DECISION, KEY), "no signature"
    assert not verifies({**signed, SIGNATURE: signed[SIGNATURE].upper()}, KEY)


@pytest.mark.parametrize("field", sorted(DECISION))
def test_changing_any_field_breaks_the_signature(field):
    signed = sign(DECISION, KEY)
    value = DECISION[field]
    other = {**value, "title": "Other"} if isinstance(value, dict) else f"{value}!"
    assert not verifies({**signed, field: other}, KEY), f"{field} is not covered"
    assert not verifies({name: v for name, v in signed.items() if name != field}, KEY)


def test_a_field_added_breaks_the_signature():
    assert not verifies({**sign(DECISION, KEY), "extra": 1}, KEY)


def test_a_signed_text_verifies_only_as_written():
    signature = sign_text("1-3", KEY)
    assert text_verifies("1-3", signature, KEY)
    assert not text_verifies("1-4", signature, KEY)
    assert not text_verifies("1-3", signature, b"")
    assert not text_verifies("1-3", None, KEY)
