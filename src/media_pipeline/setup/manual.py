"""The manual page mp(1), made from the click command tree: every command's usage, help
and options, as `--help` shows them, so the page cannot drift from the commands.

`mp timers install` writes it beside the units it installs (the units name
`man:mp(1)` as their documentation). roff is written by hand: a page is a few
requests (.TH .SH .SS .TP .nf), and no dependency is needed for it.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re

import click

PAGE_NAME = "mp.1"
# The page's first line: how `mp timers install` knows a page it may replace.
GENERATED = '.\\" Written by mp timers install (media-pipeline); built from the CLI.'
# The folder of section 1 that man finds on every distribution without configuration
# (man-db's MANDATORY_MANPATH /usr/local/share/man), for a page not from a package.
SYSTEM_MAN_FOLDER = "/usr/local/share/man/man1"
# Options every command takes: listed once, under OPTIONS, not under each command.
SHARED_PARAMETERS = {"config_path", "log_format", "verbose", "quiet"}

EXIT_STATUS = (
    ("0", "Success (for claim: also no job to run)."),
    ("1", "An operation failed: a job failed, a script is missing."),
    ("2", "A usage or configuration error."),
    ("3", "Refused for safety: the share missing or not mounted, a lock held too long."),
    ("130", "Interrupted (Ctrl-C)."),
)
ENVIRONMENT = (
    ("MP_CONFIG", "The config file of every command without --config."),
    ("NO_COLOR", "When set, nothing is coloured."),
)
FILES = (
    ("/etc/media-pipeline/config.yaml", "The config file (mp config example prints one)."),
    ("/etc/systemd/system/mp-*", "The units mp timers install writes."),
)


def escape(text: str) -> str:
    """text as roff prints it: a backslash is an escape, a hyphen may become a dash, and
    a line that starts with '.' or "'" would be a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)


def _paragraphs(help_text: str) -> list[str]:
    """click's help as roff paragraphs: a block after a \\b line keeps its lines (the
    examples), the rest is filled."""
    lines = []
    for block in re.split(r"\n\s*\n", help_text.strip()):
        if block.startswith("\b"):
            kept = block.split("\n", 1)[1] if "\n" in block else ""
            lines.append(".PP\n.nf\n" + escape(kept) + "\n.fi")
        else:
            lines.append(".PP\n" + escape(" ".join(block.split())))
    return lines


def _help(command: click.Command) -> str:
    # As --help shows it: up to a \f, without the docstring's indent.
    return inspect.cleandoc((command.help or command.short_help or "").split("\f", 1)[0])


def _options(context: click.Context, parameters: list[click.Parameter]) -> list[str]:
    lines = []
    for parameter in parameters:
        if isinstance(parameter, click.Argument):
            continue  # named in the usage line, explained in the help
        record = parameter.get_help_record(context)
        if record is None:
            continue
        names, help_text = record
        lines.append(f".TP\n\\fB{escape(names)}\\fR\n{escape(help_text)}")
    return lines


def _commands(context: click.Context) -> list[tuple[click.Context, click.Command]]:
    """Every command under the group of context, depth first, in the order of --help."""
    group = context.command
    found: list[tuple[click.Context, click.Command]] = []
    if not isinstance(group, click.Group):
        return found
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        child = click.Context(command, info_name=name, parent=context)
        found.append((child, command))
        found.extend(_commands(child))
    return found


def command_paths(group: click.Group) -> list[str]:
    """ "mp reconcile", "mp timers install", ...: every command the page documents."""
    root = click.Context(group, info_name="mp")
    return [child.command_path for child, _command in _commands(root)]


def _version() -> str:
    try:
        return importlib.metadata.version("media-pipeline")
    except importlib.metadata.PackageNotFoundError:
        return ""


def render_manual(group: click.Group) -> str:
    """The page, in roff (man(7)). Dated by nothing but the version: the same install
    writes the same page, so a second `mp timers install` changes nothing."""
    root = click.Context(group, info_name="mp")
    summary = _help(group).strip().split("\n\n", 1)[0]
    lines = [
        GENERATED,
        f'.TH MP 1 "" "media-pipeline {_version()}" "User Commands"',
        ".SH NAME",
        "mp \\- " + escape(" ".join(summary.split()).removeprefix("media-pipeline: ")),
        ".SH SYNOPSIS",
        "\\fBmp\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        *_paragraphs(_help(group)),
        ".SH OPTIONS",
        ".PP",
        "Every command takes these, before the command or after it.",
        *_options(root, group.get_params(root)),
        ".SH COMMANDS",
    ]
    for context, command in _commands(root):
        usage = " ".join(command.collect_usage_pieces(context))
        lines.append(f'.SS "{escape(context.command_path)} {escape(usage)}"'.rstrip())
        lines.extend(_paragraphs(_help(command)))
        own = [
            p
            for p in command.get_params(context)
            if p.name not in SHARED_PARAMETERS and p is not command.get_help_option(context)
        ]
        lines.extend(_options(context, own))
    for title, entries in (
        ("EXIT STATUS", EXIT_STATUS),
        ("ENVIRONMENT", ENVIRONMENT),
        ("FILES", FILES),
    ):
        lines.append(f".SH {title}")
        lines.extend(f".TP\n\\fB{escape(name)}\\fR\n{escape(text)}" for name, text in entries)
    lines += [
        ".SH SEE ALSO",
        "\\fBmp\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR, \\fBsystemctl\\fR(1), "
        "\\fBjournalctl\\fR(1), \\fBsystemd.timer\\fR(5)",
    ]
    return "\n".join(lines) + "\n"
