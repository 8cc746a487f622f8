"""Failpoints: named places where the fault-matrix tests kill a command with SIGKILL.

`MP_CRASH_AT=claim:claimed mp claim ...` dies right after its claim rename, as if the
host lost power there. Unset (always, outside those tests) a failpoint costs one
environment lookup.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("MP_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
