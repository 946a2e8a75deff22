"""Reading the outbox: messages with their patient and enrolment, the trail, state counts."""

from __future__ import annotations

from aftercare.content.values import normalise_address
from aftercare.errors import InputError
from aftercare.outbox.database import Database
from aftercare.outbox.records import EventView, MessageView
from aftercare.outbox.rows import read, where
from aftercare.outbox.vocabulary import State

# Column names match the record's fields, so ``read`` can build it from a row.
_VIEW = """
    SELECT m.id AS message_id, m.public_id, m.enrollment_id, e.campaign, m.step_key, m.kind,
           p.email, p.first_name, p.language, e.treated_on, e.timezone, m.due_at, m.state,
           m.attempts, m.provider_id, m.content_hash, m.template_version, m.sent_at, m.last_error,
           m.send_at, m.provider_batch, m.delivery, m.viewed_at, e.marketing_consent,
           e.created_at AS enrolled_at
    FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id
    JOIN patients AS p ON p.id = e.patient_id
"""


class Reads:
    """Queries that change nothing."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def messages(
        self, status: str | None = None, email: str | None = None, *,
        enrollment_id: int | None = None,
    ) -> list[MessageView]:
        """Messages joined with their patient and enrolment, in due order."""
        if status is not None and status not in {s.value for s in State}:
            states = ", ".join(s.value for s in State)
            raise InputError("status", f"expected one of {states}; got {status!r}")
        address = None if email is None else normalise_address(email)
        clause, args = where({"m.state": status, "p.email": address,
                              "m.enrollment_id": enrollment_id})
        rows = self._db.all(f"{_VIEW} {clause} ORDER BY m.due_at, m.id", args)
        return [read(MessageView, row) for row in rows]

    def message_by_public_id(self, public_id: str) -> MessageView | None:
        row = self._db.one(f"{_VIEW} WHERE m.public_id = ?", (public_id,))
        return None if row is None else read(MessageView, row)

    def viewed_since(self, since: str) -> list[MessageView]:
        """Messages whose care page was first opened at ``since`` or later, latest first."""
        rows = self._db.all(f"{_VIEW} WHERE m.viewed_at >= ? ORDER BY m.viewed_at DESC, m.id",
                            (since,))
        return [read(MessageView, row) for row in rows]

    def events(
        self, message_id: int | None = None, enrollment_id: int | None = None
    ) -> list[EventView]:
        """The trail, oldest first, optionally for one message and/or one enrolment."""
        clause, args = where({"message_id": message_id, "enrollment_id": enrollment_id})
        rows = self._db.all(f"SELECT * FROM events {clause} ORDER BY id", args)
        return [read(EventView, row) for row in rows]

    def count_by_state(self) -> dict[State, int]:
        """How many messages are in each state (every state listed, zero included)."""
        counts = dict.fromkeys(State, 0)
        for row in self._db.all("SELECT state, count(*) AS n FROM messages GROUP BY state"):
            counts[State(row["state"])] = row["n"]
        return counts
