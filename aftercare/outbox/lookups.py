"""Finding enrolments by their opaque id or by the patient's external id, as the API shows them.

An enrolment stored before opaque ids existed gets one the first time it is shown here. The
enrolments of an erased patient (``pipeline forget``) stay only as anonymous counts: they are
found neither by opaque id nor by the external id, which erasing removed.
"""

from __future__ import annotations

import datetime as dt
import uuid

from aftercare.outbox.database import Database
from aftercare.outbox.records import EnrollmentView
from aftercare.outbox.rows import read

_VIEW = """
    SELECT e.id AS enrollment_id, e.public_id, e.campaign, e.treated_on, e.timezone,
           p.language, p.patient_ref, e.marketing_consent, e.consent_at, e.consent_recorded_by,
           e.consent_wording_version, e.created_at
    FROM enrollments AS e JOIN patients AS p ON p.id = e.patient_id
"""


class Lookups:
    """Enrolments by opaque id or external patient id."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def by_public_id(self, public_id: str) -> EnrollmentView | None:
        row = self._db.one(f"{_VIEW} WHERE e.public_id = ? AND p.forgotten_at IS NULL",
                           (public_id,))
        return None if row is None else read(EnrollmentView, row)

    def by_id(self, enrollment_id: int) -> EnrollmentView:
        """The enrolment with this row id, given an opaque id if it has none yet."""
        return self._shown([enrollment_id])[0]

    def of_patient(self, patient_ref: str, treated_before: dt.date) -> list[EnrollmentView]:
        """Enrolments of every patient with this external id treated before a date, oldest
        first (an address change makes a second patient row with the same external id)."""
        rows = self._db.all(
            "SELECT e.id FROM enrollments AS e JOIN patients AS p ON p.id = e.patient_id"
            " WHERE p.patient_ref = ? AND e.treated_on < ? ORDER BY e.treated_on, e.id",
            (patient_ref, treated_before.isoformat()),
        )
        return self._shown([row["id"] for row in rows])

    def latest_of_patient(self, patient_ref: str) -> int | None:
        """The row id of the latest enrolment of a patient with this external id; None when no
        patient has it (an erased patient has none)."""
        row = self._db.one(
            "SELECT e.id FROM enrollments AS e JOIN patients AS p ON p.id = e.patient_id"
            " WHERE p.patient_ref = ? AND p.forgotten_at IS NULL ORDER BY e.id DESC LIMIT 1",
            (patient_ref,),
        )
        return None if row is None else int(row["id"])

    def _shown(self, ids: list[int]) -> list[EnrollmentView]:
        if not ids:
            return []
        with self._db.transaction() as db:
            for enrollment_id in ids:
                db.execute("UPDATE enrollments SET public_id = ? WHERE id = ?"
                           " AND public_id IS NULL", (uuid.uuid4().hex, enrollment_id))
            marks = ", ".join("?" for _ in ids)
            rows = db.all(f"{_VIEW} WHERE e.id IN ({marks}) ORDER BY e.treated_on, e.id", ids)
        return [read(EnrollmentView, row) for row in rows]
