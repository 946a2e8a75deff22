"""After the hand-over: delivery events a provider reports, messages it still holds and their
withdrawal there, outcomes that were unknown, settled, and the patient opening a care page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aftercare.content.values import normalise_address
from aftercare.outbox.database import Row
from aftercare.outbox.records import DeliveryReport, EventReport, Submitted
from aftercare.outbox.rows import read, stamp
from aftercare.outbox.vocabulary import DELIVERY_RANK, SUPPRESSING, State, StateError, Trail
from aftercare.outbox.writes import Writes

# Handed to the provider, which holds it until send_at. An 'unknown' one counts: if the provider
# did accept it, it holds it; if not, cancelling its batch costs nothing.
_HELD = """
    SELECT m.id AS message_id, m.provider_batch AS batch, m.send_at FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id JOIN patients AS p ON p.id = e.patient_id
    WHERE m.state IN ('sent', 'unknown') AND m.send_at > ? {where}
    ORDER BY m.send_at, m.id
"""


class Handover:
    """The outbox operations that follow a message after the provider accepted it."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db

    def apply_delivery_events(
        self, reports: Sequence[DeliveryReport], now: dt.datetime, actor: str
    ) -> EventReport:
        """Record one post of delivery events in one transaction; a repeated event is ignored.

        Each event is kept once (by its id) against the message it names, moves that message's
        delivery status forward, and proves an 'unknown' message sent. A suppressing event
        (bounce, drop, complaint, unsubscribe) suppresses its address and cancels the address's
        unsent messages. The report lists what the provider still holds for those addresses,
        repeated events included, so a retried post finishes a withdrawal an interrupted one
        began. ``actor`` is the provider, as the trail names it.
        """
        at = stamp(now, "now")
        duplicates = unmatched = resolved = suppressed = cancelled = 0
        addresses: dict[str, None] = {}  # ordered, without repeats
        with self._db.transaction() as db:
            for report in reports:
                target = normalise_address(report.email)
                if report.event in SUPPRESSING:
                    addresses[target] = None
                row = None
                if report.message_id is not None:
                    row = db.one("SELECT id, enrollment_id, state, delivery FROM messages"
                                 f" WHERE public_id = ?{db.lock()}", (report.message_id,))
                kept = db.execute(
                    "INSERT INTO provider_events (event_id, received_at, occurred_at, kind,"
                    " message_id, detail) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    (report.event_id, at, stamp(report.timestamp, "timestamp"), report.event,
                     None if row is None else row["id"], report.reason),
                ).rowcount
                if not kept:
                    duplicates += 1
                    continue
                if row is None:
                    unmatched += 1
                else:
                    resolved += self._apply(row, report, at, actor)
                if report.event in SUPPRESSING:
                    suppressed += self._writes.suppression(target) is None
                    source = f"{actor} webhook"
                    cancelled += self._writes.suppress(target, report.event, source, actor, at)
            held = [s for target in addresses
                    for s in self._held(self._db.equal_ignoring_case("p.email"), [target], at)]
        return EventReport(
            received=len(reports), duplicates=duplicates, unmatched=unmatched,
            resolved=resolved, suppressed=suppressed, cancelled=cancelled,
            to_withdraw=tuple(held),
        )

    def provider_scheduled(
        self, email: str | None, now: dt.datetime, *, campaign: str | None = None
    ) -> list[Submitted]:
        """Messages the provider holds until a later send time, soonest first: for one address
        (and optionally one campaign), or for every address when ``email`` is None."""
        at = stamp(now, "now")
        clauses: list[str] = []
        args: list[object] = []
        if email is not None:
            clauses.append(self._db.equal_ignoring_case("p.email"))
            args.append(normalise_address(email))
        if campaign is not None:
            clauses.append("e.campaign = ?")
            args.append(campaign)
        return self._held(" AND ".join(clauses), args, at)

    def held_where(self, where: str, args: Sequence[object], now: dt.datetime) -> list[Submitted]:
        """Messages the provider holds, of the messages (``m``), enrolments (``e``) and
        patients (``p``) that ``where`` picks."""
        return self._held(where, args, stamp(now, "now"))

    def held_for_suppressed(self, now: dt.datetime, since: dt.datetime) -> list[Submitted]:
        """Cancellable messages the provider holds for addresses suppressed since ``since``:
        a withdrawal that failed or was interrupted, or a message in flight at the time."""
        # Runs on every send-due: it starts from the few recent suppressions, not the history.
        rows = self._db.all(
            "SELECT m.id AS message_id, m.provider_batch AS batch, m.send_at"
            " FROM suppressions AS s CROSS JOIN patients AS p CROSS JOIN enrollments AS e"
            " CROSS JOIN messages AS m"
            f" WHERE s.at >= ? AND {self._db.equal_ignoring_case('p.email', 's.email')}"
            " AND e.patient_id = p.id"
            " AND m.enrollment_id = e.id AND m.state IN ('sent', 'unknown') AND m.send_at > ?"
            " AND m.provider_batch IS NOT NULL ORDER BY m.send_at, m.id",
            (stamp(since, "since"), stamp(now, "now")),
        )
        return [read(Submitted, row) for row in rows]

    def mark_withdrawn(
        self, message_id: int, cancelled: bool, detail: str, now: dt.datetime, actor: str
    ) -> None:
        """Record a withdrawal at the provider: ``cancelled`` closes the message (it will never
        be sent); otherwise only the attempt is recorded (the message will still go out)."""
        at = stamp(now, "now")
        with self._db.transaction():
            row = self._writes.message(message_id)
            current = State(row["state"])
            if not cancelled:
                self._writes.log(at, Trail.WITHDRAWAL_FAILED, row["enrollment_id"], message_id,
                                 actor, detail)
                return
            if current not in (State.SENT, State.UNKNOWN, State.CANCELLED):
                raise StateError(
                    f"message {message_id} is {current.value!r}; only a message handed to the "
                    "provider can be withdrawn there"
                )
            if current is State.CANCELLED:  # two withdrawals may race; the first one closes it
                self._writes.log(at, Trail.CANCELLED, row["enrollment_id"], message_id, actor,
                                 detail)
            else:
                self._writes.cancel(message_id, row["enrollment_id"], current, at, actor, detail)

    def resolve_unknown(
        self, message_id: int, as_sent: bool, now: dt.datetime, actor: str
    ) -> None:
        """A person settles an 'unknown' message: it was sent, or it goes back in the queue for
        its original time (a step past its grace period is then dropped, not sent late)."""
        at = stamp(now, "now")
        with self._db.transaction():
            row = self._writes.message(message_id)
            if row["state"] != State.UNKNOWN:
                raise StateError(
                    f"message {message_id} is {row['state']!r}, not 'unknown'; "
                    "only an unknown outcome can be resolved"
                )
            if as_sent:
                self._settle(message_id, row["enrollment_id"], at, actor,
                             f"outcome resolved by {actor}: it was sent")
                return
            self._writes.move(
                message_id, State.UNKNOWN, State.SCHEDULED, doing="it cannot be queued again",
                changes={"send_at": None, "provider_batch": None, "provider_id": None,
                         "last_error": None},
                expressions={"due_at": "coalesce(send_at, due_at)"},
            )
            self._writes.log(at, Trail.REQUEUED, row["enrollment_id"], message_id, actor,
                             f"outcome resolved by {actor}: it was not sent; queued again")

    def record_view(self, message_id: int, now: dt.datetime, actor: str) -> bool:
        """Record the first opening of the message's care page: its time, in the message and as
        a 'viewed' trail entry; return whether this was the first. Nothing about who opened it
        is kept, and the message's state and delivery status stay as they are."""
        at = stamp(now, "now")
        with self._db.transaction() as db:
            first = db.execute(
                "UPDATE messages SET viewed_at = ? WHERE id = ? AND viewed_at IS NULL",
                (at, message_id),
            ).rowcount == 1
            if first:
                row = self._writes.message(message_id)
                self._writes.log(at, Trail.VIEWED, row["enrollment_id"], message_id, actor, None)
        return first

    def settle_if_reported(self, message_id: int, enrollment_id: int, at: str) -> int:
        """Inside a write: make an 'unknown' message the provider reported on 'sent'."""
        row = self._db.one(
            "SELECT kind FROM provider_events WHERE message_id = ? ORDER BY occurred_at LIMIT 1",
            (message_id,),
        )
        if row is None:
            return 0
        actor = self._reporter(message_id)
        self._settle(message_id, enrollment_id, at, actor,
                     f"outcome resolved by the provider: it reported {row['kind']}")
        return 1

    # ---------------------------------------------------------------- internals

    def _apply(self, row: Row, report: DeliveryReport, at: str, actor: str) -> int:
        """Move the message's delivery status forward; return 1 if it settles an unknown."""
        message_id, enrollment_id = row["id"], row["enrollment_id"]
        rank = DELIVERY_RANK.get(report.event)
        if rank is not None and rank >= DELIVERY_RANK.get(row["delivery"] or "", 0):
            self._db.execute("UPDATE messages SET delivery = ? WHERE id = ?",
                             (report.event, message_id))
        detail = report.event if report.reason is None else f"{report.event}: {report.reason}"
        self._writes.log(at, Trail.REPORTED, enrollment_id, message_id, actor, detail)
        if row["state"] != State.UNKNOWN:
            return 0
        # Any event for our id means the provider accepted the request that timed out.
        self._settle(message_id, enrollment_id, at, actor,
                     f"outcome resolved by the provider: it reported {report.event}")
        return 1

    def _settle(self, message_id: int, enrollment_id: int, at: str, actor: str,
                detail: str) -> None:
        self._writes.move(message_id, State.UNKNOWN, State.SENT, doing="it cannot be settled",
                          changes={"last_error": None},
                          expressions={"sent_at": "coalesce(sent_at, claimed_at)"})
        self._writes.log(at, Trail.SENT, enrollment_id, message_id, actor, detail)

    def _reporter(self, message_id: int) -> str:
        """Who reported on the message: the actor of its first 'reported' trail entry."""
        row = self._db.one(
            "SELECT actor FROM events WHERE message_id = ? AND kind = ? ORDER BY id LIMIT 1",
            (message_id, Trail.REPORTED),
        )
        return "provider" if row is None else str(row["actor"])

    def _held(self, where: str, args: Sequence[object], at: str) -> list[Submitted]:
        rows = self._db.all(_HELD.format(where=f"AND {where}" if where else ""), [at, *args])
        return [read(Submitted, row) for row in rows]
