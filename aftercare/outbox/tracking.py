"""What happens after the hand-over: provider events, withdrawn sends, unknown outcomes resolved."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Final

from aftercare.outbox.ledger import Ledger, StateError, address, read, stamp
from aftercare.outbox.records import SUPPRESSING, EventReport, Submitted, WebhookEvent

PROVIDER: Final = "sendgrid"  # the actor of changes its webhook causes
# A later event never overwrites a further one: 'deferred' after 'delivered' is old news, but a
# bounce after 'delivered' is real (asynchronous bounces), and so is a complaint after either.
DELIVERY_RANK: Final = {
    "processed": 1, "deferred": 2, "delivered": 3, "bounce": 4, "dropped": 4,
    "spamreport": 5, "unsubscribe": 5, "group_unsubscribe": 5,
}

# Handed to the provider, which holds it until send_at. An 'unknown' one counts: if the provider
# did accept it, it holds it; if not, cancelling its batch costs nothing.
_HELD = """
    SELECT m.id AS message_id, m.provider_batch AS batch, m.send_at FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id JOIN patients AS p ON p.id = e.patient_id
    WHERE m.state IN ('sent', 'unknown') AND m.send_at > ? {where}
    ORDER BY m.send_at, m.id
"""


class ProviderTracking(Ledger):
    """The outbox operations that follow a message after the provider accepted it."""

    def apply_provider_events(
        self, events: Sequence[WebhookEvent], now: dt.datetime, actor: str = PROVIDER
    ) -> EventReport:
        """Record one post of provider events in one transaction; a repeated event is ignored.

        Each event is kept once (by its provider id) against the message its custom arg names,
        moves that message's delivery status forward, and proves an 'unknown' message sent. A
        suppressing event (bounce, dropped, spam report, unsubscribe) suppresses its address and
        cancels the address's unsent messages. The report lists what the provider still holds
        for those addresses, repeated events included, so a retried post finishes a withdrawal
        an interrupted one began.
        """
        at = stamp(now, "now")
        duplicates = unmatched = resolved = suppressed = cancelled = 0
        addresses: dict[str, None] = {}  # ordered, without repeats
        with self._write() as db:
            for event in events:
                target = address(event.email)
                if event.event in SUPPRESSING:
                    addresses[target] = None
                row = None
                if event.message_id is not None:
                    row = db.execute(
                        "SELECT id, enrollment_id, state, delivery FROM messages"
                        " WHERE public_id = ?",
                        (event.message_id,),
                    ).fetchone()
                kept = db.execute(
                    "INSERT INTO provider_events (event_id, received_at, occurred_at, kind,"
                    " message_id, detail) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    (
                        event.sg_event_id, at, stamp(event.timestamp, "timestamp"), event.event,
                        None if row is None else row["id"], event.reason,
                    ),
                ).rowcount
                if not kept:
                    duplicates += 1
                    continue
                if row is None:
                    unmatched += 1
                else:
                    resolved += self._apply(row, event, at, actor)
                if event.event in SUPPRESSING:
                    suppressed += self._suppression(target) is None
                    source = f"{PROVIDER} webhook"
                    cancelled += self._suppress(target, event.event, source, actor, at)
            held = [s for target in addresses for s in self._held("p.email = ? COLLATE NOCASE",
                                                                  [target], at)]
        return EventReport(
            received=len(events), duplicates=duplicates, unmatched=unmatched, resolved=resolved,
            suppressed=suppressed, cancelled=cancelled, to_withdraw=tuple(held),
        )

    def provider_scheduled(
        self, email: str | None, now: dt.datetime, *, campaign: str | None = None
    ) -> list[Submitted]:
        """Messages the provider holds until a later send time, soonest first: for one address
        (and optionally one campaign), or for every address when ``email`` is None."""
        at = stamp(now, "now")
        clauses, args = [], []
        if email is not None:
            clauses.append("p.email = ? COLLATE NOCASE")
            args.append(address(email))
        if campaign is not None:
            clauses.append("e.campaign = ?")
            args.append(campaign)
        return self._held(" AND ".join(clauses), args, at)

    def held_for_suppressed(self, now: dt.datetime, since: dt.datetime) -> list[Submitted]:
        """Cancellable messages the provider holds for addresses suppressed since ``since``:
        a withdrawal that failed or was interrupted, or a message in flight at the time."""
        # Runs on every send-due: it starts from the few recent suppressions, not the history.
        rows = self._db.execute(
            "SELECT m.id AS message_id, m.provider_batch AS batch, m.send_at"
            " FROM suppressions AS s CROSS JOIN patients AS p CROSS JOIN enrollments AS e"
            " CROSS JOIN messages AS m"
            " WHERE s.at >= ? AND p.email = s.email COLLATE NOCASE AND e.patient_id = p.id"
            " AND m.enrollment_id = e.id AND m.state IN ('sent', 'unknown') AND m.send_at > ?"
            " AND m.provider_batch IS NOT NULL ORDER BY m.send_at, m.id",
            (stamp(since, "since"), stamp(now, "now")),
        ).fetchall()
        return [read(Submitted, row) for row in rows]

    def mark_withdrawn(
        self, message_id: int, cancelled: bool, detail: str, now: dt.datetime, actor: str
    ) -> None:
        """Record a withdrawal at the provider: ``cancelled`` closes the message (it will never
        be sent); otherwise only the attempt is recorded (the message will still go out)."""
        at = stamp(now, "now")
        with self._write() as db:
            row = self._message(message_id)
            if not cancelled:
                self._log(at, "withdrawal-failed", row["enrollment_id"], message_id, actor, detail)
                return
            if row["state"] not in ("sent", "unknown", "cancelled"):
                raise StateError(
                    f"message {message_id} is {row['state']!r}; only a message handed to the "
                    "provider can be withdrawn there"
                )
            if row["state"] != "cancelled":  # two withdrawals may race; the first one closes it
                db.execute(
                    "UPDATE messages SET state = 'cancelled', last_error = ? WHERE id = ?",
                    (detail, message_id),
                )
            self._log(at, "cancelled", row["enrollment_id"], message_id, actor, detail)

    def resolve_unknown(
        self, message_id: int, as_sent: bool, now: dt.datetime, actor: str
    ) -> None:
        """A person settles an 'unknown' message: it was sent, or it goes back in the queue for
        its original time (a step past its grace period is then dropped, not sent late)."""
        at = stamp(now, "now")
        with self._write() as db:
            row = self._message(message_id)
            if row["state"] != "unknown":
                raise StateError(
                    f"message {message_id} is {row['state']!r}, not 'unknown'; "
                    "only an unknown outcome can be resolved"
                )
            if as_sent:
                db.execute(
                    "UPDATE messages SET state = 'sent', sent_at = coalesce(sent_at, claimed_at),"
                    " last_error = NULL WHERE id = ?",
                    (message_id,),
                )
                self._log(at, "sent", row["enrollment_id"], message_id, actor,
                          f"outcome resolved by {actor}: it was sent")
                return
            db.execute(
                "UPDATE messages SET state = 'scheduled', due_at = coalesce(send_at, due_at),"
                " send_at = NULL, provider_batch = NULL, provider_id = NULL, last_error = NULL"
                " WHERE id = ?",
                (message_id,),
            )
            self._log(at, "requeued", row["enrollment_id"], message_id, actor,
                      f"outcome resolved by {actor}: it was not sent; queued again")

    # ---------------------------------------------------------------- internals

    def _apply(self, row: sqlite3.Row, event: WebhookEvent, at: str, actor: str) -> int:
        """Move the message's delivery status forward; return 1 if it settles an unknown."""
        message_id, enrollment_id = row["id"], row["enrollment_id"]
        rank = DELIVERY_RANK.get(event.event)
        if rank is not None and rank >= DELIVERY_RANK.get(row["delivery"] or "", 0):
            self._db.execute(
                "UPDATE messages SET delivery = ? WHERE id = ?", (event.event, message_id)
            )
        detail = event.event if event.reason is None else f"{event.event}: {event.reason}"
        self._log(at, "reported", enrollment_id, message_id, actor, detail)
        if row["state"] != "unknown":
            return 0
        # Any event for our id means the provider accepted the request that timed out.
        self._settle(message_id, enrollment_id, event.event, at, actor)
        return 1

    def _settle_if_reported(self, message_id: int, enrollment_id: int, at: str) -> int:
        """Inside a write: make an 'unknown' message the provider reported on 'sent'."""
        row = self._db.execute(
            "SELECT kind FROM provider_events WHERE message_id = ? ORDER BY occurred_at LIMIT 1",
            (message_id,),
        ).fetchone()
        if row is None:
            return 0
        self._settle(message_id, enrollment_id, row["kind"], at, PROVIDER)
        return 1

    def _settle(self, message_id: int, enrollment_id: int, kind: str, at: str, actor: str) -> None:
        self._db.execute(
            "UPDATE messages SET state = 'sent', sent_at = coalesce(sent_at, claimed_at),"
            " last_error = NULL WHERE id = ?",
            (message_id,),
        )
        self._log(at, "sent", enrollment_id, message_id, actor,
                  f"outcome resolved by the provider: it reported {kind}")

    def _held(self, where: str, args: Sequence[object], at: str) -> list[Submitted]:
        rows = self._db.execute(
            _HELD.format(where=f"AND {where}" if where else ""), [at, *args]
        ).fetchall()
        return [read(Submitted, row) for row in rows]
