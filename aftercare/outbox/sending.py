"""Sending from the outbox: claiming due messages in a short transaction, recording outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from aftercare.outbox.handover import Handover
from aftercare.outbox.records import Claim
from aftercare.outbox.rows import read, stamp
from aftercare.outbox.vocabulary import SYSTEM, State, StateError, Trail
from aftercare.outbox.writes import Writes

# Driven by the (state, due_at, id) index, in its order: the work is one index entry per claim,
# however large the history and however many messages fall due at the same moment.
# Due within the horizon (a provider that schedules gets messages ahead of time), except that a
# message put back for a retry (it keeps its send time in send_at) waits for its retry time.
# ``{lock}``: on PostgreSQL, senders on other machines skip the rows one of them is claiming.
CLAIMABLE = """
    SELECT m.id AS message_id, m.public_id, m.enrollment_id, e.campaign, m.step_key, p.email,
           p.first_name, p.language, e.treated_on, e.timezone, m.due_at, m.attempts,
           coalesce(m.send_at, m.due_at) AS send_at, e.site
    FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id
    JOIN patients AS p ON p.id = e.patient_id
    WHERE m.state = 'scheduled' AND m.due_at <= ?
      AND (m.send_at IS NULL OR m.due_at <= ?)
    ORDER BY m.due_at, m.id LIMIT ?{lock}
"""
# What each outcome is called in the trail.
_OUTCOME_KINDS: Mapping[State, Trail] = {
    State.SENT: Trail.SENT, State.FAILED: Trail.FAILED, State.UNKNOWN: Trail.UNKNOWN,
    State.CANCELLED: Trail.CANCELLED, State.SCHEDULED: Trail.RETRY,
}


class Sending:
    """Claims and outcomes; every call is its own short transaction."""

    def __init__(self, writes: Writes, handover: Handover) -> None:
        self._writes = writes
        self._db = writes.db
        self._handover = handover

    def claim_due(
        self, now: dt.datetime, limit: int, horizon: dt.datetime | None = None
    ) -> list[Claim]:
        """Move up to ``limit`` messages due by ``horizon`` (default: now), oldest first, to
        'sending' and return them; a message put back for a retry waits until its retry time."""
        at = stamp(now, "now")
        until = at if horizon is None else stamp(horizon, "horizon")
        if limit < 0:
            raise ValueError(f"limit must be 0 or more; got {limit}")
        if until < at:
            raise ValueError("horizon must not be before now")
        claims: list[Claim] = []
        with self._db.transaction() as db:
            claimable = CLAIMABLE.format(lock=db.lock("m", skip_locked=True))
            for row in db.all(claimable, (until, at, limit)):
                # The state guard keeps a claim exclusive even if the lock discipline changes.
                claimed = self._writes.move(
                    row["message_id"], State.SCHEDULED, State.SENDING, doing="it cannot be claimed",
                    changes={"claimed_at": at}, expressions={"attempts": "attempts + 1"})
                if claimed:
                    claim = read(Claim, row, attempts=row["attempts"] + 1)
                    self._writes.log(at, Trail.CLAIMED, claim.enrollment_id, claim.message_id,
                                     SYSTEM, f"attempt {claim.attempts}")
                    claims.append(claim)
        return claims

    def mark_sent(
        self, message_id: int, *, provider_id: str | None, content_hash: str,
        template_version: str, now: dt.datetime, send_at: dt.datetime | None = None,
        batch: str | None = None,
    ) -> None:
        """Record that the provider accepted a claimed message, to send at ``send_at`` (None:
        at once) as part of ``batch`` (the provider's handle for cancelling it)."""
        changes = {
            "provider_id": provider_id,
            "content_hash": content_hash,
            "template_version": template_version,
            "sent_at": stamp(now, "now"),
            "send_at": None if send_at is None else stamp(send_at, "send_at"),
            "provider_batch": batch,
            "last_error": None,
        }
        detail = f"template {template_version}"
        if send_at is not None and send_at > now:
            held = send_at.astimezone(dt.UTC)
            detail += f"; held by the provider until {held:%Y-%m-%d %H:%M} UTC"
        self.finish(message_id, State.SENT, now, detail, changes)

    def mark_failed(self, message_id: int, error: str, now: dt.datetime) -> None:
        """Record that the provider refused a claimed message; it is not retried."""
        self.finish(message_id, State.FAILED, now, error, {"last_error": error})

    def mark_unknown(
        self, message_id: int, error: str, now: dt.datetime, send_at: dt.datetime | None = None,
        batch: str | None = None,
    ) -> None:
        """Record that a claimed message's outcome cannot be known; it is never resent by itself.

        ``send_at`` and ``batch`` are what the request asked for, so that a message the provider
        may be holding can still be withdrawn.
        """
        changes = {
            "last_error": error,
            "send_at": None if send_at is None else stamp(send_at, "send_at"),
            "provider_batch": batch,
        }
        self.finish(message_id, State.UNKNOWN, now, error, changes)

    def mark_cancelled(self, message_id: int, reason: str, now: dt.datetime) -> None:
        """Close a claimed message that must not go out after all (the address unsubscribed)."""
        self.finish(message_id, State.CANCELLED, now, reason, {"last_error": reason})

    def mark_retry(
        self, message_id: int, error: str, retry_at: dt.datetime, now: dt.datetime
    ) -> None:
        """Put a claimed message back in the queue; only for a provider that surely refused it.

        It is claimed again from ``retry_at`` on (not before, whatever the horizon) and keeps
        its send time, so a message handed over early still reaches the patient on time.
        """
        stamp(now, "now")
        due = stamp(retry_at, "retry_at")
        # SQL reads the old row on the right: send_at keeps the first due time it had.
        self.finish(message_id, State.SCHEDULED, now, error, {"due_at": due, "last_error": error},
                    {"send_at": "coalesce(send_at, due_at)"})

    def finish(
        self, message_id: int, target: State, now: dt.datetime, detail: str,
        changes: Mapping[str, object], expressions: Mapping[str, str] | None = None,
    ) -> None:
        """Record the outcome of a claimed message; StateError if it is no longer 'sending'."""
        at = stamp(now, "now")
        with self._db.transaction():
            row = self._writes.message(message_id)
            current = State(row["state"])
            if current is not State.SENDING:
                raise StateError(
                    f"message {message_id} is {current.value!r}, not 'sending'; "
                    f"it cannot be marked {target.value!r}"
                )
            self._writes.move(message_id, current, target, doing="it cannot be finished",
                              changes=changes, expressions=expressions)
            self._writes.log(at, _OUTCOME_KINDS[target], row["enrollment_id"], message_id,
                             SYSTEM, detail)

    def release_stale(self, now: dt.datetime, lease: dt.timedelta) -> int:
        """Turn claims older than ``lease`` into 'unknown' (the sender died); return how many.

        A claim the provider has already reported on was accepted: it becomes 'sent' instead.
        """
        at = stamp(now, "now")
        if lease < dt.timedelta(0):
            raise ValueError(f"lease must not be negative; got {lease}")
        reason = f"claimed more than {lease} ago and never resolved: outcome unknown"
        unknown = 0
        with self._db.transaction() as db:
            # A claim its sender is recording right now is skipped: it is not stale.
            rows = db.all(
                "SELECT id, enrollment_id FROM messages WHERE state = 'sending' AND claimed_at < ?"
                f" ORDER BY id{db.lock(skip_locked=True)}",
                (stamp(now - lease, "now"),),
            )
            for row in rows:
                self._writes.move(row["id"], State.SENDING, State.UNKNOWN,
                                  doing="it cannot be released", changes={"last_error": reason})
                self._writes.log(at, Trail.UNKNOWN, row["enrollment_id"], row["id"], SYSTEM,
                                 reason)
                # Its events may have come while it was still 'sending' (the sender died after
                # the provider took it): they settle it now.
                unknown += 1 - self._handover.settle_if_reported(row["id"], row["enrollment_id"],
                                                                 at)
        return unknown
