"""The questionary prompter for `mp approve`: it only asks and shows; deciding is in
`approve/session.py`."""

from __future__ import annotations

import click
import questionary

from media_pipeline.approve.probe import summarize_file
from media_pipeline.approve.session import Choice, PendingApproval
from media_pipeline.items import printable
from media_pipeline.store import local_time


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
