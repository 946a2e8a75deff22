"""Erasing a patient: their name, address and patient id go; the counts and the trail of what
was sent when stay, and the address is kept only as a keyed hash, so that a later unsubscribe,
bounce or re-enrolment of the same address is still recognised. The API's kept answers about
the patient (they carry the external id) go too."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from aftercare.errors import InputError
from aftercare.outbox.rows import instant, stamp
from aftercare.outbox.vocabulary import State, StateError, Trail
from aftercare.outbox.writes import Writes

HIDDEN: Final = "forgotten:"  # how an erased address starts; never a real address (no '@')
_PURPOSE: Final = b"aftercare-forgotten-address-v1\x00"
ERASED: Final = "patient's data erased"
# The tables whose rows erasing rewrites or deletes (and retention's expired API answers):
# what the engine scrubs afterwards.
ERASED_TABLES: Final = ("patients", "suppressions", "idempotency_keys")

# What may still reach the patient: such a patient is not erased by retention.
_OPEN = """
    SELECT 1 FROM messages AS m JOIN enrollments AS e ON e.id = m.enrollment_id
    WHERE e.patient_id = ? AND (m.state IN ('scheduled', 'sending', 'unknown')
        OR (m.state = 'sent' AND m.send_at > ?))
"""


def hidden_address(secret: bytes, address: str) -> str:
    """The keyed hash an erased address is kept as: the same for every spelling of it, and not
    reversible without the clinic's secret key (a plain hash of an address can be guessed)."""
    key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
    digest = hmac.new(key, address.strip().casefold().encode("utf-8"), hashlib.sha256)
    return HIDDEN + digest.hexdigest()


@dataclass(frozen=True)
class Erased:
    """What erasing one patient did; counts only."""

    enrollments: int
    cancelled: int  # messages that could still have gone out, now cancelled
    already: bool = False  # the address had been erased before: nothing left to erase


class Erasure:
    """Erasing patients, on request or when the clinic's retention period has passed."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db

    def forget(self, address: str, now: dt.datetime, actor: str, why: str) -> Erased:
        """Erase the patient with this address, in one transaction; InputError when the outbox
        has no such patient, StateError while one of their messages is being handed over."""
        hide = self._writes.hide
        if hide is None:
            raise InputError("email", "erasing needs the clinic's secret key")
        at, hidden = stamp(now, "now"), hide(address)
        with self._db.transaction() as db:
            # Locked: an enrolment of this patient at the same moment waits, then enrols anew.
            row = db.one(f"SELECT id FROM patients WHERE {db.equal_ignoring_case('email')}"
                         f"{db.lock()}", (address,))
            if row is None:
                if db.one("SELECT 1 FROM patients WHERE email = ?", (hidden,)) is None:
                    raise InputError("email", "no patient with this address in the outbox; "
                                              "nothing to erase")
                return Erased(0, 0, already=True)
            return self._erase(row["id"], hidden, at, actor, why)

    def due_for_retention(self, last_before: dt.datetime, now: dt.datetime) -> list[str]:
        """Addresses of patients not yet erased whose last message (sent, or due in the past;
        their enrolment if none) is older than ``last_before`` and who have nothing that may
        still reach them."""
        rows = self._db.all(
            "SELECT p.id, p.email, p.created_at, max(coalesce(m.sent_at, m.due_at)) AS last"
            " FROM patients AS p LEFT JOIN enrollments AS e ON e.patient_id = p.id"
            " LEFT JOIN messages AS m ON m.enrollment_id = e.id"
            " AND coalesce(m.sent_at, m.due_at) <= ?"
            " WHERE p.forgotten_at IS NULL GROUP BY p.id, p.email, p.created_at ORDER BY p.id",
            (stamp(now, "now"),),
        )
        due = []
        for row in rows:
            last = instant(row["last"] or row["created_at"])
            if last < last_before and self._db.one(_OPEN, (row["id"], stamp(now, "now"))) is None:
                due.append(str(row["email"]))
        return due

    def _erase(self, patient_id: int, hidden: str, at: str, actor: str, why: str) -> Erased:
        db = self._db
        cancelled = self._close_open_messages(patient_id, at, actor)
        address = db.one("SELECT email FROM patients WHERE id = ?", (patient_id,))
        assert address is not None
        earlier = db.one(f"SELECT id FROM patients WHERE email = ?{db.lock()}", (hidden,))
        if earlier is not None:  # erased before, enrolled again since: one erased patient
            db.execute("UPDATE enrollments SET patient_id = ? WHERE patient_id = ?",
                       (earlier["id"], patient_id))
            db.execute("DELETE FROM patients WHERE id = ?", (patient_id,))
            patient_id = earlier["id"]
        db.execute("UPDATE patients SET email = ?, first_name = '', patient_ref = NULL,"
                   " forgotten_at = ? WHERE id = ?", (hidden, at, patient_id))
        self._hide_suppression(str(address["email"]), hidden)
        enrollments = [r["id"] for r in db.all(
            "SELECT id FROM enrollments WHERE patient_id = ? ORDER BY id", (patient_id,))]
        db.execute("DELETE FROM idempotency_keys WHERE enrollment_id IN (SELECT id FROM"
                   " enrollments WHERE patient_id = ?)", (patient_id,))
        detail = f"name, address and patient id erased ({why}); the address is kept as a hash"
        for enrollment_id in enrollments:
            self._writes.log(at, Trail.PATIENT_FORGOTTEN, enrollment_id, None, actor, detail)
        return Erased(len(enrollments), cancelled)

    def _close_open_messages(self, patient_id: int, at: str, actor: str) -> int:
        """Cancel what could still go out: scheduled messages, and unknown outcomes (which a
        person could otherwise queue again to an address that no longer exists); StateError
        while one is being sent. The rows are locked first, so a sender cannot claim one
        between the check and the cancelling (a claim in progress is waited for, then seen)."""
        rows = self._db.all(
            "SELECT m.id, m.enrollment_id, m.state FROM messages AS m JOIN enrollments AS e"
            " ON e.id = m.enrollment_id WHERE e.patient_id = ?"
            " AND m.state IN ('scheduled', 'sending', 'unknown') ORDER BY m.id"
            f"{self._db.lock('m')}", (patient_id,))
        if any(row["state"] == State.SENDING for row in rows):
            raise StateError("a message to this patient is being sent right now; try again in "
                             "a minute")
        for row in rows:
            self._writes.cancel(row["id"], row["enrollment_id"], State(row["state"]), at, actor,
                                ERASED)
        return len(rows)

    def _hide_suppression(self, address: str, hidden: str) -> None:
        """A suppression of the address is kept, under its hash (once): copied there unless
        the hash has one already, then removed. One statement each, so a suppression of the
        hash stored at the same moment (an unsubscribe link) is not a clash."""
        db = self._db
        same = db.equal_ignoring_case("email")
        db.execute("INSERT INTO suppressions (email, reason, source, at)"
                   f" SELECT ?, reason, source, at FROM suppressions WHERE {same}"
                   " ON CONFLICT (email) DO NOTHING", (hidden, address))
        db.execute(f"DELETE FROM suppressions WHERE {same}", (address,))
