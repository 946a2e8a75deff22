"""The SQLite engine: an owner-only file in WAL mode with full sync, migrated when opened."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aftercare.errors import PipelineError
from aftercare.files import moved_into_place, new_beside
from aftercare.outbox.database import Connection
from aftercare.outbox.migrations import migrate

BUSY_TIMEOUT_MS: Final = 5000
# SQLite's result codes (the extended ones start like their primary code), in staff's words.
_SQLITE_REASONS: Final = (
    ("SQLITE_BUSY", "locked"), ("SQLITE_LOCKED", "locked"), ("SQLITE_READONLY", "read-only"),
    ("SQLITE_FULL", "full"), ("SQLITE_IOERR", "unavailable"), ("SQLITE_CANTOPEN", "unavailable"),
    ("SQLITE_PERM", "read-only"), ("SQLITE_NOTADB", "unavailable"),
    ("SQLITE_CORRUPT", "unavailable"),
)
_OS_REASONS: Final = {errno.EROFS: "read-only", errno.EACCES: "read-only",
                      errno.EPERM: "read-only", errno.ENOSPC: "full"}


class SQLiteEngine:
    """The outbox in one SQLite file; writers queue on its lock for up to the busy timeout."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> Connection:
        return connect(self.path)

    def begin_write(self, connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers wait (busy_timeout)
        # instead of failing when a read lock would need upgrading.
        connection.execute("BEGIN IMMEDIATE")

    def sql(self, text: str) -> str:
        return text

    def insert(self, connection: Connection, sql: str, parameters: Sequence[object]) -> int:
        cursor = connection.execute(sql, parameters)
        if cursor.lastrowid is None:
            raise RuntimeError("the INSERT stored no row")
        row_id: int = cursor.lastrowid
        return row_id

    def equal_ignoring_case(self, column: str, other: str = "?") -> str:
        return f"{column} = {other} COLLATE NOCASE"

    def lock(self, of: str | None, skip_locked: bool) -> str:
        # A write transaction holds the whole file (BEGIN IMMEDIATE): nothing more to lock.
        return ""

    def backup(self, connection: Connection, target: Path) -> int:
        # SQLite's online backup, in one step: a read transaction on the source for the whole
        # copy, so the copy is one moment of the database while writers go on (WAL mode). It is
        # written beside the target and renamed, so a failed backup leaves the old one whole.
        assert isinstance(connection, sqlite3.Connection)
        if target.exists() and target.resolve() == self.path.resolve():
            raise PipelineError(f"{target}: that is the database itself; name another file")
        partial = new_beside(target)
        with moved_into_place(partial, target):
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                connection.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                problem = copy.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                copy.close()
            if problem != "ok":
                raise PipelineError(f"{target}: the copy does not check out ({problem})")
        return target.stat().st_size

    def scrub(self, connection: Connection, tables: Sequence[str]) -> bool:
        # Erased rows are zeroed in the file (secure_delete, set when opening), but their old
        # pages stay in the write-ahead log until a checkpoint: copy it back and empty it
        # (the whole file's, whatever the tables).
        busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    def storage_problem(self, error: BaseException) -> str | None:
        if isinstance(error, OSError):  # creating the folder or the file
            return _OS_REASONS.get(error.errno or 0, "unavailable")
        if not isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError):
            return None
        name = getattr(error, "sqlite_errorname", "") or ""
        for prefix, reason in _SQLITE_REASONS:
            if name.startswith(prefix):
                return reason
        return None


def connect(path: Path) -> sqlite3.Connection:
    """Open the database, creating its folder and an owner-only file; migrate it; WAL on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE itself.
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = FULL")  # a committed claim survives power loss
        connection.execute("PRAGMA secure_delete = ON")  # erased data is zeroed, not left behind
        _use_wal(connection)
        migrate(connection, str(path))
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", 0o600)
    except sqlite3.DatabaseError as exc:
        connection.close()
        if type(exc) is sqlite3.DatabaseError:  # "file is not a database", not a lock or I/O
            raise PipelineError(f"{path}: not an outbox database ({exc})") from exc
        raise
    except BaseException:
        connection.close()
        raise
    return connection


def _use_wal(connection: sqlite3.Connection) -> None:
    """Switch a new file to WAL; the setting is kept in the file, so later opens skip this.

    Changing the journal mode needs the file to itself and SQLite answers "database is
    locked" at once, without its busy handler, while another connection is opening the same
    new file; so wait a little and try again, up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if str(mode).lower() == "wal":
            return
        if time.monotonic() > deadline:
            raise PipelineError(f"cannot switch the outbox to WAL mode (it stays {mode})")
        time.sleep(0.01)
