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


class Database:
    """A connection and its engine; every outbox statement runs through here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
        self.engine.begin_write(connection)
        try:
            yield self
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        cursor: Cursor = self._connection.execute(self.engine.sql(sql), tuple(parameters))
        return cursor

    def one(self, sql: str, parameters: Sequence[object] = ()) -> Row | None:
        row = self.execute(sql, parameters).fetchone()
        return None if row is None else _as_dict(row)

    def all(self, sql: str, parameters: Sequence[object] = ()) -> list[Row]:
        return [_as_dict(row) for row in self.execute(sql, parameters).fetchall()]

    def insert(self, sql: str, parameters: Sequence[object]) -> int:
        return self.engine.insert(self._connection, self.engine.sql(sql), tuple(parameters))

    def equal_ignoring_case(self, column: str, other: str = "?") -> str:
        """A condition: the addresses in ``column`` and ``other`` are the same, ignoring case."""
        return self.engine.equal_ignoring_case(column, other)

    def lock(self, of: str | None = None, *, skip_locked: bool = False) -> str:
        """End a SELECT with this when the transaction goes on to change the rows it reads."""
        return self.engine.lock(of, skip_locked)


def _as_dict(row: Any) -> Row:
    return row if isinstance(row, dict) else dict(row)
