"""The small things a new user met (issue 26, item 8): a missing share, a mistyped
database path, a database that belongs to the service user. Real `mp` processes."""

from __future__ import annotations

from conftest import run_mp


def test_jobs_refuses_a_missing_or_empty_share_as_claim_does(pipeline):
    pipeline.mp("reconcile")
    config = ("--config", str(pipeline.config_path))
    assert run_mp("jobs", *config).stdout.strip() == "The queue is empty."
    pipeline.staging.rename(pipeline.root / "unmounted")
    for unmounted in ("gone", "an empty mount point"):
        if unmounted != "gone":
            pipeline.staging.mkdir()
        done = run_mp("jobs", *config)
        assert done.returncode == 3, (unmounted, done.stdout, done.stderr)
        assert done.stdout == ""
        [line] = done.stderr.splitlines()
        assert line.startswith(f"mp: staging_root {pipeline.staging} ")
        assert "is the share mounted?" in line
