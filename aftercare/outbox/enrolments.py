"""Storing enrolments and their planned messages, and re-timing them from a corrected date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from aftercare.content.values import ZoneName, normalise_address
from aftercare.errors import InputError
from aftercare.outbox.consent import ConsentChanges
from aftercare.outbox.database import Row
from aftercare.outbox.records import Enrollment, EnrollResult
from aftercare.outbox.rows import instant, read, stamp
from aftercare.outbox.vocabulary import UNSUBSCRIBING, State, Trail
from aftercare.outbox.writes import Writes
from aftercare.plan.schedule import Action, PlannedMessage

Plan = Sequence[PlannedMessage]
UNSUBSCRIBED = "this address has unsubscribed; it cannot be enrolled again"

# A stored enrolment with its patient, as ``read`` makes an Enrollment of it.
_STORED = """
    SELECT e.*, e.consent_recorded_by AS recorded_by, p.email, p.first_name, p.language,
           p.patient_ref FROM enrollments AS e JOIN patients AS p ON p.id = e.patient_id
"""

# Messages a new treatment date re-times: the unsent ones, and the ones only a plan skipped (a
# corrected date can bring a "too late" step back); never ones a person cancelled.
_RETIMABLE = """
    SELECT m.id, m.step_key, m.due_at, m.state FROM messages AS m
    WHERE m.enrollment_id = ? AND (m.state = 'scheduled' OR (m.state = 'cancelled' AND (
        SELECT v.kind FROM events AS v WHERE v.message_id = m.id
        AND v.kind IN ('skipped', 'cancelled') ORDER BY v.id DESC LIMIT 1) = 'skipped'))
    ORDER BY m.due_at, m.id{lock}
"""


def by_key(plan: Plan) -> dict[str, PlannedMessage]:
    """The plan's entries by step key, and by any key a step had before a rename."""
    return {key: entry for entry in plan for key in (entry.step_key, *entry.formerly)}


def check_plan(plan: Plan) -> None:
    """Refuse a plan with naive times before anything is written."""
    for entry in plan:
        stamp(entry.due_at, "due_at")
        stamp(entry.local_due, "local_due")


class Enrolments:
    """Patients, their enrolments and the messages planned for them."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db
        self._consent = ConsentChanges(writes, self.schedule_again)

    def enroll_all(
        self, items: Sequence[tuple[Enrollment, Plan]], now: dt.datetime, fields: Sequence[str],
        *, update_consent: bool = False,
    ) -> list[EnrollResult]:
        """Store every item in one transaction, or none; ``fields`` name each item's address
        in errors. A repeat changes nothing but, with ``update_consent``, a reminder consent."""
        at = stamp(now, "now")
        for _, plan in items:
            check_plan(plan)
        with self._db.transaction():
            return [
                self._enroll_one(enrollment, plan, at, field, update_consent)
                for (enrollment, plan), field in zip(items, fields, strict=True)
            ]

    def enroll_each(
        self, items: Iterable[tuple[Enrollment, Plan, str]], now: dt.datetime
    ) -> tuple[int, int]:
        """Store every item in one transaction, or none, keeping no result: items may come one
        at a time from a large file (``str``: the item's address as errors name it). A repeat
        changes nothing. Returns how many were created and how many already existed."""
        at = stamp(now, "now")
        created = existing = 0
        with self._db.transaction():
            for enrollment, plan, field in items:
                check_plan(plan)
                if self._enroll_one(enrollment, plan, at, field, update_consent=False).created:
                    created += 1
                else:
                    existing += 1
        return created, existing

    def refuse_suppressed(self, address: str, field: str) -> None:
        reason = self._writes.suppression(address)
        if reason in UNSUBSCRIBING:
            raise InputError(field, UNSUBSCRIBED)
        if reason is not None:
            raise InputError(field, f"this address is suppressed ({reason}); it cannot be enrolled")

    def reschedule(
        self, email: str, campaign: str, treated_on: dt.date,
        replan: Callable[[Enrollment], Plan], now: dt.datetime, actor: str,
    ) -> int:
        """Move the latest enrolment to a new treatment date and re-time its unsent messages."""
        latest = ("WHERE p.email = ? AND e.campaign = ? ORDER BY e.id DESC LIMIT 1",
                  (normalise_address(email), campaign))
        missing = InputError("email", f"this address has no enrollment in {campaign!r}")
        return self._move(latest, missing, treated_on, replan, now, actor)

    def reschedule_one(
        self, enrollment_id: int, treated_on: dt.date, replan: Callable[[Enrollment], Plan],
        now: dt.datetime, actor: str,
    ) -> int:
        """Move one enrolment to a new treatment date and re-time its unsent messages."""
        missing = InputError("enrollment", f"no enrollment {enrollment_id}")
        return self._move(("WHERE e.id = ?", (enrollment_id,)), missing, treated_on, replan,
                          now, actor)

    def _move(
        self, which: tuple[str, Sequence[object]], missing: InputError, treated_on: dt.date,
        replan: Callable[[Enrollment], Plan], now: dt.datetime, actor: str,
    ) -> int:
        """In one write: the stored enrolment ``which`` picks moves to ``treated_on``."""
        with self._db.transaction():
            row = self._db.one(f"{_STORED} {which[0]}{self._db.lock('e')}", which[1])
            if row is None:
                raise missing
            return self._move_row(row, treated_on, replan, stamp(now, "now"), actor)

    def _move_row(
        self, row: Row, treated_on: dt.date, replan: Callable[[Enrollment], Plan], at: str,
        actor: str,
    ) -> int:
        day, db, campaign = treated_on.isoformat(), self._db, row["campaign"]
        self.refuse_suppressed(row["email"], "email")
        clash = db.one(
            "SELECT 1 FROM enrollments WHERE patient_id = ? AND campaign = ?"
            " AND treated_on = ? AND id <> ?",
            (row["patient_id"], campaign, day, row["id"]),
        )
        if clash is not None:
            raise InputError(
                "treated_on",
                f"this patient already has an enrollment in {campaign!r} treated on {day}",
            )
        db.execute("UPDATE enrollments SET treated_on = ? WHERE id = ?", (day, row["id"]))
        change = f"treated_on {row['treated_on']} -> {day}"
        self._writes.log(at, Trail.RESCHEDULED, row["id"], None, actor, change)
        plan = tuple(replan(read(Enrollment, row, treated_on=day)))
        check_plan(plan)
        return self._retime(row["id"], by_key(plan), at, actor)

    def schedule_again(self, message_id: int, current: State, entry: PlannedMessage,
                       at: str) -> str:
        """Put one message back in the queue at its planned time; return that time, stored."""
        due = at if entry.action == "send-now" else stamp(entry.due_at, "due_at")
        self._writes.move(message_id, current, State.SCHEDULED, doing="it cannot be re-timed",
                          changes={"due_at": due, "send_at": None, "last_error": None})
        return due

    def _enroll_one(
        self, item: Enrollment, plan: Plan, at: str, field: str, update_consent: bool
    ) -> EnrollResult:
        db = self._db
        address, day = normalise_address(item.email), item.treated_on.isoformat()
        self.refuse_suppressed(address, field)
        self._writes.lock_patient(address, item.first_name.strip(), item.language, at)
        existing = db.one(
            "SELECT e.id, e.timezone FROM enrollments AS e JOIN patients AS p"
            " ON p.id = e.patient_id WHERE p.email = ? AND e.campaign = ? AND e.treated_on = ?",
            (address, item.campaign, day),
        )
        if existing is not None:  # a repeat: only a change of consent changes anything
            if item.patient_ref is not None:  # and learning the booking system's id for them
                db.execute("UPDATE patients SET patient_ref = ? WHERE email = ?"
                           " AND patient_ref IS NULL", (item.patient_ref, address))
            changes, held = ((), ()) if not update_consent else self._consent.change(
                existing["id"], item, by_key(plan), at)
            plan_now = self._stored_plan(existing["id"], ZoneName(existing["timezone"]))
            return EnrollResult(existing["id"], False, plan_now, changes, held)
        db.execute(
            "INSERT INTO patients (email, first_name, patient_ref, language, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET"
            " first_name = excluded.first_name, language = excluded.language,"
            " patient_ref = coalesce(excluded.patient_ref, patients.patient_ref)",
            (address, item.first_name.strip(), item.patient_ref, item.language, at),
        )
        enrollment_id = db.insert(
            "INSERT INTO enrollments (patient_id, campaign, treated_on, timezone,"
            " marketing_consent, consent_at, consent_recorded_by, consent_wording_version,"
            " created_at, public_id, site) SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM patients"
            " WHERE email = ?",
            (
                item.campaign, day, str(item.timezone), int(item.marketing_consent), at,
                item.recorded_by, item.consent_wording_version, at, uuid.uuid4().hex, item.site,
                address,
            ),
        )
        consent = "yes" if item.marketing_consent else "no"
        detail = (f"aftercare consent: yes; reminder consent: {consent} "
                  f"(wording {item.consent_wording_version})")
        self._writes.log(at, Trail.ENROLLED, enrollment_id, None, item.recorded_by, detail)
        stored: list[PlannedMessage] = []
        for entry in plan:
            skip = entry.action == "skip"
            due = instant(at) if entry.action == "send-now" else entry.due_at.astimezone(dt.UTC)
            message_id = self._writes.add_message(
                uuid.uuid4().hex, enrollment_id, entry.step_key, entry.kind, stamp(due, "due"),
                State.CANCELLED if skip else State.SCHEDULED, entry.note if skip else None,
            )
            kind = Trail.SKIPPED if skip else Trail.SCHEDULED
            self._writes.log(at, kind, enrollment_id, message_id, item.recorded_by, entry.note)
            local = due.astimezone(item.timezone.zone)
            stored.append(dataclasses.replace(entry, due_at=due, local_due=local))
        return EnrollResult(enrollment_id, True, tuple(stored))

    def _stored_plan(self, enrollment_id: int, zone: ZoneName) -> tuple[PlannedMessage, ...]:
        rows = self._db.all(
            "SELECT step_key, kind, due_at, state, last_error FROM messages"
            " WHERE enrollment_id = ? ORDER BY due_at, id",
            (enrollment_id,),
        )
        stored: list[PlannedMessage] = []
        for row in rows:
            due, skipped = instant(row["due_at"]), row["state"] == State.CANCELLED
            action: Action = "skip" if skipped else "send"
            note = row["last_error"] if skipped else None
            local = due.astimezone(zone.zone)
            stored.append(PlannedMessage(row["step_key"], row["kind"], local, due, action, note))
        return tuple(stored)

    def _retime(
        self, enrollment_id: int, plan: Mapping[str, PlannedMessage], at: str, actor: str
    ) -> int:
        """Move the stored messages to the times a fresh plan gives them; return how many."""
        retimed = 0
        for row in self._db.all(_RETIMABLE.format(lock=self._db.lock("m")), (enrollment_id,)):
            entry, current = plan.get(row["step_key"]), State(row["state"])
            if entry is None or entry.action == "skip":
                if current is State.SCHEDULED:  # a step the new plan skips (or lost) is cancelled
                    note = "step no longer in the campaign" if entry is None else entry.note
                    self._writes.cancel(row["id"], enrollment_id, current, at, actor,
                                        note or "skipped", Trail.SKIPPED)
                continue
            due = self.schedule_again(row["id"], current, entry, at)
            change = f"due {row['due_at']} -> {due}" + (
                "" if current is State.SCHEDULED else " (was skipped)")
            self._writes.log(at, Trail.RESCHEDULED, enrollment_id, row["id"], actor, change)
            retimed += 1
        return retimed
