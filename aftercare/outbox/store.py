"""The outbox: one object for patients, enrolments, timed messages, their trail and staff.

Every write to those tables goes through it. It is composed of one part per job: enrolments,
sending, what follows the hand-over, reads and staff; each holds the same ``Writes``, whose
``move`` checks every change of a message's state against ``vocabulary.TRANSITIONS``. Each
operation is its own short transaction; none is held across a network call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType

from aftercare.content.values import normalise_address
from aftercare.outbox.api_keys import ApiKeyTable
from aftercare.outbox.database import Database, Engine, Location, is_url
from aftercare.outbox.enrolments import UNSUBSCRIBED, Enrolments, Plan
from aftercare.outbox.erasure import ERASED_TABLES, Erased, Erasure, hidden_address
from aftercare.outbox.figures import FigureQueries
from aftercare.outbox.handover import Handover
from aftercare.outbox.idempotency import IdempotencyTable
from aftercare.outbox.login_failures import LoginFailureTable
from aftercare.outbox.lookups import Lookups
from aftercare.outbox.reads import Reads
from aftercare.outbox.records import (
    Claim,
    DeliveryReport,
    Enrollment,
    EnrollResult,
    EventReport,
    EventView,
    MessageView,
    Submitted,
)
from aftercare.outbox.rows import stamp
from aftercare.outbox.sending import Sending
from aftercare.outbox.sessions import SessionTable
from aftercare.outbox.sqlite import SQLiteEngine
from aftercare.outbox.staff import StaffTable
from aftercare.outbox.vocabulary import SYSTEM, State, StateError, Trail
from aftercare.outbox.writes import Writes

__all__ = ["SYSTEM", "UNSUBSCRIBED", "Outbox", "Plan", "State", "StateError"]


class Outbox:
    """The outbox on one database connection."""

    def __init__(self, engine: Engine, secret: bytes | None = None) -> None:
        self._db = Database(engine)
        # With the clinic's secret key, erased addresses are recognised (as keyed hashes).
        writes = Writes(self._db, None if secret is None else partial(hidden_address, secret))
        self._writes = writes
        self._enrolments = Enrolments(writes)
        self._handover = Handover(writes)
        self._sending = Sending(writes, self._handover)
        self._reads = Reads(self._db)
        self.staff = StaffTable(writes)
        self.sessions = SessionTable(self._db)
        self.login_failures = LoginFailureTable(self._db)
        self._erasure = Erasure(writes)
        self.api_keys = ApiKeyTable(writes)
        self.idempotency = IdempotencyTable(writes)
        self.enrollments = Lookups(self._db)
        self.figures = FigureQueries(self._db)  # per-site counts for reports

    @classmethod
    def open(cls, location: Location, secret: bytes | None = None) -> Outbox:
        """The outbox at ``location``, its schema migrated: a PostgreSQL database named by a
        ``postgresql://`` URL, or an SQLite file (created owner-only if needed).

        Give ``secret`` (the clinic's secret key) wherever patients may be erased or addresses
        checked against erased ones: every command and the web app do.
        """
        if is_url(location):
            from aftercare.outbox.postgresql import PostgreSQLEngine

            return cls(PostgreSQLEngine(str(location)), secret)
        return cls(SQLiteEngine(Path(location)), secret)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def enroll(self, enrollment: Enrollment, plan: Plan, now: dt.datetime) -> EnrollResult:
        """Store the patient, the enrolment and one message per plan entry; a repeat changes
        only a reminder consent that differs (a repeat checkout), and says what changed."""
        results = self._enrolments.enroll_all([(enrollment, plan)], now, ["email"],
                                              update_consent=True)
        return results[0]

    def enroll_many(
        self, items: Sequence[tuple[Enrollment, Plan]], now: dt.datetime
    ) -> list[EnrollResult]:
        """Enrol every item in one transaction: all rows or none. A row for an existing
        enrolment changes nothing (a file without the consent column must not withdraw it)."""
        fields = [f"items[{i}].email" for i in range(len(items))]
        return self._enrolments.enroll_all(items, now, fields)

    def enroll_each(
        self, items: Iterable[tuple[Enrollment, Plan, str]], now: dt.datetime
    ) -> tuple[int, int]:
        """Enrol every item in one transaction, all or none, as they come (a large import):
        (how many were created, how many already existed). Each item's ``str`` names its
        address in errors, like "patients.csv:14: email"."""
        return self._enrolments.enroll_each(items, now)

    def reschedule(
        self, email: str, campaign: str, treated_on: dt.date,
        replan: Callable[[Enrollment], Plan], now: dt.datetime, actor: str,
    ) -> int:
        """Move the latest enrolment to a new treatment date and re-time its unsent messages.

        ``replan`` runs inside the write transaction, so it must be pure (no I/O).
        """
        return self._enrolments.reschedule(email, campaign, treated_on, replan, now, actor)

    def reschedule_one(
        self, enrollment_id: int, treated_on: dt.date, replan: Callable[[Enrollment], Plan],
        now: dt.datetime, actor: str,
    ) -> int:
        """Move one enrolment to a new treatment date and re-time its unsent messages."""
        return self._enrolments.reschedule_one(enrollment_id, treated_on, replan, now, actor)

    def is_suppressed(self, email: str) -> bool:
        return self._writes.suppression(normalise_address(email)) is not None

    def cancel(
        self, email: str | None, campaign: str | None, now: dt.datetime, actor: str, *,
        enrollments: Sequence[int] | None = None, kind: str | None = None,
        reason: str | None = None,
    ) -> int:
        """Cancel the unsent messages of an address or of some enrolments (optionally only of
        one campaign, or of one kind: 'marketing' for reminders); return how many. ``reason``
        is recorded on each (default: who cancelled it).

        This cancels only what the outbox still holds: ``aftercare.send.withdrawal.cancel``
        also withdraws what the provider holds, and is what people's actions call.
        """
        at = stamp(now, "now")
        where, args = _picked(email, campaign, enrollments, kind)
        with self._db.transaction():
            return self._writes.cancel_where(where, args, at, actor,
                                             reason or f"cancelled by {actor}")

    def unsubscribe(
        self, email: str, now: dt.datetime, source: str, actor: str, *,
        reason: str = "unsubscribed", message_id: int | None = None,
    ) -> int:
        """Suppress the address (idempotent) and cancel its unsent messages; return how many.
        ``message_id``: the message whose unsubscribe link was followed, if any.

        As for ``cancel``: ``aftercare.send.withdrawal.unsubscribe`` also withdraws at the
        provider.
        """
        at = stamp(now, "now")
        with self._db.transaction():
            return self._writes.suppress(normalise_address(email), reason, source, actor, at,
                                         message_id)

    # ---------------------------------------------------------------- erasure and backup

    def forget(
        self, email: str, now: dt.datetime, actor: str, why: str = "on request", *,
        scrub: bool = True,
    ) -> Erased:
        """Erase a patient's name, address and patient id, keeping counts and the trail; their
        messages that could still go out are cancelled (withdraw what the provider holds
        first: ``aftercare.send.withdrawal.cancel``). Then scrub the database's files, unless
        ``scrub`` is False (erasing many: call ``scrub`` once after the last)."""
        erased = self._erasure.forget(normalise_address(email), now, actor, why)
        if scrub:
            self.scrub()
        return erased

    def due_for_retention(self, last_before: dt.datetime, now: dt.datetime) -> list[str]:
        """Addresses of patients whose last message is older than ``last_before`` and who have
        nothing that may still reach them."""
        return self._erasure.due_for_retention(last_before, now)

    def scrub(self) -> bool:
        """Make erased data unreadable in the database's files; False if readers held it."""
        return self._db.scrub(ERASED_TABLES)

    def drop_expired_answers(self, now: dt.datetime, *, scrub: bool = True) -> int:
        """Delete the API's answers kept past their day for repeated requests (a refusal may
        quote what was typed); scrub if any went, unless ``scrub`` is False. How many."""
        dropped = self.idempotency.drop_expired(now)
        if dropped and scrub:
            self.scrub()
        return dropped

    def backup(self, target: Path, now: dt.datetime, actor: str) -> int:
        """A consistent copy of the whole database, as of one moment, in the new owner-only file
        ``target`` (an older one there is replaced once the copy is whole); its size."""
        size = self._db.backup(target)
        self.staff.record(now, Trail.BACKED_UP, actor, f"to {target.name}")
        return size

    # ---------------------------------------------------------------- sending (see Sending)

    def claim_due(
        self, now: dt.datetime, limit: int, horizon: dt.datetime | None = None
    ) -> list[Claim]:
        """Move up to ``limit`` messages due by ``horizon`` (default: now) to 'sending'."""
        return self._sending.claim_due(now, limit, horizon)

    def mark_sent(
        self, message_id: int, *, provider_id: str | None, content_hash: str,
        template_version: str, now: dt.datetime, send_at: dt.datetime | None = None,
        batch: str | None = None,
    ) -> None:
        """The provider accepted a claimed message (to send at ``send_at``, in ``batch``)."""
        self._sending.mark_sent(message_id, provider_id=provider_id, content_hash=content_hash,
                                template_version=template_version, now=now, send_at=send_at,
                                batch=batch)

    def mark_failed(self, message_id: int, error: str, now: dt.datetime) -> None:
        """The provider refused a claimed message for good."""
        self._sending.mark_failed(message_id, error, now)

    def mark_unknown(
        self, message_id: int, error: str, now: dt.datetime, send_at: dt.datetime | None = None,
        batch: str | None = None,
    ) -> None:
        """A claimed message's outcome cannot be known; it is never resent by itself."""
        self._sending.mark_unknown(message_id, error, now, send_at, batch)

    def mark_cancelled(self, message_id: int, reason: str, now: dt.datetime) -> None:
        """A claimed message must not go out after all."""
        self._sending.mark_cancelled(message_id, reason, now)

    def mark_retry(
        self, message_id: int, error: str, retry_at: dt.datetime, now: dt.datetime
    ) -> None:
        """Back in the queue from ``retry_at``, keeping its send time."""
        self._sending.mark_retry(message_id, error, retry_at, now)

    def release_stale(self, now: dt.datetime, lease: dt.timedelta) -> int:
        """Claims older than ``lease`` become 'unknown' (or 'sent' if reported); how many."""
        return self._sending.release_stale(now, lease)

    # ---------------------------------------------------------------- after the hand-over

    def apply_delivery_events(
        self, reports: Sequence[DeliveryReport], now: dt.datetime, actor: str
    ) -> EventReport:
        """Record one post of delivery events from the provider ``actor`` (see Handover)."""
        return self._handover.apply_delivery_events(reports, now, actor)

    def provider_scheduled(
        self, email: str | None, now: dt.datetime, *, campaign: str | None = None,
        enrollments: Sequence[int] | None = None, kind: str | None = None,
    ) -> list[Submitted]:
        """Messages the provider holds until a later send time, soonest first: of an address
        or some enrolments (or of everyone), optionally of one campaign or kind."""
        if enrollments is None and kind is None:
            return self._handover.provider_scheduled(email, now, campaign=campaign)
        where, args = _picked(email, campaign, enrollments, kind)
        return self._handover.held_where(where, args, now)

    def held_for_suppressed(self, now: dt.datetime, since: dt.datetime) -> list[Submitted]:
        """Cancellable messages the provider holds for addresses suppressed since ``since``."""
        return self._handover.held_for_suppressed(now, since)

    def mark_withdrawn(
        self, message_id: int, cancelled: bool, detail: str, now: dt.datetime, actor: str
    ) -> None:
        """Record a withdrawal at the provider (``cancelled`` closes the message)."""
        self._handover.mark_withdrawn(message_id, cancelled, detail, now, actor)

    def resolve_unknown(
        self, message_id: int, as_sent: bool, now: dt.datetime, actor: str
    ) -> None:
        """A person settles an 'unknown' message: sent, or queued again."""
        self._handover.resolve_unknown(message_id, as_sent, now, actor)

    def record_view(self, message_id: int, now: dt.datetime, actor: str) -> bool:
        """The patient opened the message's care page; True the first time (then recorded)."""
        return self._handover.record_view(message_id, now, actor)

    # ---------------------------------------------------------------- reading (see Reads)

    def messages(
        self, status: str | None = None, email: str | None = None, *,
        enrollment_id: int | None = None, message_id: int | None = None,
        sites: Collection[str] | None = None,
    ) -> list[MessageView]:
        """Messages joined with their patient and enrolment, in due order; ``sites`` keeps
        those of enrolments at these sites (None: every site)."""
        return self._reads.messages(status, email, enrollment_id=enrollment_id,
                                    message_id=message_id, sites=sites)

    def message_by_public_id(self, public_id: str) -> MessageView | None:
        return self._reads.message_by_public_id(public_id)

    def events(
        self, message_id: int | None = None, enrollment_id: int | None = None
    ) -> list[EventView]:
        """The trail, oldest first, optionally for one message and/or one enrolment."""
        return self._reads.events(message_id, enrollment_id)

    def count_by_state(self, sites: Collection[str] | None = None) -> dict[State, int]:
        return self._reads.count_by_state(sites)

    def viewed_since(
        self, since: dt.datetime, sites: Collection[str] | None = None
    ) -> list[MessageView]:
        """Messages whose care page was first opened since ``since``, latest first."""
        return self._reads.viewed_since(stamp(since, "since"), sites)


def _picked(
    email: str | None, campaign: str | None, enrollments: Sequence[int] | None, kind: str | None
) -> tuple[str, list[object]]:
    """A condition on messages (``m``), their enrolment (``e``) and patient (``p``)."""
    if email is None and enrollments is None:
        raise ValueError("name an address or some enrollments")
    clauses: list[str] = []
    args: list[object] = []
    if email is not None:
        clauses.append("p.email = ?")
        args.append(normalise_address(email))
    if enrollments is not None:
        clauses.append(f"e.id IN ({', '.join('?' for _ in enrollments) or 'NULL'})")
        args.extend(enrollments)
    for column, value in (("e.campaign", campaign), ("m.kind", kind)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return " AND ".join(clauses), args
