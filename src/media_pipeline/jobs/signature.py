"""Signed job specs: a worker runs, and reconcile acts on, only what a trusted host wrote.

The signature covers the whole spec as its signer wrote it: job id, kind, item, paths,
destination, file list, the approval a filing job follows from, and the time it was
issued. It leaves out only what a worker changes on a retry (`attempts`, `not_before`,
`last_error`), none of which says what the script does or where.

A spec is refused when it does not verify with a key trusted under the name it gives
(keys.py), when that name may not sign it (a ripper signs only its own drives' rips),
or when it was issued more than `jobs.spec_lifetime_days` ago or in the future. A spec
copied under another job's name fails its id check; a copy of one that already ran,
put back under its own name, is refused while its finished folder is on the share
(kept `retention_days`, which is at least the lifetime) and by reconcile, which knows
every job id it finished.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from datetime import UTC, datetime

from media_pipeline.config.settings import Config
from media_pipeline.jobs.keys import CONTROLLER, Signer, this_host_signer
from media_pipeline.jobs.spec import SpecError
from media_pipeline.pipeline import DISC_STAGE

SIGNATURE = "signature"
SIGNED_BY = "signed_by"
ISSUED_AT = "issued_at"
# What a worker rewrites when it puts a job back for another attempt.
UNSIGNED = frozenset({SIGNATURE, "attempts", "not_before", "last_error"})
# Kept apart from every other thing a key might sign.
_DOMAIN = b"media-pipeline job spec 1\n"
# How far ahead of this host's clock an issue time may be (clocks of hosts differ).
CLOCK_SKEW_SECONDS = 300
# The words a refusal of an unsigned spec starts with: such a refusal is not a refusal
# of its item's job (nothing the controller wrote was refused), so it moves no item.
FORGED = "not trusted"


def untrusted_refusal(reason: str) -> bool:
    """Whether a rejected/ entry's reason (`state/NAME: what`, NAME a job's name with no
    ': ' in it) says its spec was not trusted, by the worker or by reconcile. Read from
    its start: a text anywhere later (a link's name in a hazard) must not pass for it."""
    _where, _, said = reason.partition(": ")
    return said.startswith((f"{FORGED}: ", f"refused, nothing was run: {FORGED}: "))


class ForgedSpec(SpecError):
    """The spec was not written by a host this one trusts, or not for now."""

    def __init__(self, problem: str):
        super().__init__(f"{FORGED}: {problem}")


def _canonical(domain: bytes, data: dict, left_out: frozenset[str]) -> bytes:
    """What a signature covers: the domain, then data but left_out in one JSON form."""
    fields = {name: value for name, value in data.items() if name not in left_out}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return domain + text.encode("utf-8", "surrogatepass")


def _message(spec: dict) -> bytes:
    return _canonical(_DOMAIN, spec, UNSIGNED)


def _sign(signer: Signer, message: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signature = Ed25519PrivateKey.from_private_bytes(signer.private).sign(message)
    return base64.b64encode(signature).decode()


@functools.lru_cache(maxsize=64)
def _public_key(raw: bytes):
    """A loaded key, kept: a claim loop checks every spec against the same few keys."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw)


def _verifies(keys: list[bytes], text: str, message: bytes) -> bool:
    """Whether text (a base64 signature) signs message with one of keys."""
    from cryptography.exceptions import InvalidSignature

    try:
        signature = base64.b64decode(text, validate=True)
    except binascii.Error:
        return False
    for key in keys:
        try:
            _public_key(key).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def sign_spec(spec: dict, signer: Signer, now: float | None = None) -> dict:
    issued = {
        **spec,
        SIGNED_BY: signer.name,
        ISSUED_AT: int(now if now is not None else time.time()),
    }
    issued.pop(SIGNATURE, None)
    return {**issued, SIGNATURE: _sign(signer, _message(issued))}


def signed(config: Config, spec: dict) -> dict:
    """spec signed with this host's key (made on first use)."""
    return sign_spec(spec, this_host_signer(config))


def check_signature(
    spec: dict, trusted: dict[str, list[bytes]], now: float, lifetime_seconds: float
) -> str:
    """The name of the host that signed spec; ForgedSpec when it is not to be used."""
    name, text = spec.get(SIGNED_BY), spec.get(SIGNATURE)
    if not isinstance(name, str) or not isinstance(text, str):
        raise ForgedSpec("it carries no signature")
    keys = trusted.get(name)
    if not keys:
        raise ForgedSpec(f"it is signed by '{name[:64]}', whose key is not trusted here")
    if not _verifies(keys, text, _message(spec)):
        raise ForgedSpec(f"its signature does not verify with {name}'s key (changed since?)")
    if name != CONTROLLER and (spec.get("kind") != DISC_STAGE.kind or spec.get("host") != name):
        raise ForgedSpec(f"{name}'s key signs only the rips of {name}'s own drives")
    issued = spec.get(ISSUED_AT)
    if isinstance(issued, bool) or not isinstance(issued, int):
        raise ForgedSpec("it carries no issue time")
    if issued > now + CLOCK_SKEW_SECONDS:
        raise ForgedSpec(f"it was issued {issued - now:.0f} s in the future")
    if now - issued > lifetime_seconds:
        days = (now - issued) / 86400
        raise ForgedSpec(
            f"it was issued {days:.1f} days ago, longer than jobs.spec_lifetime_days "
            "(a copy put back on the share?)"
        )
    return name


def lifetime_seconds(config: Config) -> float:
    return config.jobs.spec_lifetime_days * 86400.0


def verified_by(config: Config, spec: dict, trusted: dict[str, list[bytes]]) -> str:
    """check_signature with this host's settings and clock."""
    return check_signature(spec, trusted, time.time(), lifetime_seconds(config))


# -- cancels ---------------------------------------------------------------------------
# `mp cancel` puts a `cancel` file in the job's folder: the controller's signature of
# the job's id. A worker stops a job, and reconcile ends an item as cancelled, only for
# a cancel that verifies: a share writer could otherwise stop any job, or cancel any
# item by moving its pending job into cancelled/.
_CANCEL_DOMAIN = b"media-pipeline cancel 1\n"


def signed_cancel(config: Config, job_id: str) -> str:
    """The text of a cancel file for job_id, signed with this (the controller's) key."""
    signer = this_host_signer(config)
    return f"{signer.name} {_sign(signer, _CANCEL_DOMAIN + job_id.encode())}\n"


def cancel_verifies(text: str, job_id: str, trusted: dict[str, list[bytes]]) -> bool:
    """Whether a cancel file's text is the controller's cancel of job_id."""
    words = text.split()
    if len(words) != 2 or words[0] != CONTROLLER:
        return False
    return _verifies(trusted.get(CONTROLLER, []), words[1], _CANCEL_DOMAIN + job_id.encode())


# -- outcomes ----------------------------------------------------------------------------
# A job's result.json is signed by the host that ended it (its worker, or the controller
# taking it back), with that host's own key: reconcile fails an item only for an outcome
# a host it trusts wrote. A genuine job moved into failed/ by a share writer carries no
# such outcome, and fails nothing.
_RESULT_DOMAIN = b"media-pipeline job outcome 1\n"
RESULT_JOB = "job"


def _result_message(result: dict) -> bytes:
    return _canonical(_RESULT_DOMAIN, result, frozenset({SIGNATURE}))


def signed_result(config: Config, job_id: str, result: dict, signer: Signer | None = None) -> dict:
    """result, for job_id, signed with this host's key (made on first use)."""
    signer = signer or this_host_signer(config)
    unsigned = {**result, RESULT_JOB: job_id, SIGNED_BY: signer.name}
    unsigned.pop(SIGNATURE, None)
    return {**unsigned, SIGNATURE: _sign(signer, _result_message(unsigned))}


def result_problem(result: dict | None, job_id: str, trusted: dict[str, list[bytes]]) -> str | None:
    """Why an outcome is not one to act on for job_id, or None when a trusted host
    signed it. (Any trusted host: the controller trusts its workers' keys for this.)"""
    if not result:
        return f"{FORGED}: no result.json, or one that is not a JSON object"
    name, text = result.get(SIGNED_BY), result.get(SIGNATURE)
    if not isinstance(name, str) or not isinstance(text, str):
        return (
            f"{FORGED}: its result.json carries no signature (a job moved into failed/ by "
            "hand, or ended by a worker of an earlier release)"
        )
    if result.get(RESULT_JOB) != job_id:
        return f"{FORGED}: its result.json is another job's"
    keys = trusted.get(name)
    if not keys:
        return (
            f"{FORGED}: its result.json is signed by '{name[:64]}', whose key this "
            f"controller does not trust (run 'mp keys show' on {name[:64]}, then the "
            "'mp keys trust' line it prints here)"
        )
    if not _verifies(keys, text, _result_message(result)):
        return f"{FORGED}: its result.json does not verify with {name[:64]}'s key"
    return None


# -- the live list -----------------------------------------------------------------------
# The controller's signed list of the jobs it wants run now (jobs/live.py). A worker
# claims a job the controller signed only while a fresh list names it: a signed job put
# back in pending/ after a person cancelled it (or after its item moved on) is named by
# no list issued since.
_LIVE_DOMAIN = b"media-pipeline live jobs 1\n"
LIVE_JOBS = "jobs"
LIVE_MADE = "made"  # when, to the microsecond, in the form of a job id's time
# Jobs a person cancelled that a copy could still verify (whoever signed them).
LIVE_STOPPED = "stopped"


def _live_message(live: dict) -> bytes:
    return _canonical(_LIVE_DOMAIN, live, frozenset({SIGNATURE}))


def signed_live(
    signer: Signer, job_ids: list[str], now: float, stopped: list[str] | None = None
) -> dict:
    made = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S%f")
    unsigned = {
        LIVE_JOBS: sorted(job_ids),
        LIVE_STOPPED: sorted(stopped or []),
        LIVE_MADE: made,
        SIGNED_BY: signer.name,
        ISSUED_AT: int(now),
    }
    return {**unsigned, SIGNATURE: _sign(signer, _live_message(unsigned))}


def live_problem(
    live: dict | None, trusted: dict[str, list[bytes]], now: float, fresh: float
) -> str | None:
    """Why a live list is not one to claim by (None when the controller signed it and
    it is no older than fresh seconds)."""
    if not live:
        return "there is none yet (the controller writes it at its next run)"
    name, text, issued = live.get(SIGNED_BY), live.get(SIGNATURE), live.get(ISSUED_AT)
    jobs, made = live.get(LIVE_JOBS), live.get(LIVE_MADE)
    if name != CONTROLLER or not isinstance(text, str):
        return f"{FORGED}: it is not the controller's"
    if not isinstance(jobs, list) or not isinstance(made, str):
        return f"{FORGED}: it is not the controller's"
    if not _verifies(trusted.get(CONTROLLER, []), text, _live_message(live)):
        return f"{FORGED}: it does not verify with the controller's key"
    if isinstance(issued, bool) or not isinstance(issued, int) or issued > now + CLOCK_SKEW_SECONDS:
        return f"{FORGED}: its issue time is not a time before now"
    return stale_problem(live, now, fresh)


def stale_problem(live: dict, now: float, fresh: float) -> str | None:
    """Why a list that verifies is too old to claim a job by (None when fresh)."""
    issued = live[ISSUED_AT]
    if now - issued > fresh:
        return (
            f"it is {(now - issued) / 60:.0f} minutes old: is the controller's timer "
            "running ('systemctl status mp-reconcile.timer' there)?"
        )
    return None
