"""Failpoints: named places where the fault-matrix tests kill a command with SIGKILL.

`MP_CRASH_AT=claim:claimed mp claim ...` dies right after its claim rename, as if the
host lost power there. Unset (always, outside those tests) a failpoint costs one
string comparison. `MP_STOP_AT=claim:beating` stops the process there (SIGSTOP) until
the test continues it, so a test can act at exactly that step.
"""

from __future__ import annotations

import os
import signal

# Read once: the tests set them in the environment of the process they start.
_CRASH_AT = os.environ.get("MP_CRASH_AT")
_STOP_AT = os.environ.get("MP_STOP_AT")


def crash_point(name: str) -> None:
    if name == _CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
    if name == _STOP_AT:
        # Frozen until the test sends SIGCONT: what another host does meanwhile is the
        # race the test sets up, at exactly this step.
        os.kill(os.getpid(), signal.SIGSTOP)
