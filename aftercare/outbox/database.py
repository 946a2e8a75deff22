"""One connection to the outbox database, with what differs between engines kept behind it.

The outbox's SQL is written once, in the dialect both SQLite and PostgreSQL accept (``?``
placeholders, ``ON CONFLICT ... DO UPDATE`` upserts, ``excluded.``); what differs goes through
``Engine``: opening (and migrating), starting a write transaction, the placeholder style,
getting the id of an inserted row, and comparing addresses without regard to case. A second
engine is an ``Engine`` and its migrations; no caller changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from aftercare.errors import StorageError

Row = dict[str, Any]


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

    def storage_problem(self, error: BaseException) -> str | None:
        """Why the database could not do its job, when ``error`` says so: "locked",
        "read-only", "full" or "unavailable"; None for any other error (a bug, a constraint)."""
        ...


class Database:
    """A connection and its engine; every outbox statement runs through here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            self._connection = engine.connect()
        except Exception as exc:
            problem = self._storage_error(exc)
            if problem is None:
                raise
            raise problem from exc

    def close(self) -> None:
        self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction: committed at the end of the block, rolled back on any error.

        It takes the write lock up front, so concurrent writers wait for each other instead
        of failing when a read would need upgrading to a write.
        """
        connection = self._connection
        try:
            self.engine.begin_write(connection)
        except Exception as exc:
            problem = self._storage_error(exc)
            if problem is None:
                raise
            raise problem from exc
        try:
            yield self
            connection.execute("COMMIT")
        except BaseException as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            problem = self._storage_error(exc) if isinstance(exc, Exception) else None
            if problem is None:
                raise
            raise problem from exc

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        try:
            cursor: Cursor = self._connection.execute(self.engine.sql(sql), tuple(parameters))
        except Exception as exc:
            problem = self._storage_error(exc)
            if problem is None:
                raise
            raise problem from exc
        return cursor

    def one(self, sql: str, parameters: Sequence[object] = ()) -> Row | None:
        row = self.execute(sql, parameters).fetchone()
        return None if row is None else _as_dict(row)

    def all(self, sql: str, parameters: Sequence[object] = ()) -> list[Row]:
        return [_as_dict(row) for row in self.execute(sql, parameters).fetchall()]

    def insert(self, sql: str, parameters: Sequence[object]) -> int:
        try:
            return self.engine.insert(self._connection, self.engine.sql(sql), tuple(parameters))
        except Exception as exc:
            problem = self._storage_error(exc)
            if problem is None:
                raise
            raise problem from exc

    def _storage_error(self, error: Exception) -> StorageError | None:
        """``error`` as a StorageError when the engine says it is about storage."""
        if isinstance(error, StorageError):
            return None  # already said
        reason = self.engine.storage_problem(error)
        return None if reason is None else StorageError(reason, str(error))

    def equal_ignoring_case(self, column: str, other: str = "?") -> str:
        """A condition: the addresses in ``column`` and ``other`` are the same, ignoring case."""
        return self.engine.equal_ignoring_case(column, other)


def _as_dict(row: Any) -> Row:
    return row if isinstance(row, dict) else dict(row)
