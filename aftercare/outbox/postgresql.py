"""The PostgreSQL engine: psycopg 3 in autocommit mode, row locks, and the migrations ported.

Several machines may share one database: writers lock the rows they change (claims skip rows
another sender holds), wait at most ``LOCK_TIMEOUT`` for a lock, and the server ends a
session that keeps a transaction open for more than ``IDLE_TIMEOUT`` (a sender stopped in
the middle of one). One migrator at a time holds an advisory lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from aftercare.errors import PipelineError
from aftercare.outbox.database import Connection
from aftercare.outbox.dialect import for_postgresql, to_pyformat
from aftercare.outbox.migrations import MIGRATIONS, refuse_newer, split_statements

if TYPE_CHECKING:
    import psycopg

LOCK_TIMEOUT: Final = "5s"  # as long as SQLite's busy timeout
IDLE_TIMEOUT: Final = "60s"
MIGRATION_LOCK: Final = 0x6166_7465_7263_6172  # any constant: the key of the migrators' lock
# Case-insensitive and otherwise exact (ICU strength 2: "Ann" = "ann", "e" <> "é"): the
# collation the portable scripts call NOCASE, as SQLite's NOCASE is for ASCII.
NOCASE: Final = ("CREATE COLLATION nocase"
                 " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
VERSION_TABLE: Final = "schema_version"


class PostgreSQLEngine:
    """The outbox in a PostgreSQL database named by a ``postgresql://`` URL."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = shown(url)

    def connect(self) -> Connection:
        import psycopg
        from psycopg.rows import dict_row

        try:
            raw = psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                                  connect_timeout=10, application_name="aftercare")
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise PipelineError(f"{self.where}: cannot open the outbox database ({reason})") \
                from None
        connection = PostgreSQLConnection(raw)
        try:
            connection.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}';"
                               f" SET idle_in_transaction_session_timeout = '{IDLE_TIMEOUT}'")
            migrate(connection, self.where)
        except BaseException:
            connection.close()
            raise
        return connection

    def begin_write(self, connection: Connection) -> None:
        # Explicit, so that a server whose default is stricter gives no serialisation failures.
        connection.execute("BEGIN ISOLATION LEVEL READ COMMITTED")

    def sql(self, text: str) -> str:
        return to_pyformat(text)

    def insert(self, connection: Connection, sql: str, parameters: Sequence[object]) -> int:
        row = connection.execute(f"{sql} RETURNING id", parameters).fetchone()
        if row is None:
            raise RuntimeError("the INSERT stored no row")
        return int(row["id"])

    def equal_ignoring_case(self, column: str, other: str = "?") -> str:
        return f"{column} = {other} COLLATE nocase"

    def lock(self, of: str | None, skip_locked: bool) -> str:
        # NO KEY UPDATE: the lock an UPDATE takes anyway. Unlike FOR UPDATE it lets others
        # insert rows that refer to the locked one (a trail entry), which would deadlock.
        return (" FOR NO KEY UPDATE" + (f" OF {of}" if of else "")
                + (" SKIP LOCKED" if skip_locked else ""))


class PostgreSQLConnection:
    """A psycopg connection as ``database.Connection``: rows as dicts, autocommit."""

    def __init__(self, raw: psycopg.Connection[dict[str, Any]]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        return self.raw.execute(sql, parameters)

    def close(self) -> None:
        self.raw.close()

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        status = self.raw.info.transaction_status
        return status in (TransactionStatus.INTRANS, TransactionStatus.INERROR,
                          TransactionStatus.ACTIVE)


def migrate(connection: Connection, where: str, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply the scripts the database lacks, one transaction each; return the schema version."""
    target = len(migrations)
    current = read_version(connection)
    refuse_newer(current, target, where)
    while current < target:
        connection.execute("BEGIN")
        try:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            # Another process may have migrated while we waited for the lock.
            current = read_version(connection)
            refuse_newer(current, target, where)
            if current == 0:
                _prepare(connection)
            if current < target:
                for statement in split_statements(migrations[current]):
                    for ported in for_postgresql(statement):
                        connection.execute(ported)
                current += 1
                connection.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (current,))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    return current


def read_version(connection: Connection) -> int:
    """The schema version recorded in the database (0 for a new one)."""
    if not _has_version_table(connection):
        return 0
    row = connection.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
    return 0 if row is None else int(row["version"])


def _has_version_table(connection: Connection) -> bool:
    # A query of the catalogue, not to_regclass(): the session caches a name it did not find,
    # and taking an advisory lock does not refresh that cache, so a migrator that waited for
    # another would still not see the table the other created.
    return connection.execute(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
        " AND tablename = %s", (VERSION_TABLE,)).fetchone() is not None


def _prepare(connection: Connection) -> None:
    """What the scripts take for granted: the NOCASE collation, and the version's table."""
    collation = connection.execute(
        "SELECT 1 FROM pg_collation WHERE collname = 'nocase'"
        " AND collnamespace = current_schema()::text::regnamespace"
    ).fetchone()
    if collation is None:
        connection.execute(NOCASE)
    if not _has_version_table(connection):
        connection.execute(f"CREATE TABLE {VERSION_TABLE} (version INTEGER NOT NULL)")
        connection.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")


def shown(url: str) -> str:
    """The URL as errors show it: without a password."""
    url = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)
