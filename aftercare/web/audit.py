"""Writes staff actions to the outbox's append-only events table, without personal data."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Final

from aftercare.web.auth import stamp

# Kinds written here; the outbox writes its own (enrolled, cancelled, rescheduled, ...) with the
# staff member as actor when staff trigger them.
LOGIN: Final = "staff-login"
LOGIN_FAILED: Final = "staff-login-failed"
LOCKED: Final = "staff-locked"
LOGOUT: Final = "staff-logout"
PRINTED: Final = "handout-printed"
LOOKUP: Final = "patient-lookup"
ANONYMOUS: Final = "anonymous"  # a failed login naming no account: what was typed is not kept


def actor(username: str) -> str:
    """The actor recorded for a staff member, as in the outbox's own events."""
    return f"staff:{username}"


def record(
    db: sqlite3.Connection,
    now: dt.datetime,
    kind: str,
    who: str,
    detail: str | None = None,
    *,
    enrollment_id: int | None = None,
    message_id: int | None = None,
) -> None:
    """Append one event; ``detail`` must never hold a name, an address or anything typed."""
    db.execute(
        "INSERT INTO events (at, kind, enrollment_id, message_id, actor, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (stamp(now), kind, enrollment_id, message_id, who, detail),
    )
