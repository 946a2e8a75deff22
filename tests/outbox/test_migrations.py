"""The schema as SQL scripts: applied in order, each once and whole, never edited once shipped;
one list for both engines, ported to PostgreSQL by rule and checked to build the same schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from aftercare.outbox import postgresql
from aftercare.outbox.dialect import NotPortableError, for_postgresql, to_pyformat
from aftercare.outbox.migrations import (
    MIGRATIONS,
    SchemaTooNewError,
    migrate,
    read_version,
    split_statements,
)
from tests.postgres import ENGINES, PostgresServer


@dataclass
class Migrator:
    """One engine's connection, with its own migrate and version functions."""

    engine: str
    connection: Any
    migrate: Callable[[Sequence[str]], int]
    version: Callable[[], int]
    error: type[Exception]

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        if self.engine == "sqlite":
            return [tuple(row) for row in self.connection.execute(sql).fetchall()]
        return [tuple(row.values()) for row in self.connection.execute(sql).fetchall()]

    def tables(self) -> set[str]:
        if self.engine == "sqlite":
            rows = self.run("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.run("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                            " AND tablename <> 'schema_version'")
        return {row[0] for row in rows}

    def columns(self, table: str) -> dict[str, tuple[str, bool, str | None, bool]]:
        """Each column's type (as SQLite names it), NOT NULL, default and primary key. A
        primary key counts as NOT NULL (SQLite would let a TEXT key be NULL, an old quirk it
        keeps; the store never writes one)."""
        if self.engine == "sqlite":
            return {row[1]: (row[2].upper(), bool(row[3] or row[5]), row[4], bool(row[5]))
                    for row in self.run(f"PRAGMA table_info({table})")}
        types = {"bigint": "INTEGER", "integer": "INTEGER", "text": "TEXT",
                 "double precision": "REAL", "bytea": "BLOB"}
        keys = {row[0] for row in self.run(
            "SELECT a.attname FROM pg_index AS i JOIN pg_attribute AS a"
            f" ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
            f" WHERE i.indrelid = '{table}'::regclass AND i.indisprimary")}
        columns = {}
        for name, kind, nullable, default in self.run(
            "SELECT column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
            f" AND table_name = '{table}'"
        ):
            shown = None if default is None else default.removesuffix("::text")
            columns[name] = (types[kind], nullable == "NO", shown, name in keys)
        return columns

    def indexes(self) -> set[tuple[str, tuple[str, ...], bool]]:
        """(table, columns, unique) of every index but the ones primary keys make."""
        if self.engine == "sqlite":
            found = set()
            for (table,) in self.run("SELECT name FROM sqlite_master WHERE type = 'table'"):
                for _, name, unique, origin, _ in self.run(f"PRAGMA index_list({table})"):
                    if origin != "pk":
                        columns = tuple(r[2] for r in self.run(f"PRAGMA index_info({name})"))
                        found.add((table, columns, bool(unique)))
            return found
        rows = self.run(
            "SELECT c.relname, array_agg(a.attname ORDER BY k.n), i.indisunique"
            " FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid"
            " JOIN pg_namespace AS s ON s.oid = c.relnamespace AND s.nspname = current_schema()"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum"
            " WHERE NOT i.indisprimary GROUP BY i.indexrelid, c.relname, i.indisunique")
        return {(table, tuple(columns), unique) for table, columns, unique in rows}

    def triggers(self) -> set[str]:
        if self.engine == "sqlite":
            return {r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type='trigger'")}
        return {r[0] for r in self.run("SELECT DISTINCT trigger_name FROM information_schema"
                                       ".triggers WHERE trigger_schema = current_schema()")}


@pytest.fixture(params=ENGINES)
def migrator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Migrator]:
    if request.param == "sqlite":
        connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
        yield Migrator("sqlite", connection, lambda scripts: migrate(connection, "x.db", scripts),
                       lambda: read_version(connection), sqlite3.OperationalError)
        connection.close()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    raw = psycopg.connect(server.url(name), autocommit=True, row_factory=dict_row)
    pg = postgresql.PostgreSQLConnection(raw)
    try:
        yield Migrator("postgresql", raw,
                       lambda scripts: postgresql.migrate(pg, "x.db", scripts),
                       lambda: postgresql.read_version(pg), psycopg.errors.UndefinedTable)
    finally:
        raw.close()
        server.drop_database(name)


def test_a_trigger_body_stays_one_statement_and_comments_are_no_statements() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x INTEGER);
    CREATE TRIGGER t_no BEFORE DELETE ON t BEGIN SELECT RAISE(ABORT, 'no'); END;
    """
    statements = list(split_statements(script))
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


def test_an_incomplete_script_is_refused() -> None:
    with pytest.raises(ValueError, match="incomplete statement"):
        list(split_statements("CREATE TABLE t (x INTEGER);"
                             " CREATE TRIGGER u BEFORE DELETE ON t BEGIN SELECT 1;"))


def test_a_new_database_gets_every_script_and_a_second_run_does_nothing(
    migrator: Migrator,
) -> None:
    assert migrator.version() == 0
    assert migrator.migrate(MIGRATIONS) == len(MIGRATIONS)
    assert migrator.migrate(MIGRATIONS) == len(MIGRATIONS)
    assert {"patients", "enrollments", "messages", "events", "suppressions",
            "provider_events", "staff"} <= migrator.tables()


def test_an_older_database_is_brought_up_to_date_keeping_its_rows(migrator: Migrator) -> None:
    migrator.migrate(MIGRATIONS[:1])
    migrator.run("INSERT INTO patients (email, first_name, language, created_at)"
                 " VALUES ('ann@example.com', 'Ann', 'en', '2026-01-01') RETURNING id")
    assert migrator.migrate(MIGRATIONS) == len(MIGRATIONS)
    assert migrator.run("SELECT first_name FROM patients") == [("Ann",)]
    assert {"provider_batch", "send_at", "delivery"} <= set(migrator.columns("messages"))


def test_a_failing_script_leaves_the_version_where_it_was(migrator: Migrator) -> None:
    broken = (*MIGRATIONS[:1], "CREATE TABLE extra (x INTEGER); SELECT * FROM nowhere;")
    with pytest.raises(migrator.error):
        migrator.migrate(broken)
    assert migrator.version() == 1
    assert "extra" not in migrator.tables()


def test_a_newer_database_is_refused_by_name(migrator: Migrator) -> None:
    migrator.migrate(MIGRATIONS)
    if migrator.engine == "sqlite":
        migrator.run(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    else:
        migrator.run(f"UPDATE schema_version SET version = {len(MIGRATIONS) + 1} RETURNING 1")
    with pytest.raises(SchemaTooNewError, match=r"x\.db: the database is at schema version"):
        migrator.migrate(MIGRATIONS)


def test_every_script_builds_the_same_schema_on_both_engines(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """The two lists are one: PostgreSQL's schema is SQLite's, table by table."""
    built: list[Migrator] = []
    name = postgres_server.create_database()
    lite = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    raw = psycopg.connect(postgres_server.url(name), autocommit=True, row_factory=dict_row)
    try:
        pg = postgresql.PostgreSQLConnection(raw)
        built = [Migrator("sqlite", lite, lambda s: 0, lambda: 0, Exception),
                 Migrator("postgresql", raw, lambda s: 0, lambda: 0, Exception)]
        migrate(lite, "x.db")
        postgresql.migrate(pg, "x")
        sqlite_side, postgres_side = built
        assert postgres_side.tables() == sqlite_side.tables()
        for table in sqlite_side.tables():
            assert postgres_side.columns(table) == sqlite_side.columns(table), table
        assert postgres_side.indexes() == sqlite_side.indexes()
        assert postgres_side.triggers() - {"events_refuse_delete_truncate"} == \
            sqlite_side.triggers()
    finally:
        lite.close()
        raw.close()
        postgres_server.drop_database(name)


@pytest.mark.parametrize(("sql", "says"), [
    ("PRAGMA foreign_keys = ON", "PRAGMA is SQLite's own"),
    ("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)", "use INTEGER PRIMARY KEY"),
    ("INSERT OR IGNORE INTO t VALUES (1)", "ON CONFLICT (...) DO NOTHING"),
    ("CREATE INDEX i ON t (strftime('%Y', at))", "compute them in Python"),
    ("ALTER TABLE t ADD COLUMN seen BOOLEAN", "use INTEGER 0/1 with a CHECK for a flag"),
    ("ALTER TABLE t ADD COLUMN at TEXT DEFAULT CURRENT_TIMESTAMP", "writes every time itself"),
    ("CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); END;",
     "the only trigger both engines share is one that refuses a change"),
])
def test_sql_only_sqlite_understands_is_refused_by_name(sql: str, says: str) -> None:
    with pytest.raises(NotPortableError) as caught:
        for statement in split_statements(sql + ";"):
            for_postgresql(statement)
    assert says in str(caught.value)
    assert str(caught.value).endswith(sql.rstrip(";")[:80])


def test_words_inside_quotes_and_comments_are_left_alone() -> None:
    statement = ("CREATE TABLE t (id INTEGER PRIMARY KEY, -- not a PRAGMA, it's a comment\n"
                 " note TEXT DEFAULT 'INTEGER or PRAGMA?')")
    assert for_postgresql(statement) == [
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \n"
        " note TEXT DEFAULT 'INTEGER or PRAGMA?')"]
    assert to_pyformat("SELECT '?', x FROM t -- why?\n WHERE a = ? AND b LIKE '%' || ?") == (
        "SELECT '?', x FROM t -- why?\n WHERE a = %s AND b LIKE '%' || %s")
    assert to_pyformat("SELECT 100 % 7, ?") == "SELECT 100 %% 7, %s"
