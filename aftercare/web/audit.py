"""What staff do, written to the outbox's trail under their name, never with personal data."""

from __future__ import annotations

import datetime as dt
from typing import Final

from aftercare.outbox.store import Outbox
from aftercare.outbox.vocabulary import Trail

# The outbox writes its own kinds (enrolled, cancelled, rescheduled, ...) with the staff member
# as actor when staff trigger them; these are the ones only the staff pages write.
LOGIN: Final = Trail.STAFF_LOGIN
LOGIN_FAILED: Final = Trail.STAFF_LOGIN_FAILED
LOCKED: Final = Trail.STAFF_LOCKED
CLIENT_LOCKED: Final = Trail.STAFF_CLIENT_LOCKED
LOGOUT: Final = Trail.STAFF_LOGOUT
PRINTED: Final = Trail.HANDOUT_PRINTED
LOOKUP: Final = Trail.PATIENT_LOOKUP
ANONYMOUS: Final = "anonymous"  # a failed login naming no account: what was typed is not kept


def actor(username: str) -> str:
    """The actor recorded for a staff member, as in the outbox's own events."""
    return f"staff:{username}"


def record(
    outbox: Outbox, now: dt.datetime, kind: Trail, who: str, detail: str | None = None, *,
    enrollment_id: int | None = None,
) -> None:
    """Append one entry; ``detail`` must never hold a name, an address or anything typed."""
    outbox.staff.record(now, kind, who, detail, enrollment_id=enrollment_id)
