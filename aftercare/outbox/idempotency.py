"""Idempotency-Key records: the first request with a key is answered once, and its answer kept.

A request first reserves its key in a short transaction (the write lock makes two requests
with the same key take turns), is answered outside any transaction, then stores its answer.
A second request with the same key finds the answer and gets it again; one with another body
is refused; one that arrives while the first is still being answered waits for it. A
reservation whose request died (the process was killed) is taken over after ``stale_after``.
Answers are kept for ``keep_for`` (a day) and hold no name or address: an enrolment's answer
carries the booking system's patient id, and names the enrolment so that erasing the patient
deletes it; a refusal may quote what was typed (an address that is not one, say) and names no
enrolment, so ``drop_expired`` (run by `pipeline retention`) deletes every answer past its day
even when no API call comes to do it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal

from aftercare.outbox.records import StoredAnswer
from aftercare.outbox.rows import stamp
from aftercare.outbox.writes import Writes

Outcome = Literal["mine", "answered", "other-body", "in-progress"]

KEEP_FOR: Final = dt.timedelta(hours=24)  # how long a repeated request gets the first answer


@dataclass(frozen=True)
class Reservation:
    """What reserving a key found: ``mine`` (answer the request, then ``finish``), an earlier
    request's ``answered`` (its answer), ``other-body`` or ``in-progress``."""

    outcome: Outcome
    answer: StoredAnswer | None = None


class IdempotencyTable:
    """The ``idempotency_keys`` table, per API key."""

    def __init__(self, writes: Writes) -> None:
        self._db = writes.db

    def reserve(
        self, api_key_id: int, key: str, fingerprint: str, now: dt.datetime,
        stale_after: dt.timedelta, keep_for: dt.timedelta,
    ) -> Reservation:
        """Reserve ``key`` for a request whose method, route and body hash to ``fingerprint``."""
        at = stamp(now, "now")
        with self._db.transaction() as db:
            db.execute("DELETE FROM idempotency_keys WHERE started_at < ?",
                       (stamp(now - keep_for, "now"),))
            # Insert first: on an engine that locks rows rather than the database, the unique
            # key still lets only one of two requests at once reserve it.
            if db.execute(
                "INSERT INTO idempotency_keys (api_key_id, idempotency_key, fingerprint,"
                " started_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (api_key_id, idempotency_key) DO NOTHING",
                (api_key_id, key, fingerprint, at),
            ).rowcount:
                return Reservation("mine")
            # Locked: of two requests taking over a dead one's reservation, the second waits,
            # then reads the first's new start and finds the key in progress.
            row = db.one(
                "SELECT fingerprint, started_at, status, location, body FROM idempotency_keys"
                f" WHERE api_key_id = ? AND idempotency_key = ?{db.lock()}",
                (api_key_id, key),
            )
            if row is None:  # released between the two statements: try again
                return Reservation("in-progress")
            if row["fingerprint"] != fingerprint:
                return Reservation("other-body")
            if row["status"] is not None:
                answer = StoredAnswer(row["status"], row["location"], row["body"])
                return Reservation("answered", answer)
            if row["started_at"] >= stamp(now - stale_after, "now"):
                return Reservation("in-progress")
            db.execute(  # the first request died before it answered: this one answers instead
                "UPDATE idempotency_keys SET started_at = ? WHERE api_key_id = ?"
                " AND idempotency_key = ?",
                (at, api_key_id, key),
            )
            return Reservation("mine")

    def finish(
        self, api_key_id: int, key: str, answer: StoredAnswer, enrollment_id: int | None
    ) -> None:
        """Keep the answer given to the request that reserved ``key``."""
        with self._db.transaction():
            self._db.execute(
                "UPDATE idempotency_keys SET status = ?, location = ?, body = ?,"
                " enrollment_id = ? WHERE api_key_id = ? AND idempotency_key = ?",
                (answer.status, answer.location, answer.body, enrollment_id, api_key_id, key),
            )

    def drop_expired(self, now: dt.datetime, keep_for: dt.timedelta = KEEP_FOR) -> int:
        """Delete the answers kept longer than ``keep_for``; how many."""
        with self._db.transaction() as db:
            return db.execute("DELETE FROM idempotency_keys WHERE started_at < ?",
                              (stamp(now - keep_for, "now"),)).rowcount

    def release(self, api_key_id: int, key: str) -> None:
        """Forget a reservation whose answer must not be repeated (a failure worth retrying)."""
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM idempotency_keys WHERE api_key_id = ? AND idempotency_key = ?"
                " AND status IS NULL",
                (api_key_id, key),
            )
