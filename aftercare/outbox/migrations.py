"""The outbox's schema as SQL scripts, applied in order, each once, in a transaction.

One list serves both engines. Write each script in portable SQL, spelled as SQLite spells
it: CREATE TABLE, ALTER TABLE ... ADD COLUMN, CREATE INDEX; types TEXT and INTEGER (REAL and
BLOB if you must); ``id INTEGER PRIMARY KEY`` for a numbered row; booleans as INTEGER 0/1
with a CHECK; times as the fixed-width UTC text the store writes; ``COLLATE NOCASE`` for text
compared without regard to case; the one trigger both engines share is a refusal,
``CREATE TRIGGER name BEFORE UPDATE|DELETE|INSERT ON table BEGIN SELECT RAISE(ABORT, 'why');
END;``. PostgreSQL gets each script through ``dialect.for_postgresql``, which ports exactly
those spellings and refuses by name what would not port (PRAGMA, AUTOINCREMENT, INSERT OR
..., date functions, CURRENT_TIMESTAMP, BOOLEAN and DATE types). tests/outbox/
test_migrations.py applies every script to both engines and compares the schemas they
build. The SQL the store runs follows the same rule (``?`` placeholders, ``ON CONFLICT``),
and a read that a write depends on ends with ``Database.lock()``. Append new scripts; never
edit a shipped one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from aftercare.errors import PipelineError

# Times are UTC text written by the store as YYYY-MM-DDTHH:MM:SS.ffffff+00:00 (fixed width, so
# text order is time order); dates are YYYY-MM-DD. Append new scripts; never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE CHECK (email <> '' AND email = trim(email)),
        first_name TEXT NOT NULL,
        patient_ref TEXT,
        language TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    CREATE TABLE enrollments (
        id INTEGER PRIMARY KEY,
        patient_id INTEGER NOT NULL REFERENCES patients (id),
        campaign TEXT NOT NULL,
        treated_on TEXT NOT NULL,
        timezone TEXT NOT NULL,
        marketing_consent INTEGER NOT NULL CHECK (marketing_consent IN (0, 1)),
        consent_at TEXT NOT NULL,
        consent_recorded_by TEXT NOT NULL,
        consent_wording_version TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (patient_id, campaign, treated_on)
    );

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        enrollment_id INTEGER NOT NULL REFERENCES enrollments (id),
        step_key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('clinical', 'marketing')),
        due_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'scheduled' CHECK (
            state IN ('scheduled', 'sending', 'sent', 'failed', 'cancelled', 'unknown')
        ),
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        claimed_at TEXT,
        sent_at TEXT,
        provider_id TEXT,
        content_hash TEXT,
        template_version TEXT,
        last_error TEXT,
        UNIQUE (enrollment_id, step_key)
    );

    -- Finding due work reads only the due part of this index, however large the history grows.
    CREATE INDEX messages_by_state_due ON messages (state, due_at);

    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        enrollment_id INTEGER REFERENCES enrollments (id),
        message_id INTEGER REFERENCES messages (id),
        actor TEXT NOT NULL,
        detail TEXT
    );

    CREATE INDEX events_by_enrollment ON events (enrollment_id);
    CREATE INDEX events_by_message ON events (message_id);

    -- The audit trail is append-only: the database itself refuses edits.
    CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only; they cannot be updated');
    END;

    CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    BEGIN
        SELECT RAISE(ABORT, 'events are append-only; they cannot be deleted');
    END;

    -- Addresses that must never be enrolled or mailed again; compared without regard to case.
    CREATE TABLE suppressions (
        email TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        at TEXT NOT NULL
    );
    """,
    # 2: delivery through a provider that schedules sends (SendGrid): the batch a submitted
    # message belongs to, when the provider will send it, the last delivery status it reported,
    # and its webhook events, kept once each (the provider repeats them).
    """
    ALTER TABLE messages ADD COLUMN provider_batch TEXT;
    ALTER TABLE messages ADD COLUMN send_at TEXT;
    ALTER TABLE messages ADD COLUMN delivery TEXT;

    CREATE TABLE provider_events (
        event_id TEXT PRIMARY KEY,
        received_at TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message_id INTEGER REFERENCES messages (id),
        detail TEXT
    );

    CREATE INDEX provider_events_by_message ON provider_events (message_id);
    """,
    # 3: staff accounts for the checkout page; passwords only as strong hashes.
    """
    CREATE TABLE staff (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (username <> ''),
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
        locked_until TEXT,
        disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
    );
    """,
    # 4: the care page: when the patient first opened the link of a minimal email (its trail
    # entry is 'viewed'); the message's state and delivery status are not touched by it.
    """
    ALTER TABLE messages ADD COLUMN viewed_at TEXT;

    CREATE INDEX messages_by_viewed ON messages (viewed_at);
    """,
    # 5: staff sessions kept here (the browser holds only a random id; this table its SHA-256),
    # failed logins counted per client address and account (an account is a keyed hash of the
    # name typed, '' for the client as a whole), each account's last login, and when a
    # patient's personal data was erased. The staff table's failed_logins and locked_until are
    # no longer used: a lockout now holds for one client only.
    """
    ALTER TABLE staff ADD COLUMN last_login_at TEXT;

    CREATE TABLE staff_sessions (
        id_hash TEXT PRIMARY KEY,
        staff_id INTEGER NOT NULL REFERENCES staff (id),
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );

    CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id);

    CREATE TABLE login_failures (
        client TEXT NOT NULL,
        account TEXT NOT NULL,
        failures INTEGER NOT NULL CHECK (failures >= 0),
        last_failure_at TEXT NOT NULL,
        locked_until TEXT,
        PRIMARY KEY (client, account)
    );

    ALTER TABLE patients ADD COLUMN forgotten_at TEXT;
    """,
    # 6: the booking-system API. Each enrolment gets an opaque id for the API's URLs (never the
    # row id); rows stored before get one the first time the API shows them, so this script
    # needs no engine's random function. API keys are kept only as a hash; ``site`` is the one
    # site a key may act for (NULL: every site). The first answer to each Idempotency-Key is
    # kept for a day so that a repeated request gets it again; ``status`` is NULL while the
    # first request is still being answered. Patients are found by their external id.
    """
    ALTER TABLE enrollments ADD COLUMN public_id TEXT;
    CREATE UNIQUE INDEX enrollments_by_public_id ON enrollments (public_id);
    CREATE INDEX patients_by_ref ON patients (patient_ref);

    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE CHECK (name <> ''),
        key_hash TEXT NOT NULL UNIQUE,
        site TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );

    CREATE TABLE idempotency_keys (
        api_key_id INTEGER NOT NULL REFERENCES api_keys (id),
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        started_at TEXT NOT NULL,
        status INTEGER,
        location TEXT,
        body TEXT,
        enrollment_id INTEGER,
        PRIMARY KEY (api_key_id, idempotency_key)
    );

    CREATE INDEX idempotency_keys_by_start ON idempotency_keys (started_at);
    """,
    # 7: sites and roles. Every enrolment belongs to one site (those stored before belong to
    # the implicit site "main"); staff have a role (front_desk, manager, administrator) and
    # the sites they work at (no rows: every site). Accounts made before are administrators.
    """
    ALTER TABLE enrollments ADD COLUMN site TEXT NOT NULL DEFAULT 'main';
    CREATE INDEX enrollments_by_site ON enrollments (site, id);
    ALTER TABLE staff ADD COLUMN role TEXT NOT NULL DEFAULT 'administrator';

    CREATE TABLE staff_sites (
        staff_id INTEGER NOT NULL REFERENCES staff (id),
        site TEXT NOT NULL,
        PRIMARY KEY (staff_id, site)
    );
    """,
    # 8: per-site figures count what happened in a span of days: messages the provider accepted
    # by their hand-over time, provider events by kind and time, and trail entries by kind and
    # time (an unsubscribe from a message's link names the message), each read by its index.
    """
    CREATE INDEX messages_by_state_sent ON messages (state, sent_at);
    CREATE INDEX provider_events_by_kind ON provider_events (kind, occurred_at);
    CREATE INDEX events_by_kind ON events (kind, at);
    """,
    # 9: claims read due messages in claim order, due time then id, straight from the index
    # (SQLite's index held the id already; PostgreSQL sorted every message due at the same
    # moment, on every claim); and addresses compared without regard to case (an unsubscribe,
    # a bounce, the patient page) find the patient through an index, not by reading them all.
    """
    DROP INDEX messages_by_state_due;
    CREATE INDEX messages_by_state_due ON messages (state, due_at, id);
    CREATE INDEX patients_by_email_nocase ON patients (email COLLATE NOCASE);
    """,
)


class SchemaTooNewError(PipelineError):
    """The database was written by a newer version of the program."""


def migrate(
    connection: sqlite3.Connection, where: str, migrations: Sequence[str] = MIGRATIONS
) -> int:
    """Apply the scripts the database lacks, one transaction each; return the schema version.

    ``connection`` must be in autocommit mode (isolation_level=None). ``where`` names the
    database in errors.
    """
    target = len(migrations)
    current = read_version(connection)
    refuse_newer(current, target, where)
    while current < target:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            current = read_version(connection)
            refuse_newer(current, target, where)
            if current < target:
                for statement in split_statements(migrations[current]):
                    connection.execute(statement)
                current += 1
                connection.execute(f"PRAGMA user_version = {current:d}")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    return current


def read_version(connection: sqlite3.Connection) -> int:
    """The schema version recorded in the database header (0 for a new file)."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def split_statements(script: str) -> Iterator[str]:
    """The complete statements of a script, in order (a trigger body stays whole)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if _has_code(pending):
                yield pending.strip()
            pending = ""
    if _has_code(pending):
        raise ValueError("migration script ends with an incomplete statement")


def _has_code(text: str) -> bool:
    code = "".join(line.split("--", 1)[0] for line in text.splitlines())
    return bool(code.replace(";", "").strip())


def refuse_newer(current: int, target: int, where: str) -> None:
    if current > target:
        raise SchemaTooNewError(
            f"{where}: the database is at schema version {current}, newer than this program "
            f"understands ({target}); upgrade the program or use another database file"
        )
