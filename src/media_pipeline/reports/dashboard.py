"""`mp status --watch` in a terminal: one screen redrawn in place until `q` or Ctrl-C.

What needs a person comes first (approvals waiting, items that failed and why), then
what runs now (each job with the last line its script wrote), then every item still on
its way; the items in the library are only counted. It reads the database (read-only)
and the queue's folders, as `mp status` does, and writes nothing.

Every text from the share (titles, labels, worker names, log lines) goes in as plain
text, its control characters escaped: a title such as "[red]x" or one holding an escape
sequence shows as itself and styles nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator
from datetime import datetime

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from media_pipeline.config.settings import Config
from media_pipeline.items.names import printable
from media_pipeline.items.state import item_name
from media_pipeline.jobs.outcome import last_words, log_tail
from media_pipeline.jobs.queue import (
    RUNNING,
    Queue,
)
from media_pipeline.pipeline import DISPLAY_ORDER, FILING_STAGE
from media_pipeline.reports.status import STATE_COLOURS, StatusReport, run_status
from media_pipeline.share.files import BadEntry
from media_pipeline.text import local_time

REFRESH_SECONDS = 2.0
DONE_STATES = (FILING_STAGE.done,)


def last_log_lines(config: Config) -> dict[str, str]:
    """Job id -> the last line its script wrote, for each job in running/."""
    found = {}
    with Queue.of(config) as queue:
        for entry in queue.running():
            try:
                with queue.open_job(RUNNING, entry.folder_name) as job:
                    found[entry.job_id] = last_words(log_tail(job))
            except (OSError, BadEntry):
                continue  # ended meanwhile, or not a folder: nothing to show
    return found


def _plain(text: object) -> Text:
    return Text(printable(str(text)))


def _state(state: str) -> Text:
    return Text(state, style=STATE_COLOURS.get(state, ""))


def _needs_you(report: StatusReport) -> Table | None:
    waiting = [item for item in report.items if item["pending_approval"]]
    failed = [item for item in report.items if item["state"] == "FAILED"]
    if not waiting and not failed:
        return None
    table = Table(title="Needs you", title_justify="left", expand=True, show_edge=False)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("item", ratio=2, overflow="fold")
    table.add_column("what", ratio=3, overflow="fold")
    for item in waiting:
        what = Text(f"awaits {item['pending_approval']}: 'mp approve {item['id']}'")
        table.add_row(str(item["id"]), _plain(item_name(item)), what)
    for item in failed:
        reason = printable(item["reason"] or "no reason recorded")
        where = f"in {item['stopped_in']}: " if item["stopped_in"] else ""
        table.add_row(str(item["id"]), _plain(item_name(item)), Text(where + reason, style="red"))
    return table


def _more(shown: int, total: int, where: str) -> Text | None:
    """The line that says how many rows did not fit, or None when all did."""
    if shown >= total:
        return None
    return Text(f"... and {total - shown} more ({where} lists them all)", style="italic")


def _running(report: StatusReport, lines: dict[str, str], room: int) -> Table | None:
    if not report.running_jobs:
        return None
    names = {item["uid"]: item_name(item) for item in report.items}
    table = Table(title="Running", title_justify="left", expand=True, show_edge=False)
    table.add_column("job", no_wrap=True)
    table.add_column("item", ratio=2, overflow="fold")
    table.add_column("worker", no_wrap=True)
    table.add_column("alive", no_wrap=True)
    table.add_column("last line", ratio=3, overflow="fold")
    for job in report.running_jobs[:room]:
        beat = job["heartbeat_age_seconds"]
        if job["stale"]:
            alive = Text("STALE", style="red")
        else:
            alive = Text("starting" if beat is None else f"{beat} s ago")
        table.add_row(
            job["kind"],
            _plain(names.get(job["item_uid"], job["item_uid"])),
            _plain(job["worker"]),
            alive,
            _plain(lines.get(job["id"], "")),
        )
    return table


def _on_their_way(waiting: list[dict], room: int) -> Table | None:
    order = {state: index for index, state in enumerate(DISPLAY_ORDER)}
    items = sorted(
        waiting, key=lambda item: (order.get(item["state"], len(order)), item_name(item))
    )[:room]
    if not items:
        return None
    table = Table(title="On their way", title_justify="left", expand=True, show_edge=False)
    table.add_column("state", no_wrap=True)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("uid", no_wrap=True)
    # One line a row, so that what does not fit is counted right; the id and uid tell
    # apart two names cut alike.
    table.add_column("item", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("since", no_wrap=True)
    for item in items:
        table.add_row(
            _state(item["state"]),
            str(item["id"]),
            item["uid"][:8],
            _plain(item_name(item)),
            local_time(item["updated_at"]),
        )
    return table


# Rows a table takes besides its own: its title, its header and the rule below it,
# and the blank line before it.
TABLE_LINES = 4


def view(report: StatusReport, lines: dict[str, str], now: datetime, height: int = 50) -> Group:
    """The whole screen for one moment, height lines tall at most: what does not fit
    is counted ("... and 12 more"), never cut off unsaid. What needs a person comes
    first, then the running jobs (a share writer's fake running/ folders cannot push
    the rest off: they get at most a third of the room)."""
    counts = Text(f"{len(report.items)} items: ")
    for index, (state, count) in enumerate(report.counts.items()):
        if index:
            counts.append(", ")
        counts.append(f"{count} ", style="bold")
        counts.append(state, style=STATE_COLOURS.get(state, ""))
    header = Text.assemble(
        ("media-pipeline", "bold"), f"  {now:%Y-%m-%d %H:%M:%S}  ", ("q", "bold"), " or ",
        ("Ctrl-C", "bold"), " to quit",
    )  # fmt: skip
    parts: list = [header, counts]
    if not report.database_exists:
        parts.append(Text("No database yet: run 'mp reconcile' on the controller."))
    room = height - 3  # the header, the counts and a line to spare
    needs = _needs_you(report)
    if needs is not None:
        room -= TABLE_LINES + needs.row_count
    running_room = max(1, room // 3 - TABLE_LINES - 1)
    running = _running(report, lines, running_room)
    if running is not None:
        room -= TABLE_LINES + running.row_count + 1
    waiting = [item for item in report.items if item["state"] not in DONE_STATES]
    waiting_room = max(1, room - TABLE_LINES - 1)
    on_their_way = _on_their_way(waiting, waiting_room)
    for block, more in (
        (needs, None),
        (running, _more(running_room, len(report.running_jobs), "'mp jobs --state running'")),
        (on_their_way, _more(waiting_room, len(waiting), "'mp status'")),
    ):
        if block is not None:
            parts.extend([Text(""), block])
            if more is not None:
                parts.append(more)
    if report.drained:
        parts.append(_plain(f"drained (claim nothing): {', '.join(report.drained)}"))
    return Group(*parts)


def snapshot(config: Config, height: int = 50) -> Group:
    return view(run_status(config), last_log_lines(config), datetime.now(), height)


@contextlib.contextmanager
def _keys_read_one_by_one() -> Iterator[int | None]:
    """stdin in cbreak mode (a key arrives without Enter, Ctrl-C still interrupts), put
    back as it was however this ends; None when stdin is no terminal."""
    descriptor = sys.stdin.fileno()
    if not os.isatty(descriptor):
        yield None
        return
    saved = termios.tcgetattr(descriptor)
    try:
        tty.setcbreak(descriptor)
        yield descriptor
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _quit_pressed(descriptor: int | None, seconds: float) -> bool:
    """Wait up to seconds for a key; whether it was q."""
    if descriptor is None:
        time.sleep(seconds)
        return False
    ready, _, _ = select.select([descriptor], [], [], seconds)
    return bool(ready) and os.read(descriptor, 32).lower().startswith(b"q")


def run_dashboard(config: Config, refresh: float = REFRESH_SECONDS) -> None:
    """Redraw the screen every refresh seconds until q or Ctrl-C."""
    console = Console()
    with (
        contextlib.suppress(KeyboardInterrupt),
        _keys_read_one_by_one() as keys,
        Live(
            snapshot(config, console.size.height), console=console, screen=True, auto_refresh=False
        ) as live,
    ):
        while not _quit_pressed(keys, refresh):
            live.update(snapshot(config, console.size.height), refresh=True)
