"""Rough edges a new user hit, each fixed (issue 11): what the commands say and do."""

from __future__ import annotations

import json

from media_pipeline.config.load import parse_config
from media_pipeline.errors import ConfigError
from media_pipeline.items.names import ItemKey
from media_pipeline.reports.status import StatusReport, format_status
from media_pipeline.text import display_width

MOVIE = ItemKey("movie", "Heat (1995)")


def test_status_shows_colour_on_a_terminal_and_fits_80_columns_with_wide_titles():
    items = [
        {
            "id": number,
            "uid": f"{number:012x}",
            "type": "movie",
            "title": "千と千尋の神隠し 特別版 ディレクターズカット" * (number + 1),
            "disc_label": "",
            "state": "IN_LIBRARY" if number else "FAILED",
            "updated_at": "2026-11-25T12:00:00+00:00",
            "missing_since": None,
            "pending_approval": None,
            "stopped_in": "TRANSCODING" if not number else None,
            "reason": "failed verification" if not number else None,
        }
        for number in range(3)
    ]
    report = StatusReport(items, True)
    coloured = format_status(report, color=True)
    assert "\x1b[" in coloured, "a terminal gets colour"
    plain = format_status(report, color=False)
    assert "\x1b[" not in plain
    assert max(display_width(line) for line in plain.splitlines()) <= 80


def test_a_number_always_means_an_id(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    item = pipeline.status_json()["items"][0]
    missing = str(item["id"] + 6)
    result = pipeline.mp("why", missing, expect=2)
    assert f"no item has id {missing}" in result.stderr
    assert pipeline.mp("why", str(item["id"])).exit_code == 0
    assert pipeline.mp("why", item["uid"][:6] + "z", expect=2).exit_code == 2


def test_priority_out_of_range_is_a_usage_error_and_negative_priorities_work(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    result = pipeline.mp("priority", MOVIE.uid, "600", expect=2)
    assert "'PRIORITY': 600 is not in the range -499<=x<=499." in result.stderr
    assert "priority -10" in pipeline.mp("priority", MOVIE.uid, "-10").stdout


def test_why_knows_a_finished_job_that_reconcile_has_not_seen_yet(pipeline):
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    said = pipeline.mp("why", MOVIE.uid).stdout
    assert "finished; the next reconcile moves the item on (it is in completed/)" in said
    assert "not in the queue" not in said


def test_a_rejected_remux_can_be_made_again(pipeline):
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    pipeline.mp("approve", MOVIE.uid, "--reject", "--reason", "wrong audio")
    assert "remux_review asks again" in pipeline.mp("retry", MOVIE.uid).stdout
    pipeline.mp("reconcile")
    pipeline.mp("approve", MOVIE.uid, "--reject", "--reason", "still wrong")
    result = pipeline.mp("retry", MOVIE.uid, "--redo")
    assert "set aside" in result.stdout and "back to RIPPED" in result.stdout
    remuxed = pipeline.folder(MOVIE, "2-remuxed")
    assert not remuxed.exists()
    kept = [path for path in remuxed.parent.iterdir() if path.name.startswith(".Heat")]
    assert len(kept) == 1 and (kept[0] / "remux.out").exists(), "kept, not deleted"
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.mp("reconcile")
    starts = [line for line in pipeline.runlog() if line.startswith("start remux")]
    assert len(starts) == 2, "the remux ran again"
    approvals = json.loads(pipeline.mp("approve", "--list", "--json").stdout)["approvals"]
    assert [approval["gate"] for approval in approvals] == ["remux_review"]


def test_reconcile_counts_and_logs_each_change_once(pipeline):
    pipeline.write_pipeline_config(
        gates=["remux_review"],
        jobs={
            "heartbeat_seconds": 1,
            "stale_after_seconds": 30,
            "cancel_grace_seconds": 1,
            "max_attempts": 1,
        },
    )
    pipeline.mark(MOVIE, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    result = pipeline.mp("reconcile", "-v")
    assert "1 state changes" in result.stdout
    assert result.stderr.count("REMUXING -> FAILED") == 1
    other = ItemKey("movie", "Ronin (1998)")
    pipeline.mark(other, "2-remuxed", "remux")
    opened = pipeline.mp("reconcile", "-v").stderr
    assert opened.count("remux_review approval opened") == 1


def test_errors_follow_the_log_format(pipeline):
    result = pipeline.mp("why", "movie/Nothing", "--log-format", "json", expect=2)
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["level"] == "error" and "run 'mp reconcile' first" in line["message"]
    assert line["event"] == "error"


def test_every_problem_of_a_worker_and_a_script_is_reported_at_once():
    data = {
        "staging_root": "/s",
        "library_root": "/l",
        "workers": {"w": {"kinds": ["nope"], "max_running": 0, "extra": 1}},
        "scripts": {
            "rip": {"path": "relative", "args": "not a list", "bogus": 1},
            "unknown": {"path": "/x"},
            "remux": {"path": "/r", "timeout_seconds": 0},
        },
    }
    try:
        parse_config(data, "conf.yaml")
    except ConfigError as error:
        problems = "\n".join(error.problems)
    else:
        raise AssertionError("the config was accepted")
    for part in (
        "workers.w.kinds",
        "workers.w.max_running",
        "workers.w.extra",
        "scripts.rip.path",
        "scripts.rip.args",
        "scripts.rip.bogus",
        "scripts.unknown",
        "scripts.remux.timeout_seconds",
    ):
        assert part in problems, part


def test_retry_redo_sets_aside_a_folder_whose_title_fills_a_name(pipeline):
    """A 250-byte title: the set-aside name is cut to fit (it once failed with "File
    name too long"), and two set asides in one second keep both folders."""
    long_key = ItemKey("movie", "É" * 120 + "x" * 10)  # 250 bytes in UTF-8
    assert len(long_key.title.encode()) == 250
    pipeline.write_pipeline_config(gates=["remux_review"])
    pipeline.mark(long_key, "1-ripped", "rip")
    kept = []
    for _round in range(2):
        pipeline.mark(long_key, "2-remuxed", "remux")
        pipeline.mp("reconcile")
        pipeline.mp("approve", long_key.uid, "--reject", "--reason", "wrong audio")
        result = pipeline.mp("retry", long_key.uid, "--redo")
        assert "set aside" in result.stdout, result.output
        parent = pipeline.folder(long_key, "2-remuxed").parent
        kept = [path for path in parent.iterdir() if path.name.startswith(".É")]
    assert len(kept) == 2, kept
    assert all(len(path.name.encode()) <= 255 for path in kept)
    assert all((path / ".pipeline" / "remux.done").exists() for path in kept), "kept whole"
