"""The small things a new user met (issue 26, item 8): a missing share, a mistyped
database path, a database that belongs to the service user. Real `mp` processes."""

from __future__ import annotations

from conftest import run_mp, tree_snapshot

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")


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


WRITING_COMMANDS = [
    ["cancel", "movie/Heat (1995)"],
    ["retry", "movie/Heat (1995)"],
    ["priority", "movie/Heat (1995)", "5"],
    ["rename", "movie/Heat (1995)", "Heat (1996)"],
    ["forget", "movie/Heat (1995)", "--yes"],
    ["refile", "movie/Heat (1995)", "--year", "1995"],
    ["approve", "movie/Heat (1995)", "--yes"],
    ["rip", "--type", "movie", "--title", "Ronin (1998)"],
    ["dispatch"],
]


def test_a_writing_command_never_makes_a_database_only_reconcile_does(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    mistyped = pipeline.root / "db" / "stat.db"
    pipeline.write_pipeline_config(database=str(mistyped))
    config = ("--config", str(pipeline.config_path))
    before = tree_snapshot(pipeline.root)
    for command in WRITING_COMMANDS:
        for dry_run in ([], ["--dry-run"]):
            done = run_mp(*command, *dry_run, *config)
            assert done.returncode == 2, (command, dry_run, done.stdout, done.stderr)
            [line] = done.stderr.splitlines()
            assert line == (
                f"mp: database {mistyped} does not exist; only 'mp reconcile' on the controller "
                f"makes it (run that first, or correct 'database' in {pipeline.config_path})"
            ), (command, dry_run)
    assert tree_snapshot(pipeline.root) == before, "nothing made: no database, lock or share id"
    # Reconcile makes it, and says so once, on stdout.
    done = run_mp("reconcile", *config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"created the database {mistyped}"
    assert mistyped.exists()
    again = run_mp("reconcile", *config)
    assert "created" not in again.stdout


def test_a_config_with_several_problems_says_each_on_a_line_of_its_own(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("staging_root: 5\nlibrary_root: 7\n")
    result = run_mp("config", "validate", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"mp: {config}: 2 problems:",
        "  - key 'staging_root' must be a path, not int",
        "  - key 'library_root' must be a path, not int",
    ], result.stderr
