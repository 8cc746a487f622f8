"""`mp stats`: how the pipeline performs, from the database's job history."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from tabulate import tabulate

from media_pipeline.config.settings import Config
from media_pipeline.items.names import printable
from media_pipeline.items.state import item_name
from media_pipeline.jobs.queue import COMPLETED, FAILED
from media_pipeline.pipeline import ENCODE_STAGE, JOB_KINDS
from media_pipeline.store import reading_database
from media_pipeline.text import size_text


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of values fall (nearest rank), for small samples."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Stats:
    stages: list[dict]
    items: list[dict]
    failures: list[dict]

    def as_json(self) -> dict:
        overall_in = sum(item["bytes_in"] for item in self.items)
        overall_out = sum(item["bytes_out"] for item in self.items)
        return {
            "stages": self.stages,
            "items": self.items,
            "overall": {
                "transcode_bytes_in": overall_in,
                "transcode_bytes_out": overall_out,
                "compression_ratio": round(overall_out / overall_in, 4) if overall_in else None,
            },
            "failures": self.failures,
        }


def run_stats(config: Config) -> Stats:
    with reading_database(config) as db:
        if db is None:
            return Stats([], [], [])
        jobs = list(db.query("SELECT * FROM jobs"))
        names = {
            row["uid"]: item_name(row)
            for row in db.query("SELECT uid, type, title, disc_label FROM media_items")
        }
    stages = []
    for kind in JOB_KINDS:
        done = [job for job in jobs if job["kind"] == kind and job["state"] == COMPLETED]
        seconds = [job["seconds"] for job in done if job["seconds"] is not None]
        bytes_in = sum(job["bytes_in"] or 0 for job in done)
        bytes_out = sum(job["bytes_out"] or 0 for job in done)
        stages.append(
            {
                "stage": kind,
                "completed": len(done),
                "failed": sum(1 for job in jobs if job["kind"] == kind and job["state"] == FAILED),
                "median_seconds": round(statistics.median(seconds), 3) if seconds else None,
                "p95_seconds": round(percentile(seconds, 0.95), 3) if seconds else None,
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                "ratio": round(bytes_out / bytes_in, 4) if bytes_in else None,
            }
        )
    items = []
    for job in jobs:
        if job["kind"] == ENCODE_STAGE.kind and job["state"] == COMPLETED and job["bytes_in"]:
            items.append(
                {
                    "item": names.get(job["item_uid"], job["item_uid"]),
                    "bytes_in": job["bytes_in"],
                    "bytes_out": job["bytes_out"] or 0,
                    "ratio": round((job["bytes_out"] or 0) / job["bytes_in"], 4),
                }
            )
    reasons = Counter(
        (job["kind"], job["reason"] or "no reason recorded")
        for job in jobs
        if job["state"] == FAILED
    )
    failures = [
        {"stage": kind, "reason": reason, "count": count}
        for (kind, reason), count in reasons.most_common()
    ]
    return Stats(stages, sorted(items, key=lambda item: item["item"]), failures)


def format_stats(stats: Stats) -> str:
    def seconds(value):
        return "" if value is None else f"{value:.1f} s"

    rows = [
        [
            s["stage"],
            s["completed"],
            s["failed"],
            seconds(s["median_seconds"]),
            seconds(s["p95_seconds"]),
            size_text(s["bytes_in"]),
            size_text(s["bytes_out"]),
            "" if s["ratio"] is None else f"{s['ratio']:.2f}",
        ]
        for s in stats.stages
    ]
    text = tabulate(
        rows,
        headers=["stage", "done", "failed", "median", "p95", "in", "out", "out/in"],
        tablefmt="simple",
        disable_numparse=True,
    )
    overall = stats.as_json()["overall"]
    if stats.items:
        item_rows = [
            [
                printable(i["item"])[:40],
                size_text(i["bytes_in"]),
                size_text(i["bytes_out"]),
                f"{i['ratio']:.2f}",
            ]
            for i in stats.items
        ]
        text += f"\n\n{ENCODE_STAGE.kind}, per item:\n" + tabulate(
            item_rows,
            headers=["item", "in", "out", "out/in"],
            tablefmt="simple",
            disable_numparse=True,
        )
        text += (
            f"\noverall: {size_text(overall['transcode_bytes_in'])} -> "
            f"{size_text(overall['transcode_bytes_out'])} "
            f"(ratio {overall['compression_ratio']:.2f})"
        )
    if stats.failures:
        text += "\n\nfailures by reason:\n" + "\n".join(
            f"  {f['count']} x {f['stage']}: {printable(f['reason'])[:70]}" for f in stats.failures
        )
    return text
