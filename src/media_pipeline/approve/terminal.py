"""The questionary prompter for `mp approve`: it only asks and shows; deciding is in
`approve/session.py`."""

from __future__ import annotations

import click
import questionary

from media_pipeline.approve.session import Choice, PendingApproval
from media_pipeline.items import printable
from media_pipeline.text import local_time, size_text


class TerminalPrompter:
    def show(self, approval: PendingApproval, position: int, total: int) -> None:
        click.echo("")
        click.secho(
            f"[{position} of {total}] {approval.gate}: {printable(approval.name)}", bold=True
        )
        click.echo(f"  waiting since {local_time(approval.requested_at)}")
        files = approval.prompt.get("files") or []
        if not files:
            click.echo(
                "  (no files found in " + printable(approval.prompt.get("folder", "?")) + ")"
            )
        for described in files:
            click.echo("  " + printable(summarize_file(described)))
        if approval.gate == "filebot_confirm":
            click.echo(f"  destination: {printable(approval.prompt.get('destination', ''))}")
        for note in approval.prompt.get("notes") or []:
            click.secho(f"  note: {printable(str(note))}", fg="yellow")

    def choose(self, approval: PendingApproval) -> Choice:
        # Approve is first, so Enter approves.
        answer = questionary.select("Decision:", choices=[choice.value for choice in Choice]).ask()
        return Choice(answer) if answer else Choice.QUIT

    def ask_reason(self, approval: PendingApproval) -> str | None:
        return questionary.text("Why reject it?").ask()

    def edit_destination(self, approval: PendingApproval, proposed: str) -> str | None:
        return questionary.text("Library destination (edit or Enter):", default=proposed).ask()

    def tell(self, message: str) -> None:
        click.echo(message)


def summarize_file(described: dict) -> str:
    """One line for a terminal: name, size, duration, video, tracks."""
    parts = [described["name"], size_text(described.get("size", 0))]
    if "duration" in described:
        minutes, seconds = divmod(int(described["duration"]), 60)
        parts.append(f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}")
    video = described.get("video")
    if video:
        parts.append(f"{video.get('codec')} {video.get('width')}x{video.get('height')}")
    for label, tracks in (("audio", described.get("audio")), ("subs", described.get("subtitles"))):
        if tracks:
            shown = ", ".join(
                f"{t['language']} {t['codec']}" + (" (default)" if t["default"] else "")
                for t in tracks
            )
            parts.append(f"{label}: {shown}")
    return "  ".join(parts)
