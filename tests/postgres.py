"""A real PostgreSQL server for the test session, and each outbox test's database on both engines.

The server comes from Debian's postgresql package (``.ci/setup --test`` installs it). The
session starts it the first time a test asks for it: ``initdb`` into a new temporary folder,
then ``pg_ctl start``, listening on a Unix socket inside that folder only (no TCP port, so
parallel runs on one machine never meet). initdb refuses to run as root, so as root (CI) the
server runs as the unprivileged ``postgres`` user the package creates, which owns the folder.
Durability is switched off (fsync): the tests kill senders, never the server. At the end of
the session, whether tests failed or not, ``pg_ctl stop`` stops it and the folder is removed.

``database`` is parametrised over both engines: an SQLite file in the test's folder, or a new
PostgreSQL database (dropped afterwards).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from aftercare.outbox import migrations
from aftercare.outbox.database import Location
from aftercare.outbox.dialect import to_pyformat
from aftercare.outbox.postgresql import PostgreSQLConnection
from aftercare.outbox.postgresql import migrate as migrate_postgresql

ENGINES = ("sqlite", "postgresql")
SUPERUSER = "aftercare"
PORT = 5432  # only names the socket file; the folder is the server's own


def _binaries() -> Path:
    """The newest installed server's bin folder (Debian keeps them per major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("no PostgreSQL server found (initdb); run `bash .ci/setup --test`, "
                           "which installs Debian's postgresql package")
    return Path(initdb).parent


class PostgresServer:
    """One throwaway server: started in ``folder``, reached through its socket there."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.bin = _binaries()
        self._names = itertools.count(1)
        self._admin: psycopg.Connection[Any] | None = None
        # initdb refuses root: then the package's unprivileged user runs the server.
        self._user = "postgres" if os.geteuid() == 0 else None

    @classmethod
    def start_new(cls) -> PostgresServer:
        folder = Path(tempfile.mkdtemp(prefix="aftercare-pg-"))
        server = cls(folder)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, *command: str) -> None:
        options: dict[str, Any] = {}
        if self._user is not None:
            options = {"user": self._user, "group": self._user, "extra_groups": []}
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True,
                              timeout=120, check=False, **options)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command[:2])} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{tail}")

    def start(self) -> None:
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        os.chmod(self.folder, 0o700)
        locale, major = ["--locale=C.UTF-8"], self.bin.parent.name
        if major.isdigit() and int(major) >= 15:
            # A locale whose text order is not byte order: the outbox must not depend on it.
            locale += ["--locale-provider=icu", "--icu-locale=en-US"]
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "--encoding=UTF8", "--no-sync", *locale)
        settings = (f"-c listen_addresses='' -c unix_socket_directories='{self.folder}'"
                    f" -c port={PORT} -c fsync=off -c synchronous_commit=off"
                    " -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "-o", settings, "start")
        self._admin = psycopg.connect(self.url("postgres"), autocommit=True)

    def stop(self) -> None:
        """Stop the server (if it runs) and remove its folder."""
        try:
            if self._admin is not None:
                self._admin.close()
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.folder}&port={PORT}"

    def create_database(self, name: str | None = None) -> str:
        assert self._admin is not None
        name = name or f"outbox_{next(self._names)}"
        self._admin.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return name

    def drop_database(self, name: str) -> None:
        assert self._admin is not None
        self._admin.execute(f"DROP DATABASE {name} WITH (FORCE)")  # also ends stray sessions


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start_new()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class OutboxDatabase:
    """The database one test runs against, on one engine."""

    engine: str  # "sqlite" or "postgresql"
    location: Location  # what Outbox.open and AFTERCARE_DB take

    @property
    def integrity_error(self) -> type[Exception]:
        return sqlite3.IntegrityError if self.engine == "sqlite" else psycopg.IntegrityError

    @contextlib.contextmanager
    def raw(self, timeout: float = 0) -> Iterator[Raw]:
        """A connection of its own in autocommit mode, with ``?`` placeholders and tuple
        rows on both engines; it waits ``timeout`` seconds at most for a lock."""
        if self.engine == "sqlite":
            with contextlib.closing(sqlite3.connect(self.location, timeout=timeout,
                                                    isolation_level=None)) as connection:
                yield Raw(connection, sqlite=True)
            return
        with psycopg.connect(str(self.location), autocommit=True) as connection:
            connection.execute(f"SET lock_timeout = '{max(int(timeout * 1000), 1)}ms'")
            yield Raw(connection, sqlite=False)

    def count(self, table: str) -> int:
        with self.raw() as db:
            total: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            return total

    def columns(self, table: str) -> set[str]:
        with self.raw() as db:
            if self.engine == "sqlite":
                return {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
            rows = db.execute("SELECT column_name FROM information_schema.columns"
                              " WHERE table_schema = current_schema() AND table_name = ?",
                              (table,)).fetchall()
            return {row[0] for row in rows}

    def migrate(self, scripts: Sequence[str]) -> None:
        """Apply only these migration scripts, as an older version of the program did."""
        if self.engine == "sqlite":
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(self.location, isolation_level=None)) as db:
                migrations.migrate(db, "old", scripts)
            return
        with psycopg.connect(str(self.location), autocommit=True,
                             row_factory=dict_row) as connection:
            migrate_postgresql(PostgreSQLConnection(connection), "old", scripts)

    def schema_version(self) -> int:
        with self.raw() as db:
            if self.engine == "sqlite":
                version: int = db.execute("PRAGMA user_version").fetchone()[0]
            else:
                version = db.execute("SELECT version FROM schema_version").fetchone()[0]
            return version

    def set_schema_version(self, version: int) -> None:
        with self.raw() as db:
            if self.engine == "sqlite":
                db.execute(f"PRAGMA user_version = {version:d}")
            else:
                db.execute("UPDATE schema_version SET version = ?", (version,))

    def schema(self) -> list[tuple[str, ...]]:
        """Every table, column, index and trigger, as the engine describes them."""
        with self.raw() as db:
            if self.engine == "sqlite":
                rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
                return [tuple(row) for row in rows.fetchall()]
            rows = db.execute(
                "SELECT 'column', table_name || '.' || column_name, data_type,"
                " coalesce(column_default, ''), is_nullable FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
                " UNION ALL SELECT 'index', indexname, indexdef, '', '' FROM pg_indexes"
                " WHERE schemaname = current_schema()"
                " UNION ALL SELECT 'trigger', trigger_name, event_manipulation, action_statement,"
                " '' FROM information_schema.triggers WHERE trigger_schema = current_schema()"
                " ORDER BY 1, 2, 3")
            return [tuple(row) for row in rows.fetchall()]

    def stored(self) -> bytes:
        """Everything the engine keeps of the outbox's rows, for looking for erased values:
        on SQLite every byte of its files (the file, its write-ahead log, its index); on
        PostgreSQL every row version and index entry on the tables' pages, live or dead and
        not yet vacuumed (read with pageinspect), the place an erased value lingers there."""
        if self.engine == "sqlite":
            path = Path(self.location)
            return b"".join(p.read_bytes() for p in path.parent.iterdir()
                            if p.name.startswith(path.name))
        pieces: list[bytes] = []
        with self.raw() as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
            relations = db.execute(
                "SELECT c.oid::regclass::text, c.relkind,"
                " pg_relation_size(c.oid) / current_setting('block_size')::int"
                " FROM pg_class AS c JOIN pg_class AS t ON c.oid IN (t.oid, t.reltoastrelid)"
                " OR c.oid IN (SELECT indexrelid FROM pg_index"
                "   WHERE indrelid IN (t.oid, t.reltoastrelid))"
                " WHERE t.relkind = 'r' AND t.relnamespace = current_schema()::regnamespace"
            ).fetchall()
            for name, kind, blocks in relations:
                for block in range(int(blocks)):
                    if kind in ("r", "t"):
                        rows = db.execute("SELECT t_data FROM heap_page_items("
                                          "get_raw_page(?, ?)) WHERE t_data IS NOT NULL",
                                          (name, block)).fetchall()
                        pieces += [bytes(row[0]) for row in rows]
                    elif block > 0:  # a B-tree index (block 0 is its metapage)
                        rows = db.execute("SELECT data FROM bt_page_items(get_raw_page(?, ?))",
                                          (name, block)).fetchall()
                        pieces += [bytes.fromhex(row[0].replace(" ", "")) for row in rows
                                   if row[0]]
        return b"\x00".join(pieces)

    def lock_every_message(self) -> None:
        """Take, and let go of, every message's row: this fails at once (the raw connection's
        timeout) while a transaction elsewhere holds a write of the outbox."""
        with self.raw(timeout=0.05) as db:
            db.execute("BEGIN IMMEDIATE" if self.engine == "sqlite" else "BEGIN")
            if self.engine == "postgresql":
                db.execute("SELECT id FROM messages FOR UPDATE")
            db.execute("ROLLBACK")


class Raw:
    """A DB-API connection taking ``?`` placeholders on either engine."""

    def __init__(self, connection: Any, *, sqlite: bool) -> None:
        self.connection, self.sqlite = connection, sqlite

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Any:
        if self.sqlite:
            return self.connection.execute(sql, parameters)
        return self.connection.execute(to_pyformat(sql), parameters)


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OutboxDatabase]:
    """An empty outbox database on each engine in turn (Outbox.open creates the schema)."""
    if request.param == "sqlite":
        yield OutboxDatabase("sqlite", tmp_path / "var" / "aftercare.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    try:
        yield OutboxDatabase("postgresql", server.url(name))
    finally:
        server.drop_database(name)


@pytest.fixture
def postgresql(postgres_server: PostgresServer) -> Iterator[OutboxDatabase]:
    """An empty outbox database on PostgreSQL alone, for what only PostgreSQL has."""
    name = postgres_server.create_database()
    try:
        yield OutboxDatabase("postgresql", postgres_server.url(name))
    finally:
        postgres_server.drop_database(name)
