"""The config file's schema: every setting, with its help, example, checker and default.

Validation (load.py), the example (`mp config example`), the reference
(docs/configuration.md, output.py) and the settings' defaults (settings.py) all come
from SCHEMA.
"""

from __future__ import annotations

import itertools
from typing import Any

from media_pipeline.config.checks import (
    REQUIRED,
    Setting,
    absolute_path,
    account_name,
    checked_default,
    gate_list,
    http_url,
    io_class,
    library_names_rule,
    nice_value,
    path_list,
    positive_int,
    umask_text,
)
from media_pipeline.config.hosts import TEMPLATE_FIELDS, script_table, window_table, worker_table
from media_pipeline.notify.channels import CHANNELS
from media_pipeline.pipeline import (
    DESTINATION_GATE,
    DISC_STAGE,
    ENCODE_STAGE,
    FILING_STAGE,
    GATES,
    JOB_KINDS,
    PIPELINE,
    REVIEW_GATE,
    SORT_STAGE,
)

# The kinds of the example's and the defaults' hosts and scripts, by what each stage does.
_DISC, _SORT, _ENCODE, _FILING = (
    stage.kind for stage in (DISC_STAGE, SORT_STAGE, ENCODE_STAGE, FILING_STAGE)
)


def _timeouts_text() -> str:
    """Each stage's default timeout, from its row: '12 h for rip and remux, ...'."""
    said = [
        f"{hours} h for {' and '.join(stage.kind for stage in stages)}"
        for hours, stages in itertools.groupby(PIPELINE, key=lambda stage: stage.timeout_hours)
    ]
    return f"{', '.join(said[:-1])} and {said[-1]}" if len(said) > 1 else said[0]


SCHEMA: tuple[Setting, ...] = (
    Setting(
        "staging_root",
        "The shared filesystem (NFS or CIFS), mounted at the same path on every host.",
        "/mnt/staging",
        absolute_path,
    ),
    Setting(
        "library_root",
        "Where the filebot script files finished items (the Plex library).",
        "/mnt/library",
        absolute_path,
    ),
    Setting(
        "database",
        "The controller's SQLite database. Keep it on local disk, never on the share: "
        "SQLite's locking is not safe over NFS.",
        "/var/lib/media-pipeline/state.db",
        absolute_path,
        default="/var/lib/media-pipeline/state.db",
    ),
    Setting(
        "queue_dir",
        "The job queue, on the share. Default: <staging_root>/.pipeline/jobs.",
        "/mnt/staging/.pipeline/jobs",
        absolute_path,
        default=None,
    ),
    Setting(
        "decision_key",
        "The key that signs approval decisions, made on first use (mode 0600). Keep it on "
        "the controller's local disk, never on the share. Default: decision.key in the "
        "database's folder.",
        "/var/lib/media-pipeline/decision.key",
        absolute_path,
        default=None,
    ),
    Setting(
        "signing_key",
        "This host's private key (Ed25519) that signs the job specs it writes, made on "
        "first use (mode 0600). Keep it on local disk, never on the share. Default: "
        "job.key in the database's folder.",
        "/var/lib/media-pipeline/job.key",
        absolute_path,
        default=None,
    ),
    Setting(
        "trusted_keys",
        "The public keys whose signed jobs this host runs, one 'NAME KEY' a line, written "
        "by 'mp keys trust' (or the Ansible role). Local disk only: a key read from the "
        "share is never trusted. Default: trusted_keys in the database's folder.",
        "/var/lib/media-pipeline/trusted_keys",
        absolute_path,
        default=None,
    ),
    Setting(
        "status_page",
        "An HTML page of the pipeline at a glance, rewritten by every full reconcile on the "
        "controller (serve it with any web server). Default: none.",
        "/var/www/html/media-pipeline.html",
        absolute_path,
        default=None,
    ),
    Setting(
        "workers",
        f"Host name -> the job kinds it runs ({', '.join(JOB_KINDS)}), how many "
        "of its jobs may run at once on that host (max_running, default 1), and for a "
        "ripper whether its drive's tray opens when a disc's rip has succeeded (eject, "
        "default false).",
        {
            "ct302": {"kinds": [_DISC], "eject": True},
            "ct303": {"kinds": [_SORT]},
            "ct304": {"kinds": [_ENCODE, _FILING], "max_running": 1},
        },
        worker_table,
        default={
            "ct302": {"kinds": [_DISC]},
            "ct303": {"kinds": [_SORT]},
            "ct304": {"kinds": [_ENCODE, _FILING]},
        },
    ),
    Setting(
        "scripts",
        "Job kind -> the script that does it: {path, args, timeout_seconds}, or one per item "
        "type under 'movie' and 'tv'. timeout_seconds defaults to "
        f"{_timeouts_text()}. args are templates; the default is "
        '["{input_dir}", "{output_dir}"] and the fields are ' + ", ".join(TEMPLATE_FIELDS) + ".",
        {
            _DISC: {"path": "/opt/media/scripts/rip-disc.sh", "args": ["{output_dir}", "{title}"]},
            _SORT: {
                "movie": {"path": "/opt/media/scripts/organize-and-remux-movie.sh"},
                "tv": {"path": "/opt/media/scripts/organize-and-remux-tv.sh"},
            },
            _ENCODE: {"path": "/opt/media/scripts/transcode-queue.sh"},
            _FILING: {
                "path": "/opt/media/scripts/filebot-process.sh",
                "args": ["{input_dir}", "{destination}"],
            },
        },
        script_table,
        default={
            _DISC: {"path": "/opt/media/scripts/rip-disc.sh", "args": ["{output_dir}", "{title}"]},
            _SORT: {
                "movie": {"path": "/opt/media/scripts/organize-and-remux-movie.sh"},
                "tv": {"path": "/opt/media/scripts/organize-and-remux-tv.sh"},
            },
            _ENCODE: {"path": "/opt/media/scripts/transcode-queue.sh"},
            _FILING: {"path": "/opt/media/scripts/filebot-process.sh"},
        },
    ),
    Setting(
        "gates",
        f"Approval gates that are on: {REVIEW_GATE} (look at the remux before transcoding) "
        f"and {DESTINATION_GATE} (confirm the library destination). [] turns both off.",
        list(GATES),
        gate_list,
        default=list(GATES),
    ),
    Setting(
        "jobs",
        "How jobs are watched and retried.",
        None,
        children=(
            Setting(
                "heartbeat_seconds",
                "A running job's worker touches its heartbeat this often.",
                30,
                positive_int,
                default=30,
            ),
            Setting(
                "stale_after_seconds",
                "A running job whose heartbeat is older than this was orphaned (its host "
                "rebooted or its worker was killed) and is put back in the queue.",
                300,
                positive_int,
                default=300,
            ),
            Setting(
                "max_attempts",
                "A job that fails this many times fails for good: the item becomes FAILED.",
                3,
                positive_int,
                default=3,
            ),
            Setting(
                "backoff_seconds",
                "A failed attempt waits this long before the next, doubling each time.",
                60,
                positive_int,
                default=60,
            ),
            Setting(
                "cancel_grace_seconds",
                "On cancel or timeout a script gets SIGTERM, then SIGKILL this much later.",
                30,
                positive_int,
                default=30,
            ),
            Setting(
                "log_max_bytes",
                "A job's log keeps at most this many bytes of its script's output; past "
                "that the tail is kept (the end, where the error is).",
                10485760,
                positive_int,
                default=10485760,
            ),
            Setting(
                "retention_days",
                "Completed and cancelled jobs are removed from the queue folders after this "
                "many days; their history stays in the database.",
                30,
                positive_int,
                default=30,
            ),
            Setting(
                "spec_lifetime_days",
                "A worker refuses a job whose signed spec was issued longer ago than this "
                "(reconcile then queues its item again with a new one): a spec copied "
                "back onto the share later cannot run. At most retention_days.",
                7,
                positive_int,
                default=7,
            ),
        ),
    ),
    Setting(
        "windows",
        "Job kind -> the hours of the day (this host's local time) when workers may start "
        "it, as HH:MM-HH:MM; a window may wrap midnight. Kinds not listed run any time.",
        {_ENCODE: "01:00-07:00"},
        window_table,
        default={},
    ),
    Setting(
        "notify",
        "Where to tell a person that an approval waits, a job failed for good, an item "
        "reached the library or reconcile keeps failing. Each event is sent once; a "
        "notification that fails is logged, never fatal. Try it: mp notify test.",
        None,
        children=(
            # Each channel's own (notify/ntfy.py, ...), then what they share.
            *(setting for channel in CHANNELS for setting in channel.SETTINGS),
            Setting(
                "timeout_seconds",
                "How long one notification may take.",
                10,
                positive_int,
                default=10,
            ),
            Setting(
                "status_url",
                "The status page (status_page) as a person opens it, like "
                "http://ct303.lan/media/status.html: a notification opens it when tapped "
                "(ntfy's Click; 'url' in the webhook's JSON), at the section it is about. "
                "null: none.",
                None,
                http_url,
                default=None,
            ),
        ),
    ),
    Setting(
        "lock_timeout_seconds",
        "How long a controller command waits for the database lock before it gives up (exit 3).",
        60,
        positive_int,
        default=60,
    ),
    Setting(
        "units",
        "How 'mp timers install' writes the system units (not the --user ones).",
        None,
        children=(
            Setting(
                "user",
                "The user the services run mp as; it must write the share and the database's "
                "folder. Make it on each host: useradd --system --user-group --create-home "
                "media (and on the ripper: usermod -aG cdrom media). mp run as root by hand "
                "becomes this user too, but for the install commands; root: stay root.",
                "media",
                account_name,
                default="media",
            ),
            Setting("group", "The services' group.", "media", account_name, default="media"),
            Setting(
                "transcode_nice",
                "The CPU nice level (0-19) of a worker that transcodes, so that an encode "
                "gives way to Plex playing on the same host.",
                10,
                nice_value,
                default=10,
            ),
            Setting(
                "transcode_io_class",
                "Its disk priority: idle (only when nothing else reads) or best-effort.",
                "idle",
                io_class,
                default="idle",
            ),
        ),
    ),
    Setting(
        "library_names",
        "How a title becomes a folder and file name in the library: 'smb' (the default) "
        "leaves out or replaces what SMB shares and Windows clients refuse ('Star Wars: "
        "Episode IV' is filed as 'Star Wars - Episode IV'; ? * \" < > | \\ /, a trailing "
        "dot or space, CON, NUL...); 'as-is' keeps the title as it is (but a '/').",
        "smb",
        library_names_rule,
        default="smb",
    ),
    Setting(
        "script_writable_paths",
        "Folders the scripts may write besides their item's own folders, /tmp, /var/tmp, "
        "/dev/shm, /dev/null, /dev/zero, and a rip's drives and ~/.MakeMKV: a job's script "
        "can write nothing else, the rest of the share "
        "and the library included (Landlock). Add what your own scripts need (a FileBot "
        "cache, say), and to the units' ReadWritePaths= too. Default: none.",
        ["/var/cache/filebot"],
        path_list,
        default=[],
    ),
    Setting(
        "umask",
        "The umask (octal, in quotes) for the files and folders mp and the scripts it runs "
        "make once this file is read; '002' makes them group-writable. Until then mp "
        "uses 022. mp never loosens the umask it was started with, it adds to it: the "
        "units' UMask= (this one), or a shell's umask when run by hand.",
        "022",
        umask_text,
        default="022",
    ),
)


def setting_at(path: str) -> Setting:
    """The setting at a dotted path ('jobs.heartbeat_seconds')."""
    settings, found = SCHEMA, None
    for name in path.split("."):
        found = next(setting for setting in settings if setting.key == name)
        settings = found.children
    if found is None:
        raise KeyError(path)
    return found


def default(path: str) -> Any:
    """The default of the setting at path, as the code gets it: where the settings
    classes (settings.py) take theirs, so that each default is written once, here."""
    setting = setting_at(path)
    problems: list[str] = []
    value = checked_default(setting, path, problems)
    if setting.default is REQUIRED or problems:
        raise AssertionError(f"setting {path} has no default that passes its check {problems}")
    return value
