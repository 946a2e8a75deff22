"""One checked enrolment planned with the clinic's rules and stored; its plan described."""

from __future__ import annotations

import datetime as dt

from aftercare.content.model import (
    Project,
)
from aftercare.content.values import ZoneName
from aftercare.enrol.enrolment import enroll_one, replanner
from aftercare.enrol.rules import (
    parse_enrollment,
)
from aftercare.outbox.records import EnrollResult
from aftercare.outbox.store import Outbox
from aftercare.plan.describe import describe_plan, plan_text
from tests.enrol.conftest import BY, NOW, UTC

GOOD = {"email": "ann@example.com", "first_name": "Ann", "campaign": "botox-cosmetic",
        "treated_on": "2026-03-02"}

# ---------------------------------------------------------------- into the outbox


def described(project: Project, result: EnrollResult) -> list[str]:
    """The stored plan as `pipeline enroll` prints it."""
    campaign = project.campaigns["botox-cosmetic"]
    return plan_text(describe_plan(campaign, result.messages, ZoneName("America/New_York").zone))


def test_enroll_one_stores_the_plan_and_describes_it(project: Project, outbox: Outbox) -> None:
    enrollment = parse_enrollment({**GOOD, "marketing_consent": "yes"}, project, NOW, BY)
    result = enroll_one(outbox, project, enrollment, NOW)
    assert result.created
    assert described(project, result) == [
        "day-1    Tue 03 Mar 2026 10:00 EST (2026-03-03 15:00 UTC)  to send",
        "week-2   Mon 16 Mar 2026 10:00 EDT (2026-03-16 14:00 UTC)  to send",
        "month-3  Tue 02 Jun 2026 10:00 EDT (2026-06-02 14:00 UTC)  to send",
    ]
    again = enroll_one(outbox, project, enrollment, NOW)
    assert not again.created
    assert len(outbox.messages()) == 3


def test_describe_plan_shows_skips_and_moves_with_their_reason(
    project: Project, outbox: Outbox
) -> None:
    # Treated on Sunday 15 Feb: day-1 (a safety message) was due more than its grace ago;
    # week-2 falls on Sunday 1 Mar (a quiet day) and moves to Monday.
    enrollment = parse_enrollment({**GOOD, "treated_on": "2026-02-15"}, project, NOW, BY)
    lines = described(project, enroll_one(outbox, project, enrollment, NOW))
    assert lines == [
        "day-1    Mon 16 Feb 2026 10:00 EST (2026-02-16 15:00 UTC)  not sent"
        " — skipped: was due Mon 16 Feb, more than 2 days ago",
        "week-2   Mon 02 Mar 2026 10:00 EST (2026-03-02 15:00 UTC)  to send"
        " — moved from Sun 1 Mar (quiet day)",
        "month-3  Fri 15 May 2026 10:00 EDT (2026-05-15 14:00 UTC)  not sent"
        " — skipped: no consent to reminders",
    ]


def test_replanner_re_times_a_rescheduled_enrolment(project: Project, outbox: Outbox) -> None:
    enrollment = parse_enrollment({**GOOD, "marketing_consent": "yes"}, project, NOW, BY)
    enroll_one(outbox, project, enrollment, NOW)
    moved = outbox.reschedule(
        "ann@example.com", "botox-cosmetic", dt.date(2026, 3, 3), replanner(project, NOW), NOW,
        actor=BY,
    )
    assert moved == 3
    assert [m.due_at for m in outbox.messages()] == [
        dt.datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 17, 14, 0, tzinfo=UTC),
        dt.datetime(2026, 6, 3, 14, 0, tzinfo=UTC),
    ]
