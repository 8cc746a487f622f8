"""The controller's SQLite database: opening it under its lock, and its schema migrations.

The database is a cache of the filesystem plus history. Only controller commands open it,
and each holds the lock file beside it for as long as it has the database open, so two
timers never interleave their writes. The database, its WAL files, its lock and the
decision key beside it are the controller's alone: mode 0600 (`private_key`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import sqlite3
import stat
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import filelock
from sqlite_utils import Database

from media_pipeline.config.settings import Config
from media_pipeline.errors import SafetyRefusal, UsageError
from media_pipeline.service_user import who_may_open_hint

log = logging.getLogger(__name__)

# Tables rebuilt from the filesystem by `mp reconcile --rebuild`; state_transitions is
# history and stays (it is keyed by item uid, which does not change).
CACHE_TABLES = ("media_items", "human_approvals", "jobs")


# Who else could read the database could read every title and decision; who could
# write the lock file could hold it. Readable and writable by their owner only.
PRIVATE_MODE = 0o600
DATABASE_SUFFIXES = ("", "-wal", "-shm")
KEY_BYTES = 32
# A key file is 32 bytes; anything much larger is not one we made.
MAX_KEY_BYTES = 4096


def _migration_1(db: Database) -> None:
    db.table("media_items").create(
        {
            "id": int,
            "uid": str,
            "type": str,
            "title": str,
            "disc_label": str,
            "state": str,
            "stopped_in": str,  # for FAILED/REJECTED/CANCELLED: the state it stopped in
            "reason": str,
            "folder_path": str,
            "missing_since": str,
            "priority": int,
            "created_at": str,
            "updated_at": str,  # when the state last changed
        },
        pk="id",
        not_null={"uid", "type", "title", "disc_label", "state", "created_at", "updated_at"},
        defaults={"disc_label": "", "priority": 0},
    )
    db.table("media_items").create_index(["uid"], unique=True)
    db.table("media_items").create_index(["type", "title", "disc_label"], unique=True)
    db.table("state_transitions").create(
        {
            "id": int,
            "item_uid": str,
            "from_state": str,
            "to_state": str,
            "trigger": str,
            "reason": str,
            "at": str,
        },
        pk="id",
        not_null={"item_uid", "to_state", "trigger", "at"},
    )
    db.table("state_transitions").create_index(["item_uid", "id"])
    db.table("human_approvals").create(
        {
            "id": int,
            "item_uid": str,
            "gate": str,
            "status": str,  # pending, approved, rejected
            "prompt": str,  # JSON: what the person is shown
            "requested_at": str,
            "decided_at": str,
            "decided_by": str,
            "reason": str,
            "destination": str,
        },
        pk="id",
        not_null={"item_uid", "gate", "status", "requested_at"},
    )
    db.table("human_approvals").create_index(["item_uid", "gate"])
    db.table("jobs").create(
        {
            "id": str,  # the queue's job id
            "item_uid": str,
            "kind": str,
            "state": str,  # the queue folder it was last seen in
            "attempts": int,
            "max_attempts": int,
            "priority": int,
            "worker": str,
            "created_at": str,
            "claimed_at": str,
            "finished_at": str,
            "exit_code": int,
            "reason": str,
        },
        pk="id",
        not_null={"item_uid", "kind", "state", "created_at"},
    )
    db.table("jobs").create_index(["item_uid"])
    db.table("jobs").create_index(["state"])


def _migration_2(db: Database) -> None:
    # One row per event that was (or is being) notified, so timers never repeat one.
    db.table("notifications").create(
        {
            "event": str,  # e.g. approval:<uid>:<gate>:<requested_at>, job_failed:<job id>
            "title": str,
            "message": str,
            "status": str,  # sent, failed
            "sent_to": str,  # services that took it (ntfy, webhook), comma-separated
            "attempts": int,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
        },
        pk="event",
    )


def _migration_3(db: Database) -> None:
    # What a completed job measured, for `mp stats`.
    db.table("jobs").add_column("seconds", float)
    db.table("jobs").add_column("bytes_in", int)
    db.table("jobs").add_column("bytes_out", int)


def _migration_4(db: Database) -> None:
    # A TV disc's episode numbers in its season ("4-6"), settled when it is filed.
    db.table("media_items").add_column("episodes", str)


def _migration_5(db: Database) -> None:
    # The controller's HMAC of "<uid> <episodes>": a range restored from the share after a
    # database loss counts only if this controller wrote it.
    db.table("media_items").add_column("episodes_signature", str)


def _migration_6(db: Database) -> None:
    # What each remuxed file becomes (library/file_roles.py), as a person set it at remux_review.
    db.table("human_approvals").add_column("roles", str)


def _migration_7(db: Database) -> None:
    # Where the item's disc was when a disc started its rip ("ct302:/dev/sr0"), as the
    # controller first saw it: a retried rip reads that drive again.
    db.table("media_items").add_column("drive", str)


def _migration_8(db: Database) -> None:
    # Decisions that stopped counting (a retry, --ask-again, forget, a refused
    # destination): their signed files on the share must never count again, after a
    # rebuild included, so this is history (CACHE_TABLES leaves it alone).
    db.table("retired_decisions").create(
        {"item_uid": str, "gate": str, "decided_at": str, "retired_at": str, "why": str},
        pk=("item_uid", "gate", "decided_at"),
    )


def _migration_9(db: Database) -> None:
    # Jobs a person cancelled: the controller's live list names them for as long as a
    # copy of their spec could verify, so that a copy put back on the share is refused
    # whoever signed it (jobs/live.py). History: a rebuild keeps it.
    db.table("stopped_jobs").create({"id": str, "item_uid": str, "stopped_at": str}, pk="id")


MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _connect(path: str, timeout: float) -> Database:
    connection = sqlite3.connect(path, timeout=timeout)
    # Plugins are for the sqlite-utils CLI; loading them costs start-up time for nothing.
    return Database(connection, execute_plugins=False)


def schema_version(db: Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: Database, path: str = ":memory:") -> list[int]:
    """Bring the schema up to SCHEMA_VERSION; each migration commits with its version.
    Returns the versions it migrated to."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"database {path} has schema version {version}, newer than this media-pipeline "
            f"knows ({SCHEMA_VERSION}); upgrade media-pipeline"
        )
    applied = list(range(version + 1, SCHEMA_VERSION + 1))
    for number in applied:
        with db.atomic():
            MIGRATIONS[number - 1](db)
            db.execute(f"PRAGMA user_version = {number}")
    return applied


# SQLite's own words for "this file is not a database we can trust".
CORRUPT_CODES = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def move_aside(path: str) -> str:
    """Rename a corrupt database (and its WAL files) out of the way, keeping them."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = f"{path}.corrupt-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.rename(path + suffix, aside + suffix)
    return aside


def require_database(config: Config) -> None:
    """Refuse, naming the path, a database that is not there or that this user may not
    write. Only reconcile makes one: any other command that made it would leave a new,
    empty database behind a mistyped `database` and carry on there as if nothing were
    tracked."""
    if not database_exists(config, writing=True):
        raise missing_database(config)


def database_exists(config: Config, *, writing: bool = False) -> bool:
    """Whether the database is there. One this user may not reach, read (or, writing,
    change) is refused, saying who may: a person who is not the service user would
    otherwise be told that there is no database, or meet SQLite's "unable to open"."""
    try:
        os.stat(config.database)
    except FileNotFoundError:
        return False
    except PermissionError as error:
        raise unusable(config, f"database {config.database} cannot be reached", error) from None
    wanted = [(config.database, os.R_OK, "read")]
    if writing:
        folder = os.path.dirname(config.database)
        wanted += [(config.database, os.W_OK, "written"), (folder, os.W_OK, "written")]
    for path, mode, verb in wanted:
        if not os.access(path, mode):
            denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            raise unusable(config, f"database {config.database} cannot be {verb}", denied)
    return True


def unusable(config: Config, sentence: str, error: OSError) -> SafetyRefusal:
    """sentence, with the error's reason and, for a permission denied, who may use it."""
    hint = who_may_open_hint(config) if isinstance(error, PermissionError) else ""
    return SafetyRefusal(f"{sentence} ({error.strerror or error}){hint}")


def missing_database(config: Config) -> UsageError:
    return UsageError(
        f"database {config.database} does not exist; only 'mp reconcile' on the "
        f"controller makes it (run that first, or correct 'database' in {config.source})"
    )


def open_database(config: Config, *, _second_try: bool = False) -> Database:
    """Open (creating if needed) and migrate the database. Call under `controller_lock`.

    A corrupt database is moved aside, kept, and replaced by a new one: the filesystem
    holds everything needed to rebuild it, which the next reconcile does.
    """
    folder = os.path.dirname(config.database)
    try:
        os.makedirs(folder, exist_ok=True)
        # SQLite gives -wal and -shm the mode of the database file, so a database made
        # 0600 before SQLite first opens it keeps all three private.
        narrowed = {
            path: mode
            for path in (config.database + suffix for suffix in DATABASE_SUFFIXES)
            if (mode := ensure_private_file(path, create=path == config.database))
        }
        if narrowed:
            log.info(
                "narrowed %s to mode 0600: the database is the controller's alone",
                ", ".join(f"{path} (was {mode:04o})" for path, mode in narrowed.items()),
            )
        db = _connect(config.database, timeout=config.lock_timeout_seconds)
        with db.ensure_autocommit_on():
            db.execute("PRAGMA journal_mode=WAL")
        applied = migrate(db, config.database)
        # A new database takes every migration: that is its making, not news.
        if applied and applied[0] > 1:
            log.info(
                "database %s migrated from schema version %d to %d",
                config.database,
                applied[0] - 1,
                applied[-1],
            )
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorcode", None) in CORRUPT_CODES and not _second_try:
            aside = move_aside(config.database)
            log.warning(
                "database %s is corrupt (%s); moved it aside to %s and started a new one, "
                "which reconcile rebuilds from the filesystem",
                config.database,
                error,
                aside,
            )
            return open_database(config, _second_try=True)
        raise SafetyRefusal(f"database {config.database} cannot be used ({error})") from None
    except OSError as error:
        raise unusable(config, f"database folder {folder} cannot be used", error) from None
    return db


def open_database_readonly(config: Config) -> Database | None:
    """Open the database for reading only, or None if it does not exist yet.

    Used by dry runs, reports and Tab completion, which must not create, migrate or
    write anything. SQLite's read-only mode is what makes that true: a connection opened
    read-write also writes when it closes, copying into the database what a killed
    writer left in its WAL. A read-only one leaves the database and its WAL as they
    were (it may make the empty -wal and -shm index files a WAL reader needs).
    """
    if not database_exists(config):
        return None
    try:
        uri = f"file:{urllib.parse.quote(os.path.abspath(config.database))}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=config.lock_timeout_seconds)
        db = Database(connection, execute_plugins=False)
        version = schema_version(db)
    except sqlite3.DatabaseError as error:
        raise SafetyRefusal(f"database {config.database} cannot be read ({error})") from None
    if version != SCHEMA_VERSION:
        db.close()
        raise UsageError(
            f"database {config.database} has schema version {version}, this media-pipeline "
            f"uses {SCHEMA_VERSION}; run 'mp reconcile' once without --dry-run to migrate it"
        )
    return db


@contextlib.contextmanager
def controller_lock(config: Config) -> Iterator[None]:
    """Hold the lock file beside the database, or refuse (exit 3) after the timeout."""
    folder = os.path.dirname(config.database)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise unusable(config, f"database folder {folder} cannot be created", error) from None
    try:
        mode = ensure_private_file(config.lock_path, create=True)
        if mode:
            log.info("narrowed lock %s to mode 0600 (was %04o)", config.lock_path, mode)
    except OSError as error:
        raise unusable(config, f"lock {config.lock_path} cannot be used", error) from None
    lock = filelock.FileLock(
        config.lock_path, timeout=config.lock_timeout_seconds, mode=PRIVATE_MODE
    )
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SafetyRefusal(
            f"lock {config.lock_path} is still held by another media-pipeline command after "
            f"{config.lock_timeout_seconds} s; refusing to run beside it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def ensure_private_file(path: str, *, create: bool) -> int | None:
    """Give path mode 0600: made so if create and it is missing (empty, before anything
    is written into it), narrowed if it exists with a wider mode. The mode it had, if
    it was narrowed; None if there was nothing to do."""
    if create:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
            return None
        except FileExistsError:
            pass
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    if mode & ~PRIVATE_MODE == 0:
        return None
    os.chmod(path, mode & PRIVATE_MODE)
    return mode


def private_key(path: str, what: str = "decision key") -> bytes:
    """The random key stored at path, made on first use: 32 bytes from the system's
    random source, mode 0600.

    It is written to a temporary file and linked into place, so a reader never sees a
    part of it and an existing key is never overwritten (two first uses at once both
    get the one that won). A key that is a symlink, not a regular file, or too short is
    refused: it is not one mp made, and whoever made it may know it.
    """
    try:
        return _read_key(path, what)
    except FileNotFoundError:
        pass
    try:
        _create_key(path)
        return _read_key(path, what)
    except OSError as error:
        raise SafetyRefusal(f"{what} {path} cannot be used ({error.strerror or error})") from None


def existing_key(path: str, what: str = "decision key") -> bytes | None:
    """The key at path checked as private_key checks it, or None when there is none yet:
    for a dry run, which must not make one."""
    try:
        return _read_key(path, what)
    except FileNotFoundError:
        return None


def _read_key(path: str, what: str) -> bytes:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if os.path.islink(path):
            raise SafetyRefusal(f"{what} {path} is a symlink; refusing to use it") from None
        if isinstance(error, FileNotFoundError):
            raise
        raise SafetyRefusal(f"{what} {path} cannot be read ({error.strerror})") from None
    try:
        _check_key_file(path, descriptor, what)
        key = os.read(descriptor, MAX_KEY_BYTES + 1)
    finally:
        os.close(descriptor)
    if not KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise SafetyRefusal(
            f"{what} {path} holds {len(key)} bytes, not a key mp made "
            f"({KEY_BYTES}); move it away and a new one is made"
        )
    return key


def _check_key_file(path: str, descriptor: int, what: str) -> None:
    """Refuse a key file that is not a regular file of ours; narrow a wide mode."""
    found = os.fstat(descriptor)
    if not stat.S_ISREG(found.st_mode):
        raise SafetyRefusal(f"{what} {path} is not a regular file; refusing to use it")
    if found.st_uid != os.geteuid():
        raise SafetyRefusal(
            f"{what} {path} belongs to user id {found.st_uid}, not to the user "
            "running mp; refusing to use it"
        )
    mode = stat.S_IMODE(found.st_mode)
    if mode & ~PRIVATE_MODE:
        os.fchmod(descriptor, mode & PRIVATE_MODE)
        log.info("narrowed %s %s to mode 0600 (was %04o)", what, path, mode)


def _create_key(path: str) -> None:
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_MODE
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        # link, unlike rename, fails when path exists: a key is never replaced.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    # The new name on disk too: a key lost in a crash would void every signature.
    folder_descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder_descriptor)
    finally:
        os.close(folder_descriptor)


@contextlib.contextmanager
def controller_database(
    config: Config, *, on_create: Callable[[str], None] | None = None
) -> Iterator[Database]:
    """The database, open and migrated, under the controller lock. A missing one is
    refused (`require_database`) unless on_create is given (reconcile's): then it is
    made, and on_create told its path."""
    if on_create is None:
        require_database(config)
    else:
        database_exists(config, writing=True)
    with controller_lock(config):
        new = not os.path.exists(config.database)
        db = open_database(config)
        if new and on_create is not None:
            on_create(config.database)
        try:
            yield db
        except sqlite3.OperationalError as error:
            # Our own lock is held, so this is someone else (an sqlite3 shell left open,
            # a backup tool) holding the database itself past the busy timeout.
            if "locked" in str(error) or "busy" in str(error):
                raise SafetyRefusal(
                    f"database {config.database} is locked by another process ({error}) "
                    f"past {config.lock_timeout_seconds} s; nothing more was written"
                ) from None
            raise
        finally:
            db.close()


def drop_cache_tables(db: Database) -> None:
    with db.atomic():
        for table in CACHE_TABLES:
            db.execute(f"DELETE FROM [{table}]")


@contextlib.contextmanager
def reading_database(config: Config) -> Iterator[Database | None]:
    """The database for a command that only reads (status, history), or None before the
    first reconcile. Readers take no lock: WAL gives them a consistent snapshot, and a
    person must be able to look while a stuck writer holds the lock."""
    db = open_database_readonly(config)
    try:
        yield db
    finally:
        if db is not None:
            db.close()


def in_slices(values: list, size: int = 500) -> Iterator[tuple[str, list]]:
    """values in slices for `... IN (marks)`, with the marks to put in the query: bound
    parameters, and few enough per query for any SQLite (older ones allow 999)."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield ", ".join("?" * len(chunk)), chunk


def rows_by(db: Database | None, table: str, column: str, values: list) -> dict:
    """table's rows whose column is one of values, by that column."""
    found: dict = {}
    if db is None:
        return found
    for marks, chunk in in_slices(values):
        sql = f"SELECT * FROM {table} WHERE {column} IN ({marks})"
        found.update((row[column], row) for row in db.query(sql, chunk))
    return found
