"""`mp status`: items grouped by state, for a person (80 columns) or a program (JSON)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tabulate import tabulate

from media_pipeline.config.settings import Config
from media_pipeline.items.state import item_name
from media_pipeline.jobs.drain import drained_workers
from media_pipeline.jobs.queue import Queue
from media_pipeline.library.destination import disc_number
from media_pipeline.library.seasons import recorded_range, season_of
from media_pipeline.pipeline import DISPLAY_ORDER, FILING_STAGE, PIPELINE, RUNNING_KINDS, State
from media_pipeline.store import reading_database
from media_pipeline.text import display_width, local_time, mixed_scripts, shorten

SCREEN_WIDTH = 80
NOTE_WIDTH = 24


@dataclass
class StatusReport:
    items: list[dict]
    database_exists: bool
    running_jobs: list[dict] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)  # the newest entries of rejected/
    rejected_total: int = 0  # how many rejected/ holds

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(item["state"] for item in self.items)
        return {str(state): counted[state] for state in DISPLAY_ORDER if counted[state]}

    @property
    def missing(self) -> list[dict]:
        return [item for item in self.items if item["missing_since"]]

    @property
    def seasons(self) -> list[dict]:
        """Each show's seasons with their discs in disc order, and each disc's episodes."""
        grouped: dict[tuple[str, int], list[dict]] = {}
        for item in self.items:
            if item["type"] == "tv":
                grouped.setdefault((item["title"], season_of(item)), []).append(item)
        return [
            {
                "show": show,
                "season": season,
                "discs": [
                    {
                        "disc_label": disc["disc_label"],
                        "state": disc["state"],
                        "episodes": disc.get("episodes"),
                    }
                    for disc in sorted(discs, key=lambda d: disc_number(d["disc_label"]))
                ],
            }
            for (show, season), discs in sorted(grouped.items())
        ]


def running_jobs(config: Config) -> list[dict]:
    """The jobs in running/, from the share: what each worker is doing now."""
    with Queue.of(config) as queue:
        now = time.time()
        jobs = []
        for entry in queue.running():
            job = entry.job
            beat, silent = queue.liveness(entry, now, config.jobs.stale_after_seconds)
            jobs.append(
                {
                    "id": entry.job_id,
                    "kind": job.kind,
                    "item_uid": job.item_uid,
                    "worker": entry.worker,
                    "heartbeat_age_seconds": None if beat is None else round(beat),
                    "stale": silent is not None and silent > config.jobs.stale_after_seconds,
                }
            )
        return jobs


# What status shows of rejected/ (with how many it holds): 'mp jobs --state rejected'
# lists them all; a flood of junk must not make every status read thousands of files.
REJECTED_SHOWN = 20


def rejected_entries(config: Config) -> tuple[list[dict], int]:
    """The newest entries moved to rejected/, newest last (a person should look at
    these), and how many it holds."""
    with Queue.of(config) as queue:
        newest = queue.rejected(newest=REJECTED_SHOWN)
        total = queue.rejected_count()
    shown = [
        {"name": entry.name, "job": entry.job.job_id if entry.job else None, "reason": entry.reason}
        for entry in newest
    ]
    return shown, total


def run_status(config: Config) -> StatusReport:
    jobs = running_jobs(config)
    drained = drained_workers(config)
    rejected, rejected_total = rejected_entries(config)
    with reading_database(config) as db:
        if db is None:
            return StatusReport(
                [], False, jobs, drained, rejected=rejected, rejected_total=rejected_total
            )
        rows = list(
            db.query(
                """
                SELECT m.*, (
                    SELECT gate FROM human_approvals a
                    WHERE a.item_uid = m.uid AND a.status = 'pending'
                    ORDER BY a.requested_at LIMIT 1
                ) AS pending_approval
                FROM media_items m ORDER BY m.type, m.title, m.disc_label
                """
            )
        )
    return StatusReport(rows, True, jobs, drained, rejected=rejected, rejected_total=rejected_total)


def status_json(report: StatusReport) -> dict:
    fields = (
        "id",
        "uid",
        "type",
        "title",
        "disc_label",
        "state",
        "folder_path",
        "pending_approval",
        "updated_at",
        "stopped_in",
        "reason",
        "missing_since",
        "episodes",
    )
    return {
        "items": [{name: item.get(name) for name in fields} for item in report.items],
        "counts": report.counts,
        "seasons": report.seasons,
        "running_jobs": report.running_jobs,
        "drained_workers": report.drained,
        "rejected": report.rejected,
        "rejected_total": report.rejected_total,
    }


def _note(item: dict, whole: bool = False) -> str:
    if item["missing_since"]:
        return "MISSING from staging"
    if item["pending_approval"]:
        return f"awaits {item['pending_approval']}"
    if item["stopped_in"]:
        reason = f": {item['reason']}" if item["reason"] else ""
        note = f"in {item['stopped_in']}{reason}"
        return note if whole else shorten(note, 24)
    return ""


# A colour per state, for a terminal: a stage's job under way, its output there, the
# library reached, and where an item stopped.
STATE_COLOURS: dict[str, str] = {
    **{state: "blue" for state in RUNNING_KINDS},
    **{stage.done: "cyan" for stage in PIPELINE},
    FILING_STAGE.done: "green",
    State.FAILED: "red",
    State.REJECTED: "magenta",
    State.CANCELLED: "yellow",
}


def _terminal_block(state: str, items: list[dict]) -> str:
    """One state's table for a terminal: its width, nothing cut (reports/tables.py)."""
    from media_pipeline.reports.tables import terminal_table

    notes = [_note(item, whole=True) for item in items]
    headers = ["id", "uid", "item", "since", *(["note"] if any(notes) else [])]
    rows = [
        [item["id"], item["uid"][:8], item_name(item), local_time(item["updated_at"]), note][
            : len(headers)
        ]
        for item, note in zip(items, notes, strict=True)
    ]
    style = f"bold {STATE_COLOURS.get(state, '')}".strip()
    return terminal_table(f"{state} ({len(items)})", headers, rows, title_style=style)


def _state_block(state: str, items: list[dict], color: bool = False) -> str:
    """One state's heading and table, the item column cut to keep within 80 columns
    (in a terminal: reports/tables.py, at its width)."""
    if color:
        return _terminal_block(state, items)
    notes = [shorten(_note(item), NOTE_WIDTH) for item in items]
    headers = (
        ["id", "uid", "item", "since", "note"] if any(notes) else ["id", "uid", "item", "since"]
    )

    def render(item_width: int) -> str:
        rows = []
        for item, note in zip(items, notes, strict=True):
            row = [item["id"], item["uid"][:8], shorten(item_name(item), item_width)]
            row.append(local_time(item["updated_at"]))
            rows.append([*row, note][: len(headers)])
        return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)

    # Render once at full width, then cut the item column by however much is too wide.
    longest = max(display_width(shorten(item_name(item), 10_000)) for item in items)
    table = render(longest)
    overflow = max(display_width(line) for line in table.splitlines()) - SCREEN_WIDTH
    if overflow > 0:
        table = render(max(longest - overflow, 12))
    return f"{state} ({len(items)})\n{table}"


def _episodes_text(text: str | None) -> str:
    recorded = recorded_range(text)
    return f"e{recorded[0]:02d}-e{recorded[1]:02d}" if recorded else "-"


def _seasons_block(report: StatusReport) -> str | None:
    """The seasons still on their way (a disc not yet in the library): each disc, its
    episode numbers once settled, and its state."""
    lines = []
    for season in report.seasons:
        if all(disc["state"] == FILING_STAGE.done for disc in season["discs"]):
            continue
        lines.append(shorten(f"{season['show']}, season {season['season']}", SCREEN_WIDTH))
        for disc in season["discs"]:
            label = shorten(disc["disc_label"], 40)
            padded = label + " " * (40 - display_width(label))
            lines.append(f"  {padded} {_episodes_text(disc['episodes']):<9} {disc['state']}")
    return "SEASONS\n" + "\n".join(lines) if lines else None


def format_status(report: StatusReport, color: bool = False) -> str:
    if not report.database_exists:
        return "No database yet: run 'mp reconcile' to scan the staging area."
    if not report.items:
        return "No items yet: nothing with a marker under the staging area."
    by_state: dict[str, list[dict]] = {}
    for item in report.items:
        by_state.setdefault(item["state"], []).append(item)
    blocks = [
        _state_block(state, by_state[state], color) for state in DISPLAY_ORDER if state in by_state
    ]
    seasons = _seasons_block(report)
    if seasons:
        blocks.append(seasons)
    counts = ", ".join(f"{count} {state}" for state, count in report.counts.items())
    summary = f"{len(report.items)} items: {counts}"
    waiting = sum(1 for item in report.items if item["pending_approval"])
    if waiting:
        summary += f"\n{waiting} approval(s) pending: 'mp approve'"
    if report.drained:
        summary += f"\ndrained (claim nothing): {', '.join(report.drained)}"
    if report.running_jobs:
        names = {item["uid"]: item_name(item) for item in report.items}
        for job in report.running_jobs:
            beat = job["heartbeat_age_seconds"]
            if job["stale"]:
                state = "STALE: no sign of life"
            else:
                state = "no heartbeat yet" if beat is None else f"heartbeat {beat} s ago"
            shown = shorten(names.get(job["item_uid"], job["item_uid"]), 36)
            worker = shorten(job["worker"], 24)  # a running folder's name: anyone's text
            summary += f"\nrunning: {job['kind']} of {shown} on {worker} ({state})"
    look_alike = [
        item for item in report.items if mixed_scripts(f"{item['title']} {item['disc_label']}")
    ]
    if look_alike:
        # Two titles that look the same may be one with a Cyrillic or Greek look-alike.
        shown = ", ".join(shorten(item_name(item), 30) for item in look_alike[:3])
        more = f" and {len(look_alike) - 3} more" if len(look_alike) > 3 else ""
        summary += f"\nlook-alike letters (Latin with Cyrillic/Greek) in: {shown}{more}"
    if report.missing:
        summary += f"\n{len(report.missing)} item(s) MISSING: their folders vanished from staging"
    if report.rejected:
        last = report.rejected[-1]
        total = max(report.rejected_total, len(report.rejected))
        summary += (
            f"\n{total} queue entr{'y' if total == 1 else 'ies'} "
            f"rejected (not run; 'mp jobs --state rejected'), last: "
            f"{shorten(last['reason'], 60)}"
        )
    return "\n\n".join([*blocks, summary])
