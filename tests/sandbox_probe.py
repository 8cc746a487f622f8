"""Run by a job's script inside its unit (the stand-in script's `probe` behaviour): tries
what each sandbox setting forbids and prints, per setting, "held" or what happened. Each
try is one that would succeed for the same user without the setting, so a "held" is the
setting's doing, not a missing capability. Python's standard library only: the systems
have nothing else."""

import ctypes
import errno
import json
import os
import socket
import tempfile

libc = ctypes.CDLL(None, use_errno=True)
found = {}


def refused(call) -> str:
    """'held' when call() is refused with EPERM, EACCES or EAFNOSUPPORT."""
    try:
        result = call()
    except OSError as error:
        held = error.errno in (errno.EPERM, errno.EACCES, errno.EAFNOSUPPORT)
        return "held" if held else str(error)
    return f"allowed ({result})"


def c_call(function, *args):
    def call():
        if function(*args) == -1:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return "returned"

    return call


def netlink():
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()
    return "made an AF_NETLINK socket"


def setuid_bit():
    with tempfile.NamedTemporaryFile(dir=os.environ["MP_TEST_DIR"]) as made:
        os.chmod(made.name, 0o4755)
        return "set the setuid bit"


def outside_the_item():
    """A file in the staging root, which the unit lets a claim write but a job's script
    may not (worker/confine.py): the share's layout on the test systems, test/ beside
    staging/."""
    staging = os.path.join(os.path.dirname(os.environ["MP_TEST_DIR"]), "staging")
    with tempfile.NamedTemporaryFile(dir=staging, prefix=".probe-"):
        return "wrote in the staging root"


CLONE_NEWUSER, PER_LINUX32 = 0x10000000, 0x0008
found["RestrictAddressFamilies"] = refused(netlink)
found["RestrictNamespaces"] = refused(c_call(libc.unshare, CLONE_NEWUSER))
found["RestrictSUIDSGID"] = refused(setuid_bit)
found["LockPersonality"] = refused(c_call(libc.personality, PER_LINUX32))
found["Landlock"] = refused(outside_the_item)
print(json.dumps(found))
