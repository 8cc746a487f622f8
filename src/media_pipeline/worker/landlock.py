"""Landlock: a process gives up writing anywhere but below the folders it names.

A job's script runs with the share open to it: whoever writes the share can swap a
folder of the item for a link while the script runs (to another item's folder, to the
library, to a file outside the roots), and the script, which writes by name, follows
it. Landlock (Linux 5.13, rights to reparent files from 5.19) lets an unprivileged
process restrict itself and every process it starts to the folders it opened: a rule
holds the folder itself (its inode, opened before the restriction), not its name, so a
name swapped afterwards leads nowhere writable. Reading is left alone.

The guard (worker/guard.py) loads this file by its path and imports nothing of the
package, so it holds the standard library only. It talks to the kernel through ctypes:
the three system calls have the same numbers on every architecture (they came after
the numbering was unified).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Every right that makes or changes a file, by the ABI that brought it. Without REFER
# (ABI 2) the kernel refuses every rename into another folder, which scripts do all the
# time; so ABI 1 counts as none. TRUNCATE (ABI 3) covers truncate(2) by name.
_WRITE_RIGHTS = (
    (1 << 1)  # WRITE_FILE
    | (1 << 4)  # REMOVE_DIR
    | (1 << 5)  # REMOVE_FILE
    | (1 << 6)  # MAKE_CHAR
    | (1 << 7)  # MAKE_DIR
    | (1 << 8)  # MAKE_REG
    | (1 << 9)  # MAKE_SOCK
    | (1 << 10)  # MAKE_FIFO
    | (1 << 11)  # MAKE_BLOCK
    | (1 << 12)  # MAKE_SYM
)
_REFER, _TRUNCATE = 1 << 13, 1 << 14
# The rights a rule on a file (not a folder) may carry: /dev/null, a drive's node.
_FILE_RIGHTS = (1 << 1) | _TRUNCATE
MIN_ABI = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _call(number: int, *arguments) -> int:
    # syscall(2) reads every argument as a long: an int passed as C's int may not be one.
    words = [ctypes.c_long(a) if isinstance(a, int) else a for a in arguments]
    result = _libc.syscall(ctypes.c_long(number), *words)
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return result


def abi() -> int:
    """The Landlock ABI this kernel offers; 0 when it has none (too old, or not among
    the security modules it booted with) or a seccomp filter forbids asking."""
    try:
        return _call(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:
        return 0


def unavailable() -> str | None:
    """Why scripts cannot be confined here, or None when they can. Asked in a child
    process: a seccomp filter that forbids the call (a unit written before mp used
    Landlock) kills the caller rather than answer."""
    child = os.fork()
    if child == 0:
        os._exit(min(abi(), 100))
    _pid, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return (
            "this unit's SystemCallFilter= forbids Landlock's system calls "
            "(run 'mp timers install' again to write units that allow them)"
        )
    found = os.waitstatus_to_exitcode(status)
    if found >= MIN_ABI:
        return None
    if found == 0:
        return (
            "this kernel offers no Landlock (it needs Linux 5.19 or later, with 'landlock' "
            "among its security modules)"
        )
    return f"this kernel's Landlock (ABI {found}) cannot let scripts move files between folders"


def restrict_writes(places: list[int]) -> None:
    """From now on this process, and everything it starts, makes, changes or removes
    files only below the folders open as these descriptors (opened O_PATH is enough),
    and writes only those of them that are files (a device such as /dev/null). Raises
    OSError when the kernel cannot; nothing is restricted then."""
    version = abi()
    if version < MIN_ABI:
        raise OSError(errno.EOPNOTSUPP, f"Landlock ABI {version}: {MIN_ABI} or later is needed")
    rights = _WRITE_RIGHTS | _REFER | (_TRUNCATE if version >= 3 else 0)
    # struct landlock_ruleset_attr, its first field only: older kernels take it so.
    attributes = ctypes.create_string_buffer(struct.pack("=Q", rights))
    ruleset = _call(_CREATE_RULESET, attributes, 8, 0)
    try:
        for place in places:
            allowed = rights if stat.S_ISDIR(os.fstat(place).st_mode) else rights & _FILE_RIGHTS
            # struct landlock_path_beneath_attr (packed): allowed rights, parent fd.
            rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed, place))
            _call(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0)
        # Asked of an unprivileged process; already so under the units.
        if _libc.prctl(*(ctypes.c_ulong(a) for a in (_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        _call(_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)
