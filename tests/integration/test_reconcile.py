"""`mp reconcile` on real trees under tmp_path, through the CLI, with a real database."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

from conftest import lose_the_database, tree_snapshot

from media_pipeline.items.names import ItemKey

MOVIE = ItemKey("movie", "Heat (1995)")
DISC1 = ItemKey("tv", "The Wire", "S01 Disc1")
DISC2 = ItemKey("tv", "The Wire", "S01 Disc2")
EXTRA = ItemKey("movie", "Alien (1979)")


def build_tree(sandbox):
    sandbox.mark(MOVIE, "1-ripped", "rip")
    sandbox.mark(MOVIE, "2-remuxed", "remux")
    sandbox.mark(DISC1, "1-ripped", "rip")
    sandbox.mark(DISC2, "1-ripped", "rip")
    sandbox.mark(DISC2, "2-remuxed", "remux")
    sandbox.mark(DISC2, "3-transcoded", "transcode", "filebot")
    sandbox.mark(EXTRA, "1-ripped")  # a rip still writing: no marker yet


def states(sandbox) -> dict[str, str]:
    return {
        "/".join(p for p in (i["type"], i["title"], i["disc_label"]) if p): i["state"]
        for i in sandbox.status_json()["items"]
    }


def without_ids(status: dict) -> dict:
    return {
        "items": [{k: v for k, v in item.items() if k != "id"} for item in status["items"]],
        "counts": status["counts"],
    }


def test_items_take_the_state_of_their_furthest_marker(sandbox):
    build_tree(sandbox)
    result = sandbox.mp("reconcile")
    assert "3 new" in result.stdout
    assert states(sandbox) == {
        "movie/Heat (1995)": "REMUXED",
        "tv/The Wire/S01 Disc1": "RIPPED",
        "tv/The Wire/S01 Disc2": "IN_LIBRARY",
    }
    folder = sandbox.folder(MOVIE, "2-remuxed")
    assert (folder / ".pipeline" / "state").read_text() == "REMUXED\n"
    metadata = json.loads((folder / ".pipeline" / "metadata.json").read_text())
    assert metadata["uid"] == MOVIE.uid
    assert metadata["title"] == "Heat (1995)"
    assert metadata["state"] == "REMUXED"
    item = next(i for i in sandbox.status_json()["items"] if i["title"] == "Heat (1995)")
    assert item["folder_path"] == str(folder)
    assert item["pending_approval"] is None


def test_a_new_marker_advances_the_item_and_is_recorded_with_its_trigger(sandbox):
    sandbox.mark(MOVIE, "1-ripped", "rip")
    sandbox.mp("reconcile")
    sandbox.mark(MOVIE, "2-remuxed", "remux")
    sandbox.mark(MOVIE, "3-transcoded", "transcode")
    result = sandbox.mp("reconcile", "-v")  # each change as a log line
    assert "RIPPED -> TRANSCODED (transcode.done seen)" in result.stderr
    history = sandbox.mp("history", "movie/Heat (1995)").stdout
    lines = [line for line in history.splitlines() if "state" in line]
    assert "(new) -> RIPPED [auto] rip.done seen" in lines[0]
    assert "RIPPED -> TRANSCODED [auto] transcode.done seen" in lines[1]


def test_a_second_reconcile_changes_nothing_at_all(sandbox):
    build_tree(sandbox)
    sandbox.mp("reconcile")
    before = tree_snapshot(sandbox.staging, sandbox.database.parent)
    result = sandbox.mp("reconcile")
    assert "nothing to change" in result.stdout
    assert tree_snapshot(sandbox.staging, sandbox.database.parent) == before


def test_dry_run_prints_every_change_and_writes_nothing(sandbox):
    build_tree(sandbox)
    sandbox.mp("reconcile")
    sandbox.mark(DISC1, "2-remuxed", "remux")
    shutil.rmtree(sandbox.folder(MOVIE, "1-ripped"))
    shutil.rmtree(sandbox.folder(MOVIE, "2-remuxed"))
    before = tree_snapshot(sandbox.root)
    result = sandbox.mp("reconcile", "--dry-run")
    assert tree_snapshot(sandbox.root) == before
    assert "would: tv/The Wire/S01 Disc1: RIPPED -> REMUXED (remux.done seen)" in result.stdout
    assert "would: movie/Heat (1995): its folder is gone from staging" in result.stdout
    assert "S01 Disc1/.pipeline/state" in result.stdout
    assert "would apply" in result.stdout
    # The real run does what the dry run said.
    sandbox.mp("reconcile")
    assert states(sandbox)["tv/The Wire/S01 Disc1"] == "REMUXED"


def test_dry_run_before_any_database_creates_nothing(sandbox):
    build_tree(sandbox)
    before = tree_snapshot(sandbox.root)
    result = sandbox.mp("reconcile", "--dry-run")
    assert tree_snapshot(sandbox.root) == before
    assert not sandbox.database.parent.exists()
    assert "would: movie/Heat (1995): new item, REMUXED (remux.done seen)" in result.stdout


def test_losing_the_database_loses_nothing(pipeline):
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    build_tree(pipeline)
    pipeline.mark(EXTRA, "1-ripped", "rip")
    pipeline.mp("reconcile")
    # States no marker proves: a job queued, a failure and its reason, a cancel.
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    (still_pending,) = [name for name in pipeline.queue("pending") if "_remux_" in name]
    uid = next(key.uid for key in (DISC1, EXTRA) if key.uid in still_pending)
    pipeline.mp("cancel", uid)
    pipeline.mp("reconcile")
    before = pipeline.status_json()
    assert before["counts"] == {"TRANSCODING": 1, "IN_LIBRARY": 1, "FAILED": 1, "CANCELLED": 1}

    lose_the_database(pipeline)  # its keys kept: docs/operations.md says to back them up
    pipeline.mp("reconcile")
    after = pipeline.status_json()
    assert without_ids(after) == without_ids(before)
    failed = next(i for i in after["items"] if i["state"] == "FAILED")
    assert failed["stopped_in"] == "REMUXING"
    assert "script exited with 3" in failed["reason"]


def test_rebuild_keeps_history_and_adds_no_duplicate_rows(sandbox):
    build_tree(sandbox)
    sandbox.mp("reconcile")
    before = sandbox.status_json()
    result = sandbox.mp("reconcile", "--rebuild")
    assert "3 new, 0 state changes" in result.stdout
    assert without_ids(sandbox.status_json()) == without_ids(before)
    history = sandbox.mp("history", DISC2.uid).stdout
    assert history.count("-> IN_LIBRARY") == 1


def test_a_vanished_folder_marks_the_item_missing_and_never_deletes_it(sandbox):
    build_tree(sandbox)
    sandbox.mp("reconcile")
    moved = sandbox.root / "elsewhere"
    shutil.move(sandbox.folder(DISC1, "1-ripped"), moved)
    result = sandbox.mp("reconcile")
    assert "its folder is gone from staging; kept as missing" in result.stderr
    item = next(i for i in sandbox.status_json()["items"] if i["disc_label"] == "S01 Disc1")
    assert item["state"] == "RIPPED" and item["missing_since"]
    text = sandbox.mp("status").stdout
    assert "MISSING from staging" in text and "1 item(s) MISSING" in text
    shutil.move(moved, sandbox.folder(DISC1, "1-ripped"))
    sandbox.mp("reconcile")
    item = next(i for i in sandbox.status_json()["items"] if i["disc_label"] == "S01 Disc1")
    assert item["missing_since"] is None


def test_unmounted_staging_is_refused_and_the_database_left_alone(sandbox):
    build_tree(sandbox)
    sandbox.mp("reconcile")
    database = sandbox.database.read_bytes()
    # What an unmounted share looks like: an empty mount point.
    hidden = sandbox.root / "hidden"
    sandbox.staging.rename(hidden)
    sandbox.staging.mkdir()
    result = sandbox.mp("reconcile", expect=3)
    assert "none of the stage folders" in result.stderr and "mounted" in result.stderr
    assert "Traceback" not in result.output
    sandbox.staging.rmdir()
    result = sandbox.mp("reconcile", expect=3)
    assert f"staging_root {sandbox.staging} does not exist" in result.stderr
    sandbox.staging.write_text("not a folder")
    result = sandbox.mp("reconcile", expect=3)
    assert "is not a folder" in result.stderr
    assert sandbox.database.read_bytes() == database
    sandbox.staging.unlink()
    hidden.rename(sandbox.staging)
    assert "nothing to change" in sandbox.mp("reconcile").stdout


def test_a_held_lock_makes_reconcile_refuse_after_the_timeout(sandbox):
    sandbox.write_config(lock_timeout_seconds=1)
    build_tree(sandbox)
    sandbox.database.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import filelock, sys; lock = filelock.FileLock(sys.argv[1]); lock.acquire();"
            " print('held', flush=True); sys.stdin.read()",
            str(sandbox.database) + ".lock",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        result = sandbox.mp("reconcile", expect=3)
        assert "is still held by another media-pipeline command after 1 s" in result.stderr
        assert not sandbox.database.exists()
    finally:
        holder.communicate("")
    sandbox.mp("reconcile")


def test_garbage_in_controller_files_is_reported_not_trusted(sandbox):
    folder = sandbox.mark(MOVIE, "1-ripped", "rip")
    (folder / ".pipeline" / "state").write_text("$(reboot)\n")
    (folder / ".pipeline" / "metadata.json").write_text("{not json")
    result = sandbox.mp("reconcile")
    assert "holds no known state" in result.stderr
    assert states(sandbox) == {"movie/Heat (1995)": "RIPPED"}
    assert (folder / ".pipeline" / "state").read_text() == "RIPPED\n"


def test_a_corrupt_database_is_moved_aside_and_rebuilt(sandbox):
    build_tree(sandbox)
    sandbox.mp("reconcile")
    before = sandbox.status_json()
    garbage = b"this is not sqlite" * 100
    for path in sandbox.database.parent.glob("state.db*"):
        path.unlink()
    sandbox.database.write_bytes(garbage)
    result = sandbox.mp("reconcile")
    assert "is corrupt" in result.stderr and "moved it aside to" in result.stderr
    (aside,) = sandbox.database.parent.glob("state.db.corrupt-*")
    assert aside.read_bytes() == garbage, "the corrupt file is kept, not deleted"
    assert without_ids(sandbox.status_json()) == without_ids(before)


def test_a_locked_database_is_not_taken_for_a_corrupt_one(sandbox):
    import sqlite3

    build_tree(sandbox)
    sandbox.write_config(lock_timeout_seconds=1)
    sandbox.mp("reconcile")
    holder = sqlite3.connect(sandbox.database)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        sandbox.mark(EXTRA, "1-ripped", "rip")
        result = sandbox.mp("reconcile", expect=3)
        assert "database is locked" in result.stderr
        assert not list(sandbox.database.parent.glob("state.db.corrupt-*"))
    finally:
        holder.rollback()
        holder.close()


def test_json_log_lines_carry_the_transition_fields(sandbox):
    sandbox.mark(MOVIE, "1-ripped", "rip")
    result = sandbox.mp("reconcile", "-v", "--log-format", "json")
    events = [json.loads(line) for line in result.stderr.splitlines()]
    transition = next(e for e in events if e.get("event") == "transition")
    assert transition["item"] == "movie/Heat (1995)"
    assert transition["to"] == "RIPPED" and transition["level"] == "info"
    assert "time" in transition


def test_the_database_uses_wal_and_a_schema_version(sandbox):
    sandbox.mark(MOVIE, "1-ripped", "rip")
    sandbox.mp("reconcile")
    connection = sqlite3.connect(sandbox.database)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] >= 1
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"media_items", "state_transitions", "human_approvals", "jobs"} <= tables


def test_quiet_logs_only_warnings(sandbox):
    sandbox.mark(MOVIE, "1-ripped", "rip")
    result = sandbox.mp("reconcile", "-q")
    assert result.stderr == ""
    sandbox.mark(DISC1, "1-ripped", "rip")
    verbose = sandbox.mp("reconcile", "-v")
    assert "INFO tv/The Wire/S01 Disc1: new item, RIPPED" in verbose.stderr
