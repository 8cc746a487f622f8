"""`mp timers install`: the systemd units that run media-pipeline, written for this host.

The units are generated here, from one description, so `timers/` in the repository
(rendered for the default paths) and what `mp timers install` writes cannot drift.
Services are oneshot; a timer counts from the end of its service's last run
(OnUnitInactiveSec=), so a run never overlaps the previous one, and one claim instance
runs at most one job at a time. Path units are no substitute: inotify sees nothing
another host writes over NFS.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from media_pipeline.config.checks import unwritable_in_unit
from media_pipeline.config.hosts import host_name
from media_pipeline.config.settings import Config, UnitSettings
from media_pipeline.errors import SafetyRefusal, UsageError
from media_pipeline.pipeline import DISC_STAGE, ENCODE_STAGE
from media_pipeline.service_user import service_account
from media_pipeline.setup.manual import GENERATED, PAGE_NAME, SYSTEM_MAN_FOLDER
from media_pipeline.share.files import Folder
from media_pipeline.worker.ledger import ledger_folder

# (unit name, what it does, command, seconds between runs)
# The controller's run reconciles and then dispatches, so a job is queued in the run
# that saw its item's done marker; when nothing changed since its last run it stops
# before importing anything (idle/quick.py): about 0.03 s of CPU. While jobs are under way
# it lingers (reconcile/watch.py) and a claim lingers while a job of an earlier kind
# than its own is under way (worker/linger.py), each looking once a second: a stage's end
# reaches the next stage's script in seconds rather than two timer intervals (16 s, median, before
# they lingered), and idle nothing lingers (benchmarks/handoff.py, deployed.py). The
# dispatch timer is a backstop: it queues jobs even while reconcile cannot run.
LINGER_SECONDS = 300
CONTROLLER_UNITS = (
    (
        "mp-reconcile",
        "rescan markers and the job queue into the database, then queue jobs",
        f"reconcile --if-changed --dispatch --linger {LINGER_SECONDS}",
        15,
    ),
    ("mp-dispatch", "queue a job for every item that needs one", "dispatch", 1800),
)
# An idle claim costs about 0.025 s of CPU, answered from its note (idle/quick.py).
CLAIM_UNIT = (
    "mp-claim@",
    "claim and run one job as worker %i",
    f"claim --worker %i --linger {LINGER_SECONDS}",
    15,
)
# Only what exists on the host: `mp timers install` writes the page (setup/manual.py).
DOCUMENTATION = "man:mp(1)"


@dataclass(frozen=True)
class UnitPaths:
    mp: str
    config: str
    staging_root: str
    library_root: str
    queue_dir: str
    database_folder: str
    user: str = "media"
    group: str = "media"
    status_folder: str = ""  # where reconcile writes the status page, if anywhere
    umask: int = 0o022  # the config's
    # Where a worker notes the jobs it ended (worker/ledger.py): the one folder beside the
    # keys a claim may write.
    ledger_folder: str = "/var/lib/media-pipeline/ledger"
    # TimeoutStartSec= of a claim: above the longest script's timeout and its grace, so
    # mp's own timeout stops a script first and says so; systemd's is the backstop.
    claim_timeout_seconds: int = 72 * 3600 + 30 + 600
    # The config's script_writable_paths: what the owner's scripts write besides.
    script_writable_paths: tuple[str, ...] = ()


def paths_for(config: Config, mp: str | None = None) -> UnitPaths:
    mp = mp or installed_mp()
    config_path = os.path.abspath(config.source)
    # The config's own paths were checked when it was read; these two were not.
    for what, path in (("the 'mp' command", mp), ("the config file", config_path)):
        if unwritable_in_unit(path):
            raise UsageError(
                f"the path of {what}, {path!r}, holds a control character and cannot be "
                "written safely into a systemd unit; move it to a path without one"
            )
    return UnitPaths(
        mp=mp,
        config=config_path,
        staging_root=config.staging_root,
        library_root=config.library_root,
        queue_dir=config.queue_dir,
        database_folder=os.path.dirname(config.database),
        user=config.units.user,
        group=config.units.group,
        status_folder=os.path.dirname(config.status_page) if config.status_page else "",
        umask=config.umask,
        ledger_folder=ledger_folder(config),
        claim_timeout_seconds=config.longest_job_seconds() + config.jobs.cancel_grace_seconds + 600,
        script_writable_paths=config.script_writable_paths,
    )


def installed_mp() -> str:
    """The `mp` of this installation (the one beside this Python), for ExecStart."""
    beside = Path(sys.executable).with_name("mp")
    if beside.exists():
        return str(beside)
    found = shutil.which("mp")
    if found is None:
        raise UsageError("cannot find the 'mp' command of this installation for ExecStart")
    return os.path.abspath(found)


# The sandbox every system unit gets. What mp and the scripts need: the share, the
# library and the database's folder to write, the network (NFS, notifications), and
# nothing privileged. `systemd-analyze security` scores the result (tests check it).
HARDENING = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "PrivateTmp=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "RemoveIPC=yes",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged",
)
# The controller runs only Python: no devices, no home, no memory both written and run.
CONTROLLER_HARDENING = (
    "ProcSubset=pid",
    "PrivateDevices=yes",
    "ProtectHome=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallFilter=~@resources",
)
# A claim runs the owner's scripts: the ripper's drives (and the generic SCSI devices
# makemkvcon talks to them through), ~/.MakeMKV, and a JIT for FileBot (Java).
# A job's script writes only below its item's folders, which the worker asks of the
# kernel through Landlock (worker/confine.py): three calls that only take rights away, and
# that @system-service leaves out (systemd 252, Debian 12's, does).
CLAIM_HARDENING = (
    "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self",
    "DevicePolicy=closed",
    "DeviceAllow=block-sr rw",
    "DeviceAllow=char-sg rw",
    "ProtectHome=read-only",
)


# What makes a word need quotes in a unit: systemd splits these settings at whitespace
# and takes quotes and backslashes as syntax (systemd.syntax(7), QUOTING).
_NEEDS_QUOTES = re.compile(r"[\s\"'\\]")


def unit_word(text: str) -> str:
    """text as one word of a unit setting, whatever it holds (but control characters,
    which the config refuses): '%' doubled, since systemd expands specifiers (%h, %i)
    inside quotes too; in double quotes, with backslash and double quote escaped, when
    it holds a space, a quote or a backslash. A root of '/mnt/My Media' unquoted in
    ReadWritePaths= would be two paths, neither of them the root."""
    text = text.replace("%", "%%")
    if _NEEDS_QUOTES.search(text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def command_word(text: str) -> str:
    """text as one word of an Exec*= command line: a unit word whose '$' stays itself
    ('$NAME' there is an environment variable; '$$' is a '$')."""
    return unit_word(text.replace("$", "$$"))


def _writable(path: str) -> str:
    """A ReadWritePaths= word for a path from the config. '-' (inside the quotes, where
    systemd looks for it): a path missing on this host is skipped rather than failing
    the start."""
    return unit_word("-" + path)


def _hardening(
    paths: UnitPaths, writes: list[str], user: bool, extra: tuple[str, ...]
) -> list[str]:
    if user:
        # A user manager cannot set up most of these without privileges; left out.
        return []
    return [
        "",
        "# Hardening: the service sees the whole system read-only except what it must write.",
        "# Drop a line here (or add a path) if your scripts need more.",
        f"User={paths.user}",
        f"Group={paths.group}",
        "ReadWritePaths=" + " ".join(dict.fromkeys(writes)),
        *HARDENING,
        # The config's umask, as mp itself sets it: the library's files must stay
        # readable by a Plex that runs as another user (a stricter UMask here made them
        # 0640). mp keeps the stricter of this and the umask a person runs it with.
        f"UMask={paths.umask:04o}",
        *extra,
    ]


def _service(
    description: str,
    command: str,
    identifier: str,
    paths: UnitPaths,
    writes: list[str],
    user: bool,
    extra: tuple[str, ...] = (),
    hardening: tuple[str, ...] = (),
) -> str:
    lines = [
        "[Unit]",
        f"Description=media-pipeline: {description}",
        f"Documentation={DOCUMENTATION}",
        f"RequiresMountsFor={unit_word(paths.staging_root)}",
        "After=network-online.target remote-fs.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "Environment=" + unit_word(f"MP_CONFIG={paths.config}"),
        f"ExecStart={command_word(paths.mp)} {command} --config {command_word(paths.config)}",
        f"SyslogIdentifier={identifier}",
        *extra,
        *_hardening(paths, writes, user, hardening),
    ]
    return "\n".join(lines) + "\n"


def _timer(description: str, every_seconds: int) -> str:
    lines = [
        "[Unit]",
        f"Description=media-pipeline: {description}",
        f"Documentation={DOCUMENTATION}",
        "",
        "[Timer]",
        # Count from the end of the last run, not its start: a oneshot service that
        # takes longer than the interval is never started again while it still runs.
        "OnActiveSec=30s",
        f"OnUnitInactiveSec={every_seconds}s",
        "AccuracySec=1s",
        # Hosts sharing one NFS server should not all arrive at the same second.
        "RandomizedDelaySec=2s",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return "\n".join(lines) + "\n"


DEFAULT_UNIT_SETTINGS = UnitSettings()
# One folder ($RUNTIME_DIRECTORY), kept between runs, shared by the host's units: the
# lock files that count each worker's running jobs (PrivateTmp gives each unit its own
# /tmp, and /run/lock is not writable to every user on every distribution), and the
# notes each run leaves for the next (idle/quick.py).
RUNTIME_FOLDER = ("RuntimeDirectory=media-pipeline", "RuntimeDirectoryPreserve=yes")


def _priority(settings: UnitSettings) -> str:
    """A drop-in for a transcoding worker's claims: its encode gives way to Plex."""
    lines = [
        "# An encode gives way to whatever else the host does (Plex playing, say).",
        "[Service]",
        f"Nice={settings.transcode_nice}",
        f"IOSchedulingClass={settings.transcode_io_class}",
        "CPUWeight=20",
        "IOWeight=20",
    ]
    return "\n".join(lines) + "\n"


def render_units(
    paths: UnitPaths,
    *,
    user: bool = False,
    transcoders: tuple[str, ...] = (),
    settings: UnitSettings = DEFAULT_UNIT_SETTINGS,
    ripper: str | None = None,
) -> dict[str, str]:
    """File name (below the unit folder) -> text of every unit, and of the priority
    drop-in of each transcoding worker's claim instance."""
    units = {}
    for worker in transcoders:
        units[f"mp-claim@{worker}.service.d/50-priority.conf"] = _priority(settings)
    controller_writes = [
        _writable(path) for path in (paths.staging_root, paths.queue_dir, paths.database_folder)
    ]
    if paths.status_folder:
        controller_writes.append(_writable(paths.status_folder))
    for name, what, command, every in CONTROLLER_UNITS:
        units[f"{name}.service"] = _service(
            what,
            command,
            name,
            paths,
            controller_writes,
            user,
            RUNTIME_FOLDER,
            CONTROLLER_HARDENING,
        )
        units[f"{name}.timer"] = _timer(f"run {name} every {every} s", every)
    name, what, command, every = CLAIM_UNIT
    # makemkvcon keeps its settings and key in ~/.MakeMKV on the ripper.
    claim_writes = [
        *map(_writable, (paths.staging_root, paths.queue_dir, paths.library_root)),
        "-/run/lock",
        "-%h/.MakeMKV",  # a specifier: the service user's home
        _writable(paths.ledger_folder),
        *map(_writable, paths.script_writable_paths),
    ]
    units[f"{name}.service"] = _service(
        what,
        command,
        "mp-claim-%i",
        paths,
        claim_writes,
        user,
        (*RUNTIME_FOLDER, f"TimeoutStartSec={paths.claim_timeout_seconds}s"),
        CLAIM_HARDENING,
    )
    units[f"{name}.timer"] = _timer(f"claim a job as worker %i every {every} s", every)
    # Started by the udev rule (UDEV_RULE) when a disc goes into a drive; never a timer.
    units["mp-rip@.service"] = _service(
        "queue the rip of the disc in /dev/%i",
        "rip --device /dev/%i" + (f" --worker {ripper}" if ripper else ""),
        "mp-rip-%i",
        paths,
        [_writable(path) for path in (paths.staging_root, paths.queue_dir, paths.database_folder)],
        user,
        RUNTIME_FOLDER,
        CLAIM_HARDENING,
    )
    return units


UDEV_RULE_NAME = "90-media-pipeline.rules"
UDEV_RULES_FOLDER = "/etc/udev/rules.d"


def render_udev_rule(systemctl: str = "/usr/bin/systemctl") -> str:
    """A video disc in an optical drive starts mp-rip@srN. RUN and systemctl --no-block,
    not SYSTEMD_WANTS: systemd acts on a device's wants only when it first appears, and a
    drive is there long before its disc (udev sends a change event for the disc)."""
    match = 'ACTION=="change", SUBSYSTEM=="block", KERNEL=="sr[0-9]*", ENV{ID_CDROM_MEDIA}=="1"'
    start = f'RUN+="{systemctl} --no-block start mp-rip@%k.service"'
    lines = [
        "# media-pipeline: a DVD or Blu-ray put into an optical drive queues its rip",
        "# (mp-rip@srN.service runs 'mp rip --device /dev/srN'). Written by 'mp timers install'.",
        f'{match}, ENV{{ID_CDROM_MEDIA_DVD}}=="1", {start}',
        f'{match}, ENV{{ID_CDROM_MEDIA_BD}}=="1", {start}',
    ]
    return "\n".join(lines) + "\n"


def default_unit_folder(user: bool) -> str:
    if user:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return os.path.join(base, "systemd", "user")
    return "/etc/systemd/system"


def default_man_folder(user: bool) -> str:
    """Where man looks without being told: for a user, beside ~/.local/bin (man-db
    derives ~/.local/share/man from a PATH that holds it)."""
    if user:
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        return os.path.join(base, "man", "man1")
    return SYSTEM_MAN_FOLDER


@dataclass
class InstallResult:
    folder: str
    written: list[str]
    enable: list[str]
    unchanged: list[str] = field(default_factory=list)


def run_timers_install(
    config: Config,
    *,
    dest: str | None = None,
    user: bool = False,
    workers: tuple[str, ...] = (),
    controller: bool | None = None,
    udev_dest: str | None = None,
    manual_page: str | None = None,
    man_dest: str | None = None,
) -> InstallResult:
    """Write the units and say which to enable on this host: a claim instance per worker
    (default: this host's name, when it is a worker in the config), and reconcile and
    dispatch where the database lives (default: where its folder exists). A worker that
    rips also gets the udev rule that starts a rip when a disc goes in (system units
    only: udev starts system services). manual_page, mp(1), goes where man finds it,
    which the units name as their documentation."""
    folder = dest or default_unit_folder(user)
    for worker in workers:
        if worker not in config.workers:
            raise UsageError(f"worker '{worker}' is not under 'workers' in {config.source}")
    if not workers:
        host = host_name()
        workers = (host,) if host in config.workers else ()
    if controller is None:
        controller = os.path.isdir(os.path.dirname(config.database))
    transcoders = tuple(n for n, w in config.workers.items() if ENCODE_STAGE.kind in w.kinds)
    # The worker on this host that rips, which `mp rip --device` queues the disc's rip for.
    ripper = next((w for w in workers if DISC_STAGE.kind in config.workers[w].kinds), None)
    units = render_units(
        paths_for(config),
        user=user,
        transcoders=transcoders,
        settings=config.units,
        ripper=ripper,
    )
    files = {os.path.join(folder, name): text for name, text in units.items()}
    udev_reload = []
    if not user and any(DISC_STAGE.kind in config.workers[worker].kinds for worker in workers):
        # Units written elsewhere than the system's folder (to package or to look at):
        # the rule goes beside them, not into the system's either.
        rules = udev_dest or (folder if dest else UDEV_RULES_FOLDER)
        program = shutil.which("systemctl") or "/usr/bin/systemctl"
        files[os.path.join(rules, UDEV_RULE_NAME)] = render_udev_rule(program)
        udev_reload = ["udevadm control --reload"]
    if manual_page is not None:
        man_folder = man_dest or (folder if dest else default_man_folder(user))
        files[os.path.join(man_folder, PAGE_NAME)] = manual_page
    if not dest and not user:
        _make_ledger_folder(config)
    written: list[str] = []
    unchanged: list[str] = []
    for path, text in files.items():
        ours = GENERATED if path.endswith(os.sep + PAGE_NAME) else None
        try:
            (written if _write_if_changed(path, text, ours) else unchanged).append(path)
        except OSError as error:
            raise UsageError(f"cannot write {path} ({error.strerror})") from None
    timers = [f"{name}.timer" for name, *_rest in CONTROLLER_UNITS] if controller else []
    timers += [f"mp-claim@{worker}.timer" for worker in workers]
    systemctl = "systemctl --user" if user else "systemctl"
    enable = [f"{systemctl} daemon-reload"]
    if timers:
        enable.append(f"{systemctl} enable --now " + " ".join(timers))
    return InstallResult(folder, written, enable + udev_reload, unchanged)


def _make_ledger_folder(config: Config) -> None:
    """The worker's ledger folder, made now and given to the service user: the claim unit
    may write it but not make it (its parent, the keys' folder, is read-only there)."""
    folder = ledger_folder(config)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            account, group_id = service_account(config)
            os.chown(folder, account.pw_uid, group_id)
    except SafetyRefusal as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(
            f"cannot make {folder} for {config.units.user}, where a worker notes the jobs it "
            f"ended ({error.strerror or error}); make it, owned by that user"
        ) from None


def _write_if_changed(path: str, text: str, ours: str | None = None) -> bool:
    """Write text to path unless it holds it already (so that a deployment run again,
    by hand or by Ansible, changes nothing and can say so). Never through a link: the
    file is replaced whole (a temporary file renamed over it), readable by all (0644,
    whatever the umask: man and systemd read these as other users). With ours, a file
    there that does not start with it was not written by mp, and is left alone."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        current = None
    except OSError as error:
        raise UsageError(
            f"{path} is a link or cannot be read ({error.strerror}): not written; move it aside"
        ) from None
    else:
        with os.fdopen(descriptor, "rb") as handle:
            current = handle.read().decode("utf-8", "replace")
    if current == text:
        return False
    if ours is not None and current is not None and not current.startswith(ours):
        raise UsageError(
            f"{path} holds a page mp did not write: not replaced; move it aside, or give "
            "another folder with --man-dest"
        )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    folder, name = os.path.split(os.path.abspath(path))
    with Folder.open_root(folder) as target:
        target.write_atomic(name, text, mode=0o644)
    return True
