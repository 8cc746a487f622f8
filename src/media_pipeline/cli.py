"""The `mp` command line: parses options, calls one `run_*` function, prints its result.

Every known error becomes one sentence on stderr and its exit code (DESIGN section 2)
in `handle_errors`; nothing here decides anything about items, jobs or files.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime

import click
from click.core import ParameterSource

from media_pipeline import logs
from media_pipeline.config.host_warnings import config_warnings
from media_pipeline.config.hosts import host_name
from media_pipeline.config.load import load_config
from media_pipeline.config.output import example_yaml
from media_pipeline.config.settings import Config
from media_pipeline.errors import ConfigError, PipelineError, UsageError
from media_pipeline.idle import quick
from media_pipeline.items.names import printable
from media_pipeline.jobs.queue import PRIORITY_LIMIT
from media_pipeline.logs import register_secrets, setup_logging
from media_pipeline.pipeline import DESTINATION_GATE
from media_pipeline.service_user import become_service_user, missing_account_warnings
from media_pipeline.share.files import BadEntry
from media_pipeline.share.fsutil import SHARE_GONE_ERRNOS
from media_pipeline.text import json_text

log = logging.getLogger("media_pipeline.cli")


def handle_errors(function: Callable) -> Callable:
    """Turn our errors into `mp: <sentence>` and their exit code; a Ctrl-C into exit 130."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except PipelineError as error:
            if (
                isinstance(error, ConfigError)
                and len(error.problems) > 1
                and not logs.json_logging()
            ):
                # Every problem of the file on a line of its own, each escaped.
                _say(f"{error.path}: {len(error.problems)} problems:")
                for problem in error.problems:
                    click.echo(_to_stderr(f"  - {printable(problem)}", "ERROR"), err=True)
            else:
                _say(str(error))
            sys.exit(error.exit_code)
        except BadEntry as error:
            # Something on the share mp will not follow or read (a link, a FIFO) where a
            # command needed a real folder or file: refused for safety.
            log.debug("refused share entry", exc_info=True)
            _say(f"{printable(str(error))}; refused, nothing was written there")
            sys.exit(3)
        except KeyboardInterrupt:
            _say("interrupted")
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`mp jobs | head`): not an error worth a traceback.
            sys.stderr.close()
            sys.exit(141)
        except OSError as error:
            # A filesystem failure we did not foresee (permissions, a full disk, the
            # share gone mid-command): one sentence, the traceback only with -v.
            log.debug("filesystem error", exc_info=True)
            where = f"{error.filename}: " if error.filename else ""
            hint = " (is the share mounted read-only?)" if error.errno == errno.EROFS else ""
            _say(f"{where}{error.strerror or error}{hint}")
            sys.exit(3 if error.errno in SHARE_GONE_ERRNOS else 1)

    return wrapper


def _say(sentence: str) -> None:
    """The one sentence of an error: `mp: ...` on stderr, or, with --log-format json, a
    JSON line like every other line the command wrote (a log collector reads one kind).
    Printable, as log lines are: an error may quote a name from the share."""
    sentence = printable(sentence)
    if logs.json_logging():
        log.error("%s", sentence, extra={"event": "error"})
    else:
        click.echo(_to_stderr(f"mp: {sentence}", "ERROR"), err=True)


def _to_stderr(text: str, level: str) -> str:
    """A line for stderr: with its syslog priority when stderr is the journal."""
    return logs.with_priority(text, level) if logs.stderr_is_journal() else text


# --config, --log-format, -v/-q: on every command, so each console script has them, and
# on the group too, so that they work before the command (`mp -q claim ...`).
SHARED_OPTIONS = (
    click.option(
        "--config",
        "config_path",
        metavar="PATH",
        envvar="MP_CONFIG",
        help="Config file [default: $MP_CONFIG, else /etc/media-pipeline/config.yaml].",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Log lines on stderr as text or as one JSON object per line.",
    ),
    click.option("-v", "--verbose", count=True, help="Show the log lines, debug included."),
    click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only."),
)


def shared_options(function: Callable) -> Callable:
    for option in reversed(SHARED_OPTIONS):
        function = option(function)
    return function


# Where the group keeps the shared options given before the command.
BEFORE_THE_COMMAND = "media_pipeline.options_before_the_command"


def given_before(context: click.Context) -> None:
    """Keep the shared options typed before the command, for the command to use."""
    context.meta[BEFORE_THE_COMMAND] = {
        name: value
        for name, value in context.params.items()
        if context.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }


def _option(name: str, value):
    """A shared option's value: as given after the command, else as given before it,
    else the command's own default (or $MP_CONFIG)."""
    context = click.get_current_context()
    if context.get_parameter_source(name) is ParameterSource.COMMANDLINE:
        return value
    return context.meta.get(BEFORE_THE_COMMAND, {}).get(name, value)


def common_options(function: Callable) -> Callable:
    """The shared options on a command: logging set up from them, and --config passed on."""

    @shared_options
    @functools.wraps(function)
    def wrapper(*args, config_path, log_format, verbose, quiet, **kwargs):
        # First of all: run by hand under a umask of 000, mp would leave world-writable
        # files on the share for anyone to rewrite. The config's umask follows in _config.
        os.umask(umask_at_start() | 0o022)
        verbosity = -1 if _option("quiet", quiet) else _option("verbose", verbose)
        setup_logging(_option("log_format", log_format), verbosity)
        return function(*args, config_path=_option("config_path", config_path), **kwargs)

    return handle_errors(wrapper)


def linger_option(help_text: str) -> Callable:
    """--linger SECONDS, of the commands the timers run (claim, reconcile)."""
    return click.option(
        "--linger",
        type=click.IntRange(0, quick.LINGER_MOST),
        default=0,
        metavar="SECONDS",
        help=help_text,
    )


@functools.cache
def umask_at_start() -> int:
    """The umask this process was started with: the units' UMask=, or a shell's. mp
    makes it stricter (022, then the config's umask), never looser: a UMask= made
    stricter in a unit holds, and so does a person's umask 077."""
    started = os.umask(0o077)
    os.umask(started)
    return started


def _config(config_path: str | None, *, as_service: bool = True) -> Config:
    """The config, and what it says about this process: its umask, the secrets that
    log lines must hide, and (run as root, as_service) the user it runs as."""
    config = load_config(config_path)
    log.debug(
        "config %s: staging_root %s, database %s",
        config.source,
        config.staging_root,
        config.database,
    )
    os.umask(umask_at_start() | config.umask)
    if as_service:
        become_service_user(config)
    register_secrets(config.notify.secrets)
    return config


def _echo_json(data: dict) -> None:
    click.echo(json_text(data))


def _completion_config(ctx: click.Context) -> Config | None:
    """The config a command being completed would use, or None: completion runs on every
    Tab, so a config that does not load completes nothing rather than printing errors."""
    given = os.environ.get("MP_CONFIG")
    context: click.Context | None = ctx
    while context is not None:  # --config after the command, else before it
        if context.get_parameter_source("config_path") is ParameterSource.COMMANDLINE:
            given = context.params["config_path"]
            break
        context = context.parent
    try:
        config = load_config(given)
        become_service_user(config)  # a reader may make the database's -wal and -shm
    except Exception:
        return None
    return config


def complete_item(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """ITEM on Tab: the type/title[/disc] names in the database that start with what is
    typed, read without a lock (a reader never waits for reconcile)."""
    from click.shell_completion import CompletionItem

    from media_pipeline.items.state import item_name
    from media_pipeline.store import reading_database

    config = _completion_config(ctx)
    if config is None:
        return []
    try:
        with reading_database(config) as db:
            rows = [] if db is None else list(db.query("SELECT * FROM media_items ORDER BY id"))
    except Exception:
        return []
    names = [item_name(row) for row in rows]
    # Titles are folder names from the share. bash puts a completion on the command line
    # as it is, where "(2008)" is a syntax error and "$(...)" runs when Enter is pressed:
    # so bash gets them quoted (zsh and fish quote what they insert themselves). A name
    # with a control character (a newline) is not offered at all.
    quoted = os.environ.get("_MP_COMPLETE", "").startswith("bash")
    return [
        CompletionItem(shlex.quote(name) if quoted else name)
        for name in names
        if name.isprintable() and name.startswith(incomplete)
    ]


def complete_worker(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """--worker and NAME on Tab: the workers the config names."""
    from click.shell_completion import CompletionItem

    config = _completion_config(ctx)
    if config is None:
        return []
    return [CompletionItem(name) for name in sorted(config.workers) if name.startswith(incomplete)]


DRY_RUN = click.option("--dry-run", is_flag=True, help="Say what it would do; write nothing.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="media-pipeline")
@shared_options
@click.pass_context
def mp(context: click.Context, **_options) -> None:
    """media-pipeline: track discs from rip to library, hand work to the right host, and
    ask a person at the gates.

    ITEM is an item's id, its uid (or a unique start of it), or type/title[/disc label].
    The options below work before the command or after it: mp -v status, mp status -v.
    A command prints its result on stdout; its log lines reach stderr with -v, or where
    stderr is the journal (under systemd); warnings and errors always.

    \b
    Examples:
      mp status                     # what is where, and what needs you
      mp why 12                     # what item 12 waits for
      mp approve                    # decide the open gates in this terminal

    \b
    Completion of commands, items and workers (bash; zsh and fish alike):
      eval "$(_MP_COMPLETE=bash_source mp)"
    """
    given_before(context)


@mp.command()
@click.option("--dry-run", is_flag=True, help="Print every change and write nothing.")
@click.option("--rebuild", is_flag=True, help="Drop the cache tables and rebuild them.")
@click.option("--dispatch", "then_dispatch", is_flag=True, help="Then dispatch, in the same run.")
@click.option(
    "--if-changed",
    is_flag=True,
    help="Stop at once when nothing changed since the last such run (for the timer).",
)
@linger_option("With --if-changed: while jobs are under way, stay up to SECONDS and run again "
               "the moment something changes (for the timer).")  # fmt: skip
@common_options
def reconcile(
    config_path: str | None,
    dry_run: bool,
    rebuild: bool,
    then_dispatch: bool,
    if_changed: bool,
    linger: int,
) -> None:
    """Rescan the markers into the database and advance item states.

    With --if-changed (what the controller's timer runs), a run first compares the
    database, the queue's folders and the stage folders with what the last such run
    left noted, and stops at once when nothing differs; a full run still happens at
    least every 5 minutes (while a job runs, every minute or half of stale_after_seconds).

    \b
    Examples:
      mp reconcile --dry-run   # every change it would make, nothing written
      mp reconcile --rebuild   # rebuild the cache tables from the share
      mp reconcile --dispatch  # then queue the jobs the items now need
    """
    started = time.monotonic()
    if if_changed and (dry_run or rebuild):
        raise UsageError("--if-changed is for the timer's runs: not with --dry-run or --rebuild")
    if linger and not if_changed:
        raise UsageError("--linger is for the timer's runs: only with --if-changed")
    config = _config(config_path)
    if not if_changed:
        _control(config, dry_run, rebuild, then_dispatch, None)
        return
    from media_pipeline.reconcile.watch import Watch, keep_watching

    first = Watch.begin(config)
    did = _control(config, False, False, then_dispatch, first)
    if linger:
        keep_watching(
            first,
            started + linger,
            lambda watch: _control(config, False, False, then_dispatch, watch),
            did,
        )


def _control(config: Config, dry_run: bool, rebuild: bool, then_dispatch: bool, watch) -> bool:
    """One run of reconcile (and dispatch); with watch, the note for the next run.
    Whether it changed anything."""
    from media_pipeline.notify.send import new_run
    from media_pipeline.reconcile import run_reconcile
    from media_pipeline.reconcile.failures import counting_failures

    new_run()  # this run's time for notifications (notify.RUN_BUDGET_TIMEOUTS)

    # The unit's run is reconcile and its dispatch: either failing counts as a failed
    # run, and only both succeeding ends a streak (reconcile/failures.py).
    counting = contextlib.nullcontext() if dry_run else counting_failures(config)
    with counting:
        result = run_reconcile(config, dry_run=dry_run, rebuild=rebuild)
        for warning in result.warnings:
            log.warning("%s", warning)
        if dry_run:
            for line in result.describe():
                click.echo(f"would: {line}")
        click.echo(result.summary())
        queued = _dispatch(config, dry_run) if then_dispatch else 0
    if config.status_page and not dry_run:
        try:
            _write_status_page(config, config.status_page)
        except Exception as error:  # the page is for looking at: never a failed reconcile
            log.debug("status page", exc_info=True)
            log.warning("status page not written: %s", printable(str(error)))
    if watch is not None:
        watch.remember(dispatched=then_dispatch)
    return result.changed or queued > 0


def _write_status_page(config: Config, path: str) -> str:
    from media_pipeline.reports.page import page_text
    from media_pipeline.share.fsutil import write_file_atomic

    try:
        return write_file_atomic(path, page_text(config))
    except (OSError, BadEntry) as error:
        detail = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"cannot write {path} ({detail})") from None


@mp.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
@click.option("--watch", is_flag=True, help="A live screen, redrawn every 2 s until q or Ctrl-C.")
@click.option(
    "--html",
    "html_file",
    metavar="FILE",
    help="Write the status as one HTML page (what config status_page has reconcile write).",
)
@common_options
def status(config_path: str | None, as_json: bool, watch: bool, html_file: str | None) -> None:
    """Items grouped by state, with what needs a person's attention.

    \b
    Examples:
      mp status --watch                          # a live screen; q quits
      mp status --json | jq '.items | length'    # for scripts
      mp status --html /var/www/html/mp.html     # a page for a browser
    """
    from media_pipeline.reports.status import format_status, run_status, status_json

    config = _config(config_path)
    if html_file is not None:
        click.echo(f"wrote {_write_status_page(config, html_file)}")
        return
    if as_json:
        _echo_json(status_json(run_status(config)))
        return
    color = sys.stdout.isatty()
    if not watch:
        click.echo(format_status(run_status(config), color=color))
        return
    if color:
        from media_pipeline.reports.dashboard import run_dashboard

        run_dashboard(config)
        return
    # Not a terminal (a pipe, a log): the status again every 2 s, one after another.
    try:
        while True:
            text = format_status(run_status(config))
            click.echo(f"{datetime.now():%Y-%m-%d %H:%M:%S}  (every 2 s, Ctrl-C to stop)\n")
            click.echo(text)
            time.sleep(2)
    except KeyboardInterrupt:
        click.echo("")


@mp.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
@common_options
def stats(config_path: str | None, as_json: bool) -> None:
    """Per stage: jobs done, median and 95th percentile time, bytes in and out; failures.

    \b
    Examples:
      mp stats
      mp stats --json
    """
    from media_pipeline.reports.stats import format_stats, run_stats

    result = run_stats(_config(config_path))
    if as_json:
        _echo_json(result.as_json())
    else:
        click.echo(format_stats(result))


@mp.command()
@click.argument("item", shell_complete=complete_item)
@common_options
def why(config_path: str | None, item: str) -> None:
    """Say what ITEM is waiting for, and since when.

    \b
    Examples:
      mp why 12
      mp why "movie/Heat (1995)"
      mp why tv/Lost/"S01 Disc1"
    """
    from media_pipeline.reports.why import run_why

    click.echo(run_why(_config(config_path), item).message)


@mp.command()
@click.argument("item", shell_complete=complete_item)
@common_options
def history(config_path: str | None, item: str) -> None:
    """An item's state changes, jobs and approvals, oldest first.

    ITEM is the numeric id, the uid (or a unique prefix), or type/title[/disc label].

    \b
    Examples:
      mp history 12
      mp history 3fa9        # a uid's first characters, when no other uid starts so
    """
    from media_pipeline.reports.history import format_history, run_history

    click.echo(format_history(run_history(_config(config_path), item)))


@mp.command()
@click.option("--dry-run", is_flag=True, help="Print the jobs it would write, write nothing.")
@common_options
def dispatch(config_path: str | None, dry_run: bool) -> None:
    """Write a job into the queue for every item that needs one.

    \b
    Examples:
      mp dispatch --dry-run   # the jobs it would write
      mp dispatch
    """
    _dispatch(_config(config_path), dry_run)


def _dispatch(config: Config, dry_run: bool) -> int:
    from media_pipeline.control.dispatch import run_dispatch

    result = run_dispatch(config, dry_run=dry_run)
    verb = "would queue" if dry_run else "queued"
    for name, move in result.moved:
        said = "would move what it had filed" if dry_run else "moved what it had filed"
        click.echo(f"{printable(name)}: {said}: {move}")
    for name, job in result.queued:
        click.echo(f"{verb} {job} for {printable(name)}")
    for name, why in result.waiting:
        click.echo(f"waiting: {printable(name)} {why}")
    for sentence in result.refused:
        click.echo(f"not queued: {sentence}" if dry_run else sentence)
    click.echo(f"dispatch: {len(result.queued)} job(s) {verb}, {len(result.waiting)} waiting")
    return len(result.queued)


@mp.command()
@click.option(
    "--worker",
    metavar="NAME",
    shell_complete=complete_worker,
    help="Worker name from the config [default: hostname].",
)
@click.option("--dry-run", is_flag=True, help="Say which job it would claim; claim nothing.")
@linger_option("Stay up to SECONDS while the next job is on its way (for the timer).")
@common_options
def claim(config_path: str | None, worker: str | None, dry_run: bool, linger: int) -> None:
    """Claim and run at most one job this worker may run (exit 0 when there is none).

    With --linger (what the claim timer runs), a claim then stays while a job of an
    earlier kind than this worker's is queued or runs, and a little after it or its own
    job ended, and takes the next job of its kinds the second it is queued; never past
    SECONDS from its start.

    \b
    Examples:
      mp claim --dry-run              # which job this host would take
      mp claim --worker ct304    # as the timer on that host does
    """
    from media_pipeline.worker.claim import run_claim

    started = time.monotonic()
    if linger and dry_run:
        raise UsageError("--linger is for the timer's runs: not with --dry-run")
    config = _config(config_path)
    config_seen = quick.config_signature(config.source)  # as loaded: an edit ends a linger
    result = run_claim(config, worker, dry_run=dry_run)
    click.echo(result.message)
    if linger and not result.stops:
        from media_pipeline.worker.linger import stay

        kinds = config.workers[worker or host_name()].kinds
        later = stay(config.queue_dir, kinds, started + linger, result,
                     lambda: run_claim(config, worker), (config.source, config_seen))  # fmt: skip
        for result in later:
            click.echo(result.message)
    if result.failed:
        sys.exit(1)


@mp.command()
@click.option("--state", "state", metavar="S", help="Only this folder: pending, running, ...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
@common_options
def jobs(config_path: str | None, state: str | None, as_json: bool) -> None:
    """The job queue by folder, with worker, attempts, age and heartbeat age.

    \b
    Examples:
      mp jobs
      mp jobs --state rejected   # what the workers refused, and why
    """
    from media_pipeline.reports.jobs import format_jobs, list_jobs

    found = list_jobs(_config(config_path), state)
    if as_json:
        _echo_json({"jobs": found})
    else:
        click.echo(format_jobs(found, color=sys.stdout.isatty()))


@mp.command()
@click.option("--type", "item_type", type=click.Choice(["movie", "tv"]))
@click.option("--title", help="The movie's or show's folder name.")
@click.option("--disc-label", default="", help="For tv: the disc's folder name (S01 Disc1).")
@click.option(
    "--edition", default="", metavar="NAME", help="For a movie: a cut or copy of its own."
)
@click.option(
    "--device",
    metavar="/dev/srN",
    help="The drive a disc went into: type and title guessed from its label (udev runs this).",
)
@click.option(
    "--worker",
    metavar="NAME",
    help="With --device: this host's worker that rips (default: the host's name).",
)
@DRY_RUN
@common_options
def rip(
    config_path: str | None,
    item_type: str | None,
    title: str | None,
    disc_label: str,
    edition: str,
    device: str | None,
    worker: str | None,
    dry_run: bool,
) -> None:
    """Queue a rip job for a disc.

    With --device (what the udev rule starts, through mp-rip@srN.service), the disc's
    label and type come from udev, and the title is guessed from the label
    (SEINFELD_S3_D2: tv 'Seinfeld', 'S03 Disc2'); the first gate shows it, and 'mp
    rename' corrects it. A disc seen twice queues one job.

    \b
    Examples:
      mp rip --type movie --title "Heat (1995)"
      mp rip --type movie --title "Heat (1995)" --edition "Director's Cut"
      mp rip --type tv --title "Lost (2004)" --disc-label "S01 Disc1" --dry-run
      mp rip --device /dev/sr0
    """
    config = _config(config_path)
    if device is not None:
        if item_type or title or disc_label or edition:
            raise UsageError(
                "--device guesses the item from the disc: no --type, --title, "
                "--disc-label or --edition with it (rename it at the gate)"
            )
        from media_pipeline.control.disc_rip import run_rip_device

        click.echo(run_rip_device(config, device, worker, dry_run=dry_run).message)
        return
    if worker is not None:
        raise UsageError("--worker is for --device: the worker whose drive holds the disc")
    if not item_type or not title:
        raise UsageError("say which disc: --type and --title (or --device /dev/srN)")
    from media_pipeline.control.rip import run_rip

    result = run_rip(config, item_type, title, disc_label, edition=edition, dry_run=dry_run)
    click.echo(result.message)


@mp.command()
@click.argument("item", shell_complete=complete_item)
@DRY_RUN
@common_options
def cancel(config_path: str | None, item: str, dry_run: bool) -> None:
    """Cancel the item's pending or running job; the item becomes CANCELLED.

    \b
    Examples:
      mp cancel 12 --dry-run   # which job it would stop
      mp cancel 12             # then 'mp retry 12' to go on
    """
    from media_pipeline.control.cancel import run_cancel

    click.echo(run_cancel(_config(config_path), item, dry_run=dry_run).message)


@mp.command()
@click.argument("item", shell_complete=complete_item)
@click.option(
    "--redo",
    is_flag=True,
    help="For an item rejected at a gate: set its rejected output aside (kept) and run the "
    "job that made it again.",
)
@click.option(
    "--ask-again",
    is_flag=True,
    help="Set aside the approval at the gate it goes back to, so the person decides again "
    "(another library destination, say).",
)
@DRY_RUN
@common_options
def retry(config_path: str | None, item: str, redo: bool, ask_again: bool, dry_run: bool) -> None:
    """Send a FAILED, REJECTED or CANCELLED item back to where it stopped.

    \b
    Examples:
      mp retry 7                  # a failed item: its job is queued again
      mp retry movie/Heat --redo  # rejected at remux_review: remux it again
      mp retry 7 --ask-again      # filing failed (a file is there): choose a new destination
      mp retry 7 --dry-run        # where it would go back to
    """
    from media_pipeline.control.retry import run_retry

    if redo and ask_again:
        raise UsageError("give --redo or --ask-again, not both")
    result = run_retry(_config(config_path), item, redo=redo, ask_again=ask_again, dry_run=dry_run)
    click.echo(result.message)


@mp.command()
@click.argument("item", shell_complete=complete_item)
@click.option("--yes", "confirmed", is_flag=True, help="Do not ask for confirmation.")
@DRY_RUN
@common_options
def forget(config_path: str | None, item: str, confirmed: bool, dry_run: bool) -> None:
    """Stop tracking ITEM: out of the database, its stage folders set aside (kept).

    Each of its folders in staging, media and markers, is renamed to a hidden name beside
    it (never deleted), so reconcile does not bring it back and a new rip of the same
    title starts from clean folders. Its files in the library and its history stay.

    \b
    Examples:
      mp forget 12 --dry-run   # what it would set aside
      mp forget 12             # asks first
      mp forget 12 --yes
    """
    from media_pipeline.control.forget import run_forget

    config = _config(config_path)
    plan = run_forget(config, item, dry_run=True)  # checks, and says what would happen
    if dry_run:
        click.echo(plan.message)
        return
    if not confirmed:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError("mp forget asks first; without a terminal, add --yes")
        click.echo(plan.message)
        if not click.confirm("Forget it?", default=False):
            click.echo("nothing forgotten")
            return
    click.echo(run_forget(config, item).message)


@mp.command()
@click.argument("item", shell_complete=complete_item)
@click.argument("title")
@DRY_RUN
@common_options
def rename(config_path: str | None, item: str, title: str, dry_run: bool) -> None:
    """Give ITEM another TITLE: its folders, database rows and decisions follow.

    Refused while a job of the item runs or waits. A filing approval asks again (its
    destination had the old title); files already in the library keep their names. A tv
    disc is renamed on its own: rename each disc of the show.

    \b
    Examples:
      mp rename 12 "Heat (1995)" --dry-run
      mp rename movie/Heat "Heat (1995)"
      mp rename "tv/Lost/S01 Disc1" "Lost (2004)"
    """
    from media_pipeline.control.rename import run_rename

    click.echo(run_rename(_config(config_path), item, title, dry_run=dry_run).message)


@mp.command()
@click.argument("item", shell_complete=complete_item)
@click.option("--title", help="The movie's or the show's title as the library names it.")
@click.option("--year", help="Its year, where its name has none.")
@click.option("--edition", metavar="NAME", help="A movie's edition, Plex's {edition-NAME}.")
@click.option(
    "--first-episode",
    type=click.IntRange(1, 999),
    metavar="N",
    help="A tv disc's first episode: its episodes renumbered from N.",
)
@DRY_RUN
@common_options
def refile(
    config_path: str | None,
    item: str,
    title: str | None,
    year: str | None,
    edition: str | None,
    first_episode: int | None,
    dry_run: bool,
) -> None:
    """Move an item already in the library to another name: a movie's folder is renamed
    there (files and extras untouched, never copied, nothing deleted); a tv disc's
    episodes move to the new show's season folder and/or are renumbered. The new place
    is recorded as a signed decision, with a line in its history.

    Never over another file or folder: refused, naming it. A renumbering that would
    overlap another disc's episodes is refused, naming the disc.

    \b
    Examples:
      mp refile movie/Heat --year 1995 --dry-run
      mp refile 12 --edition "Director's Cut"
      mp refile "tv/Lost/S01 Disc2" --year 2004 --first-episode 4
    """
    from media_pipeline.approve.refile import run_refile

    result = run_refile(
        _config(config_path),
        item,
        title=title,
        year=year,
        edition=edition,
        first_episode=first_episode,
        dry_run=dry_run,
    )
    click.echo(result.message)


# A negative priority (`mp priority 1 -10`) is an argument, not an unknown option.
@mp.command(context_settings={"ignore_unknown_options": True})
@click.argument("item", shell_complete=complete_item)
@click.argument("priority", type=click.IntRange(-PRIORITY_LIMIT, PRIORITY_LIMIT))
@DRY_RUN
@common_options
def priority(config_path: str | None, item: str, priority: int, dry_run: bool) -> None:
    """Set an item's priority (default 0, higher first, -499 to 499).

    \b
    Examples:
      mp priority 12 100    # its jobs go before the others'
      mp priority 12 -10    # after them
    """
    from media_pipeline.control.priority import run_priority

    click.echo(run_priority(_config(config_path), item, priority, dry_run=dry_run).message)


NON_INTERACTIVE_HELP = (
    "'mp approve' asks in a terminal; without one, decide with "
    "'mp approve ITEM --yes [--destination TEXT] [--files TEXT]' or "
    "'mp approve ITEM --reject --reason TEXT', "
    "and list what waits with 'mp approve --list'"
)


@mp.command()
@click.argument("item", required=False, shell_complete=complete_item)
@click.option("--yes", "approve_it", is_flag=True, help="Approve ITEM's pending gate.")
@click.option("--reject", is_flag=True, help="Reject ITEM's pending gate (needs --reason).")
@click.option("--reason", metavar="TEXT", help="Why it is rejected.")
@click.option("--destination", metavar="TEXT", help=f"At {DESTINATION_GATE}: the library path.")
@click.option(
    "--files",
    metavar="TEXT",
    help="At either gate: each file by its number in episode order, with a role after a "
    "colon (double, special[=N], drop, featurette, trailer, ...): '2 1 3:special 4:drop'.",
)
@click.option(
    "--first-episode",
    type=click.IntRange(1, 999),
    metavar="N",
    help="At either gate, for a tv disc: its first episode's number in its season.",
)
@click.option(
    "--year", metavar="YYYY", help=f"At {DESTINATION_GATE}: the title's year, if it has none."
)
@click.option("--edition", metavar="NAME", help=f"At {DESTINATION_GATE}: a movie's edition.")
@click.option("--list", "list_only", is_flag=True, help="List the pending approvals.")
@click.option("--json", "as_json", is_flag=True, help="With --list: JSON for programs.")
@click.option(
    "--dry-run", is_flag=True, help="With ITEM: say what would be decided; write nothing."
)
@common_options
def approve(
    config_path: str | None,
    item: str | None,
    approve_it: bool,
    reject: bool,
    reason: str | None,
    destination: str | None,
    files: str | None,
    first_episode: int | None,
    year: str | None,
    edition: str | None,
    list_only: bool,
    as_json: bool,
    dry_run: bool,
) -> None:
    """Decide the pending approvals: interactively, or for ITEM with --yes / --reject.

    \b
    Examples:
      mp approve                                     # each open gate in turn
      mp approve --list
      mp approve 12 --yes
      mp approve 12 --yes --destination "Movies/Heat (1995)/Heat (1995).mkv"
      mp approve 14 --yes --files "2 1 3:double 4:special 5:featurette 6:drop"
      mp approve 14 --yes --first-episode 7
      mp approve 12 --yes --year 1995 --edition "Director's Cut"
      mp approve 12 --reject --reason "wrong audio track"
    """
    from media_pipeline.approve import session

    config = _config(config_path)
    if list_only:
        approvals = session.pending_approvals(config)
        if as_json:
            _echo_json({"approvals": [approval.as_json() for approval in approvals]})
        else:
            for approval in approvals:
                click.echo(
                    f"{approval.requested_at}  {approval.gate:<16} {printable(approval.name)}"
                )
            click.echo(f"{len(approvals)} pending approval(s)")
        return
    if item is not None or approve_it or reject:
        if item is None or approve_it == reject:
            raise UsageError("give ITEM and exactly one of --yes or --reject")
        click.echo(
            session.decide(
                config,
                item,
                approved=approve_it,
                reason=reason,
                destination=destination,
                files=files,
                first_episode=first_episode,
                year=year,
                edition=edition,
                dry_run=dry_run,
            )
        )
        return
    if dry_run:
        raise UsageError("--dry-run needs ITEM and --yes or --reject (the prompt only asks)")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(NON_INTERACTIVE_HELP)
    from media_pipeline.approve.terminal import TerminalPrompter

    summary = session.run_approve(config, TerminalPrompter())
    click.echo(summary.describe())
    if summary.interrupted:
        raise SystemExit(130)  # as a shell reports Ctrl-C


@mp.group(name="worker")
def worker_group() -> None:
    """Drain a worker before maintenance, or resume it.

    \b
    Examples:
      mp worker drain ct304
      mp worker resume ct304
    """


@worker_group.command(name="drain")
@click.argument("name", shell_complete=complete_worker)
@DRY_RUN
@common_options
def worker_drain(config_path: str | None, name: str, dry_run: bool) -> None:
    """NAME finishes its running job and claims no more.

    \b
    Examples:
      mp worker drain ct304    # before rebooting it; 'mp status' shows it drained
    """
    from media_pipeline.jobs.drain import set_drained

    click.echo(set_drained(_config(config_path), name, True, dry_run=dry_run))


@worker_group.command(name="resume")
@click.argument("name", shell_complete=complete_worker)
@DRY_RUN
@common_options
def worker_resume(config_path: str | None, name: str, dry_run: bool) -> None:
    """NAME claims jobs again.

    \b
    Examples:
      mp worker resume ct304
    """
    from media_pipeline.jobs.drain import set_drained

    click.echo(set_drained(_config(config_path), name, False, dry_run=dry_run))


@mp.group(name="keys")
def keys_group() -> None:
    """The keys that sign jobs, and the keys this host trusts.

    A worker runs a job only if its spec is signed by a key its host trusts: the
    controller's, or a ripper's for the rips of that ripper's own drives.

    \b
    Examples:
      mp keys show                           # on the controller (and on each ripper)
      mp keys trust controller ed25519:...   # on every other host, as 'show' prints it
      mp keys untrust ct302                  # a ripper's key lost or replaced
      mp keys list
    """


@keys_group.command(name="show")
@common_options
def keys_show(config_path: str | None) -> None:
    """This host's signing key, as the line to run on the other hosts.

    \b
    Examples:
      mp keys show    # on the controller after its first reconcile, and on each ripper
    """
    from media_pipeline.jobs.keys import run_keys_show

    click.echo(run_keys_show(_config(config_path)).message)


@keys_group.command(name="trust")
@click.argument("name")
@click.argument("key")
@common_options
def keys_trust(config_path: str | None, name: str, key: str) -> None:
    """Trust KEY for the jobs NAME signs: 'controller' any job, a ripper's host name
    the rips of its own drives.

    \b
    Examples:
      mp keys trust controller ed25519:3q2+7w...=   # as 'mp keys show' printed it
      mp keys trust ct302 ed25519:Zm9v...=          # a ripper, for its own drives
    """
    from media_pipeline.jobs.keys import run_keys_trust

    click.echo(run_keys_trust(_config(config_path), name, key).message)


@keys_group.command(name="untrust")
@click.argument("name")
@click.argument("key", required=False)
@common_options
def keys_untrust(config_path: str | None, name: str, key: str | None) -> None:
    """Stop trusting NAME's keys, or only KEY of them (a key lost or replaced).

    \b
    Examples:
      mp keys untrust ct302                  # every key trusted for ct302
      mp keys untrust controller ed25519:... # the old key, after a new one is trusted
    """
    from media_pipeline.jobs.keys import run_keys_untrust

    click.echo(run_keys_untrust(_config(config_path), name, key).message)


@keys_group.command(name="list")
@common_options
def keys_list(config_path: str | None) -> None:
    """The keys this host trusts, and for whom.

    \b
    Examples:
      mp keys list
    """
    from media_pipeline.jobs.keys import run_keys_list

    click.echo(run_keys_list(_config(config_path)).message)


@mp.group(name="scripts")
def scripts_group() -> None:
    """The reference scripts that come with media-pipeline.

    \b
    Examples:
      mp scripts install --dest /opt/media/scripts
    """


@scripts_group.command(name="install")
@click.option("--dest", metavar="DIR", help="Copy them here [default: /opt/media/scripts].")
@DRY_RUN
def scripts_install(dest: str | None, dry_run: bool) -> None:
    """Copy the reference scripts (rip, remux, transcode, filing) into DIR, executable.

    Run again after an upgrade: a script still as mp wrote it is updated; one changed
    since is left as it is, this version written beside it as NAME.new.

    \b
    Examples:
      mp scripts install                        # into /opt/media/scripts
      mp scripts install --dest /srv/scripts --dry-run
    """
    from media_pipeline.setup.scripts import run_scripts_install

    click.echo(run_scripts_install(dest, dry_run=dry_run).message)


@mp.group(name="timers")
def timers_group() -> None:
    """Install the systemd units that run media-pipeline on this host.

    \b
    Examples:
      mp timers install
    """


@timers_group.command(name="install")
@click.option(
    "--dest",
    metavar="DIR",
    help="Write here [default: /etc/systemd/system, or the user unit folder with --user].",
)
@click.option("--user", is_flag=True, help="Units for a user's systemd, not the system's.")
@click.option(
    "--worker",
    "workers",
    multiple=True,
    metavar="NAME",
    shell_complete=complete_worker,
    help="Enable a claim timer for this worker [default: this host, if a worker].",
)
@click.option(
    "--controller/--no-controller",
    default=None,
    help="Enable reconcile and dispatch [default: where the database folder is].",
)
@click.option(
    "--udev-dest",
    metavar="DIR",
    help="Where a ripper's udev rule goes [default: /etc/udev/rules.d; with --dest, DIR].",
)
@click.option(
    "--man-dest",
    metavar="DIR",
    help="Where the manual page mp.1 goes [default: /usr/local/share/man/man1, with --user "
    "~/.local/share/man/man1; with --dest, DIR].",
)
@common_options
def timers_install(config_path, dest, user, workers, controller, udev_dest, man_dest) -> None:
    """Write the units with this installation's mp and config, and the manual page they
    name (man mp), and say what to enable.

    \b
    Examples:
      mp timers install                          # this host's units, from the config
      mp timers install --user --dest /tmp/units --worker ct302 --no-controller
    """
    from media_pipeline.setup.manual import render_manual
    from media_pipeline.setup.timers import run_timers_install

    result = run_timers_install(
        _config(config_path, as_service=False),
        dest=dest,
        user=user,
        workers=tuple(workers),
        controller=controller,
        udev_dest=udev_dest,
        manual_page=render_manual(mp),
        man_dest=man_dest,
    )
    for path in result.written:
        click.echo(f"wrote {path}")
    for path in result.unchanged:
        click.echo(f"unchanged {path}")
    click.echo("then run:")
    for line in result.enable:
        click.echo(f"  {line}")


@mp.group(name="notify")
def notify_group() -> None:
    """Check the notifications: ntfy and the webhook named under notify in the config.

    \b
    Examples:
      mp notify test
    """


@notify_group.command(name="test")
@common_options
def notify_test(config_path: str | None) -> None:
    """Send one notification of each kind mp sends (gate waiting, failure, in library,
    reconcile failing) to each configured service, now, and say what each did. Exit 1
    when a service failed. Nothing is recorded.

    \b
    Examples:
      mp notify test
      mp notify test --config ./config.yaml
    """
    from media_pipeline.notify.channels import CHANNELS
    from media_pipeline.notify.send import send_tests

    config = _config(config_path, as_service=False)
    reports = send_tests(config)
    if not reports:
        keys = " or ".join(f"notify.{channel.URL_KEY}" for channel in CHANNELS)
        raise UsageError(
            f"no notification service is configured in {config.source}: set {keys}; "
            "nothing was sent"
        )
    for report in reports:
        if report.errors:
            click.echo(
                f"{report.service} {report.origin}: FAILED {len(report.errors)} of "
                f"{len(report.errors) + len(report.sent)}, first: {report.errors[0]}"
            )
        else:
            click.echo(f"{report.service} {report.origin}: sent {', '.join(report.sent)}")
    if any(report.errors for report in reports):
        raise PipelineError("a notification service did not take the test notifications")


@mp.group(name="config")
def config_group() -> None:
    """Check a config file, or print a commented example.

    \b
    Examples:
      mp config example > config.yaml && mp config validate --config config.yaml
    """


@config_group.command()
@common_options
def validate(config_path: str | None) -> None:
    """Check the config file; paths missing on this host are warnings, not errors.

    \b
    Examples:
      mp config validate
      mp config validate --config ./config.yaml
    """
    config = _config(config_path, as_service=False)
    for warning in [*config_warnings(config), *missing_account_warnings(config)]:
        click.echo(_to_stderr(f"warning: {warning}", "WARNING"), err=True)
    click.echo(f"{config.source}: valid")


@config_group.command()
def example() -> None:
    """Print a commented example config (it passes 'mp config validate').

    \b
    Examples:
      mp config example > /etc/media-pipeline/config.yaml
    """
    click.echo(example_yaml(), nl=False)


@mp.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@common_options
def demo(config_path: str | None, directory: str | None) -> None:
    """Run a whole pipeline in a sandbox folder (a temporary one if DIRECTORY is not given).

    \b
    Examples:
      mp demo ./demo-sandbox
      mp status --config ./demo-sandbox/config.yaml   # or export MP_CONFIG=<that>, for all
    """
    from media_pipeline.setup.demo import run_demo

    del config_path  # the demo writes its own config into the sandbox
    run_demo(directory, echo=click.echo)


def main() -> None:
    mp(prog_name="mp")


reconcile_main = reconcile
dispatch_main = dispatch
claim_main = claim
approve_main = approve
status_main = status
