"""The schema as SQL scripts: applied in order, each once and whole, never edited once shipped."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aftercare.outbox.migrations import (
    MIGRATIONS,
    SchemaTooNewError,
    migrate,
    read_version,
    split_statements,
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    yield connection
    connection.close()


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
    db: sqlite3.Connection,
) -> None:
    assert read_version(db) == 0
    assert migrate(db, "x.db") == len(MIGRATIONS)
    assert migrate(db, "x.db") == len(MIGRATIONS)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"patients", "enrollments", "messages", "events", "suppressions",
            "provider_events", "staff"} <= tables


def test_an_older_database_is_brought_up_to_date_keeping_its_rows(
    db: sqlite3.Connection,
) -> None:
    migrate(db, "x.db", MIGRATIONS[:1])
    db.execute("INSERT INTO patients (email, first_name, language, created_at)"
                " VALUES ('ann@example.com', 'Ann', 'en', '2026-01-01')")
    assert migrate(db, "x.db") == len(MIGRATIONS)
    assert db.execute("SELECT first_name FROM patients").fetchall() == [("Ann",)]
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    assert {"provider_batch", "send_at", "delivery"} <= columns


def test_a_failing_script_leaves_the_version_where_it_was(db: sqlite3.Connection) -> None:
    broken = (*MIGRATIONS[:1], "CREATE TABLE extra (x INTEGER); SELECT * FROM nowhere;")
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, "x.db", broken)
    assert read_version(db) == 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchall() == []


def test_a_newer_database_is_refused_by_name(db: sqlite3.Connection) -> None:
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaTooNewError, match=r"x\.db: the database is at schema version"):
        migrate(db, "x.db")
