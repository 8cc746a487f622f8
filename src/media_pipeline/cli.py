"""The `mp` command line: parses options, calls one `run_*` function, prints its result.

Every known error becomes one sentence on stderr and its exit code (DESIGN section 2)
in `handle_errors`; nothing here decides anything about items, jobs or files.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable

import click

from media_pipeline.config import Config, config_warnings, example_yaml, load_config
from media_pipeline.errors import PipelineError
from media_pipeline.logs import setup_logging

log = logging.getLogger("media_pipeline.cli")


def handle_errors(function: Callable) -> Callable:
    """Turn our errors into `mp: <sentence>` and their exit code; a Ctrl-C into exit 130."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except PipelineError as error:
            click.echo(f"mp: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("mp: interrupted", err=True)
            sys.exit(130)

    return wrapper


def common_options(function: Callable) -> Callable:
    """--config, --log-format, -v/-q: on every command, so each console script has them."""

    @click.option(
        "--config",
        "config_path",
        metavar="PATH",
        envvar="MP_CONFIG",
        help="Config file [default: $MP_CONFIG, else /etc/media-pipeline/config.yaml].",
    )
    @click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Log lines on stderr as text or as one JSON object per line.",
    )
    @click.option("-v", "--verbose", count=True, help="More log detail (repeat for more).")
    @click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
    @functools.wraps(function)
    def wrapper(*args, config_path, log_format, verbose, quiet, **kwargs):
        setup_logging(log_format, -1 if quiet else verbose)
        return function(*args, config_path=config_path, **kwargs)

    return handle_errors(wrapper)


def _config(config_path: str | None) -> Config:
    return load_config(config_path)


def _echo_json(data: dict) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="media-pipeline")
def mp() -> None:
    """media-pipeline: track discs from rip to library, hand work to the right host, and
    ask a person at the gates."""


@mp.command()
@click.option("--dry-run", is_flag=True, help="Print every change and write nothing.")
@click.option("--rebuild", is_flag=True, help="Drop the cache tables and rebuild them.")
@common_options
def reconcile(config_path: str | None, dry_run: bool, rebuild: bool) -> None:
    """Rescan the markers into the database and advance item states."""
    from media_pipeline.reconcile import run_reconcile

    result = run_reconcile(_config(config_path), dry_run=dry_run, rebuild=rebuild)
    for warning in result.warnings:
        log.warning("%s", warning)
    if dry_run:
        for line in result.plan.describe():
            click.echo(f"would: {line}")
    click.echo(result.summary())


@mp.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
@common_options
def status(config_path: str | None, as_json: bool) -> None:
    """Items grouped by state, with what needs a person's attention."""
    from media_pipeline.status import format_status, run_status, status_json

    report = run_status(_config(config_path))
    if as_json:
        _echo_json(status_json(report))
    else:
        click.echo(format_status(report))


@mp.command()
@click.argument("item")
@common_options
def history(config_path: str | None, item: str) -> None:
    """An item's state changes, jobs and approvals, oldest first.

    ITEM is the numeric id, the uid (or a unique prefix), or type/title[/disc label].
    """
    from media_pipeline.history import format_history, run_history

    click.echo(format_history(run_history(_config(config_path), item)))


def _not_yet(name: str, issue: int) -> click.Command:
    @click.command(name=name, help=f"Not built yet (issue #{issue}).")
    @common_options
    def command(config_path: str | None) -> None:
        raise PipelineError(f"'mp {name}' is not built yet (issue #{issue})")

    return command


dispatch = _not_yet("dispatch", 3)
claim = _not_yet("claim", 3)
approve = _not_yet("approve", 4)
for _command in (dispatch, claim, approve):
    mp.add_command(_command)


@mp.group(name="config")
def config_group() -> None:
    """Check a config file, or print a commented example."""


@config_group.command()
@common_options
def validate(config_path: str | None) -> None:
    """Check the config file; paths missing on this host are warnings, not errors."""
    config = _config(config_path)
    for warning in config_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{config.source}: valid")


@config_group.command()
def example() -> None:
    """Print a commented example config (it passes 'mp config validate')."""
    click.echo(example_yaml(), nl=False)


@mp.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@common_options
def demo(config_path: str | None, directory: str | None) -> None:
    """Run a whole pipeline in a sandbox folder (a temporary one if DIRECTORY is not given)."""
    from media_pipeline.demo import run_demo

    del config_path  # the demo writes its own config into the sandbox
    # The demo prints each step itself; the same events as log lines would say it twice.
    if logging.getLogger("media_pipeline").level == logging.INFO:
        logging.getLogger("media_pipeline").setLevel(logging.WARNING)
    run_demo(directory, echo=click.echo)


def main() -> None:
    mp(prog_name="mp")


reconcile_main = reconcile
dispatch_main = dispatch
claim_main = claim
approve_main = approve
status_main = status
