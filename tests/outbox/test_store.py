"""The outbox on real databases, SQLite and PostgreSQL: durability, exclusive claims, states and
the audit trail. Tests taking ``database`` run once per engine."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import multiprocessing
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftercare.content.values import EmailAddress, ZoneName
from aftercare.errors import InputError, PipelineError, StorageError
from aftercare.outbox.migrations import MIGRATIONS, SchemaTooNewError, migrate, read_version
from aftercare.outbox.postgresql import shown
from aftercare.outbox.records import Enrollment
from aftercare.outbox.rows import stamp as _stamp
from aftercare.outbox.sending import CLAIMABLE
from aftercare.outbox.store import UNSUBSCRIBED, Outbox, StateError
from aftercare.plan.schedule import Action, PlannedMessage
from tests.postgres import ENGINES, OutboxDatabase, PostgresServer

UTC = dt.UTC
NOW = dt.datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
TREATED = dt.date(2025, 3, 3)
CAMPAIGN = "aftercare-cosmetic"
DAY = dt.timedelta(days=1)


def enrollment(email: str = "jane@example.com", **changes: Any) -> Enrollment:
    base = Enrollment(
        email=EmailAddress.parse(email),
        first_name="Jane",
        campaign=CAMPAIGN,
        treated_on=TREATED,
        timezone=ZoneName("Europe/London"),
        language="en",
        marketing_consent=False,
        recorded_by="cli:frontdesk",
        consent_wording_version="2025-01",
    )
    return dataclasses.replace(base, **changes)


def planned(
    key: str, due: dt.datetime, action: Action = "send", kind: str = "clinical",
    note: str | None = None,
) -> PlannedMessage:
    return PlannedMessage(key, kind, due, due, action, note)  # type: ignore[arg-type]


def toy_plan(item: Enrollment, now: dt.datetime = NOW) -> tuple[PlannedMessage, ...]:
    """A stand-in for schedule.plan: day 1 and week 2 at 09:00 UTC, month 3 needs consent."""
    start = dt.datetime.combine(item.treated_on, dt.time(9), tzinfo=UTC)
    entries = []
    for key, days, kind in (("day-1", 1, "clinical"), ("week-2", 14, "clinical"),
                            ("month-3", 90, "marketing")):
        due = start + days * DAY
        if kind == "marketing" and not item.marketing_consent:
            entries.append(planned(key, due, "skip", kind, "skipped: no consent to reminders"))
        elif due < now - 2 * DAY:
            entries.append(planned(key, due, "skip", kind, "skipped: too late"))
        else:
            entries.append(planned(key, due, kind=kind))
    return tuple(entries)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where an SQLite file goes, for the tests of what only SQLite has."""
    return tmp_path / "var" / "aftercare.db"


@pytest.fixture
def outbox(database: OutboxDatabase) -> Iterator[Outbox]:
    with Outbox.open(database.location) as box:
        yield box


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None, timeout=0))


def kinds(box: Outbox, **where: int) -> list[str]:
    return [event.kind for event in box.events(**where)]


# ---------------------------------------------------------------- the file and its schema


def test_open_creates_an_owner_only_file_in_wal_mode(path: Path) -> None:
    with Outbox.open(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600
        with raw(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert read_version(db) == len(MIGRATIONS)


def test_connections_opening_a_new_database_together_migrate_it_once(
    database: OutboxDatabase,
) -> None:
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def open_and_close() -> None:
        start.wait()
        try:
            Outbox.open(database.location).close()
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert database.schema_version() == len(MIGRATIONS)


def test_connection_enforces_foreign_keys(outbox: Outbox, database: OutboxDatabase) -> None:
    with pytest.raises(database.integrity_error, match=r"(?i)foreign key"):
        outbox._db.execute(
            "INSERT INTO messages (public_id, enrollment_id, step_key, kind, due_at)"
            " VALUES ('x', 999, 'day-1', 'clinical', '2025-01-01T00:00:00.000000+00:00')"
        )


def test_reopening_an_up_to_date_database_changes_nothing(database: OutboxDatabase) -> None:
    with Outbox.open(database.location) as box:
        box.enroll(enrollment(), toy_plan(enrollment()), NOW)
    before = database.schema()
    with Outbox.open(database.location) as box:
        assert len(box.messages()) == 3
    assert database.schema() == before
    assert database.schema_version() == len(MIGRATIONS)


def test_a_database_newer_than_the_program_is_refused(database: OutboxDatabase) -> None:
    Outbox.open(database.location).close()
    database.set_schema_version(99)
    with pytest.raises(SchemaTooNewError) as caught:
        Outbox.open(database.location)
    where = database.location if database.engine == "sqlite" else shown(str(database.location))
    assert str(caught.value) == (
        f"{where}: the database is at schema version 99, newer than this program understands "
        f"({len(MIGRATIONS)}); upgrade the program or use another database file"
    )


def test_a_database_that_cannot_be_reached_is_named_without_its_password(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url("no_such_database").replace("aftercare@", "aftercare:s3cret@")
    with pytest.raises(StorageError) as caught:
        Outbox.open(url)
    assert caught.value.reason == "unavailable"
    message = str(caught.value)
    assert message.startswith("the database is unavailable: it cannot be opened or read; ask "
                              "the administrator; nothing was saved (")
    assert f"({url.replace(':s3cret@', ':***@')}: cannot open the outbox database (" in message
    assert 'database "no_such_database" does not exist' in message
    assert "s3cret" not in message


def test_a_file_that_is_not_a_database_is_refused(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(PipelineError, match="not an outbox database"):
        Outbox.open(path)


def test_each_migration_is_its_own_transaction(tmp_path: Path) -> None:
    good = "CREATE TABLE a (x); CREATE TRIGGER a_t BEFORE DELETE ON a BEGIN SELECT 1; END;"
    bad = "CREATE TABLE b (x); INSERT INTO missing VALUES (1);"
    with raw(tmp_path / "m.db") as db:
        with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
            migrate(db, "m.db", [good, bad])
        assert read_version(db) == 1
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert names == {"a", "a_t"}
        assert migrate(db, "m.db", [good, "CREATE TABLE b (x);"]) == 2
        assert migrate(db, "m.db", [good, "CREATE TABLE b (x);"]) == 2  # up to date: no-op


def test_only_the_minimum_personal_data_has_columns(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    assert database.columns("patients") == {
        "id", "email", "first_name", "patient_ref", "language", "created_at", "forgotten_at"}


def test_claiming_reads_the_state_and_due_index(path: Path) -> None:
    with Outbox.open(path) as outbox:
        plan = [" ".join(map(str, row)) for row in outbox._db.execute(
            f"EXPLAIN QUERY PLAN {CLAIMABLE.format(lock='')}",
            (_stamp(NOW + DAY, "horizon"), _stamp(NOW, "now"), 10),
        )]
    assert any("USING INDEX messages_by_state_due" in line for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan


def test_claims_on_postgresql_read_the_state_and_due_index_and_skip_locked_rows(
    postgres_server: PostgresServer,
) -> None:
    name = postgres_server.create_database()
    try:
        database = OutboxDatabase("postgresql", postgres_server.url(name))
        with Outbox.open(database.location) as box:
            enroll_due(box, [-3 * DAY, -2 * DAY, -DAY])
            first, second, third = (v.message_id for v in box.messages())
            with database.raw() as db:
                db.execute("SET enable_seqscan = off")  # the tables are tiny: ask for the index
                plan = [row[0] for row in db.execute(
                    "EXPLAIN " + CLAIMABLE.format(lock=" FOR NO KEY UPDATE OF m SKIP LOCKED"),
                    (_stamp(NOW, "horizon"), _stamp(NOW, "now"), 1)).fetchall()]
                assert any("messages_by_state_due" in line for line in plan), plan
                assert not any("Sort" in line for line in plan), plan  # the index's own order
                # Another sender is in the middle of claiming the first: this one takes the
                # second at once rather than waiting, and never the same.
                db.execute("BEGIN")
                db.execute("SELECT id FROM messages WHERE id = ? FOR NO KEY UPDATE", (first,))
                assert [c.message_id for c in box.claim_due(NOW, 1)] == [second]
                db.execute("ROLLBACK")
            assert [c.message_id for c in box.claim_due(NOW, 5)] == [first, third]
    finally:
        postgres_server.drop_database(name)


def test_events_cannot_be_updated_or_deleted(outbox: Outbox, database: OutboxDatabase) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    refused = database.integrity_error
    with database.raw() as db:
        with pytest.raises(refused, match="append-only; they cannot be updated"):
            db.execute("UPDATE events SET actor = 'someone else'")
        with pytest.raises(refused, match="append-only; they cannot be deleted"):
            db.execute("DELETE FROM events")
        if database.engine == "postgresql":  # TRUNCATE passes row triggers by: refused too
            with pytest.raises(refused, match="append-only; they cannot be deleted"):
                db.execute("TRUNCATE events")
    assert len(outbox.events()) == 4


def test_the_database_refuses_a_second_message_for_a_step(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    result = outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    with database.raw() as db, pytest.raises(database.integrity_error,
                                              match=r"(?i)unique constraint"):
        db.execute(
            "INSERT INTO messages (public_id, enrollment_id, step_key, kind, due_at)"
            " VALUES ('another', ?, 'day-1', 'clinical', '2025-03-04T09:00:00.000000+00:00')",
            (result.enrollment_id,),
        )


def test_the_database_refuses_an_unknown_state(outbox: Outbox, database: OutboxDatabase) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    with database.raw() as db, pytest.raises(database.integrity_error,
                                              match=r"(?i)check constraint"):
        db.execute("UPDATE messages SET state = 'lost'")


# ---------------------------------------------------------------- enrolment


def test_enroll_stores_patient_consent_messages_and_events(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    item = enrollment(patient_ref="P-17")
    result = outbox.enroll(item, toy_plan(item), NOW)
    assert result.created
    assert [(m.step_key, m.action) for m in result.messages] == [
        ("day-1", "send"), ("week-2", "send"), ("month-3", "skip")
    ]
    views = outbox.messages()
    assert [(v.step_key, v.state, v.last_error) for v in views] == [
        ("day-1", "scheduled", None),
        ("week-2", "scheduled", None),
        ("month-3", "cancelled", "skipped: no consent to reminders"),
    ]
    assert views[0].due_at == dt.datetime(2025, 3, 4, 9, tzinfo=UTC)
    assert all(len(v.public_id) == 32 and int(v.public_id, 16) >= 0 for v in views)
    assert kinds(outbox) == ["enrolled", "scheduled", "scheduled", "skipped"]
    assert outbox.events(message_id=views[2].message_id)[0].detail == (
        "skipped: no consent to reminders"
    )
    with database.raw() as db:
        row = db.execute(
            "SELECT marketing_consent, consent_at, consent_recorded_by, consent_wording_version,"
            " p.patient_ref FROM enrollments JOIN patients AS p ON p.id = patient_id"
        ).fetchone()
    assert row == (0, "2025-03-03T12:00:00.000000+00:00", "cli:frontdesk", "2025-01", "P-17")


def test_send_now_entries_are_due_at_enrolment(outbox: Outbox) -> None:
    late = planned("day-1", NOW - 5 * DAY, "send-now", note="was due Thu 27 Feb; sent now")
    result = outbox.enroll(enrollment(), [late], NOW + dt.timedelta(seconds=1))
    assert result.messages[0].due_at == NOW + dt.timedelta(seconds=1)
    assert outbox.messages()[0].due_at == NOW + dt.timedelta(seconds=1)
    assert outbox.events()[-1].detail == "was due Thu 27 Feb; sent now"


def test_enrolling_twice_is_a_no_op(outbox: Outbox) -> None:
    first = outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    events = outbox.events()
    again = outbox.enroll(enrollment(first_name="Janet"), toy_plan(enrollment()), NOW + DAY)
    assert (again.enrollment_id, again.created) == (first.enrollment_id, False)
    assert [(m.step_key, m.due_at, m.action) for m in again.messages] == [
        (m.step_key, m.due_at, m.action) for m in first.messages
    ]
    assert len(outbox.messages()) == 3
    assert outbox.events() == events
    assert {v.first_name for v in outbox.messages()} == {"Jane"}


def test_one_patient_enrolled_twice_at_once_is_one_enrolment(database: OutboxDatabase) -> None:
    """A double click at the desk: on either engine the second waits, then sees a repeat."""
    for attempt in range(5):
        item = enrollment(f"twice{attempt}@example.com")
        start, results = threading.Barrier(2), list[bool]()

        def enrol(item: Enrollment = item, start: threading.Barrier = start,
                  results: list[bool] = results) -> None:
            with Outbox.open(database.location) as box:
                start.wait()
                results.append(box.enroll(item, toy_plan(item), NOW).created)

        threads = [threading.Thread(target=enrol) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False, True]
    with Outbox.open(database.location) as box:
        assert len(box.messages()) == 5 * 3
    assert database.count("enrollments") == database.count("patients") == 5


def test_a_new_treatment_date_enrolls_again_and_updates_the_patient(outbox: Outbox) -> None:
    outbox.enroll(enrollment(patient_ref="P-17"), toy_plan(enrollment()), NOW)
    later = enrollment(" jane@EXAMPLE.com ", first_name="Janet", treated_on=TREATED + 90 * DAY)
    result = outbox.enroll(later, toy_plan(later), NOW)
    assert result.created
    assert {v.first_name for v in outbox.messages()} == {"Janet"}
    assert len(outbox.messages(email="jane@Example.com")) == 6
    assert outbox._db.all("SELECT email, patient_ref FROM patients") == [
        {"email": "jane@example.com", "patient_ref": "P-17"}]


def test_a_suppressed_address_cannot_be_enrolled(outbox: Outbox) -> None:
    outbox.unsubscribe("JANE@example.com", NOW, "link", "patient")
    assert outbox.is_suppressed("jane@EXAMPLE.COM")
    with pytest.raises(InputError) as caught:
        outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    assert str(caught.value) == f"email: {UNSUBSCRIBED}"
    assert str(caught.value) == "email: this address has unsubscribed; it cannot be enrolled again"
    assert outbox.messages() == []


def test_enroll_many_writes_all_or_nothing(outbox: Outbox, database: OutboxDatabase) -> None:
    outbox.unsubscribe("bob@example.com", NOW, "link", "patient")
    count = database.count
    tables = {table: count(table) for table in ("patients", "enrollments", "events")}
    items = [(enrollment(f"{name}@example.com"), toy_plan(enrollment())) for name in
             ("ann", "bob", "cat")]
    with pytest.raises(InputError) as caught:
        outbox.enroll_many(items, NOW)
    assert str(caught.value) == f"items[1].email: {UNSUBSCRIBED}"
    assert {table: count(table) for table in tables} == tables
    assert count("messages") == 0
    results = outbox.enroll_many([items[0], items[2], items[0]], NOW)
    assert [r.created for r in results] == [True, True, False]
    assert count("messages") == 6


def test_naive_datetimes_in_a_plan_are_refused_before_writing(outbox: Outbox) -> None:
    naive = planned("day-1", dt.datetime(2025, 3, 4, 9))
    with pytest.raises(ValueError, match="due_at must be timezone-aware"):
        outbox.enroll(enrollment(), [naive], NOW)
    assert outbox.events() == []


# ---------------------------------------------------------------- claiming and outcomes


def enroll_due(box: Outbox, offsets: list[dt.timedelta], email: str = "jane@example.com") -> None:
    plan = [planned(f"step-{i}", NOW + offset) for i, offset in enumerate(offsets)]
    box.enroll(enrollment(email), plan, NOW - 30 * DAY)


def test_claim_due_takes_only_due_messages_oldest_first(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    hour = dt.timedelta(hours=1)
    enroll_due(outbox, [-hour, dt.timedelta(seconds=1), -2 * hour, dt.timedelta(0)])
    first = outbox.claim_due(NOW, 2)
    assert [(c.step_key, c.attempts) for c in first] == [("step-2", 1), ("step-0", 1)]
    assert first[0].email == "jane@example.com" and first[0].timezone == "Europe/London"
    assert first[0].due_at == NOW - 2 * hour and first[0].treated_on == TREATED
    assert [c.step_key for c in outbox.claim_due(NOW, 10)] == ["step-3"]  # due_at == now
    assert outbox.claim_due(NOW, 10) == []
    assert outbox.claim_due(NOW, 0) == []
    states = {v.step_key: v.state for v in outbox.messages()}
    assert states == {"step-0": "sending", "step-1": "scheduled", "step-2": "sending",
                      "step-3": "sending"}
    assert kinds(outbox, message_id=first[0].message_id) == ["scheduled", "claimed"]
    database.lock_every_message()  # no transaction is held after a claim


def test_claim_due_refuses_a_negative_limit(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="limit must be 0 or more; got -1"):
        outbox.claim_due(NOW, -1)


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=20, deadline=None)
@given(
    dues=st.lists(
        st.datetimes(
            min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31),
            timezones=st.timezones(), allow_imaginary=False,
        ),
        max_size=12,
    ),
    limit=st.integers(min_value=0, max_value=15),
)
def test_claims_follow_instants_whatever_the_zone(
    engine: str, postgres_server: PostgresServer, dues: list[dt.datetime], limit: int
) -> None:
    plan = [planned(f"s{i}", due) for i, due in enumerate(dues)]
    # In UTC: Python never calls an ambiguous local time equal to a time in another zone.
    instants = sorted((due.astimezone(UTC), i) for i, due in enumerate(dues))
    expected = [(due, i) for due, i in instants if due <= NOW][:limit]
    with scratch_outbox(engine, postgres_server) as box:
        box.enroll(enrollment(), plan, NOW)
        assert [int(v.step_key[1:]) for v in box.messages()] == [i for _, i in instants]
        claims = box.claim_due(NOW, limit)
        assert [(c.due_at, int(c.step_key[1:])) for c in claims] == expected


@contextlib.contextmanager
def scratch_outbox(engine: str, server: PostgresServer) -> Iterator[Outbox]:
    """A new outbox of its own on ``engine`` (for each example of a property test)."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as folder, Outbox.open(Path(folder) / "o.db") as box:
            yield box
        return
    name = server.create_database()
    try:
        with Outbox.open(server.url(name)) as box:
            yield box
    finally:
        server.drop_database(name)


def _claim_until_empty(location: str, start: Any, results: Any) -> None:
    with Outbox.open(location) as box:
        start.wait()
        mine: list[int] = []
        while batch := box.claim_due(NOW, 7):
            mine.extend(claim.message_id for claim in batch)
    results.put(mine)


def test_concurrent_claimers_never_share_a_message(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    for patient in range(50):
        enroll_due(outbox, [-n * dt.timedelta(minutes=1) for n in range(4)], f"p{patient}@x.org")
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(4), context.Queue()
    workers = [
        context.Process(target=_claim_until_empty, args=(str(database.location), start, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    claimed = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    results.close()
    results.join_thread()
    everything = [message_id for mine in claimed for message_id in mine]
    assert len(everything) == len(set(everything)) == 200
    assert set(everything) == {v.message_id for v in outbox.messages()}
    assert {v.attempts for v in outbox.messages()} == {1}


def claimed_one(box: Outbox) -> int:
    enroll_due(box, [-DAY])
    return box.claim_due(NOW, 1)[0].message_id


def test_mark_sent_records_the_outcome(outbox: Outbox) -> None:
    message_id = claimed_one(outbox)
    outbox.mark_sent(message_id, provider_id="sg-1", content_hash="abc", template_version="v3",
                     now=NOW + dt.timedelta(seconds=2))
    view = outbox.messages()[0]
    assert (view.state, view.provider_id, view.content_hash, view.template_version) == (
        "sent", "sg-1", "abc", "v3"
    )
    assert view.sent_at == NOW + dt.timedelta(seconds=2)
    assert kinds(outbox, message_id=message_id) == ["scheduled", "claimed", "sent"]
    with pytest.raises(StateError) as caught:
        outbox.mark_sent(message_id, provider_id=None, content_hash="abc", template_version="v3",
                         now=NOW)
    assert str(caught.value) == f"message {message_id} is 'sent', not 'sending'; " \
        "it cannot be marked 'sent'"
    assert outbox.claim_due(NOW + 100 * DAY, 10) == []


@pytest.mark.parametrize("outcome", ["failed", "unknown"])
def test_mark_failed_and_unknown_are_final(outbox: Outbox, outcome: str) -> None:
    message_id = claimed_one(outbox)
    mark = outbox.mark_failed if outcome == "failed" else outbox.mark_unknown
    mark(message_id, "HTTP 400 from the provider", NOW)
    view = outbox.messages()[0]
    assert (view.state, view.last_error, view.attempts) == (
        outcome, "HTTP 400 from the provider", 1
    )
    assert outbox.events()[-1].kind == outcome
    assert outbox.claim_due(NOW + 100 * DAY, 10) == []
    with pytest.raises(StateError, match=f"is '{outcome}', not 'sending'"):
        outbox.mark_unknown(message_id, "again", NOW)


def test_outcomes_need_a_claim(outbox: Outbox) -> None:
    enroll_due(outbox, [DAY])
    message_id = outbox.messages()[0].message_id
    events = outbox.events()
    with pytest.raises(StateError, match="is 'scheduled', not 'sending'; it cannot be marked"):
        outbox.mark_failed(message_id, "nope", NOW)
    with pytest.raises(StateError) as caught:
        outbox.mark_sent(999, provider_id=None, content_hash="h", template_version="v", now=NOW)
    assert str(caught.value) == "message 999 does not exist"
    assert outbox.events() == events and outbox.messages()[0].state == "scheduled"


def test_a_claim_can_be_cancelled_or_put_back(outbox: Outbox) -> None:
    enroll_due(outbox, [-DAY, -DAY / 2])
    first, second = (claim.message_id for claim in outbox.claim_due(NOW, 2))
    outbox.mark_cancelled(first, "unsubscribed before sending", NOW)
    outbox.mark_retry(second, "HTTP 429: slow down", NOW + dt.timedelta(minutes=5), NOW)
    views = {v.message_id: v for v in outbox.messages()}
    assert (views[first].state, views[first].last_error) == (
        "cancelled", "unsubscribed before sending"
    )
    assert (views[second].state, views[second].due_at) == (
        "scheduled", NOW + dt.timedelta(minutes=5)
    )
    assert outbox.events()[-2:][0].kind == "cancelled" and outbox.events()[-1].kind == "retry"
    assert outbox.claim_due(NOW + dt.timedelta(minutes=4), 5) == []
    again = outbox.claim_due(NOW + dt.timedelta(minutes=5), 5)
    assert [(c.message_id, c.attempts) for c in again] == [(second, 2)]
    with pytest.raises(StateError, match="is 'cancelled', not 'sending'"):
        outbox.mark_retry(first, "no", NOW, NOW)


def test_release_stale_turns_old_claims_into_unknown_for_good(outbox: Outbox) -> None:
    message_id = claimed_one(outbox)
    lease = dt.timedelta(minutes=10)
    assert outbox.release_stale(NOW + lease, lease) == 0  # not older than the lease yet
    assert outbox.release_stale(NOW + lease + dt.timedelta(seconds=1), lease) == 1
    view = outbox.messages()[0]
    assert view.state == "unknown"
    assert view.last_error == "claimed more than 0:10:00 ago and never resolved: outcome unknown"
    assert kinds(outbox, message_id=message_id) == ["scheduled", "claimed", "unknown"]
    assert outbox.claim_due(NOW + 100 * DAY, 10) == []
    assert outbox.release_stale(NOW + 100 * DAY, lease) == 0
    with pytest.raises(StateError, match="is 'unknown', not 'sending'"):  # a very late sender
        outbox.mark_sent(message_id, provider_id="sg", content_hash="h", template_version="v",
                         now=NOW + DAY)


# ---------------------------------------------------------------- changes by people


def test_cancel_stops_unsent_messages_only(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    outbox.enroll(enrollment(campaign="migraine"), toy_plan(enrollment()), NOW)
    outbox.enroll(enrollment("other@example.com"), toy_plan(enrollment()), NOW)
    sent = outbox.claim_due(NOW + 2 * DAY, 1)[0]
    outbox.mark_sent(sent.message_id, provider_id=None, content_hash="h", template_version="v",
                     now=NOW + 2 * DAY)
    assert outbox.cancel("jane@EXAMPLE.com", "migraine", NOW, "staff:amy") == 2
    assert outbox.cancel("jane@example.com", None, NOW, "staff:amy") == 1  # day-1 already sent
    assert outbox.cancel("jane@example.com", None, NOW, "staff:amy") == 0
    assert outbox.cancel("nobody@example.com", None, NOW, "staff:amy") == 0
    jane = {(v.campaign, v.step_key): (v.state, v.last_error)
            for v in outbox.messages(email="jane@example.com")}
    assert jane[(CAMPAIGN, "day-1")] == ("sent", None)
    assert jane[(CAMPAIGN, "week-2")] == ("cancelled", "cancelled by staff:amy")
    assert jane[("migraine", "day-1")] == ("cancelled", "cancelled by staff:amy")
    assert [v.state for v in outbox.messages(email="other@example.com")] == [
        "scheduled", "scheduled", "cancelled"
    ]
    cancelled = [e for e in outbox.events() if e.kind == "cancelled"]
    assert len(cancelled) == 3 and {e.actor for e in cancelled} == {"staff:amy"}


def test_unsubscribe_suppresses_and_cancels_once(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    result = outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    assert outbox.unsubscribe(" Jane@example.com", NOW, "link", "patient") == 2
    events = outbox.events()
    assert outbox.unsubscribe("jane@example.com", NOW + DAY, "webhook", "sendgrid") == 0
    assert outbox.events() == events  # idempotent
    assert [e.kind for e in events[-3:]] == ["unsubscribed", "cancelled", "cancelled"]
    assert events[-3].enrollment_id == result.enrollment_id and events[-3].detail == (
        "unsubscribed via link"
    )
    assert {v.state for v in outbox.messages()} == {"cancelled"}
    assert outbox.claim_due(NOW + 100 * DAY, 10) == []
    with database.raw() as db:
        assert db.execute("SELECT * FROM suppressions").fetchall() == [
            ("Jane@example.com", "unsubscribed", "link", "2025-03-03T12:00:00.000000+00:00")
        ]


def test_unsubscribing_an_unknown_address_is_recorded(outbox: Outbox) -> None:
    assert outbox.unsubscribe("new@example.com", NOW, "link", "patient") == 0
    event = outbox.events()[0]
    assert (event.kind, event.enrollment_id, event.message_id) == ("unsubscribed", None, None)
    assert outbox.is_suppressed("NEW@example.com")
    assert not outbox.is_suppressed("old@example.com")


def test_reschedule_retimes_unsent_messages(outbox: Outbox) -> None:
    result = outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    day_1 = outbox.claim_due(NOW + 2 * DAY, 1)[0]
    outbox.mark_sent(day_1.message_id, provider_id=None, content_hash="h", template_version="v",
                     now=NOW + 2 * DAY)
    new_date = TREATED + 7 * DAY
    assert outbox.reschedule("jane@example.com", CAMPAIGN, new_date, toy_plan, NOW, "staff:amy") \
        == 1
    views = {v.step_key: v for v in outbox.messages()}
    assert {v.treated_on for v in views.values()} == {new_date}
    assert views["day-1"].state == "sent"
    assert views["day-1"].due_at == dt.datetime(2025, 3, 4, 9, tzinfo=UTC)
    assert (views["week-2"].state, views["week-2"].due_at) == (
        "scheduled", dt.datetime(2025, 3, 24, 9, tzinfo=UTC)
    )
    assert views["month-3"].state == "cancelled"
    trail = outbox.events(enrollment_id=result.enrollment_id)[-2:]
    assert [(e.kind, e.message_id, e.actor) for e in trail] == [
        ("rescheduled", None, "staff:amy"), ("rescheduled", views["week-2"].message_id, "staff:amy")
    ]
    assert trail[0].detail == "treated_on 2025-03-03 -> 2025-03-10"


def test_reschedule_cancels_steps_the_new_plan_skips(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)

    def without_week_2(item: Enrollment) -> tuple[PlannedMessage, ...]:
        return tuple(
            planned(p.step_key, p.due_at, "skip", p.kind, "skipped: closed") if p.step_key ==
            "week-2" else p for p in toy_plan(item)
        )

    assert outbox.reschedule("jane@example.com", CAMPAIGN, TREATED + DAY, without_week_2, NOW,
                             "staff:amy") == 1
    week_2 = next(v for v in outbox.messages() if v.step_key == "week-2")
    assert (week_2.state, week_2.last_error) == ("cancelled", "skipped: closed")
    assert outbox.events(message_id=week_2.message_id)[-1].kind == "skipped"


def test_reschedule_brings_back_a_step_skipped_for_a_wrong_date(outbox: Outbox) -> None:
    typo = enrollment(treated_on=TREATED - 30 * DAY)  # day-1 and week-2 were "too late"
    outbox.enroll(typo, toy_plan(typo), NOW)
    outbox.enroll(enrollment("amy@example.com", treated_on=typo.treated_on), toy_plan(typo), NOW)
    assert outbox.cancel("amy@example.com", None, NOW, "staff:amy") == 0
    assert [v.state for v in outbox.messages(email="jane@example.com")] == ["cancelled"] * 3
    assert outbox.reschedule("jane@example.com", CAMPAIGN, TREATED, toy_plan, NOW, "staff:amy") \
        == 2
    states = {v.step_key: v.state for v in outbox.messages(email="jane@example.com")}
    assert states == {"day-1": "scheduled", "week-2": "scheduled", "month-3": "cancelled"}


def test_reschedule_never_revives_a_cancelled_step(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    assert outbox.cancel("jane@example.com", CAMPAIGN, NOW, "staff:amy") == 2
    assert outbox.reschedule("jane@example.com", CAMPAIGN, TREATED + DAY, toy_plan, NOW, "x") == 0
    assert {v.state for v in outbox.messages()} == {"cancelled"}


def test_reschedule_refusals(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    later = enrollment(treated_on=TREATED + 90 * DAY)
    outbox.enroll(later, toy_plan(later), NOW)
    before = (outbox.messages(), outbox.events())

    def attempt(email: str, day: dt.date) -> str:
        with pytest.raises(InputError) as caught:
            outbox.reschedule(email, CAMPAIGN, day, toy_plan, NOW, "staff:amy")
        return str(caught.value)

    assert attempt("jane@example.com", TREATED) == (
        "treated_on: this patient already has an enrollment in 'aftercare-cosmetic' "
        "treated on 2025-03-03"
    )
    assert attempt("bob@example.com", TREATED) == (
        "email: this address has no enrollment in 'aftercare-cosmetic'"
    )
    assert (outbox.messages(), outbox.events()) == before
    outbox.unsubscribe("jane@example.com", NOW, "link", "patient")
    assert attempt("jane@example.com", TREATED + DAY) == f"email: {UNSUBSCRIBED}"


# ---------------------------------------------------------------- reading and clocks


def test_listings_filter_and_find_by_public_id(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    outbox.enroll(enrollment("bob@example.com"), toy_plan(enrollment()), NOW)
    assert len(outbox.messages(status="cancelled")) == 2
    assert len(outbox.messages(status="scheduled", email="bob@example.com")) == 2
    view = outbox.messages()[0]
    assert outbox.message_by_public_id(view.public_id) == view
    assert outbox.message_by_public_id("0" * 32) is None
    with pytest.raises(InputError) as caught:
        outbox.messages(status="bogus")
    assert str(caught.value) == (
        "status: expected one of scheduled, sending, sent, failed, cancelled, unknown; "
        "got 'bogus'"
    )


NAIVE = dt.datetime(2025, 3, 3, 12, 0)
CALLS: dict[str, Callable[[Outbox], object]] = {
    "enroll": lambda box: box.enroll(enrollment(), toy_plan(enrollment()), NAIVE),
    "enroll_many": lambda box: box.enroll_many([(enrollment(), [])], NAIVE),
    "claim_due": lambda box: box.claim_due(NAIVE, 1),
    "mark_sent": lambda box: box.mark_sent(
        1, provider_id=None, content_hash="h", template_version="v", now=NAIVE
    ),
    "mark_failed": lambda box: box.mark_failed(1, "e", NAIVE),
    "mark_unknown": lambda box: box.mark_unknown(1, "e", NAIVE),
    "release_stale": lambda box: box.release_stale(NAIVE, dt.timedelta(minutes=5)),
    "cancel": lambda box: box.cancel("jane@example.com", None, NAIVE, "staff"),
    "reschedule": lambda box: box.reschedule(
        "jane@example.com", CAMPAIGN, TREATED, toy_plan, NAIVE, "staff"
    ),
    "unsubscribe": lambda box: box.unsubscribe("jane@example.com", NAIVE, "link", "patient"),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_naive_datetimes_are_refused(outbox: Outbox, call: Callable[[Outbox], object]) -> None:
    claimed_one(outbox)
    events = outbox.events()
    with pytest.raises(ValueError, match="now must be timezone-aware; got a naive datetime"):
        call(outbox)
    assert outbox.events() == events


def test_an_address_in_other_capitals_is_found_through_the_index(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    outbox.enroll(enrollment("Jane@example.com"), toy_plan(enrollment()), NOW)
    where = outbox._db.equal_ignoring_case("email")
    found = outbox._db.all(f"SELECT email FROM patients WHERE {where}", ("JANE@EXAMPLE.COM",))
    assert found == [{"email": "Jane@example.com"}]
    with database.raw() as db:
        if database.engine == "sqlite":
            plan = " ".join(str(row) for row in db.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM patients WHERE {where}", ("x",)).fetchall())
        else:
            db.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index fits
            plan = " ".join(row[0] for row in db.execute(
                f"EXPLAIN SELECT id FROM patients WHERE {where}", ("x",)).fetchall())
    assert "patients_by_email_nocase" in plan, plan


def test_a_postgresql_outbox_can_live_in_a_schema_of_its_own(
    postgres_server: PostgresServer,
) -> None:
    name = postgres_server.create_database()
    try:
        plain = OutboxDatabase("postgresql", postgres_server.url(name))
        with plain.raw() as db:
            db.execute("CREATE SCHEMA clinic")
        url = f"{plain.location}&options=-csearch_path%3Dclinic"
        with Outbox.open(url) as box:
            box.enroll(enrollment(), toy_plan(enrollment()), NOW)
            assert box.is_suppressed("x@example.com") is False
        with Outbox.open(url) as box:  # migrated once: the second open finds it up to date
            assert len(box.messages()) == 3
        with plain.raw() as db:
            tables = {row[0] for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'clinic'").fetchall()}
            assert {"patients", "messages", "schema_version"} <= tables
            assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                              ).fetchone()[0] == 0
    finally:
        postgres_server.drop_database(name)


def test_an_enrolment_keeps_its_site_and_older_rows_and_accounts_get_the_defaults(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    north = enrollment("north@example.com", site="north")
    outbox.enroll(north, toy_plan(north), NOW)
    plain = enrollment("plain@example.com")
    outbox.enroll(plain, toy_plan(plain), NOW)
    with database.raw() as db:
        db.execute("INSERT INTO staff (username, password_hash, created_at)"
                   " VALUES ('sam', 'x', '2026-11-01T00:00:00Z')")
        sites = db.execute("SELECT p.email, e.site FROM enrollments e JOIN patients p"
                           " ON p.id = e.patient_id ORDER BY p.email").fetchall()
        roles = db.execute("SELECT role FROM staff").fetchall()
        staff_sites = db.execute("SELECT count(*) FROM staff_sites").fetchone()[0]
    assert [tuple(row) for row in sites] == [("north@example.com", "north"),
                                             ("plain@example.com", "main")]
    assert [tuple(row) for row in roles] == [("administrator",)] and staff_sites == 0
