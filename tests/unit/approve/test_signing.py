"""A decision's signature covers every field but itself, and nothing else verifies."""

from __future__ import annotations

import pytest

from media_pipeline.approve.signing import SIGNATURE, sign, sign_text, text_verifies, verifies

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


def test_the_signed_form_is_the_same_from_release_to_release():
    """Decision files outlive upgrades, so the form a signature covers is fixed: keys
    sorted, no spaces, text as UTF-8 (not \\u escapes). This signature was made by the
    release that fixed it; a decision signed then must verify now. (Found by mutation
    testing: sort_keys or ensure_ascii changed, every other test still passed.)"""
    decision = {
        "status": "approved",
        "at": "2026-11-25T00:00:00+00:00",
        "item": {"uid": "ab12", "title": "Amélie (2001)"},
        "by": "owner@ct303",
    }
    signed = "086a6f6dd59b19130334960b5510108afee4488758994f168e0c56684c5d71e7"
    assert sign(decision, KEY)[SIGNATURE] == signed
    assert verifies({**decision, SIGNATURE: signed}, KEY)
