"""`mp status --html FILE` and config `status_page`: the pipeline at a glance, as one
self-contained HTML file that any web server (or a browser, from the disk) can show.

No daemon: reconcile rewrites the file at the end of each full run, and the page
reloads itself while open. Times are written as UTC timestamps and turned into "12 min
ago" by the page's own script, so a page written a few minutes ago still says how long
each item has waited. Everything shown that came from the share (titles, disc labels,
reasons, log lines) is escaped; nothing from the config's notify settings is read.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from media_pipeline.config.settings import Config
from media_pipeline.items.names import page_anchor, printable
from media_pipeline.items.state import item_name
from media_pipeline.jobs.queue import (
    PENDING,
    RUNNING,
    Queue,
)
from media_pipeline.pipeline import DISPLAY_ORDER, ENCODE_STAGE, JOB_KINDS, STOPPED
from media_pipeline.reports.stats import Stats, run_stats
from media_pipeline.reports.status import StatusReport, run_status
from media_pipeline.reports.why import explain, failed_log, item_decisions
from media_pipeline.store import reading_database
from media_pipeline.text import duration_text, utc_now

REFRESH_SECONDS = 30
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
LOG_LINES = 8
CHART_ITEMS = 30
TIMELINE_HOURS = 24
# The job kinds in the timeline, by class, and their colours in STYLE: (light scheme, dark
# scheme) in pipeline order, each at least 3:1 against the page
# (tests/unit/reports/test_page_colours.py). A kind past the end of KIND_COLOURS is drawn
# in OTHER_COLOURS, as a job of no kind known is.
KINDS = JOB_KINDS
KIND_COLOURS = (
    ("#3b6a9a", "#79a6d6"),
    ("#3f7d36", "#7fc77a"),
    ("#b35c00", "#f5a85a"),
    ("#8e4f80", "#d59ac8"),
)
OTHER_COLOURS = ("#6b6b6b", "#9a9a9a")
HISTORY_LINES = 8


@dataclass
class Page:
    status: StatusReport
    stats: Stats
    generated_at: str
    approvals: list[dict] = field(default_factory=list)  # pending, with their item
    failures: list[dict] = field(default_factory=list)  # stopped items, with 'why'
    logs: dict[str, list[str]] = field(default_factory=dict)  # running job id -> last lines
    jobs: list[dict] = field(default_factory=list)  # the last day's, for the timeline
    # Per item uid: its last state changes (time, text), its job in the queue now
    # (kind, pending or running), and the end of its newest failed job's log.
    history: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    current: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def run_page(config: Config) -> Page:
    status = run_status(config)
    page = Page(status, run_stats(config), utc_now())
    since = (datetime.now(UTC) - timedelta(hours=TIMELINE_HOURS)).isoformat(timespec="seconds")
    with reading_database(config) as db:
        if db is None:
            return page
        page.approvals = list(
            db.query(
                "SELECT a.gate, a.requested_at, m.* FROM human_approvals a "
                "JOIN media_items m ON m.uid = a.item_uid WHERE a.status = 'pending' "
                "ORDER BY a.requested_at"
            )
        )
        page.jobs = list(
            db.query(
                "SELECT kind, worker, state, claimed_at, finished_at, seconds FROM jobs "
                "WHERE worker IS NOT NULL "
                "AND (finished_at >= ? OR claimed_at >= ? OR state = 'running') "
                "ORDER BY finished_at",
                [since, since],
            )
        )
        stopped = [item for item in status.items if item["state"] in STOPPED]
        approvals = {item["uid"]: item_decisions(db, item["uid"]) for item in stopped}
        for row in db.query(
            "SELECT item_uid, at, from_state, to_state, trigger, reason FROM state_transitions "
            "ORDER BY id"
        ):
            change = f"{row['from_state'] or '(new)'} -> {row['to_state']} [{row['trigger']}]"
            if row["reason"]:
                change += f" {row['reason']}"
            page.history.setdefault(row["item_uid"], []).append((row["at"], change))
    for uid, changes in page.history.items():
        page.history[uid] = changes[-HISTORY_LINES:]
    with Queue.of(config) as queue:
        page.failures = [
            {**item, "why": explain(config, item, approvals[item["uid"]], queue)}
            for item in stopped
        ]
        for state, _name, queued in queue.jobs((PENDING, RUNNING)):
            page.current[queued.item_uid] = (queued.kind, state)
        for item in stopped:
            if item["state"] == "FAILED" and (found := failed_log(queue, item["uid"])):
                page.errors[item["uid"]] = found[1]
        folders = {entry.job_id: entry.folder_name for entry in queue.running()}
        for job in status.running_jobs:
            folder = folders.get(job["id"])
            text = queue.read_log_tail(RUNNING, folder, 64 * 1024) if folder else ""
            page.logs[job["id"]] = text.splitlines()[-LOG_LINES:]
    return page


def page_text(config: Config) -> str:
    """The page as it stands now (fsutil.write_file_atomic puts it in place)."""
    return render_page(run_page(config))


# -- rendering ------------------------------------------------------------------------


def e(value: object) -> str:
    """Text for the page: control and direction characters shown escaped, as the terminal
    shows them (a right-to-left override in a title would turn the page's own words
    around), then HTML-escaped."""
    return html.escape(printable("" if value is None else str(value)), quote=True)


def _when(timestamp: str | None) -> str:
    """A time the page's script shows as an age ('12 min ago'), the UTC time meanwhile."""
    if not timestamp:
        return ""
    return f'<time datetime="{e(timestamp)}">{e(timestamp.replace("T", " ")[:16])}</time>'


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{e(title)}</h2>{body}</section>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _counts(status: StatusReport) -> str:
    cells = "".join(
        f'<div class="count s-{e(state)}"><b>{count}</b><span>{e(state)}</span></div>'
        for state, count in status.counts.items()
    )
    return f'<div class="counts">{cells}</div>'


def _items(status: StatusReport) -> str:
    blocks = []
    for state in DISPLAY_ORDER:
        items = [item for item in status.items if item["state"] == state]
        if not items:
            continue
        rows = [
            [e(item["id"]), _link(item), _when(item["updated_at"]),
             e("awaits " + item["pending_approval"] if item["pending_approval"] else "")]
            for item in items
        ]  # fmt: skip
        table = _table(["id", "item", "in this state since", "note"], rows)
        blocks.append(f'<h3 class="s-{e(state)}">{e(state)} ({len(items)})</h3>{table}')
    return "".join(blocks) or "<p>No items yet.</p>"


def _approvals(page: Page) -> str:
    if not page.approvals:
        return "<p>Nothing waits for a person.</p>"
    cards = []
    for approval in page.approvals:
        uid = e(approval["uid"][:12])
        cards.append(
            f'<div class="job"><p><b>{e(item_name(approval))}</b> waits at '
            f"{e(approval['gate'])} since {_when(approval['requested_at'])}</p>"
            f"<pre>mp approve {uid} --yes\nmp approve {uid} --reject --reason TEXT</pre></div>"
        )
    return "".join(cards) + (
        "<p>Or <code>mp approve</code> in a terminal on the controller, to see each first.</p>"
    )


def _running(page: Page, names: dict[str, str]) -> str:
    if not page.status.running_jobs:
        return "<p>No job is running.</p>"
    parts = []
    for job in page.status.running_jobs:
        beat = job["heartbeat_age_seconds"]
        health = "STALE heartbeat" if job["stale"] else f"heartbeat {beat} s before this page"
        lines = "\n".join(e(line) for line in page.logs.get(job["id"], [])) or "(no output yet)"
        parts.append(
            f'<div class="job"><p><b>{e(job["kind"])}</b> of '
            f"<b>{e(names.get(job['item_uid'], job['item_uid']))}</b> on "
            f'<b>{e(job["worker"])}</b> <span class="{"bad" if job["stale"] else "ok"}">'
            f"{e(health)}</span></p><pre>{lines}</pre></div>"
        )
    return "".join(parts)


def _anchor(item: dict) -> str:
    return page_anchor(item["uid"])


def _link(item: dict) -> str:
    return f'<a href="#{_anchor(item)}">{e(item_name(item))}</a>'


def _failures(page: Page) -> str:
    """A card per stopped item, wrapping to any width (a table of four columns of
    sentences scrolled sideways on a phone)."""
    if not page.failures:
        return "<p>No failed, rejected or cancelled item.</p>"
    cards = [
        f'<div class="job"><p>{_link(f)} <b class="s-{e(f["state"])}">{e(f["state"])}</b></p>'
        f"<p>{e(f['why'].splitlines()[0])}</p></div>"
        for f in page.failures
    ]
    rejected = page.status.rejected
    more = (
        f"<p>{len(rejected)} queue entr{'y' if len(rejected) == 1 else 'ies'} in "
        "<code>jobs/rejected/</code> (never run): <code>mp jobs --state rejected</code>.</p>"
        if rejected
        else ""
    )
    return "".join(cards) + more


def _each_item(page: Page) -> str:
    """Each item's own section, folded: its state, its job now, its last changes and,
    if it failed, the end of its log. Reached by its anchor from every list above."""
    if not page.status.items:
        return "<p>No items yet.</p>"
    parts = []
    for item in page.status.items:
        uid = item["uid"]
        job = page.current.get(uid)
        now = f"its {e(job[0])} job is {e(job[1])}" if job else "no job in the queue"
        changes = "".join(
            f"<li>{_when(at)} {e(change)}</li>" for at, change in page.history.get(uid, [])
        )
        errors = page.errors.get(uid)
        ending = (
            "<p>The end of its failed job's log:</p><pre>"
            + "\n".join(e(line) for line in errors)
            + "</pre>"
            if errors
            else ""
        )
        parts.append(
            f'<details id="{_anchor(item)}"><summary>{e(item_name(item))} '
            f'<b class="s-{e(item["state"])}">{e(item["state"])}</b></summary>'
            f"<p>id {e(item['id'])}, uid <code>{e(uid[:12])}</code>; {now}.</p>"
            f"<ol>{changes}</ol>{ending}</details>"
        )
    return "".join(parts)


def _seasons(status: StatusReport) -> str:
    if not status.seasons:
        return "<p>No tv discs.</p>"
    parts = []
    for season in status.seasons:
        rows = [
            [e(disc["disc_label"]), e(disc["episodes"] or "not numbered yet"), e(disc["state"])]
            for disc in season["discs"]
        ]
        title = f"{season['show']}, season {season['season']}"
        parts.append(f"<h3>{e(title)}</h3>" + _table(["disc", "episodes", "state"], rows))
    return "".join(parts)


def _bars(rows: list[tuple[str, float, str]], unit: str, title: str) -> str:
    """A horizontal bar chart in SVG: (label, value, value as text) per row."""
    if not rows:
        return f"<p>No figures yet for {e(title.lower())}.</p>"
    top = max(value for _label, value, _text in rows) or 1
    height = 24 * len(rows) + 10
    bars = []
    for index, (label, value, text) in enumerate(rows):
        y = 5 + 24 * index
        width = max(1.0, 230 * value / top)
        # The end of a long name tells items apart (".../S01 Disc1", ".../S01 Disc2").
        shown = label if len(label) <= 36 else "…" + label[-35:]
        bars.append(
            f'<text x="0" y="{y + 15}" class="label">{e(shown)}</text>'
            f'<rect x="270" y="{y + 3}" width="{width:.1f}" height="16" class="bar"/>'
            f'<text x="{274 + width:.1f}" y="{y + 15}" class="value">{e(text)}</text>'
        )
    return (
        f"<figure><figcaption>{e(title)} ({e(unit)})</figcaption>"
        f'<div class="scroll"><svg viewBox="0 0 560 {height}" role="img" aria-label="{e(title)}">'
        f"<title>{e(title)}</title>{''.join(bars)}</svg></div></figure>"
    )


def _stage_chart(stats: Stats) -> str:
    rows = [
        (s["stage"], s["median_seconds"], duration_text(s["median_seconds"], tenths=True))
        for s in stats.stages
        if s["median_seconds"] is not None
    ]
    return _bars(rows, "median of completed jobs", "Time per stage")


def _ratio_chart(stats: Stats) -> str:
    rows = [(i["item"], i["ratio"], f"{i['ratio']:.0%}") for i in stats.items]
    unit = f"{ENCODE_STAGE.kind} output / input"
    if len(rows) > CHART_ITEMS:
        rows, unit = rows[-CHART_ITEMS:], f"{unit}; the last {CHART_ITEMS} of {len(rows)}"
    return _bars(rows, unit, "Compression per item")


def _timeline(page: Page) -> str:
    """The last day's jobs, a row per worker: where the hours went."""
    if not page.jobs:
        return "<p>No job ran in the last day.</p>"
    end = datetime.fromisoformat(page.generated_at)
    start = end - timedelta(hours=TIMELINE_HOURS)
    workers = sorted({job["worker"] for job in page.jobs})
    height = 30 * len(workers) + 30
    span = (end - start).total_seconds()
    parts = []
    for hour in range(0, TIMELINE_HOURS + 1, 6):
        x = 100 + 450 * hour / TIMELINE_HOURS
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" class="grid"/>'
            f'<text x="{x:.1f}" y="{height - 5}" class="value" text-anchor="middle">'
            f"{f'-{TIMELINE_HOURS - hour} h' if hour < TIMELINE_HOURS else 'now'}</text>"
        )
    for row, worker in enumerate(workers):
        y = 5 + 30 * row
        parts.append(f'<text x="0" y="{y + 15}" class="label">{e(worker[:14])}</text>')
        for job in (j for j in page.jobs if j["worker"] == worker):
            # Within the chart's day, whatever times the share's result files gave.
            ended = min(_moment(job["finished_at"]) or end, end)
            took = timedelta(seconds=min(job["seconds"] or 0, span))
            began = max(min(_moment(job["claimed_at"]) or (ended - took), ended), start)
            x = 100 + 450 * max(0.0, (began - start).total_seconds()) / span
            width = max(2.0, 450 * (ended - began).total_seconds() / span)
            kind = job["kind"] if job["kind"] in KINDS else "other"
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{min(width, 550 - x):.1f}" height="20" '
                f'class="k-{kind}"><title>{e(job["kind"])} ({e(job["state"])})</title></rect>'
            )
    legend = " ".join(f'<span class="key k-{kind}"></span>{e(kind)}' for kind in KINDS)
    return (
        f"<figure><figcaption>Jobs of the last day, per worker: {legend}</figcaption>"
        f'<div class="scroll"><svg viewBox="0 0 560 {height}" role="img" '
        'aria-label="Jobs of the last day">'
        f"<title>Jobs of the last day, per worker</title>{''.join(parts)}</svg></div></figure>"
    )


def _moment(timestamp: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(timestamp or "")
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Charts keep at least 480 px and scroll sideways on a phone: scaled down to fit, their
# 12 px labels would be 7 px.
# Each class of the timeline, the kinds and then "other", with its (light, dark) colours.
_CHARTED = (
    *itertools.zip_longest(KINDS, KIND_COLOURS[: len(KINDS)], fillvalue=OTHER_COLOURS),
    ("other", OTHER_COLOURS),
)


def _kind_colours(scheme: int) -> str:
    """The classes' custom properties in one colour scheme (0 light, 1 dark)."""
    return ";".join(f"--k-{kind}:{colours[scheme]}" for kind, colours in _CHARTED)


_KIND_RULES = "".join(
    f".k-{kind}{{fill:var(--k-{kind});background:var(--k-{kind})}}" for kind, _colours in _CHARTED
)
STYLE = (
    """
:root{color-scheme:light dark;--bg:#fafafa;--fg:#1d1d1f;--muted:#666;--line:#ddd;--card:#fff;
--bar:#4e79a7;--ok:#2e7d32;--bad:#c62828;"""
    + _kind_colours(0)
    + """}
@media (prefers-color-scheme:dark){:root{--bg:#161618;--fg:#eee;--muted:#aaa;--line:#333;
--card:#202024;--bar:#79a6d6;--ok:#81c784;--bad:#ef9a9a;"""
    + _kind_colours(1)
    + """}}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:var(--bg);
color:var(--fg)}
main{max-width:960px;margin:auto;padding:12px}
header p{color:var(--muted);margin:0}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px;
margin:12px 0}
h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.15em;margin:.3em 0}
h3{font-size:1em;margin:.8em 0 .2em}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);vertical-align:top}
code,pre{font:13px ui-monospace,monospace}pre{white-space:pre-wrap;background:var(--bg);
padding:6px;border-radius:4px;max-height:12em;overflow:auto}
.counts{display:flex;flex-wrap:wrap;gap:8px}.count{border:1px solid var(--line);border-radius:6px;
padding:4px 10px;text-align:center}.count b{display:block;font-size:1.4em}
.count span{font-size:.8em}
.s-FAILED,.s-REJECTED,.bad{color:var(--bad)}.s-IN_LIBRARY,.ok{color:var(--ok)}
svg{width:100%;min-width:480px;max-width:640px;height:auto;display:block}
svg text{fill:var(--fg);font-size:12px}
.bar{fill:var(--bar)}
.grid{stroke:var(--line)}figure{margin:0 0 18px}figcaption{color:var(--muted);font-size:.85em}
td{overflow-wrap:anywhere;min-width:8ch}pre{overflow-wrap:anywhere}
.key{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px}
"""
    + _KIND_RULES
    + """
details{border-bottom:1px solid var(--line);padding:4px 0}summary{cursor:pointer}
details ol{margin:.3em 0;padding-left:1.5em;font-size:.9em}
.job p{margin:.2em 0;overflow-wrap:anywhere}
#old{display:none;color:var(--bad)}
"""
)

# Ages from the UTC timestamps, in the reader's own terms; a page much older than the
# runs that write it says so (reconcile stopped, or the share went away).
SCRIPT = """
(function(){
  function ago(s){ if(s<90) return Math.round(s)+" s ago";
    if(s<5400) return Math.round(s/60)+" min ago";
    if(s<172800) return Math.round(s/3600)+" h ago"; return Math.round(s/86400)+" days ago"; }
  var now = Date.now();
  document.querySelectorAll("time[datetime]").forEach(function(t){
    var at = Date.parse(t.getAttribute("datetime")); if(isNaN(at)) return;
    t.title = new Date(at).toLocaleString(); t.textContent = ago((now-at)/1000); });
  var made = Date.parse(document.body.dataset.generated);
  if(!isNaN(made) && now-made > 15*60*1000){ document.getElementById("old").style.display="block"; }
})();
"""


def render_page(page: Page) -> str:
    status = page.status
    names = {item["uid"]: item_name(item) for item in status.items}
    drained = ", ".join(status.drained) if status.drained else "none"
    summary = f"{len(status.items)} items" + (
        f", {len(page.approvals)} waiting for you" if page.approvals else ""
    )
    sections = [
        _section(
            "At a glance", _counts(status) + f"<p>Drained workers: {e(drained)}</p>", "glance"
        ),
        _section("Waiting for a person", _approvals(page), "approvals"),
        _section("Running now", _running(page, names), "running"),
        _section("Failed, rejected, cancelled", _failures(page), "failures"),
        _section("Items by state", _items(status), "items"),
        _section("Seasons", _seasons(status), "seasons"),
        _section("Each item", _each_item(page), "each"),
        _section(
            "Figures",
            _stage_chart(page.stats) + _ratio_chart(page.stats) + _timeline(page),
            "figures",
        ),
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # Nothing but the page's own style and script, whatever a title might hold.
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>media-pipeline: {e(summary)}</title><style>{STYLE}</style></head>"
        f'<body data-generated="{e(page.generated_at)}"><main>'
        f"<header><h1>media-pipeline</h1><p>{e(summary)}; written "
        f"{_when(page.generated_at)}, reloads every {REFRESH_SECONDS} s.</p>"
        '<p id="old">This page is over 15 minutes old: is mp-reconcile.timer running on '
        "the controller?</p></header>"
        + "".join(sections)
        + f"</main><script>{SCRIPT}</script></body></html>\n"
    )
