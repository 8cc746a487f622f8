"""The questionary prompter for `mp approve`: it only asks and shows; deciding is in
`approve/session.py`.

Ctrl-C at any question leaves the whole session (questionary's own handling would
print "Cancelled by user" and go back to the item, where the next Enter approved it):
every question is asked with unsafe_ask, which lets KeyboardInterrupt through to
session.run_approve.
"""

from __future__ import annotations

import shutil
import textwrap

import click
import questionary

from media_pipeline.approve.session import Choice, PendingApproval
from media_pipeline.items.names import printable
from media_pipeline.library.file_roles import MOVIE_ROLES, TV_ROLES, labels
from media_pipeline.text import local_time, size_text

# The pointer and the highlighted choice stand out; hints are quiet. prompt_toolkit
# leaves the colours out under NO_COLOR.
STYLE = questionary.Style(
    [
        ("qmark", "fg:ansicyan bold"),
        ("question", "bold"),
        ("pointer", "fg:ansicyan bold"),
        ("highlighted", "fg:ansicyan bold"),
        ("selected", "fg:ansicyan"),
        ("answer", "fg:ansicyan bold"),
        ("instruction", "fg:ansibrightblack italic"),
    ]
)
CHOOSE_HINT = "(up/down to move, Enter to choose, Ctrl-C to leave)"
TYPE_HINT = "(Enter to accept, Ctrl-C to leave)"


def _text(message: str, default: str = "") -> str:
    """A line typed by the person; KeyboardInterrupt on Ctrl-C."""
    answer = questionary.text(
        message, default=default, style=STYLE, instruction=TYPE_HINT
    ).unsafe_ask()
    return str(answer)


def _said(prefix: str, text: str, **style) -> None:
    """text under prefix, wrapped at words to the terminal's width, indented."""
    width = max(40, shutil.get_terminal_size().columns - 2)
    lines = textwrap.wrap(
        text, width, initial_indent=f"  {prefix}", subsequent_indent=" " * (len(prefix) + 2)
    )
    for line in lines or [f"  {prefix}"]:
        click.secho(line, **style)


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
        becomes = labels(approval.roles, approval.prompt.get("numbering")) if approval.roles else {}
        place = {name: index for index, name in enumerate(approval.media, start=1)}
        for described in files:
            line = summarize_file(described)
            if described["name"] in place:
                line = f"{place[described['name']]:>2}. {line}"
                if described["name"] in becomes:
                    line += f"  -> {becomes[described['name']]}"
            click.echo("  " + printable(line))
        if approval.roles is not None:
            order = printable(approval.roles.text(approval.media))
            first = approval.roles.first_episode
            click.echo(f"  files: {order}" + (f", first episode {first}" if first else ""))
        if approval.decides_destination:
            click.echo(f"  destination: {printable(approval.prompt.get('destination', ''))}")
        warnings = approval.prompt.get("warnings") or []
        for note in approval.prompt.get("notes") or []:
            if note in warnings:
                _said("warning: ", printable(str(note)), fg="red", bold=True)
            else:
                _said("note: ", printable(str(note)), dim=True)

    def choose(self, approval: PendingApproval) -> Choice:
        # Approve is first, so Enter approves.
        choices = [c.value for c in Choice if c is not Choice.EDIT or approval.roles is not None]
        answer = questionary.select(
            "Decision:", choices=choices, style=STYLE, instruction=CHOOSE_HINT
        ).unsafe_ask()
        return Choice(answer) if answer else Choice.QUIT

    def edit_roles(
        self, approval: PendingApproval, text: str, first: str
    ) -> tuple[str, str] | None:
        roles = ", ".join(TV_ROLES if approval.item["type"] == "tv" else MOVIE_ROLES)
        click.echo(
            "  Each file by its number, in episode order; a role after a colon: 3:double,"
            " 4:special (4:special=2 for s00e02), 5:featurette, 6:drop.\n"
            f"  Roles: {roles}."
        )
        edited = _text("Files:", default=text)
        if approval.item["type"] != "tv":
            return edited, ""
        return edited, _text("First episode (Enter: as the season stands):", default=first)

    def ask_reason(self, approval: PendingApproval) -> str | None:
        return _text("Why reject it?")

    def ask_year(self, approval: PendingApproval) -> str | None:
        what = "movie" if approval.item["type"] == "movie" else "show"
        return _text(f"Year of the {what} (Plex matches by it; Enter for none):")

    def ask_edition(self, approval: PendingApproval) -> str | None:
        return _text("Edition (like Director's Cut; Enter for none):")

    def edit_destination(self, approval: PendingApproval, proposed: str) -> str | None:
        return _text("Library destination (edit or Enter):", default=proposed)

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
