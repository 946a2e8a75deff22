"""The durable outbox: patients, enrollments and their timed messages in SQLite, with a trail."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from aftercare.content.values import ZoneName
from aftercare.errors import InputError
from aftercare.outbox.consent import ConsentChanges
from aftercare.outbox.ledger import SYSTEM, UNSUBSCRIBING, StateError
from aftercare.outbox.ledger import address as _address
from aftercare.outbox.ledger import inserted as _inserted
from aftercare.outbox.ledger import instant as _instant
from aftercare.outbox.ledger import read as _read
from aftercare.outbox.ledger import stamp as _stamp
from aftercare.outbox.ledger import where as _where
from aftercare.outbox.migrations import connect
from aftercare.outbox.records import Claim, Enrollment, EnrollResult, EventView, MessageView
from aftercare.outbox.retiming import by_key
from aftercare.outbox.tracking import ProviderTracking
from aftercare.plan.schedule import Action, PlannedMessage

__all__ = ["STATES", "SYSTEM", "UNSUBSCRIBED", "Outbox", "Plan", "StateError"]

STATES: Final = ("scheduled", "sending", "sent", "failed", "cancelled", "unknown")
UNSUBSCRIBED: Final = "this address has unsubscribed; it cannot be enrolled again"
Plan = Sequence[PlannedMessage]


# Column names match the dataclass fields, so _read can build any of them from a row.
_VIEW = """
    SELECT m.id AS message_id, m.public_id, m.enrollment_id, e.campaign, m.step_key, m.kind,
           p.email, p.first_name, p.language, e.treated_on, e.timezone, m.due_at, m.state,
           m.attempts, m.provider_id, m.content_hash, m.template_version, m.sent_at, m.last_error,
           m.send_at, m.provider_batch, m.delivery
    FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id
    JOIN patients AS p ON p.id = e.patient_id
"""
# Driven by the (state, due_at) index: the work is proportional to what is due, not to history.
# Due within the horizon (a provider that schedules gets messages ahead of time), except that a
# message put back for a retry (it keeps its send time in send_at) waits for its retry time.
_CLAIMABLE = """
    SELECT m.id AS message_id, m.public_id, m.enrollment_id, e.campaign, m.step_key, p.email,
           p.first_name, p.language, e.treated_on, e.timezone, m.due_at, m.attempts,
           coalesce(m.send_at, m.due_at) AS send_at
    FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id
    JOIN patients AS p ON p.id = e.patient_id
    WHERE m.state = 'scheduled' AND m.due_at <= :horizon
      AND (m.send_at IS NULL OR m.due_at <= :now)
    ORDER BY m.due_at, m.id LIMIT :limit
"""


class Outbox(ProviderTracking, ConsentChanges):
    """The outbox in one SQLite file; every operation is its own short transaction."""

    @classmethod
    def open(cls, path: Path) -> Outbox:
        """Open, creating the folder and an owner-only file if needed; migrate the schema."""
        return cls(connect(path))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def enroll(self, enrollment: Enrollment, plan: Plan, now: dt.datetime) -> EnrollResult:
        """Store the patient, the enrollment and one message per plan entry; a repeat changes
        only a reminder consent that differs (a repeat checkout), and says what changed."""
        return self._enroll_all([(enrollment, plan)], now, ["email"], update_consent=True)[0]

    def enroll_many(
        self, items: Sequence[tuple[Enrollment, Plan]], now: dt.datetime
    ) -> list[EnrollResult]:
        """Enroll every item in one transaction: all rows or none. A row for an existing
        enrollment changes nothing (a file without the consent column must not withdraw it)."""
        return self._enroll_all(items, now, [f"items[{i}].email" for i in range(len(items))])

    def is_suppressed(self, email: str) -> bool:
        return self._suppression(_address(email)) is not None

    def claim_due(
        self, now: dt.datetime, limit: int, horizon: dt.datetime | None = None
    ) -> list[Claim]:
        """Move up to ``limit`` messages due by ``horizon`` (default: now), oldest first, to
        'sending' and return them; a message put back for a retry waits until its retry time."""
        at = _stamp(now, "now")
        until = at if horizon is None else _stamp(horizon, "horizon")
        if limit < 0:
            raise ValueError(f"limit must be 0 or more; got {limit}")
        if until < at:
            raise ValueError("horizon must not be before now")
        claims: list[Claim] = []
        with self._write() as db:
            query = {"now": at, "horizon": until, "limit": limit}
            for row in db.execute(_CLAIMABLE, query).fetchall():
                # The state guard keeps a claim exclusive even if the lock discipline changes.
                claimed = db.execute(
                    "UPDATE messages SET state = 'sending', claimed_at = ?, attempts = attempts + 1"
                    " WHERE id = ? AND state = 'scheduled'",
                    (at, row["message_id"]),
                )
                if claimed.rowcount == 1:
                    claim = _read(Claim, row, attempts=row["attempts"] + 1)
                    detail = f"attempt {claim.attempts}"
                    self._log(at, "claimed", claim.enrollment_id, claim.message_id, SYSTEM, detail)
                    claims.append(claim)
        return claims

    def mark_sent(
        self,
        message_id: int,
        *,
        provider_id: str | None,
        content_hash: str,
        template_version: str,
        now: dt.datetime,
        send_at: dt.datetime | None = None,
        batch: str | None = None,
    ) -> None:
        """Record that the provider accepted a claimed message, to send at ``send_at`` (None:
        at once) as part of ``batch`` (the provider's handle for cancelling it)."""
        at = _stamp(now, "now")
        changes = {
            "provider_id": provider_id,
            "content_hash": content_hash,
            "template_version": template_version,
            "sent_at": at,
            "send_at": None if send_at is None else _stamp(send_at, "send_at"),
            "provider_batch": batch,
            "last_error": None,
        }
        detail = f"template {template_version}"
        if send_at is not None and send_at > now:
            held = send_at.astimezone(dt.UTC)
            detail += f"; held by the provider until {held:%Y-%m-%d %H:%M} UTC"
        self._finish(message_id, "sent", at, detail, changes)

    def mark_failed(self, message_id: int, error: str, now: dt.datetime) -> None:
        """Record that the provider refused a claimed message; it is not retried."""
        self._finish(message_id, "failed", _stamp(now, "now"), error, {"last_error": error})

    def mark_unknown(
        self,
        message_id: int,
        error: str,
        now: dt.datetime,
        send_at: dt.datetime | None = None,
        batch: str | None = None,
    ) -> None:
        """Record that a claimed message's outcome cannot be known; it is never resent by itself.

        ``send_at`` and ``batch`` are what the request asked for, so that a message the provider
        may be holding can still be withdrawn.
        """
        changes = {
            "last_error": error,
            "send_at": None if send_at is None else _stamp(send_at, "send_at"),
            "provider_batch": batch,
        }
        self._finish(message_id, "unknown", _stamp(now, "now"), error, changes)

    def mark_cancelled(self, message_id: int, reason: str, now: dt.datetime) -> None:
        """Close a claimed message that must not go out after all (the address unsubscribed)."""
        self._finish(message_id, "cancelled", _stamp(now, "now"), reason, {"last_error": reason})

    def mark_retry(
        self, message_id: int, error: str, retry_at: dt.datetime, now: dt.datetime
    ) -> None:
        """Put a claimed message back in the queue; only for a provider that surely refused it.

        It is claimed again from ``retry_at`` on (not before, whatever the horizon) and keeps
        its send time, so a message handed over early still reaches the patient on time.
        """
        at, due = _stamp(now, "now"), _stamp(retry_at, "retry_at")
        # SQL reads the old row on the right: send_at keeps the first due time it had.
        keep = {"send_at": "coalesce(send_at, due_at)"}
        self._finish(message_id, "scheduled", at, error, {"due_at": due, "last_error": error}, keep)

    def release_stale(self, now: dt.datetime, lease: dt.timedelta) -> int:
        """Turn claims older than ``lease`` into 'unknown' (the sender died); return how many.

        A claim the provider has already reported on was accepted: it becomes 'sent' instead.
        """
        at = _stamp(now, "now")
        if lease < dt.timedelta(0):
            raise ValueError(f"lease must not be negative; got {lease}")
        reason = f"claimed more than {lease} ago and never resolved: outcome unknown"
        unknown = 0
        with self._write() as db:
            rows = db.execute(
                "SELECT id, enrollment_id FROM messages WHERE state = 'sending' AND claimed_at < ?",
                (_stamp(now - lease, "now"),),
            ).fetchall()
            for row in rows:
                db.execute(
                    "UPDATE messages SET state = 'unknown', last_error = ? WHERE id = ?",
                    (reason, row["id"]),
                )
                self._log(at, "unknown", row["enrollment_id"], row["id"], SYSTEM, reason)
                # Its events may have come while it was still 'sending' (the sender died after
                # SendGrid took it): they settle it now.
                unknown += 1 - self._settle_if_reported(row["id"], row["enrollment_id"], at)
        return unknown

    def cancel(self, email: str, campaign: str | None, now: dt.datetime, actor: str) -> int:
        """Cancel the address's unsent messages (optionally of one campaign); return how many."""
        at = _stamp(now, "now")
        where, args = "p.email = ?", [_address(email)]
        if campaign is not None:
            where, args = f"{where} AND e.campaign = ?", [*args, campaign]
        with self._write():
            return self._cancel(where, args, at, actor, f"cancelled by {actor}")

    def reschedule(
        self,
        email: str,
        campaign: str,
        treated_on: dt.date,
        replan: Callable[[Enrollment], Plan],
        now: dt.datetime,
        actor: str,
    ) -> int:
        """Move the latest enrollment to a new treatment date and re-time its unsent messages.

        ``replan`` runs inside the write transaction, so it must be pure (no I/O).
        """
        at, address, day = _stamp(now, "now"), _address(email), treated_on.isoformat()
        with self._write() as db:
            row = db.execute(
                "SELECT e.*, e.consent_recorded_by AS recorded_by, p.email, p.first_name,"
                " p.language, p.patient_ref FROM enrollments AS e JOIN patients AS p"
                " ON p.id = e.patient_id WHERE p.email = ? AND e.campaign = ?"
                " ORDER BY e.id DESC LIMIT 1",
                (address, campaign),
            ).fetchone()
            if row is None:
                raise InputError("email", f"this address has no enrollment in {campaign!r}")
            self._refuse_suppressed(address, "email")
            clash = db.execute(
                "SELECT 1 FROM enrollments WHERE patient_id = ? AND campaign = ?"
                " AND treated_on = ? AND id <> ?",
                (row["patient_id"], campaign, day, row["id"]),
            ).fetchone()
            if clash is not None:
                raise InputError(
                    "treated_on",
                    f"this patient already has an enrollment in {campaign!r} treated on {day}",
                )
            db.execute("UPDATE enrollments SET treated_on = ? WHERE id = ?", (day, row["id"]))
            change = f"treated_on {row['treated_on']} -> {day}"
            self._log(at, "rescheduled", row["id"], None, actor, change)
            plan = tuple(replan(_read(Enrollment, row, treated_on=day)))
            _check_plan(plan)
            return self._retime(row["id"], by_key(plan), at, actor)

    def unsubscribe(
        self, email: str, now: dt.datetime, source: str, actor: str, *, reason: str = "unsubscribed"
    ) -> int:
        """Suppress the address (idempotent) and cancel its unsent messages; return how many."""
        at = _stamp(now, "now")
        with self._write():
            return self._suppress(_address(email), reason, source, actor, at)

    def messages(self, status: str | None = None, email: str | None = None) -> list[MessageView]:
        """Messages joined with their patient and enrollment, in due order."""
        if status is not None and status not in STATES:
            raise InputError("status", f"expected one of {', '.join(STATES)}; got {status!r}")
        filters = {"m.state": status, "p.email": None if email is None else _address(email)}
        where, args = _where(filters)
        rows = self._db.execute(f"{_VIEW} {where} ORDER BY m.due_at, m.id", args).fetchall()
        return [_read(MessageView, row) for row in rows]

    def message_by_public_id(self, public_id: str) -> MessageView | None:
        row = self._db.execute(f"{_VIEW} WHERE m.public_id = ?", (public_id,)).fetchone()
        return None if row is None else _read(MessageView, row)

    def events(
        self, message_id: int | None = None, enrollment_id: int | None = None
    ) -> list[EventView]:
        """The audit trail, oldest first, optionally for one message and/or one enrollment."""
        where, args = _where({"message_id": message_id, "enrollment_id": enrollment_id})
        rows = self._db.execute(f"SELECT * FROM events {where} ORDER BY id", args).fetchall()
        return [_read(EventView, row) for row in rows]

    # ---------------------------------------------------------------- internals

    def _refuse_suppressed(self, address: str, field: str) -> None:
        reason = self._suppression(address)
        if reason in UNSUBSCRIBING:
            raise InputError(field, UNSUBSCRIBED)
        if reason is not None:
            raise InputError(field, f"this address is suppressed ({reason}); it cannot be enrolled")

    def _enroll_all(
        self, items: Sequence[tuple[Enrollment, Plan]], now: dt.datetime, fields: Sequence[str],
        *, update_consent: bool = False,
    ) -> list[EnrollResult]:
        at = _stamp(now, "now")
        for _, plan in items:
            _check_plan(plan)
        with self._write():
            return [
                self._enroll_one(enrollment, plan, at, field, update_consent)
                for (enrollment, plan), field in zip(items, fields, strict=True)
            ]

    def _enroll_one(
        self, item: Enrollment, plan: Plan, at: str, field: str, update_consent: bool
    ) -> EnrollResult:
        address, day = _address(item.email), item.treated_on.isoformat()
        self._refuse_suppressed(address, field)
        existing = self._db.execute(
            "SELECT e.id, e.timezone FROM enrollments AS e JOIN patients AS p"
            " ON p.id = e.patient_id WHERE p.email = ? AND e.campaign = ? AND e.treated_on = ?",
            (address, item.campaign, day),
        ).fetchone()
        if existing is not None:  # a repeat: only a change of consent changes anything
            changes, held = ((), ()) if not update_consent else self._change_consent(
                existing["id"], item, by_key(plan), at)
            plan_now = self._stored_plan(existing["id"], ZoneName(existing["timezone"]))
            return EnrollResult(existing["id"], False, plan_now, changes, held)
        self._db.execute(
            "INSERT INTO patients (email, first_name, patient_ref, language, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET"
            " first_name = excluded.first_name, language = excluded.language,"
            " patient_ref = coalesce(excluded.patient_ref, patients.patient_ref)",
            (address, item.first_name.strip(), item.patient_ref, item.language, at),
        )
        enrollment_id = _inserted(self._db.execute(
            "INSERT INTO enrollments (patient_id, campaign, treated_on, timezone,"
            " marketing_consent, consent_at, consent_recorded_by, consent_wording_version,"
            " created_at) SELECT id, ?, ?, ?, ?, ?, ?, ?, ? FROM patients WHERE email = ?",
            (
                item.campaign, day, str(item.timezone), int(item.marketing_consent), at,
                item.recorded_by, item.consent_wording_version, at, address,
            ),
        ))
        consent = "yes" if item.marketing_consent else "no"
        detail = (f"aftercare consent: yes; reminder consent: {consent} "
                  f"(wording {item.consent_wording_version})")
        self._log(at, "enrolled", enrollment_id, None, item.recorded_by, detail)
        stored: list[PlannedMessage] = []
        for entry in plan:
            skip = entry.action == "skip"
            due = _instant(at) if entry.action == "send-now" else entry.due_at.astimezone(dt.UTC)
            message_id = self._db.execute(
                "INSERT INTO messages (public_id, enrollment_id, step_key, kind, due_at, state,"
                " last_error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    uuid.uuid4().hex, enrollment_id, entry.step_key, entry.kind, _stamp(due, "due"),
                    "cancelled" if skip else "scheduled", entry.note if skip else None,
                ),
            ).lastrowid
            kind = "skipped" if skip else "scheduled"
            self._log(at, kind, enrollment_id, message_id, item.recorded_by, entry.note)
            local = due.astimezone(item.timezone.zone)
            stored.append(dataclasses.replace(entry, due_at=due, local_due=local))
        return EnrollResult(enrollment_id, True, tuple(stored))

    def _stored_plan(self, enrollment_id: int, zone: ZoneName) -> tuple[PlannedMessage, ...]:
        rows = self._db.execute(
            "SELECT step_key, kind, due_at, state, last_error FROM messages"
            " WHERE enrollment_id = ? ORDER BY due_at, id",
            (enrollment_id,),
        ).fetchall()
        stored: list[PlannedMessage] = []
        for row in rows:
            due, skipped = _instant(row["due_at"]), row["state"] == "cancelled"
            action: Action = "skip" if skipped else "send"
            note = row["last_error"] if skipped else None
            local = due.astimezone(zone.zone)
            stored.append(PlannedMessage(row["step_key"], row["kind"], local, due, action, note))
        return tuple(stored)


def _check_plan(plan: Plan) -> None:
    for entry in plan:
        _stamp(entry.due_at, "due_at")
        _stamp(entry.local_due, "local_due")
