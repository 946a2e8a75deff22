"""The outbox's SQLite plumbing: typed values to stored text and back, write transactions, trail."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aftercare.content.values import EmailAddress, ZoneName
from aftercare.errors import PipelineError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
SYSTEM: Final = "system"  # the actor of automatic transitions: claims, outcomes, expiry
# Suppression reasons that mean the patient asked to stop (the rest are delivery problems).
UNSUBSCRIBING: Final = frozenset({"unsubscribed", "unsubscribe", "group_unsubscribe"})

_SCHEDULED = """
    SELECT m.id, m.enrollment_id FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id JOIN patients AS p ON p.id = e.patient_id
    WHERE m.state = 'scheduled' AND {where} ORDER BY m.due_at, m.id
"""


class StateError(PipelineError):
    """A message was not in the state an operation needs (for example, already sent)."""


class Ledger:
    """One SQLite connection with the primitives every outbox operation is built from."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so concurrent writers wait (busy_timeout)
        # instead of failing when a read lock would need upgrading.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _log(
        self, at: str, kind: str, enrollment: int | None, message: int | None, actor: str,
        detail: str | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO events (at, kind, enrollment_id, message_id, actor, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, kind, enrollment, message, actor, detail),
        )

    def _suppression(self, address: str) -> str | None:
        row = self._db.execute("SELECT reason FROM suppressions WHERE email = ?", (address,))
        reason: tuple[str] | None = row.fetchone()
        return None if reason is None else reason[0]

    def _suppress(self, address: str, reason: str, source: str, actor: str, at: str) -> int:
        """Inside a write: suppress the address (once) and cancel its unsent messages."""
        added = self._db.execute(
            "INSERT INTO suppressions (email, reason, source, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (email) DO NOTHING",
            (address, reason, source, at),
        ).rowcount
        if added:
            kind = "unsubscribed" if reason in UNSUBSCRIBING else "suppressed"
            enrollments = self._db.execute(
                "SELECT e.id FROM enrollments AS e JOIN patients AS p ON p.id = e.patient_id"
                " WHERE p.email = ? COLLATE NOCASE ORDER BY e.id",
                (address,),
            ).fetchall()
            for enrollment_id in [r["id"] for r in enrollments] or [None]:
                self._log(at, kind, enrollment_id, None, actor, f"{reason} via {source}")
        return self._cancel("p.email = ? COLLATE NOCASE", [address], at, actor, reason)

    def _cancel(self, where: str, args: Sequence[str], at: str, actor: str, reason: str) -> int:
        rows = self._db.execute(_SCHEDULED.format(where=where), args).fetchall()
        for row in rows:
            self._db.execute(
                "UPDATE messages SET state = 'cancelled', last_error = ? WHERE id = ?",
                (reason, row["id"]),
            )
            self._log(at, "cancelled", row["enrollment_id"], row["id"], actor, reason)
        return len(rows)

    def _finish(
        self, message_id: int, state: str, at: str, detail: str, changes: Mapping[str, str | None],
        expressions: Mapping[str, str] | None = None,
    ) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT state, enrollment_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise StateError(f"message {message_id} does not exist")
            if row["state"] != "sending":
                raise StateError(
                    f"message {message_id} is {row['state']!r}, not 'sending'; "
                    f"it cannot be marked {state!r}"
                )
            assignments = ", ".join(
                [f"{column} = ?" for column in changes]
                + [f"{column} = {sql}" for column, sql in (expressions or {}).items()]
            )
            db.execute(
                f"UPDATE messages SET state = ?, {assignments} WHERE id = ?",
                (state, *changes.values(), message_id),
            )
            kind = "retry" if state == "scheduled" else state
            self._log(at, kind, row["enrollment_id"], message_id, SYSTEM, detail)

    def _message(self, message_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise StateError(f"message {message_id} does not exist")
        return row


def address(email: str) -> str:
    """The stored form of an address: trimmed, with the domain in lower case."""
    local, at, domain = email.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else email.strip()


def stamp(moment: dt.datetime, name: str) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got a naive datetime")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def inserted(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:
        raise RuntimeError("the INSERT stored no row")
    return cursor.lastrowid


def where(filters: Mapping[str, object]) -> tuple[str, list[object]]:
    chosen = {column: value for column, value in filters.items() if value is not None}
    clause = " AND ".join(f"{column} = ?" for column in chosen)
    return (f"WHERE {clause}" if clause else ""), list(chosen.values())


_READERS: Final[Mapping[str, Callable[[Any], object]]] = {
    "email": EmailAddress,
    "timezone": ZoneName,
    "treated_on": dt.date.fromisoformat,
    "due_at": instant,
    "sent_at": instant,
    "send_at": instant,
    "at": instant,
    "marketing_consent": bool,
}


def read(cls: type[T], row: sqlite3.Row, **overrides: object) -> T:
    """A dataclass from a row whose column names match its fields, stored text made typed."""
    values = {**dict(zip(row.keys(), row, strict=True)), **overrides}
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value, reader = values[field.name], _READERS.get(field.name)
        fields[field.name] = value if value is None or reader is None else reader(value)
    return cls(**fields)
