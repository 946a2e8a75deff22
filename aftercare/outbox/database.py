"""One connection to the outbox database, with what differs between engines kept behind it.

The outbox's SQL is written once, in the dialect both SQLite and PostgreSQL accept (``?``
placeholders, ``ON CONFLICT ... DO UPDATE`` upserts, ``excluded.``); what differs goes through
``Engine``: opening (and migrating), starting a write transaction, the placeholder style,
getting the id of an inserted row, comparing addresses without regard to case, and locking
the rows a transaction reads before it changes them. SQLite (sqlite.py) has one write lock
for the whole file; PostgreSQL (postgresql.py) locks rows, so every read that a write depends
on says ``Database.lock()``, which is empty on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from aftercare.errors import StorageError

Row = dict[str, Any]
# Where an outbox lives: a postgresql:// (or postgres://) URL, or the path of an SQLite file.
Location = Path | str
URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(location: Location) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than an SQLite file."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


class Cursor(Protocol):
    """The part of a DB-API cursor the outbox uses."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the outbox uses."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def close(self) -> None: ...
    @property
    def in_transaction(self) -> bool: ...


class Engine(Protocol):
    """What one database engine does its own way."""

    name: str

    def connect(self) -> Connection:
        """Open the database (creating and migrating it if needed), in autocommit mode."""
        ...

    def begin_write(self, connection: Connection) -> None:
        """Start a transaction that holds the write lock from its first statement."""
        ...

    def sql(self, text: str) -> str:
        """The statement with ``?`` placeholders in the engine's own style."""
        ...

    def insert(self, connection: Connection, sql: str, parameters: Sequence[object]) -> int:
        """Run an INSERT of one row; return the new row's id."""
        ...

    def equal_ignoring_case(self, column: str, other: str = "?") -> str:
        """A condition: ``column`` equals ``other`` (the next parameter), ignoring case."""
        ...

    def lock(self, of: str | None, skip_locked: bool) -> str:
        """The clause ending a SELECT that keeps its rows (of table alias ``of``) from other
        writers until the transaction ends; ``skip_locked`` passes over rows held by one."""
        ...

    def storage_problem(self, error: BaseException) -> str | None:
        """Why the database could not do its job, when ``error`` says so: "locked",
        "read-only", "full" or "unavailable"; None for any other error (a bug, a constraint)."""
        ...

    def backup(self, connection: Connection, target: Path) -> int:
        """Write a consistent copy of the database, as of one moment, to the new file
        ``target`` (owner-only) while others go on using it; return its size in bytes."""
        ...

    def scrub(self, connection: Connection, tables: Sequence[str]) -> bool:
        """Make what was erased from ``tables`` unreadable in the engine's files too (a
        write-ahead log, or old row versions, keep it for a while); False when it must wait
        for readers still open."""
        ...


class Database:
    """A connection and its engine; every outbox statement runs through here. An error the
    engine says is about storage (locked, read-only, full) comes out as a StorageError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with self._storage():
            self._connection = engine.connect()

    def close(self) -> None:
        self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction: committed at the end of the block, rolled back on any error.

        It takes the write lock up front, so concurrent writers wait for each other instead
        of failing when a read would need upgrading to a write.
        """
        connection = self._connection
        with self._storage():
            self.engine.begin_write(connection)
        with self._storage():
            try:
                yield self
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        with self._storage():
            cursor: Cursor = self._connection.execute(self.engine.sql(sql), tuple(parameters))
        return cursor

    def one(self, sql: str, parameters: Sequence[object] = ()) -> Row | None:
        row = self.execute(sql, parameters).fetchone()
        return None if row is None else _as_dict(row)

    def all(self, sql: str, parameters: Sequence[object] = ()) -> list[Row]:
        return [_as_dict(row) for row in self.execute(sql, parameters).fetchall()]

    def insert(self, sql: str, parameters: Sequence[object]) -> int:
        with self._storage():
            return self.engine.insert(self._connection, self.engine.sql(sql), tuple(parameters))

    def backup(self, target: Path) -> int:
        with self._storage():
            return self.engine.backup(self._connection, target)

    def scrub(self, tables: Sequence[str]) -> bool:
        with self._storage():
            return self.engine.scrub(self._connection, tables)

    def equal_ignoring_case(self, column: str, other: str = "?") -> str:
        """A condition: the addresses in ``column`` and ``other`` are the same, ignoring case."""
        return self.engine.equal_ignoring_case(column, other)

    def lock(self, of: str | None = None, *, skip_locked: bool = False) -> str:
        """End a SELECT with this when the transaction goes on to change the rows it reads."""
        return self.engine.lock(of, skip_locked)

    @contextmanager
    def _storage(self) -> Iterator[None]:
        """Inside: an error the engine says is about storage becomes a StorageError."""
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            reason = self.engine.storage_problem(exc)
            if reason is None:
                raise
            raise StorageError(reason, str(exc)) from exc


def _as_dict(row: Any) -> Row:
    return row if isinstance(row, dict) else dict(row)
