"""`mp stats` from the job history the real commands leave behind."""

from __future__ import annotations

import json

from media_pipeline.items.names import ItemKey
from media_pipeline.reports.stats import percentile

MOVIE = ItemKey("movie", "Heat (1995)")
OTHER = ItemKey("movie", "Alien (1979)")


def test_percentile_by_nearest_rank():
    assert percentile([5.0], 0.95) == 5.0
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([1, 2, 3, 4], 0.5) == 2


def test_stats_per_stage_with_times_bytes_and_failures(pipeline):
    pipeline.write_pipeline_config(jobs={"max_attempts": 1})
    for key in (MOVIE, OTHER):
        pipeline.mark(key, "1-ripped", "rip")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")
    pipeline.behave("remux", "fail")
    pipeline.mp("claim", "--worker", "w1", expect=1)
    pipeline.behave("remux", "ok")
    pipeline.mp("reconcile")
    pipeline.mp("dispatch")
    pipeline.mp("claim", "--worker", "w1")  # the transcode of the remuxed one
    pipeline.mp("reconcile")
    data = json.loads(pipeline.mp("stats", "--json").stdout)
    stages = {stage["stage"]: stage for stage in data["stages"]}
    assert (stages["remux"]["completed"], stages["remux"]["failed"]) == (1, 1)
    assert stages["transcode"]["completed"] == 1
    assert stages["remux"]["median_seconds"] is not None
    assert stages["remux"]["p95_seconds"] >= stages["remux"]["median_seconds"]
    assert stages["transcode"]["bytes_in"] > 0 and stages["transcode"]["bytes_out"] > 0
    (item,) = data["items"]
    assert item["ratio"] == round(item["bytes_out"] / item["bytes_in"], 4)
    assert data["overall"]["compression_ratio"] == item["ratio"]
    assert data["failures"] == [{"stage": "remux", "reason": "script exited with 3", "count": 1}]
    text = pipeline.mp("stats").stdout
    assert "failures by reason:" in text and "1 x remux: script exited with 3" in text
