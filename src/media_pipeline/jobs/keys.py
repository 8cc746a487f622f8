"""The keys that sign job specs, and the public keys a host trusts: `mp keys`.

Anyone who can write the share can write a spec, so a worker runs one only if it is
signed by a key its host trusts. The keys are Ed25519 pairs: a worker holds public keys
only, so a worker host that is broken into cannot sign jobs for the others (with the
HMAC that signs decisions, every worker would hold the controller's secret).

Every host that writes jobs has its own key (config `signing_key`, made on first use,
mode 0600, like the decision key): the controller for every job it writes, a ripper for
the rips its own drives start (`mp rip --device` runs there, without a database). A
signer's name says what its key may sign: `controller` signs any job; any other name is
a ripper's host name, and its key signs only rips from that host's drives.

Trust is given out of band, never from the share: `mp keys show` on the signing host
prints the line to run on the others (`mp keys trust NAME KEY`), which appends it to the
host's `trusted_keys` file; the Ansible role writes the same file. A host also trusts
its own key, under the name it signs with.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import stat
from dataclasses import dataclass

from media_pipeline.config.hosts import HOST_NAME, host_name
from media_pipeline.config.settings import Config
from media_pipeline.errors import PipelineError, SafetyRefusal, UsageError
from media_pipeline.items.names import printable
from media_pipeline.said import Said
from media_pipeline.store import KEY_BYTES, existing_key, private_key

CONTROLLER = "controller"
KEY_PREFIX = "ed25519:"
_KEY_TEXT = re.compile(r"ed25519:[A-Za-z0-9+/]{43}=\Z")
MAX_TRUST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Signer:
    name: str
    private: bytes  # the 32-byte Ed25519 seed


def signer_name(config: Config) -> str:
    """The name this host signs as: `controller` where the controller's database is,
    else its host name (a ripper)."""
    return CONTROLLER if os.path.exists(config.database) else host_name()


def this_host_signer(config: Config) -> Signer:
    """This host's key, made on first use."""
    seed = private_key(config.signing_key, "signing key")[:KEY_BYTES]
    return Signer(signer_name(config), seed)


def public_raw(seed: bytes) -> bytes:
    """The 32 raw bytes of the public key of a private seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def public_text(seed: bytes) -> str:
    return KEY_PREFIX + base64.b64encode(public_raw(seed)).decode()


def parse_key(text: str) -> bytes | None:
    """The 32 raw bytes of a public key in its text form, or None."""
    if not _KEY_TEXT.match(text):
        return None
    try:
        return base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
    except binascii.Error:
        return None


def valid_name(name: str) -> bool:
    # "Controller" as a ripper's name would read as the controller to a person.
    if name.lower() == CONTROLLER:
        return name == CONTROLLER
    return bool(HOST_NAME.fullmatch(name))


# The trust of the last call, with the identity of the files it came from: a loop of
# claims in one process reads them again only once one has changed.
_TRUST_CACHE: dict[tuple, dict[str, list[bytes]]] = {}


def _identity(path: str) -> tuple:
    try:
        found = os.stat(path, follow_symlinks=False)
    except OSError:
        return (path, None)
    # ctime: a write, a chmod and a chown all change it.
    return (path, found.st_dev, found.st_ino, found.st_ctime_ns, found.st_size)


def trusted_keys(config: Config) -> dict[str, list[bytes]]:
    """Signer name -> the raw public keys trusted for it: the trust file's, and this
    host's own key under the name it signs with. A trust file that anyone but its owner
    (root or the user running mp) could write is refused: a line added there is a key
    that may sign anything."""
    identity = (
        _identity(config.trusted_keys),
        _identity(config.signing_key),
        os.geteuid(),
        signer_name(config),
    )
    if (cached := _TRUST_CACHE.get(identity)) is not None:
        return cached
    trusted = _read_trust(config)
    _TRUST_CACHE.clear()
    _TRUST_CACHE[identity] = trusted
    return trusted


def _read_trust(config: Config) -> dict[str, list[bytes]]:
    trusted: dict[str, list[bytes]] = {}
    for number, line in enumerate(_read_trust_file(config.trusted_keys).splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        key = parse_key(words[1]) if len(words) == 2 else None
        if key is None or not valid_name(words[0]):
            raise SafetyRefusal(
                f"{config.trusted_keys} line {number} is not 'NAME ed25519:KEY' "
                "(as 'mp keys show' prints it); fix or remove it"
            )
        trusted.setdefault(words[0], []).append(key)
    with contextlib.suppress(SafetyRefusal):
        # Only a key this user can read as its own counts; a root run by hand on a host
        # whose key is the service user's trusts the file's keys alone.
        seed = existing_key(config.signing_key, "signing key")
        if seed is not None:
            trusted.setdefault(signer_name(config), []).append(public_raw(seed[:KEY_BYTES]))
    return trusted


def _read_trust_file(path: str) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    except OSError as error:
        kind = "a symlink" if os.path.islink(path) else f"not readable ({error.strerror})"
        raise SafetyRefusal(f"trusted keys file {path} is {kind}; refusing to use it") from None
    try:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode):
            raise SafetyRefusal(f"trusted keys file {path} is not a regular file")
        if found.st_uid not in (0, os.geteuid()):
            raise SafetyRefusal(
                f"trusted keys file {path} belongs to user id {found.st_uid}, neither root "
                "nor the user running mp; check its lines, then chown it to one of them"
            )
        if found.st_mode & 0o022:
            raise SafetyRefusal(
                f"trusted keys file {path} may be written by others (mode "
                f"{stat.S_IMODE(found.st_mode):04o}); check its lines, then 'chmod 644' it"
            )
        data = os.read(descriptor, MAX_TRUST_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_TRUST_BYTES:
        raise SafetyRefusal(f"trusted keys file {path} is larger than {MAX_TRUST_BYTES} bytes")
    return data.decode("utf-8", "replace")


# -- mp keys -------------------------------------------------------------------------


def run_keys_show(config: Config) -> Said:
    signer = this_host_signer(config)
    role = (
        "signs every job it writes (the controller)"
        if signer.name == CONTROLLER
        else "signs the outcomes of the jobs it runs, and the rips of its own drives"
    )
    said = ""
    if signer.name != CONTROLLER and host_name() not in config.workers:
        # The order trap docs/install.md warns of: the controller is the host with the database.
        said = (
            f"warning: this host has no database ({config.database}) and is no worker: "
            "if it is the controller, run 'mp reconcile' here once, then this again.\n"
        )
    return Said(
        f"{said}this host {role} with the key in {config.signing_key}.\n"
        "On every other host, as root, run:\n"
        f"  mp keys trust {signer.name} {public_text(signer.private)}"
    )


def run_keys_list(config: Config) -> Said:
    trusted = trusted_keys(config)
    if not trusted:
        return Said(f"no key is trusted here ({config.trusted_keys} is empty or missing)")
    lines = []
    for name, keys in sorted(trusted.items()):
        for key in keys:
            lines.append(f"{name} {KEY_PREFIX}{base64.b64encode(key).decode()}")
    return Said("\n".join(lines))


def run_keys_trust(config: Config, name: str, key_text: str) -> Said:
    if not valid_name(name):
        raise UsageError(
            f"'{printable(name)}' is not a signer's name: 'controller', or a ripper's host name"
        )
    if parse_key(key_text) is None:
        raise UsageError(
            f"'{printable(key_text)[:80]}' is not a key as 'mp keys show' prints it "
            "(ed25519: and 44 characters)"
        )
    line = f"{name} {key_text}"
    with _editing(config.trusted_keys):
        existing = _read_trust_file(config.trusted_keys)
        if line in existing.splitlines():
            return Said(f"{name}'s key is trusted already ({config.trusted_keys})")
        _write_trust_file(config.trusted_keys, existing, line)
    what = "any job" if name == CONTROLLER else f"the rips of {name}'s drives"
    return Said(f"trusted {name}'s key for {what} ({config.trusted_keys})")


def run_keys_untrust(config: Config, name: str, key_text: str | None = None) -> Said:
    """Stop trusting NAME's keys (or only KEY of them): a key lost, or replaced."""
    with _editing(config.trusted_keys):
        existing = _read_trust_file(config.trusted_keys)
        kept, removed = [], 0
        for line in existing.splitlines():
            words = line.split()
            if words[:1] == [name] and (key_text is None or words[1:2] == [key_text]):
                removed += 1
                continue
            kept.append(line)
        if not removed:
            matching = f" that is {printable(key_text)[:24]}..." if key_text else ""
            raise UsageError(
                f"{config.trusted_keys} holds no key of {printable(name)}{matching}: nothing "
                "to untrust ('mp keys list' shows what is trusted)"
            )
        _write_trust_file(config.trusted_keys, "".join(line + "\n" for line in kept), None)
    own = (
        " (this host's own key stays trusted: it is not in the file)"
        if (name == signer_name(config) and existing_key(config.signing_key, "signing key"))
        else ""
    )
    return Said(f"no longer trusting {removed} key(s) of {name}{own}")


@contextlib.contextmanager
def _editing(path: str):
    """Held while the trust file is read, changed and written: two `mp keys trust` at
    once (a role's loop, two people) would each write the file without the other's key."""
    import filelock

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lock = filelock.FileLock(f"{path}.lock", timeout=60)
        lock.acquire()
    except filelock.Timeout:
        raise PipelineError(f"{path} is being changed by another 'mp keys' for 60 s") from None
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        yield
    finally:
        lock.release()


def _write_trust_file(path: str, existing: str, line: str | None) -> None:
    """Write the trust file anew as existing (and line, if any); a failure is one
    sentence for the person."""
    try:
        _replace_trust_file(path, existing, line)
    except OSError as error:
        raise _cannot_write(path, error) from None


def _cannot_write(path: str, error: OSError) -> PipelineError:
    return PipelineError(
        f"cannot write {path} ({error.strerror or error}) as user id {os.geteuid()}: "
        "its folder must be writable by the user mp runs as (as root, mp runs as units.user)"
    )


def _replace_trust_file(path: str, existing: str, line: str | None) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    # Written whole to a new file and renamed over: a reader never sees half a line.
    temporary = f"{path}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.fchmod(descriptor, 0o644)  # whatever the umask: the service user reads it
        with os.fdopen(descriptor, "w") as handle:
            handle.write(existing + ("" if not existing or existing.endswith("\n") else "\n"))
            if line is not None:
                handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
