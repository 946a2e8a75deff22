"""A database that cannot do its job, met for real on each engine: a lock held too long, a
database that may not be written, a disk that is full, a server that went away. Each comes out
as a StorageError naming the reason in staff's words, and nothing of the operation is saved."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import aftercare.outbox.postgresql
import aftercare.outbox.sqlite
from aftercare.errors import StorageError
from aftercare.outbox.postgresql import PostgreSQLEngine
from aftercare.outbox.store import Outbox
from tests.outbox.test_store import NOW, enrollment, toy_plan
from tests.postgres import OutboxDatabase
from tests.unwritable import unwritable


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both engines give up waiting for a lock after 0.2 s instead of 5 s."""
    monkeypatch.setattr(aftercare.outbox.sqlite, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(aftercare.outbox.postgresql, "LOCK_TIMEOUT", "200ms")


@pytest.fixture
def migrated(database: OutboxDatabase) -> OutboxDatabase:
    Outbox.open(database.location).close()
    return database


@contextlib.contextmanager
def read_only(database: OutboxDatabase) -> Iterator[None]:
    """While inside: every new session on the PostgreSQL database is read-only."""
    with database.raw() as db:
        name = db.execute("SELECT current_database()").fetchone()[0]
        db.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        yield
    finally:
        with database.raw() as db:
            db.execute("SET default_transaction_read_only = off")
            db.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def enrol(box: Outbox) -> None:
    box.enroll(enrollment(), toy_plan(enrollment()), NOW)


def test_a_write_that_waits_too_long_for_a_lock_says_locked(
    migrated: OutboxDatabase, short_waits: None
) -> None:
    with Outbox.open(migrated.location) as box, migrated.raw() as other:
        # Another program is writing: SQLite's file lock, or a PostgreSQL table lock.
        if migrated.engine == "sqlite":
            other.execute("BEGIN IMMEDIATE")
        else:
            other.execute("BEGIN")
            other.execute("LOCK TABLE patients IN EXCLUSIVE MODE")
        with pytest.raises(StorageError) as caught:
            enrol(box)
        other.execute("ROLLBACK")
        assert caught.value.reason == "locked"
        assert str(caught.value).startswith(
            "the database is locked: another program is writing to it (a large import, "
            "perhaps); try again in a minute; nothing was saved (")
        assert box.messages() == []
        enrol(box)  # once the other program is done, the same write goes through
    assert migrated.count("messages") == 3


def test_a_database_that_may_not_be_written_says_read_only(
    migrated: OutboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    if migrated.engine == "sqlite":
        refusing = unwritable(Path(migrated.location), monkeypatch)
    else:  # a database an administrator made read-only (as a standby server is)
        refusing = read_only(migrated)
    with refusing, Outbox.open(migrated.location) as box:
        with pytest.raises(StorageError) as caught:
            enrol(box)
        assert caught.value.reason == "read-only"
        assert box.messages() == []  # reading still works
    assert migrated.count("patients") == 0


def test_postgresql_errors_are_named_for_staff(postgresql: OutboxDatabase) -> None:
    engine = PostgreSQLEngine(str(postgresql.location))
    with psycopg.connect(engine.url, autocommit=True) as connection:
        def raised(sql: str) -> psycopg.Error:
            with pytest.raises(psycopg.Error) as caught:
                connection.execute(sql)
            return caught.value

        # The server's own errors: a full disk (raised the way the server raises it when its
        # disk fills), a lock not granted in time, a constraint, a mistake in a statement.
        full = raised("DO $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on"
                      " device' USING ERRCODE = 'disk_full'; END $$")
        connection.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO t VALUES (1)")
        with psycopg.connect(engine.url, autocommit=True) as holder:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            connection.execute("SET lock_timeout = '50ms'")
            timed_out = raised("SELECT x FROM t")
            holder.execute("ROLLBACK")
        duplicate = raised("INSERT INTO t VALUES (1)")
        mistake = raised("SELEKT 1")
    assert engine.storage_problem(full) == "full"
    assert engine.storage_problem(timed_out) == "locked"
    assert engine.storage_problem(duplicate) is None
    assert engine.storage_problem(mistake) is None
    assert engine.storage_problem(ValueError("not the database's")) is None


def test_a_postgresql_server_that_goes_away_or_is_not_there_is_unavailable(
    postgresql: OutboxDatabase, tmp_path: Path
) -> None:
    with Outbox.open(postgresql.location) as box:
        enrol(box)
        with postgresql.raw() as admin:  # the administrator ends the outbox's session
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(StorageError) as gone:
            box.messages()
        assert gone.value.reason == "unavailable"
    nowhere = f"postgresql://aftercare@/outbox?host={tmp_path}&port=5432"  # no server there
    with pytest.raises(StorageError) as refused:
        Outbox.open(nowhere)
    assert refused.value.reason == "unavailable"
    assert "cannot open the outbox database" in str(refused.value)
