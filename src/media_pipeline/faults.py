"""Failpoints: named places where the fault-matrix tests kill a command with SIGKILL.

`MP_CRASH_AT=claim:claimed mp claim ...` dies right after its claim rename, as if the
host lost power there. Unset (always, outside those tests) a failpoint costs one
string comparison.
"""

from __future__ import annotations

import os
import signal

# Read once: the tests set it in the environment of the process they start.
_CRASH_AT = os.environ.get("MP_CRASH_AT")


def crash_point(name: str) -> None:
    if name == _CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
