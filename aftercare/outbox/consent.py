"""A repeat enrolment with other consents: record the new consent, cancel or plan its reminders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from aftercare.dates import format_day
from aftercare.outbox.records import Enrollment, Submitted
from aftercare.outbox.rows import instant, read
from aftercare.outbox.vocabulary import State, Trail
from aftercare.outbox.writes import Writes
from aftercare.plan.schedule import PlannedMessage

# Puts a message back in the queue at its planned time; returns that time, stored.
ScheduleAgain = Callable[[int, State, PlannedMessage, str], str]

WITHDRAWN: Final = "reminder consent withdrawn"
# Why a reminder may be closed for want of consent: the plan skipped it, or consent was
# withdrawn. Only these come back when consent is given again; one a person cancelled does not.
NO_CONSENT: Final = frozenset({"skipped: no consent to reminders", WITHDRAWN})


class ConsentChanges:
    """Changing the consents of an enrolment that already exists (a repeat checkout)."""

    def __init__(self, writes: Writes, schedule_again: ScheduleAgain) -> None:
        self._writes = writes
        self._db = writes.db
        self._schedule_again = schedule_again

    def change(
        self, enrollment_id: int, item: Enrollment, plan: Mapping[str, PlannedMessage], at: str
    ) -> tuple[tuple[str, ...], tuple[Submitted, ...]]:
        """Inside a write: record a changed reminder consent and apply it to the reminders.

        Returns what changed, in words for staff, and the reminders the provider holds that
        must now be withdrawn there (the caller does that after the transaction).
        """
        row = self._db.one(
            "SELECT marketing_consent FROM enrollments WHERE id = ?", (enrollment_id,)
        )
        if row is None or bool(row["marketing_consent"]) == item.marketing_consent:
            return (), ()
        self._db.execute(
            "UPDATE enrollments SET marketing_consent = ?, consent_at = ?,"
            " consent_recorded_by = ?, consent_wording_version = ? WHERE id = ?",
            (int(item.marketing_consent), at, item.recorded_by, item.consent_wording_version,
             enrollment_id),
        )
        was, now = ("no", "yes") if item.marketing_consent else ("yes", "no")
        detail = (f"reminder consent: {was} -> {now}; aftercare consent: yes "
                  f"(wording {item.consent_wording_version})")
        self._writes.log(at, Trail.CONSENT_CHANGED, enrollment_id, None, item.recorded_by, detail)
        zone = item.timezone.zone
        if item.marketing_consent:
            return (self._restore(enrollment_id, plan, at, item.recorded_by, zone),), ()
        return self._withdraw_reminders(enrollment_id, at, item.recorded_by, zone)

    def _withdraw_reminders(
        self, enrollment_id: int, at: str, actor: str, zone: dt.tzinfo
    ) -> tuple[tuple[str, ...], tuple[Submitted, ...]]:
        rows = self._db.all(
            "SELECT id, step_key, due_at FROM messages WHERE enrollment_id = ?"
            f" AND kind = 'marketing' AND state = 'scheduled' ORDER BY due_at, id{self._db.lock()}",
            (enrollment_id,),
        )
        for r in rows:
            self._writes.cancel(r["id"], enrollment_id, State.SCHEDULED, at, actor, WITHDRAWN)
        held_rows = self._db.all(
            "SELECT id AS message_id, provider_batch AS batch, send_at, step_key FROM messages"
            " WHERE enrollment_id = ? AND kind = 'marketing' AND state IN ('sent', 'unknown')"
            " AND send_at > ? ORDER BY send_at, id",
            (enrollment_id, at),
        )
        line = "Reminder consent withdrawn: " + (
            f"cancelled {_count(len(rows), 'reminder')} ({_which(rows, 'due_at', zone)})"
            if rows else "no reminder was scheduled")
        if held_rows:
            line += (f"; {_count(len(held_rows), 'reminder')} already handed to the provider "
                     f"({_which(held_rows, 'send_at', zone)}): withdrawing it there")
        return (line,), tuple(read(Submitted, r) for r in held_rows)

    def _restore(
        self, enrollment_id: int, plan: Mapping[str, PlannedMessage], at: str, actor: str,
        zone: dt.tzinfo,
    ) -> str:
        rows = self._db.all(
            "SELECT id, step_key, last_error FROM messages WHERE enrollment_id = ?"
            " AND kind = 'marketing' AND state = 'cancelled' ORDER BY due_at, id",
            (enrollment_id,),
        )
        scheduled, skipped = [], []
        for r in rows:
            entry = plan.get(r["step_key"])
            if entry is None or r["last_error"] not in NO_CONSENT:
                continue
            if entry.action == "skip":
                skipped.append(f"{r['step_key']}: {entry.note}")
                continue
            due = self._schedule_again(r["id"], State.CANCELLED, entry, at)
            self._writes.log(at, Trail.SCHEDULED, enrollment_id, r["id"], actor,
                             "reminder consent given")
            scheduled.append({"step_key": r["step_key"], "due_at": due})
        line = "Reminder consent given: " + (
            f"scheduled {_count(len(scheduled), 'reminder')} ({_which(scheduled, 'due_at', zone)})"
            if scheduled else "no reminder scheduled")
        return line + "".join(f"; not sent ({note})" for note in skipped)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _which(rows: Sequence[Any], column: str, zone: dt.tzinfo) -> str:
    """Like 'month-3, Tue 23 Feb': each message's step and local day."""
    return "; ".join(
        f"{r['step_key']}, {format_day(instant(r[column]).astimezone(zone).date())}" for r in rows
    )
