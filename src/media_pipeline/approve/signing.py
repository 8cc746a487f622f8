"""Signed decisions: an approval file on the share counts only if the controller wrote it.

Anyone who can write the share can write `approval.filebot_confirm.json`; one forged
with `"destination": "/etc/cron.d/evil"` was once restored as approved after a database
loss. Each decision therefore carries "signature", an HMAC-SHA256 over its other
fields with a key that lives only on the controller's own disk (config `decision_key`,
made on first use, mode 0600). Reconcile restores only decisions whose signature
verifies; for the rest the gate asks again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from media_pipeline.config.settings import Config
from media_pipeline.store import private_key

SIGNATURE = "signature"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _message(decision: dict) -> bytes:
    """The decision's fields but the signature, in one canonical form."""
    fields = {name: value for name, value in decision.items() if name != SIGNATURE}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decision_key(config: Config) -> bytes:
    return private_key(config.decision_key)


def sign_text(text: str, key: bytes) -> str:
    """The HMAC of one short text the controller keeps on the share (an item's episode
    range), so that what comes back after a database loss is what it wrote."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def text_verifies(text: str, signature: object, key: bytes) -> bool:
    if not key or not isinstance(signature, str) or not _HEX.match(signature):
        return False
    return hmac.compare_digest(signature, sign_text(text, key))


def sign(decision: dict, key: bytes) -> dict:
    return {**decision, SIGNATURE: hmac.new(key, _message(decision), hashlib.sha256).hexdigest()}


def verifies(decision: dict, key: bytes) -> bool:
    signature = decision.get(SIGNATURE)
    if not isinstance(signature, str) or not _HEX.match(signature):
        return False
    expected = hmac.new(key, _message(decision), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
