"""A spec from the share is untrusted: each hostile case runs nothing and says why."""

from __future__ import annotations

import json
import os

import pytest

from media_pipeline.items import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")


def queued_spec(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    (job_id,) = pipeline.queue("pending")
    path = pipeline.staging / ".pipeline" / "jobs" / "pending" / job_id / "spec.json"
    return job_id, path


def tamper(spec_path, **changes):
    spec = json.loads(spec_path.read_text())
    spec.update(changes)
    spec_path.write_text(json.dumps(spec))


def refused(pipeline, job_id, reason_part):
    result = pipeline.mp("claim", "--worker", "w1", expect=1)
    assert "refused, nothing was run" in result.stderr
    assert reason_part in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert pipeline.runlog() == [], "no script may run"
    assert pipeline.queue("failed") == [job_id]
    folder = pipeline.staging / ".pipeline" / "jobs" / "failed" / job_id
    outcome = json.loads((folder / "result.json").read_text())
    assert outcome["status"] == "failed" and reason_part in outcome["reason"]


def test_a_spec_that_does_not_parse(pipeline):
    job_id, path = queued_spec(pipeline)
    path.write_text("{'kind': 'remux'")
    refused(pipeline, job_id, "spec.json is missing or is not a JSON object")


def test_a_spec_whose_kind_disagrees_with_its_name(pipeline):
    job_id, path = queued_spec(pipeline)
    tamper(path, kind="transcode")
    refused(pipeline, job_id, "kind 'transcode' is not the job's kind")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_dir", "/etc"),
        ("output_dir", "{staging}/../../../../etc"),
        ("output_dir", "relative/path"),
        ("input_dir", "{staging}/1-ripped/movies/Evil"),  # a symlink to /etc
    ],
)
def test_paths_outside_the_roots(pipeline, field, value):
    job_id, path = queued_spec(pipeline)
    os.symlink("/etc", pipeline.staging / "1-ripped" / "movies" / "Evil")
    tamper(path, **{field: value.format(staging=pipeline.staging)})
    refused(pipeline, job_id, f"field '{field}' is outside staging_root and library_root")


def test_an_item_that_does_not_match_the_name(pipeline):
    job_id, path = queued_spec(pipeline)
    tamper(path, item={"uid": "0" * 12, "type": "movie", "title": "Other", "disc_label": ""})
    refused(pipeline, job_id, "does not match the job's name")


def test_fields_a_spec_should_not_have_are_never_used(pipeline):
    job_id, path = queued_spec(pipeline)
    canary = pipeline.root / "canary"
    tamper(
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


def test_junk_in_pending_is_passed_over(pipeline):
    pending = pipeline.staging / ".pipeline" / "jobs" / "pending"
    pending.mkdir(parents=True)
    (pending / "$(touch canary)").mkdir()
    (pending / "job_p500_x_remux_movie_zz").mkdir()
    result = pipeline.mp("claim", "--worker", "w1")
    assert "no job to run" in result.stdout
    assert not (pipeline.root / "canary").exists()
