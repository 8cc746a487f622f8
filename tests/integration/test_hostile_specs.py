"""A spec from the share is untrusted: each hostile case runs nothing and says why, even
one signed with the controller's key (a bug in what signs, or a stolen key)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import signed_by_controller

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")


def queued_spec(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    path = pipeline.staging / ".pipeline" / "jobs" / "pending" / job_id / "spec.json"
    return job_id, path


def tamper(pipeline, spec_path, **changes):
    """Change the spec and sign it again with the controller's key: the checks behind
    the signature, not the signature, must refuse it (test_signed_jobs.py has the share
    writer's own changes)."""
    spec = json.loads(spec_path.read_text())
    spec.update(changes)
    spec_path.write_text(json.dumps(signed_by_controller(pipeline, spec)))


def refused(pipeline, job_id, reason_part):
    """The job is refused, runs nothing, and is kept in rejected/ with its reason; the
    claim goes on (exit 0); the honest item is queued again from the controller's own
    spec and goes through."""
    result = pipeline.mp("claim", "--worker", "w1")
    said = result.stdout + result.stderr
    assert f"job {job_id} refused, nothing was run" in said
    assert reason_part in said
    assert pipeline.runlog() == [], "no script may run"
    assert pipeline.queue("pending") == [] and pipeline.queue("failed") == []
    (holder,) = pipeline.queue("rejected")
    folder = pipeline.staging / ".pipeline" / "jobs" / "rejected" / holder
    assert reason_part in (folder / "reason").read_text()
    assert (folder / "entry" / "spec.json").exists(), "kept as it was, for a person to see"
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    assert [line.split()[:2] for line in pipeline.runlog()] == [
        ["start", "remux"],
        ["done", "remux"],
    ]


def test_a_spec_that_does_not_parse(pipeline):
    job_id, path = queued_spec(pipeline)
    path.write_text("{'kind': 'remux'")
    refused(pipeline, job_id, "spec.json is not a JSON object")


def test_a_spec_whose_kind_disagrees_with_its_name(pipeline):
    job_id, path = queued_spec(pipeline)
    tamper(pipeline, path, kind="transcode")
    refused(pipeline, job_id, "kind 'transcode' is not the job's kind")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("input_dir", "/etc", "is not this item's input folder"),
        ("output_dir", "{staging}/../../../../etc", "is not this item's output folder"),
        ("output_dir", "relative/path", "is not this item's output folder"),
        ("input_dir", "{staging}/1-ripped/movies/Evil", "is not this item's input folder"),
        ("output_dir", "{staging}", "is not this item's output folder"),
        ("output_dir", "{staging}/.pipeline/jobs", "is not this item's output folder"),
        ("output_dir", "{library}", "is not this item's output folder"),
        ("input_dir", "{library}/Movies", "is not this item's input folder"),
        ("destination", "{library}/Movies/Heat.mkv", "is for filebot jobs, not remux"),
    ],
)
def test_paths_that_are_not_the_items_own(pipeline, field, value, problem):
    job_id, path = queued_spec(pipeline)
    os.symlink("/etc", pipeline.staging / "1-ripped" / "movies" / "Evil")
    library = pipeline.root / "library"
    tamper(pipeline, path, **{field: value.format(staging=pipeline.staging, library=library)})
    refused(pipeline, job_id, f"field '{field}' {problem}")


def test_an_item_folder_replaced_by_a_link_runs_nothing(pipeline):
    job_id, _path = queued_spec(pipeline)
    ripped = pipeline.folder(MOVIE, "1-ripped")
    ripped.rename(pipeline.root / "moved-away")
    os.symlink("/etc", ripped)
    result = pipeline.mp("claim", "--worker", "w1")
    assert f"job {job_id} refused, nothing was run" in result.stdout + result.stderr
    assert "is a link or not a folder" in result.stdout + result.stderr
    assert pipeline.runlog() == []


def test_an_item_that_does_not_match_the_name(pipeline):
    job_id, path = queued_spec(pipeline)
    tamper(
        pipeline, path, item={"uid": "0" * 12, "type": "movie", "title": "Other", "disc_label": ""}
    )
    refused(pipeline, job_id, "does not match the job's name")


def test_fields_a_spec_should_not_have_are_never_used(pipeline):
    job_id, path = queued_spec(pipeline)
    canary = pipeline.root / "canary"
    tamper(
        pipeline,
        path,
        script="/usr/bin/touch",
        path="/usr/bin/touch",
        args=[str(canary)],
        priority="$(touch canary)",
    )
    refused(pipeline, job_id, "field 'priority' is not a whole number")
    assert not canary.exists()


def test_a_kind_whose_script_this_host_lacks_stays_pending(pipeline):
    job_id, _path = queued_spec(pipeline)
    (pipeline.scripts / "remux.sh").unlink()
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "no executable script for remux (movie)" in result.stderr
    assert "stay in pending/" in result.stderr
    assert pipeline.queue("pending") == [job_id] and pipeline.runlog() == []


def test_a_kind_the_worker_does_not_run_stays_pending(pipeline):
    pipeline.write_pipeline_config(
        workers={
            "w1": {"kinds": ["rip", "remux", "transcode", "filebot"]},
            "ripper": {"kinds": ["rip"]},
        }
    )
    job_id, _path = queued_spec(pipeline)
    result = pipeline.mp("claim", "--worker", "ripper")
    assert "no job to run" in result.stdout
    assert pipeline.queue("pending") == [job_id] and pipeline.runlog() == []


def test_junk_in_pending_is_passed_over_then_rejected(pipeline):
    pipeline.mp("reconcile")
    pending = pipeline.staging / ".pipeline" / "jobs" / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    (pending / "$(touch canary)").mkdir()
    (pending / "job_p500_x_remux_movie_zz").mkdir()
    result = pipeline.mp("claim", "--worker", "w1")
    assert "no job to run" in result.stdout
    assert not (pipeline.root / "canary").exists()
    pipeline.mp("reconcile")
    assert pipeline.queue("pending") == []
    reasons = [
        (pipeline.staging / ".pipeline" / "jobs" / "rejected" / holder / "reason").read_text()
        for holder in pipeline.queue("rejected")
    ]
    assert sorted(reasons) == [
        "pending/$(touch canary): not a name mp gives a job\n",
        "pending/job_p500_x_remux_movie_zz: not a name mp gives a job\n",
    ]
    assert not (pipeline.root / "canary").exists()


@pytest.mark.parametrize("device", ["/dev/sr0", "/dev/sda", "../../dev/sr0", 7, "/dev/sr0\n"])
def test_a_device_on_a_job_that_is_not_a_disc_rip(pipeline, device):
    job_id, path = queued_spec(pipeline)  # a remux: no drive is its business
    tamper(pipeline, path, device=device)
    refused(pipeline, job_id, "field 'device' is not an optical drive (/dev/srN) of a rip job")


def test_a_host_on_a_job_that_is_not_a_disc_rip(pipeline):
    job_id, path = queued_spec(pipeline)
    tamper(pipeline, path, host="ct304")
    refused(pipeline, job_id, "field 'host' is not a host name beside a rip's 'device'")
