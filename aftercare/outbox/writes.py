"""The writes every outbox operation is made of: a state move checked against the transition
table, its trail entry, suppressing an address and cancelling its unsent messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aftercare.outbox.database import Database, Row
from aftercare.outbox.vocabulary import (
    INITIAL,
    UNSUBSCRIBING,
    State,
    StateError,
    Trail,
    check_move,
)

# Messages not yet handed over, of the patients a condition picks (``{where}``); a message a
# sender is claiming at that moment is waited for, and then no longer picked.
_SCHEDULED = """
    SELECT m.id, m.enrollment_id FROM messages AS m
    JOIN enrollments AS e ON e.id = m.enrollment_id JOIN patients AS p ON p.id = e.patient_id
    WHERE m.state = 'scheduled' AND {where} ORDER BY m.due_at, m.id{lock}
"""


class Writes:
    """The outbox's primitive writes on one database; callers hold the transaction.

    ``hide`` gives the keyed hash an erased patient's address is kept as (see Erasure); with
    it, a suppression or an unsubscribe still finds an address after its patient was erased.
    """

    def __init__(self, db: Database, hide: Callable[[str], str] | None = None) -> None:
        self.db = db
        self.hide = hide

    def stored_address(self, address: str) -> str:
        """How the outbox keeps ``address``: as typed, or as its keyed hash when the patient it
        belonged to was erased (and nobody uses it plainly since)."""
        if self.hide is None or self._known(address, self.db.equal_ignoring_case):
            return address
        hidden = self.hide(address)
        return hidden if self._known(hidden, lambda column: f"{column} = ?") else address

    def _known(self, address: str, equal: Callable[[str], str]) -> bool:
        return any(self.db.one(f"SELECT 1 FROM {table} WHERE {equal('email')}", (address,))
                   for table in ("patients", "suppressions"))

    def log(
        self, at: str, kind: Trail, enrollment: int | None, message: int | None, actor: str,
        detail: str | None,
    ) -> None:
        """Append one entry to the trail (the database refuses to change or delete one)."""
        self.db.execute(
            "INSERT INTO events (at, kind, enrollment_id, message_id, actor, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, kind, enrollment, message, actor, detail),
        )

    def add_message(
        self, public_id: str, enrollment_id: int, step_key: str, kind: str, due: str,
        state: State, note: str | None,
    ) -> int:
        """Store a new message, scheduled or (skipped by its plan) already cancelled."""
        if state not in INITIAL:
            raise StateError(f"a new message cannot start {state.value!r}")
        return self.db.insert(
            "INSERT INTO messages (public_id, enrollment_id, step_key, kind, due_at, state,"
            " last_error) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (public_id, enrollment_id, step_key, kind, due, state, note),
        )

    def move(
        self, message_id: int, current: State, target: State, *, doing: str,
        changes: Mapping[str, object] | None = None, expressions: Mapping[str, str] | None = None,
    ) -> bool:
        """Move a message from ``current`` to ``target``, if the table allows it, setting the
        ``changes`` (values) and ``expressions`` (SQL reading the old row); return False when
        the message is no longer in ``current`` (another writer moved it first).

        Every write of a message's state goes through here.
        """
        check_move(message_id, current, target, doing)
        values = dict(changes or {})
        assignments = ", ".join(
            ["state = ?"] + [f"{column} = ?" for column in values]
            + [f"{column} = {sql}" for column, sql in (expressions or {}).items()]
        )
        cursor = self.db.execute(
            f"UPDATE messages SET {assignments} WHERE id = ? AND state = ?",
            (target, *values.values(), message_id, current),
        )
        return cursor.rowcount == 1

    def lock_patient(self, address: str, first_name: str, language: str, at: str) -> None:
        """Hold the patient's row (stored now if new) until the transaction ends, so that two
        enrolments of one patient at once (a double click) are one after the other: the second
        sees the first. Changes nothing of a patient already stored."""
        self.db.execute(
            "INSERT INTO patients (email, first_name, language, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (email) DO UPDATE SET first_name = patients.first_name",
            (address, first_name, language, at),
        )

    def message(self, message_id: int) -> Row:
        """The stored row of a message, locked until the transaction ends; StateError if there
        is none."""
        row = self.db.one(f"SELECT * FROM messages WHERE id = ?{self.db.lock()}", (message_id,))
        if row is None:
            raise StateError(f"message {message_id} does not exist")
        return row

    def suppression(self, address: str) -> str | None:
        """Why the address must not be mailed (also when kept as a hash), or None."""
        for stored in (address, *([] if self.hide is None else [self.hide(address)])):
            row = self.db.one("SELECT reason FROM suppressions"
                              f" WHERE {self.db.equal_ignoring_case('email')}", (stored,))
            if row is not None:
                return str(row["reason"])
        return None

    def suppress(
        self, address: str, reason: str, source: str, actor: str, at: str,
        message_id: int | None = None,
    ) -> int:
        """Suppress the address (once) and cancel its unsent messages; return how many.

        ``message_id`` is the message whose link the patient followed, named in the trail
        entry of its enrolment (so figures can say which email made people stop)."""
        address = self.stored_address(address)
        added = self.db.execute(
            "INSERT INTO suppressions (email, reason, source, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (email) DO NOTHING",
            (address, reason, source, at),
        ).rowcount
        if added:
            kind = Trail.UNSUBSCRIBED if reason in UNSUBSCRIBING else Trail.SUPPRESSED
            enrollments = self.db.all(
                "SELECT e.id FROM enrollments AS e JOIN patients AS p ON p.id = e.patient_id"
                f" WHERE {self.db.equal_ignoring_case('p.email')} ORDER BY e.id",
                (address,),
            )
            source_of = None if message_id is None else self.db.one(
                "SELECT enrollment_id FROM messages WHERE id = ?", (message_id,))
            for enrollment_id in [r["id"] for r in enrollments] or [None]:
                named = (message_id if source_of is not None
                         and source_of["enrollment_id"] == enrollment_id else None)
                self.log(at, kind, enrollment_id, named, actor, f"{reason} via {source}")
        same = self.db.equal_ignoring_case("p.email")
        return self.cancel_where(same, [address], at, actor, reason)

    def cancel_where(
        self, where: str, args: Sequence[object], at: str, actor: str, reason: str
    ) -> int:
        """Cancel the unsent messages ``where`` picks; return how many."""
        rows = self.db.all(_SCHEDULED.format(where=where, lock=self.db.lock("m")), args)
        for row in rows:
            self.cancel(row["id"], row["enrollment_id"], State.SCHEDULED, at, actor, reason)
        return len(rows)

    def cancel(
        self, message_id: int, enrollment_id: int, current: State, at: str, actor: str,
        reason: str, kind: Trail = Trail.CANCELLED,
    ) -> None:
        """Close one message for good, saying why, in its own record and in the trail."""
        self.move(message_id, current, State.CANCELLED, doing="it cannot be cancelled",
                  changes={"last_error": reason})
        self.log(at, kind, enrollment_id, message_id, actor, reason)


