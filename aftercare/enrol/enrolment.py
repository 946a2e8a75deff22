"""Plans a checked enrolment with the clinic's sending rules and stores it in the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from aftercare.content.model import Project
from aftercare.outbox.records import Enrollment, EnrollResult
from aftercare.outbox.store import Outbox
from aftercare.plan.schedule import PlannedMessage, plan, rules_for


def plan_for(
    project: Project, enrollment: Enrollment, now: dt.datetime
) -> tuple[PlannedMessage, ...]:
    """The enrolment's messages, timed by the scheduler with its site's sending rules (send
    time, closures)."""
    campaign = project.campaigns[enrollment.campaign]
    rules = rules_for(project.at_site(enrollment.site).clinic, campaign)
    zone = enrollment.timezone.zone
    return plan(campaign, enrollment.treated_on, zone, now, rules, enrollment.marketing_consent)


def replanner(
    project: Project, now: dt.datetime
) -> Callable[[Enrollment], tuple[PlannedMessage, ...]]:
    """A plan function for Outbox.reschedule: the stored enrolment, timed afresh at ``now``."""
    return lambda enrollment: plan_for(project, enrollment, now)


def enroll_one(
    outbox: Outbox, project: Project, enrollment: Enrollment, now: dt.datetime
) -> EnrollResult:
    """Plan and store one enrolment; enrolling the same patient twice changes nothing."""
    return outbox.enroll(enrollment, plan_for(project, enrollment, now), now)
