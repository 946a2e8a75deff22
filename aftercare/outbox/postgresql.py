"""The PostgreSQL engine: psycopg 3 in autocommit mode, row locks, and the migrations ported.

Several machines may share one database: writers lock the rows they change (claims skip rows
another sender holds), wait at most ``LOCK_TIMEOUT`` for a lock, and the server ends a
session that keeps a transaction open for more than ``IDLE_TIMEOUT`` (a sender stopped in
the middle of one). One migrator at a time holds an advisory lock. Backups are pg_dump's
(custom format, checked by reading it back with pg_restore); erased rows are vacuumed away.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aftercare.errors import PipelineError, StorageError
from aftercare.files import moved_into_place, new_beside
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
# SQLSTATEs (PostgreSQL's error codes) that are about storage, in staff's words; then whole
# classes: 08 connection, 53 resources, 57 operator intervention, 58 system, XX internal.
_REASONS: Final = {
    "25006": "read-only",  # read_only_sql_transaction: a standby, or a read-only database
    "42501": "read-only",  # insufficient_privilege: this role may not write here
    "55P03": "locked",  # lock_not_available: LOCK_TIMEOUT passed
    "55006": "locked",  # object_in_use
    "40001": "locked",  # serialization_failure
    "40P01": "locked",  # deadlock_detected
    "57014": "locked",  # query_canceled: a statement timeout an administrator set
    "53100": "full",  # disk_full
    "25P03": "unavailable",  # idle_in_transaction_session_timeout: the session was ended
}
_UNAVAILABLE_CLASSES: Final = ("08", "53", "57", "58", "XX")


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
        except psycopg.OperationalError as exc:  # refused, unknown host or database, password
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StorageError("unavailable", f"{self.where}: cannot open the outbox database"
                                              f" ({reason})") from None
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

    def storage_problem(self, error: BaseException) -> str | None:
        import psycopg

        if not isinstance(error, psycopg.Error):
            return None
        state = error.sqlstate or ""
        if state in _REASONS:
            return _REASONS[state]
        if state[:2] in _UNAVAILABLE_CLASSES:
            return "unavailable"
        # No code at all: the connection itself failed (the server went away, or restarted).
        return "unavailable" if isinstance(error, psycopg.OperationalError) and not state \
            else None

    def backup(self, connection: Connection, target: Path) -> int:
        # pg_dump reads every table in one snapshot (one moment of the database) while workers
        # go on writing. Its custom format restores with pg_restore. The file is written beside
        # the target and renamed once pg_restore has read it all back, so a failed backup
        # leaves the old one whole. The password goes to pg_dump in its environment, never on
        # its command line, which other users of the machine can see.
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise PipelineError(
                "pg_dump is not installed (or not on the PATH): install PostgreSQL's client "
                "programs, of the server's version or newer (Debian: apt-get install "
                "postgresql-client), then run the backup again; nothing was written")
        schema = connection.execute("SELECT current_schema() AS name").fetchone()["name"]
        settings = conninfo_to_dict(self.url)
        environment = dict(os.environ)
        if settings.get("password"):
            environment["PGPASSWORD"] = str(settings.pop("password"))
        command = [pg_dump, "--format=custom", "--no-password",
                   f"--dbname={make_conninfo('', **settings)}"]
        if schema != "public":  # an outbox in a schema of its own: that schema only
            command.append('--schema="{}"'.format(schema.replace('"', '""')))
        try:
            partial = new_beside(target)
        except OSError as exc:
            raise PipelineError(f"{target}: cannot write the backup there "
                                f"({exc.strerror or exc})") from None
        with moved_into_place(partial, target):
            with partial.open("wb") as out:
                _run(command, out, environment, f"{self.where}: pg_dump failed")
            pg_restore = str(Path(pg_dump).with_name("pg_restore"))
            _run([pg_restore, f"--file={os.devnull}", str(partial)], None, environment,
                 f"{target}: the copy does not check out (pg_restore cannot read it back)")
        return target.stat().st_size

    def scrub(self, connection: Connection, tables: Sequence[str]) -> bool:
        # An UPDATE or DELETE leaves the old row version in the table and its indexes until
        # VACUUM removes it, which it can only do once no transaction that might still see it
        # is open. INDEX_CLEANUP ON: VACUUM may otherwise leave index entries (the old
        # address) in place when there are few. The freed space is not overwritten at once,
        # and the write-ahead log keeps the old values until it is recycled (README).
        import psycopg

        finished = connection.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid").fetchone()["xid"]
        names = ", ".join('"{}"'.format(table.replace('"', '""')) for table in tables)
        try:
            connection.execute(f"VACUUM (INDEX_CLEANUP ON) {names}")
        except psycopg.errors.LockNotAvailable:  # another VACUUM held a table: next time
            return False
        # A snapshot older than the erasure (another session's long transaction) keeps the old
        # versions: VACUUM had to leave them.
        older = connection.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND (datname = current_database() OR datname IS NULL)"
            " AND backend_type <> 'autovacuum worker' AND age(backend_xmin) > age(%s::xid)",
            (str(int(finished) % 2**32),)).fetchone()["n"]
        return int(older) == 0


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


def _run(command: list[str], out: Any, environment: dict[str, str], failed: str) -> None:
    """Run a PostgreSQL client program; PipelineError with the end of what it said if it fails."""
    done = subprocess.run(command, stdout=out if out is not None else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=environment, check=False)
    if done.returncode != 0:
        said = " / ".join(done.stderr.decode(errors="replace").strip().splitlines()[-2:])
        raise PipelineError(f"{failed} ({said or f'exit status {done.returncode}'}); "
                            "nothing was written")


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
