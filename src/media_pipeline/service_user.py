"""A root run becomes the service user (config `units.user`) before it opens anything.

The systemd units run mp as `units.user`, so everything mp makes on the share and on
the controller's disk (queue and job folders, item `.pipeline/` files, the database and
its -wal/-shm, decision.key, job logs) belongs to that user. A person who runs mp as
root by hand would otherwise make root-owned files there, after which the units fail:
a queue folder the workers cannot claim from ("Permission denied"), a decision.key only
root can read (every reconcile by the service exits 3 while `mp status` looks fine).
And a root run by hand should have no more reach than the unit it stands in for.

So a command run as root reads its config (as root: the file may be root's and the
service's group's), then takes the identity the unit has, User= and Group= with the
user's supplementary groups (a ripper's `cdrom`), and its environment's HOME, USER,
LOGNAME and SHELL, before anything else is opened. The umask needs nothing more: mp
adds 022, then the config's `umask`, to the umask it was started with (the unit's
UMask=, a shell's) as its first steps, before this switch, in the unit as by hand.

Not switched: a run as any other user (only root can switch, and such a run has no
more reach than its user), a config with `units.user: root` (the owner's way to run
everything as root), and the commands that install (`mp timers install`, `mp scripts
install`), print (`mp config example`, `--help`), check (`mp config validate`, which
warns of a missing user) or make a sandbox of their own (`mp demo`). A user or group
this host does not have refuses the command (exit 3, as for a share that is not
mounted: the config is fine, the host is not ready) and says how to make it or opt out;
running as root in its place is the very thing this is here to stop.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from media_pipeline.errors import SafetyRefusal

if TYPE_CHECKING:
    from media_pipeline.config.settings import Config

log = logging.getLogger("media_pipeline.service_user")

ROOT = "root"


def must_switch(config: Config) -> bool:
    """Whether this process, as it is now, has to become the service user (cheap: for
    the quick idle paths, which hand such a run to the full command)."""
    return os.geteuid() == 0 and config.units.user != ROOT


def become_service_user(config: Config) -> None:
    """Switch this root process to the units' user, group and supplementary groups, or
    refuse (SafetyRefusal) when that user or group is not on this host or the switch
    fails. Does nothing when must_switch says there is nothing to do."""
    if not must_switch(config):
        return
    account, group_id = service_account(config)
    user, group = config.units.user, config.units.group
    if account.pw_uid == 0:
        return  # another name for root: nothing to give up
    try:
        os.initgroups(user, group_id)
        os.setresgid(group_id, group_id, group_id)
        os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    except OSError as error:
        raise SafetyRefusal(
            f"mp run as root could not become units.user '{user}' ({error.strerror}); "
            "nothing was done"
        ) from None
    # What systemd's User= sets: the scripts a claim runs find the service's home
    # (~/.MakeMKV), not root's.
    os.environ.update(
        HOME=account.pw_dir, USER=user, LOGNAME=user, SHELL=account.pw_shell or "/bin/sh"
    )
    _check_installation(user)
    log.debug("running as %s:%s (units.user, units.group)", user, group)


def _check_installation(user: str) -> None:
    """Refuse now, in one sentence, when the user cannot read this Python or mp (installed
    under /root, say): the modules a command imports later, and the interpreter a claim
    starts its scripts' guard with, would fail halfway with a traceback instead."""
    for path, mode in (
        (os.path.dirname(os.__file__), os.R_OK | os.X_OK),
        (os.path.dirname(__file__), os.R_OK | os.X_OK),
        (sys.executable, os.X_OK),
    ):
        if not os.access(path, mode):
            raise SafetyRefusal(
                f"run as root, mp runs as units.user '{user}', who cannot reach {path}: "
                "install mp where that user can (its units need that too), or set "
                "units.user to root to run mp as root"
            )


def who_may_open_hint(config: Config) -> str:
    """What to add to a "Permission denied" on the service's own files (the database,
    its folder, its lock): who may open them. Empty where this process is that user
    already, for whom the hint would be no help."""
    import pwd

    user = config.units.user
    if user == ROOT:
        return "; the database is root's (units.user): run mp as root" if os.geteuid() else ""
    try:
        service_uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return ""
    if os.geteuid() in (0, service_uid):
        return ""
    return (
        f"; the database is the service user's, units.user '{user}': run mp as root (it "
        f"becomes {user}) or as {user} (sudo -u {user} mp ...)"
    )


def missing_account_warnings(config: Config) -> list[str]:
    """For `mp config validate`: the service user or group this host does not have
    (a warning, like a path missing here: the config is shared by hosts)."""
    if config.units.user == ROOT:
        return []
    import grp
    import pwd

    warnings = []
    try:
        pwd.getpwnam(config.units.user)
    except KeyError:
        warnings.append(
            f"units.user '{config.units.user}' is not a user on this host: the units cannot "
            "start, and mp run as root refuses (useradd --system --user-group --create-home "
            f"{config.units.user}, or units.user: root)"
        )
    try:
        grp.getgrnam(config.units.group)
    except KeyError:
        warnings.append(f"units.group '{config.units.group}' is not a group on this host")
    return warnings


def service_account(config: Config):
    """The units' user (its passwd entry) and group id on this host; SafetyRefusal,
    saying what to make, where either is missing."""
    import grp
    import pwd

    user, group = config.units.user, config.units.group
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise SafetyRefusal(
            f"units.user in {config.source} is '{user}', a user this host does not have, "
            f"and mp run as root runs as that user; make it (useradd --system --user-group "
            f"--create-home {user}) or set units.user to root to run mp as root"
        ) from None
    try:
        group_id = grp.getgrnam(group).gr_gid
    except KeyError:
        raise SafetyRefusal(
            f"units.group in {config.source} is '{group}', a group this host does not have, "
            f"and mp run as root runs as that group; make it (groupadd --system {group}) or "
            f"set units.group to a group {user} is in"
        ) from None
    return account, group_id
