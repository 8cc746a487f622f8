"""Signed job specs, cancels, outcomes and the live list: what verifies, and each way a
copy, an edit or another host's key is refused. Real Ed25519 keys, no files."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from media_pipeline.config.settings import Config, JobSettings
from media_pipeline.jobs.keys import CONTROLLER, Signer, public_raw
from media_pipeline.jobs.signature import (
    CLOCK_SKEW_SECONDS,
    FORGED,
    ISSUED_AT,
    LIVE_JOBS,
    LIVE_MADE,
    LIVE_STOPPED,
    RESULT_JOB,
    SIGNATURE,
    SIGNED_BY,
    UNSIGNED,
    ForgedSpec,
    _message,
    _sign,
    cancel_verifies,
    check_signature,
    lifetime_seconds,
    live_problem,
    result_problem,
    sign_spec,
    signed_live,
    signed_result,
    stale_problem,
    untrusted_refusal,
    verified_by,
)
from media_pipeline.jobs.spec import SpecError

NOW = 1_800_000_000.0
DAY = 86400.0
LIFETIME = 14 * DAY
JOB_ID = "job_p500_20270115T080000000000_remux_movie_0123456789ab_Heat-1995"
RIP_ID = "job_p100_20270115T080000000000_rip_movie_0123456789ab_Heat-1995"

SPEC: dict[str, Any] = {
    "id": JOB_ID,
    "kind": "remux",
    "item": {"uid": "0123456789ab", "type": "movie", "title": "Heat (1995)", "disc_label": ""},
    "input_dir": "/mnt/staging/01-ripped/movie/Heat (1995)",
    "output_dir": "/mnt/staging/02-remuxed/movie/Heat (1995)",
    "destination": "",
    "priority": 500,
    "attempts": 0,
    "max_attempts": 3,
    "created_at": "2027-01-15T08:00:00+00:00",
    "not_before": 0,
}
RIP_SPEC: dict[str, Any] = {
    **SPEC,
    "id": RIP_ID,
    "kind": "rip",
    "device": "/dev/sr0",
    "host": "ct302",
}


def new_signer(name: str) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate().private_bytes_raw())


CONTROLLER_KEY = new_signer(CONTROLLER)
RIPPER_KEY = new_signer("ct302")
STRANGER_KEY = new_signer(CONTROLLER)  # calls itself the controller; nobody trusts its key
TRUSTED = {
    CONTROLLER: [public_raw(CONTROLLER_KEY.private)],
    "ct302": [public_raw(RIPPER_KEY.private)],
}


# A controller's config, made in code: no key file named, and none read (a signer is
# given wherever one is needed).
CONFIG = Config(
    source="test",
    staging_root="/mnt/staging",
    library_root="/mnt/library",
    database="/var/lib/media-pipeline/state.db",
    queue_dir="/mnt/staging/.pipeline/jobs",
    decision_key="/var/lib/media-pipeline/decision.key",
    workers={},
    scripts={},
    gates=(),
)


def forged_problem(spec: dict, now: float = NOW, trusted: dict | None = None) -> str:
    """The sentence check_signature refuses spec with."""
    with pytest.raises(ForgedSpec) as refused:
        check_signature(spec, TRUSTED if trusted is None else trusted, now, LIFETIME)
    return str(refused.value)


# -- specs -------------------------------------------------------------------------------


def test_a_spec_signed_by_the_controller_verifies_as_its():
    signed = sign_spec(SPEC, CONTROLLER_KEY, now=NOW)
    assert signed[SIGNED_BY] == CONTROLLER and signed[ISSUED_AT] == int(NOW)
    assert {name: signed[name] for name in SPEC} == SPEC
    assert check_signature(signed, TRUSTED, NOW, LIFETIME) == CONTROLLER


def test_a_refusal_is_a_spec_error_that_says_it_was_not_trusted():
    problem = forged_problem({**sign_spec(SPEC, CONTROLLER_KEY, now=NOW), "kind": "filebot"})
    assert problem.startswith(f"{FORGED}: ")
    assert issubclass(ForgedSpec, SpecError), "the worker refuses it as any bad spec"


def signed_fields() -> list[str]:
    return [*sorted(set(SPEC) - UNSIGNED), SIGNED_BY, ISSUED_AT]


@pytest.mark.parametrize("field", signed_fields())
def test_each_signed_field_changed_or_removed_is_refused(field):
    signed = sign_spec(SPEC, CONTROLLER_KEY, now=NOW)
    value = signed[field]
    if isinstance(value, dict):
        changed: object = {**value, "title": "Other (2001)"}
    elif isinstance(value, int):
        changed = value - 1
    else:
        changed = f"{value}x"
    for spec in ({**signed, field: changed}, {k: v for k, v in signed.items() if k != field}):
        with pytest.raises(ForgedSpec):
            check_signature(spec, TRUSTED, NOW, LIFETIME)


def test_a_field_added_after_signing_is_refused():
    signed = sign_spec(SPEC, CONTROLLER_KEY, now=NOW)
    problem = forged_problem({**signed, "args": ["--delete-everything"]})
    assert "does not verify with controller's key" in problem


def test_what_a_worker_rewrites_for_a_retry_is_left_out_of_the_signature():
    signed = sign_spec(SPEC, CONTROLLER_KEY, now=NOW)
    retried = {**signed, "attempts": 2, "not_before": int(NOW) + 600, "last_error": "exit 1"}
    assert check_signature(retried, TRUSTED, NOW, LIFETIME) == CONTROLLER
    assert {SIGNATURE, "attempts", "not_before", "last_error"} == UNSIGNED


def test_signing_again_replaces_an_old_signature_and_issue_time():
    first = sign_spec(SPEC, CONTROLLER_KEY, now=NOW - DAY)
    again = sign_spec(first, CONTROLLER_KEY, now=NOW)
    assert again[ISSUED_AT] == int(NOW) and again[SIGNATURE] != first[SIGNATURE]
    assert check_signature(again, TRUSTED, NOW, LIFETIME) == CONTROLLER


def test_a_spec_without_a_signature_is_refused():
    assert forged_problem(SPEC) == f"{FORGED}: it carries no signature"
    signed = sign_spec(SPEC, CONTROLLER_KEY, now=NOW)
    assert "carries no signature" in forged_problem({**signed, SIGNED_BY: None})
    assert "carries no signature" in forged_problem({**signed, SIGNATURE: 12})


def test_a_key_not_trusted_here_is_refused_even_under_a_trusted_name():
    by_stranger = sign_spec(SPEC, STRANGER_KEY, now=NOW)
    assert "does not verify with controller's key" in forged_problem(by_stranger)
    unknown = sign_spec(SPEC, new_signer("ct999"), now=NOW)
    assert forged_problem(unknown) == (
        f"{FORGED}: it is signed by 'ct999', whose key is not trusted here"
    )
    long_name = sign_spec(SPEC, new_signer("x" * 500), now=NOW)
    assert "'" + "x" * 64 + "'," in forged_problem(long_name), "a name is shown cut short"
    assert "is not trusted" in forged_problem(sign_spec(SPEC, CONTROLLER_KEY, now=NOW), trusted={})


def test_any_of_the_keys_trusted_for_a_name_verifies():
    trusted = {CONTROLLER: [public_raw(STRANGER_KEY.private), *TRUSTED[CONTROLLER]]}
    signed = sign_spec(SPEC, CONTROLLER_KEY, now=NOW)
    assert check_signature(signed, trusted, NOW, LIFETIME) == CONTROLLER


@pytest.mark.parametrize(
    "signature",
    ["not base64 at all!", base64.b64encode(b"short").decode(), ""],
)
def test_a_signature_that_is_not_one_is_refused(signature):
    signed = {**sign_spec(SPEC, CONTROLLER_KEY, now=NOW), SIGNATURE: signature}
    assert "does not verify" in forged_problem(signed)


def test_a_ripper_signs_the_rips_of_its_own_drives_and_nothing_else():
    own_rip = sign_spec(RIP_SPEC, RIPPER_KEY, now=NOW)
    assert check_signature(own_rip, TRUSTED, NOW, LIFETIME) == "ct302"
    only_rips = f"{FORGED}: ct302's key signs only the rips of ct302's own drives"
    assert forged_problem(sign_spec(SPEC, RIPPER_KEY, now=NOW)) == only_rips
    other_drive = sign_spec({**RIP_SPEC, "host": "ct303"}, RIPPER_KEY, now=NOW)
    assert forged_problem(other_drive) == only_rips
    no_host = sign_spec({k: v for k, v in RIP_SPEC.items() if k != "host"}, RIPPER_KEY, now=NOW)
    assert forged_problem(no_host) == only_rips
    # The controller signs any job, the rip of another host's drive included.
    by_controller = sign_spec(RIP_SPEC, CONTROLLER_KEY, now=NOW)
    assert check_signature(by_controller, TRUSTED, NOW, LIFETIME) == CONTROLLER


def test_a_spec_issued_in_the_future_is_refused_beyond_the_clock_skew():
    within = sign_spec(SPEC, CONTROLLER_KEY, now=NOW + CLOCK_SKEW_SECONDS)
    assert check_signature(within, TRUSTED, NOW, LIFETIME) == CONTROLLER
    ahead = sign_spec(SPEC, CONTROLLER_KEY, now=NOW + 3600)
    assert forged_problem(ahead) == f"{FORGED}: it was issued 3600 s in the future"


def test_a_spec_older_than_its_lifetime_is_refused_as_a_copy_put_back():
    last_day = sign_spec(SPEC, CONTROLLER_KEY, now=NOW - LIFETIME)
    assert check_signature(last_day, TRUSTED, NOW, LIFETIME) == CONTROLLER
    old = sign_spec(SPEC, CONTROLLER_KEY, now=NOW - LIFETIME - DAY / 2)
    assert forged_problem(old) == (
        f"{FORGED}: it was issued 14.5 days ago, longer than jobs.spec_lifetime_days "
        "(a copy put back on the share?)"
    )


@pytest.mark.parametrize("issued", [None, "1800000000", 1.8e9, True])
def test_a_spec_without_a_whole_issue_time_is_refused(issued):
    # Signed as it is: only the issue time is wrong, so only it can be the reason.
    unsigned = {**SPEC, SIGNED_BY: CONTROLLER, ISSUED_AT: issued}
    if issued is None:
        del unsigned[ISSUED_AT]
    signed = {**unsigned, SIGNATURE: _sign(CONTROLLER_KEY, _message(unsigned))}
    assert forged_problem(signed) == f"{FORGED}: it carries no issue time"


def test_this_hosts_settings_give_the_lifetime_and_the_clock():
    config = CONFIG._replace(jobs=JobSettings(spec_lifetime_days=2))
    assert lifetime_seconds(config) == 2 * DAY
    fresh = sign_spec(SPEC, CONTROLLER_KEY, now=time.time())
    assert verified_by(config, fresh, TRUSTED) == CONTROLLER
    stale = sign_spec(SPEC, CONTROLLER_KEY, now=time.time() - 3 * DAY)
    with pytest.raises(ForgedSpec, match=r"longer than jobs\.spec_lifetime_days"):
        verified_by(config, stale, TRUSTED)


@pytest.mark.parametrize(
    ("reason", "untrusted"),
    [
        (f"rejected/job_x: {FORGED}: it carries no signature", True),
        (f"running/job_x: refused, nothing was run: {FORGED}: it carries no signature", True),
        ("failed/job_x: script exited with 1", False),
        (f"rejected/job_x: a link named '{FORGED}: x' in its folder", False),
        (f"{FORGED}: no place before it", False),
    ],
)
def test_a_refusal_of_an_untrusted_spec_is_told_from_its_start_only(reason, untrusted):
    assert untrusted_refusal(reason) is untrusted


# -- cancels -----------------------------------------------------------------------------


def cancel_text(signer: Signer, job_id: str) -> str:
    """A cancel file as `mp cancel` writes it (signed_cancel, which reads this host's
    key file): the signer's name and its signature of the domain and the job's id. The
    domain is written out here: a cancel already on the share must verify after an
    upgrade."""
    message = b"media-pipeline cancel 1\n" + job_id.encode()
    signature = Ed25519PrivateKey.from_private_bytes(signer.private).sign(message)
    return f"{signer.name} {base64.b64encode(signature).decode()}\n"


def test_a_cancel_verifies_for_its_own_job_from_the_controller_only():
    text = cancel_text(CONTROLLER_KEY, JOB_ID)
    assert cancel_verifies(text, JOB_ID, TRUSTED)
    assert not cancel_verifies(text, RIP_ID, TRUSTED), "another job's cancel"
    assert not cancel_verifies(cancel_text(STRANGER_KEY, JOB_ID), JOB_ID, TRUSTED)
    # A ripper's key is trusted for its rips, but only the controller cancels.
    ripper = cancel_text(RIPPER_KEY, RIP_ID)
    assert not cancel_verifies(ripper, RIP_ID, TRUSTED)
    assert not cancel_verifies(ripper.replace("ct302", CONTROLLER), RIP_ID, TRUSTED)
    assert not cancel_verifies(text, JOB_ID, {}), "no controller key trusted"


@pytest.mark.parametrize("text", ["", "controller\n", "cancel please", "controller a b\n"])
def test_a_cancel_file_of_another_shape_does_not_verify(text):
    assert not cancel_verifies(text, JOB_ID, TRUSTED)


def test_a_spec_signature_is_no_cancel():
    """Each kind of signed text has its own domain: no signature passes for another's."""
    signed = sign_spec({"id": JOB_ID}, CONTROLLER_KEY, now=NOW)
    assert not cancel_verifies(f"{CONTROLLER} {signed[SIGNATURE]}", JOB_ID, TRUSTED)


# -- outcomes ----------------------------------------------------------------------------

RESULT = {"status": "failed", "exit_code": 1, "said": "no disc in the drive", "worker": "ct303"}
WORKER_KEY = new_signer("ct303")
WITH_WORKER = {**TRUSTED, "ct303": [public_raw(WORKER_KEY.private)]}


def test_a_result_signed_by_a_trusted_worker_is_acted_on():
    signed = signed_result(CONFIG, JOB_ID, RESULT, signer=WORKER_KEY)
    assert signed[RESULT_JOB] == JOB_ID and signed[SIGNED_BY] == "ct303"
    assert result_problem(signed, JOB_ID, WITH_WORKER) is None
    # The controller's own, when it takes a job back.
    taken_back = signed_result(CONFIG, JOB_ID, RESULT, signer=CONTROLLER_KEY)
    assert result_problem(taken_back, JOB_ID, TRUSTED) is None


def test_a_result_signed_again_carries_one_signature():
    once = signed_result(CONFIG, JOB_ID, RESULT, signer=WORKER_KEY)
    twice = signed_result(CONFIG, JOB_ID, once, signer=WORKER_KEY)
    assert result_problem(twice, JOB_ID, WITH_WORKER) is None


@pytest.mark.parametrize("field", sorted(RESULT))
def test_a_result_changed_after_signing_is_not_acted_on(field):
    signed = signed_result(CONFIG, JOB_ID, RESULT, signer=WORKER_KEY)
    changed = {**signed, field: "completed" if field == "status" else "other"}
    assert result_problem(changed, JOB_ID, WITH_WORKER) == (
        f"{FORGED}: its result.json does not verify with ct303's key"
    )


def test_a_result_without_a_trusted_signature_for_this_job_is_not_acted_on():
    signed = signed_result(CONFIG, JOB_ID, RESULT, signer=WORKER_KEY)
    assert result_problem(None, JOB_ID, WITH_WORKER) == (
        f"{FORGED}: no result.json, or one that is not a JSON object"
    )
    assert result_problem({}, JOB_ID, WITH_WORKER) is not None
    unsigned = result_problem(RESULT, JOB_ID, WITH_WORKER)
    assert unsigned is not None and "carries no signature" in unsigned
    assert result_problem(signed, RIP_ID, WITH_WORKER) == (
        f"{FORGED}: its result.json is another job's"
    )
    moved = {**signed, RESULT_JOB: RIP_ID}  # renamed to pass for the other job
    assert result_problem(moved, RIP_ID, WITH_WORKER) == (
        f"{FORGED}: its result.json does not verify with ct303's key"
    )
    untrusted = result_problem(signed, JOB_ID, TRUSTED)
    assert untrusted is not None
    assert untrusted.startswith(f"{FORGED}: its result.json is signed by 'ct303', whose key")
    assert "mp keys trust" in untrusted
    pretender = {**signed, SIGNED_BY: CONTROLLER}
    assert result_problem(pretender, JOB_ID, WITH_WORKER) == (
        f"{FORGED}: its result.json does not verify with controller's key"
    )


def test_a_spec_signature_is_no_result_signature():
    spec = sign_spec({"id": JOB_ID, RESULT_JOB: JOB_ID}, CONTROLLER_KEY, now=NOW)
    assert result_problem(spec, JOB_ID, TRUSTED) is not None


# -- the live list -----------------------------------------------------------------------

FRESH = 900.0


def test_a_fresh_live_list_signed_by_the_controller_is_claimed_by():
    live = signed_live(CONTROLLER_KEY, [RIP_ID, JOB_ID], NOW, stopped=["job_old"])
    assert live[LIVE_JOBS] == sorted([RIP_ID, JOB_ID]) and live[LIVE_STOPPED] == ["job_old"]
    assert live[LIVE_MADE] == "20270115T080000000000"
    assert live_problem(live, TRUSTED, NOW + 60, FRESH) is None
    assert signed_live(CONTROLLER_KEY, [], NOW)[LIVE_STOPPED] == []


def test_no_live_list_yet_says_when_one_comes():
    assert live_problem(None, TRUSTED, NOW, FRESH) == (
        "there is none yet (the controller writes it at its next run)"
    )
    assert live_problem({}, TRUSTED, NOW, FRESH) is not None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({LIVE_JOBS: [RIP_ID, JOB_ID, "job_p001_extra"]}, "it does not verify"),
        ({LIVE_STOPPED: []}, "it does not verify"),
        ({ISSUED_AT: int(NOW) + 60}, "it does not verify"),
        ({SIGNED_BY: "ct302"}, "it is not the controller's"),
        ({SIGNATURE: None}, "it is not the controller's"),
        ({LIVE_JOBS: "job_a"}, "it is not the controller's"),
        ({LIVE_MADE: 20270115}, "it is not the controller's"),
    ],
)
def test_a_live_list_changed_after_signing_is_forged(change, problem):
    live = signed_live(CONTROLLER_KEY, [RIP_ID, JOB_ID], NOW, stopped=["job_old"])
    found = live_problem({**live, **change}, TRUSTED, NOW, FRESH)
    assert found is not None and found.startswith(f"{FORGED}: {problem}")


def test_a_live_list_only_the_controller_signs():
    by_ripper = signed_live(RIPPER_KEY, [RIP_ID], NOW)
    assert live_problem(by_ripper, TRUSTED, NOW, FRESH) == f"{FORGED}: it is not the controller's"
    by_stranger = signed_live(STRANGER_KEY, [RIP_ID], NOW)
    assert live_problem(by_stranger, TRUSTED, NOW, FRESH) == (
        f"{FORGED}: it does not verify with the controller's key"
    )


def test_a_live_list_from_the_future_is_forged():
    ahead = signed_live(CONTROLLER_KEY, [JOB_ID], NOW + CLOCK_SKEW_SECONDS + 1)
    assert live_problem(ahead, TRUSTED, NOW, FRESH) == (
        f"{FORGED}: its issue time is not a time before now"
    )
    within = signed_live(CONTROLLER_KEY, [JOB_ID], NOW + CLOCK_SKEW_SECONDS)
    assert live_problem(within, TRUSTED, NOW, FRESH) is None


def test_a_stale_live_list_asks_after_the_controllers_timer():
    live = signed_live(CONTROLLER_KEY, [JOB_ID], NOW)
    assert live_problem(live, TRUSTED, NOW + FRESH, FRESH) is None
    stale = live_problem(live, TRUSTED, NOW + 1800, FRESH)
    assert stale == (
        "it is 30 minutes old: is the controller's timer running "
        "('systemctl status mp-reconcile.timer' there)?"
    )
    assert stale_problem(live, NOW + 1800, FRESH) == stale
    assert not stale.startswith(FORGED), "a stale list is genuine: it moves no item"
