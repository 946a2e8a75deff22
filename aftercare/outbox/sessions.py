"""Staff sessions kept in the outbox database, so that logging out, a new password, removing
an account or idling ends them everywhere; the browser holds only a random id."""

from __future__ import annotations

import datetime as dt

from aftercare.outbox.database import Database
from aftercare.outbox.records import StaffSession
from aftercare.outbox.rows import read, stamp


class SessionTable:
    """The ``staff_sessions`` table. Sessions are found by a hash of their id (the caller's):
    a copy of the table opens no session."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, id_hash: str, staff_id: int, data: str, now: dt.datetime) -> None:
        at = stamp(now, "now")
        self._db.execute(
            "INSERT INTO staff_sessions (id_hash, staff_id, data, created_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (id_hash, staff_id, data, at, at),
        )

    def find(self, id_hash: str) -> StaffSession | None:
        """The session, if it exists and its account is still active."""
        row = self._db.one(
            "SELECT s.staff_id, a.username, s.data, s.created_at, s.last_seen_at"
            " FROM staff_sessions AS s JOIN staff AS a ON a.id = s.staff_id"
            " WHERE s.id_hash = ? AND a.disabled = 0",
            (id_hash,),
        )
        return None if row is None else read(StaffSession, row)

    def save(self, id_hash: str, data: str | None, now: dt.datetime) -> None:
        """Record that the session was used at ``now`` (and its new values, if given)."""
        at = stamp(now, "now")
        if data is None:
            self._db.execute("UPDATE staff_sessions SET last_seen_at = ? WHERE id_hash = ?",
                             (at, id_hash))
        else:
            self._db.execute(
                "UPDATE staff_sessions SET data = ?, last_seen_at = ? WHERE id_hash = ?",
                (data, at, id_hash))

    def end(self, id_hash: str) -> None:
        self._db.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (id_hash,))

    def end_all(self, staff_id: int) -> int:
        """End every session of one account (a new password, a removed account); how many."""
        cursor = self._db.execute("DELETE FROM staff_sessions WHERE staff_id = ?", (staff_id,))
        return cursor.rowcount

    def sweep(self, idle_since: dt.datetime, started_before: dt.datetime) -> int:
        """Delete sessions unused since ``idle_since`` or older than ``started_before``."""
        cursor = self._db.execute(
            "DELETE FROM staff_sessions WHERE last_seen_at < ? OR created_at < ?",
            (stamp(idle_since, "idle_since"), stamp(started_before, "started_before")),
        )
        return cursor.rowcount
