"""Pure scheduling: campaign + treatment date + zone + now -> when each step is due (UTC).

Safety steps (clinical, in the first days: ``Step.is_safety``) go out on their own day;
other steps move past quiet weekdays and closures. A step with ``send_until`` (the evening
email of the treatment day) that is planned after its send time goes at the next run while
the local time is before ``send_until``, else the next morning at the clinic's send time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from aftercare.content.model import Campaign, Clinic, Step
from aftercare.content.values import WEEKDAYS, ClockTime
from aftercare.dates import format_day, require_aware
from aftercare.errors import PipelineError

UTC = dt.UTC
Action = Literal["send", "send-now", "skip"]


@dataclass(frozen=True)
class SendRules:
    """When the clinic lets messages go out."""

    send_time: ClockTime  # the clinic's default; a step's own send_time wins
    quiet_weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday
    closed_on: frozenset[dt.date]


@dataclass(frozen=True)
class PlannedMessage:
    """One step of a campaign, timed for one patient."""

    step_key: str
    kind: Literal["clinical", "marketing"]
    local_due: dt.datetime  # aware, in the enrollment's zone
    due_at: dt.datetime  # aware, UTC
    action: Action
    note: str | None
    formerly: tuple[str, ...] = ()  # keys the step had before a rename (stored messages)


@dataclass(frozen=True)
class FollowUp:
    """A date printed on the personalised handout: an email the outbox will send, or the next
    treatment."""

    local_date: dt.date
    label: str
    kind: Literal["email", "treatment"] = "email"


def rules_for(clinic: Clinic, campaign: Campaign) -> SendRules:
    quiet = frozenset(WEEKDAYS.index(day) for day in campaign.quiet_weekdays)
    return SendRules(clinic.send_time, quiet, frozenset(clinic.email.closed_on))


def plan(
    campaign: Campaign,
    treated_on: dt.date,
    zone: ZoneInfo,
    now: dt.datetime,
    rules: SendRules,
    marketing_consent: bool,
) -> tuple[PlannedMessage, ...]:
    """Time every step; late steps within their grace go now, later ones are skipped with a note."""
    require_aware(now, "now")
    return tuple(
        _plan_step(step, treated_on, zone, now, rules, marketing_consent) for step in campaign.steps
    )


def follow_ups(
    clinic: Clinic,
    campaign: Campaign,
    treated_on: dt.date,
    now: dt.datetime,
    *,
    aftercare_consent: bool,
    reminder_consent: bool,
) -> tuple[FollowUp, ...]:
    """The patient's own dates for the printed handout, in date order.

    The emails are the plan the outbox carries out when the patient is enrolled at ``now``
    in the clinic's zone (``plan`` decides: consent, quiet days, closures, late enrolment);
    without aftercare consent nobody is enrolled and no email is listed. The next treatment
    date is always there.
    """
    dates = [FollowUp(next_treatment_day(clinic, campaign, treated_on),
                      campaign.next_treatment_label, "treatment")]
    if aftercare_consent:
        rules = rules_for(clinic, campaign)
        planned = plan(campaign, treated_on, clinic.timezone.zone, now, rules, reminder_consent)
        labels: dict[str, str] = {step.key: step.label for step in campaign.steps}
        dates += [FollowUp(p.local_due.date(), labels[p.step_key])
                  for p in planned if p.action != "skip"]
    return tuple(sorted(dates, key=lambda follow_up: follow_up.local_date))


def next_treatment_day(clinic: Clinic, campaign: Campaign, treated_on: dt.date) -> dt.date:
    """The earliest day for the next treatment: never sooner than the campaign says, and moved
    on to the next day the clinic is open (not a quiet weekday, not a closure)."""
    return _allowed_day(campaign.next_treatment_after.after(treated_on),
                        rules_for(clinic, campaign))


def local_moment(day: dt.date, time: ClockTime, zone: ZoneInfo) -> dt.datetime:
    """The aware moment for a wall-clock time on a day; a time skipped by a DST change moves on."""
    naive = dt.datetime.combine(day, time.as_time())
    moment = naive.replace(tzinfo=zone)
    round_trip = moment.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != naive:  # inside a spring-forward gap
        return round_trip
    return moment


def _plan_step(
    step: Step,
    treated_on: dt.date,
    zone: ZoneInfo,
    now: dt.datetime,
    rules: SendRules,
    marketing_consent: bool,
) -> PlannedMessage:
    nominal = step.offset.after(treated_on)
    day = _send_day(step, nominal, rules)
    local_due = local_moment(day, step.send_time or rules.send_time, zone)
    due_at = local_due.astimezone(UTC)
    note = None
    if day != nominal:
        note = f"moved from {format_day(nominal)} ({_why_closed(nominal, rules)})"

    def planned(action: Action, at: dt.datetime, text: str | None) -> PlannedMessage:
        local, utc = at.astimezone(zone), at.astimezone(UTC)
        return PlannedMessage(step.key, step.kind, local, utc, action, text, step.formerly)

    if step.kind == "marketing" and not marketing_consent:
        return planned("skip", due_at, "skipped: no consent to reminders")
    if due_at >= now:
        return planned("send", due_at, note)
    grace_end = local_due + (step.grace.after(day) - day)
    if step.send_until is not None:
        at = _next_in_window(step, step.send_until, now, zone, rules)
        was_due = f"was due {format_day(day)} {step.send_time or rules.send_time}"
        if at > grace_end:
            return planned("skip", due_at, f"skipped: {was_due}, more than {step.grace} ago")
        if at == now:
            return planned("send-now", now, f"{was_due}; sent at the next run, before "
                                            f"{step.send_until}")
        morning = f"{format_day(at.astimezone(zone).date())} {rules.send_time}"
        return planned("send", at, f"{was_due}; too late that evening, so sent {morning}")
    if now <= grace_end:
        return planned("send-now", now, f"was due {format_day(day)}; sent now "
                                        f"(within {step.grace})")
    return planned("skip", due_at, f"skipped: was due {format_day(day)}, "
                                   f"more than {step.grace} ago")


def evening_hold(
    step: Step, rules: SendRules, zone: ZoneInfo, moment: dt.datetime
) -> dt.datetime | None:
    """For a step with send_until: None if ``moment`` is inside its sending window, else the
    next morning at the send time (dispatch holds a late evening email rather than send it
    at night)."""
    if step.send_until is None:
        return None
    at = _next_in_window(step, step.send_until, moment, zone, rules)
    return None if at == moment else at


def _next_in_window(
    step: Step, until: ClockTime, now: dt.datetime, zone: ZoneInfo, rules: SendRules
) -> dt.datetime:
    """``now`` if its local time is between the morning send time and ``until``; else the
    next morning at the send time (a safety step on any day, others on an allowed day)."""
    local = now.astimezone(zone)
    if rules.send_time.as_time() <= local.time() < until.as_time():
        return now
    day = local.date() if local.time() < rules.send_time.as_time() else (
        local.date() + dt.timedelta(days=1))
    return local_moment(_send_day(step, day, rules), rules.send_time, zone)


def _send_day(step: Step, day: dt.date, rules: SendRules) -> dt.date:
    """Safety steps keep their day; others move past quiet weekdays and closures."""
    return day if step.is_safety else _allowed_day(day, rules)


def _allowed_day(day: dt.date, rules: SendRules) -> dt.date:
    for _ in range(400):
        if day.weekday() not in rules.quiet_weekdays and day not in rules.closed_on:
            return day
        day += dt.timedelta(days=1)
    raise PipelineError("no day the clinic is open within a year of "
                        f"{day - dt.timedelta(days=400)}: check quiet_weekdays and closed_on")


def _why_closed(day: dt.date, rules: SendRules) -> str:
    return "clinic closed" if day in rules.closed_on else "quiet day"
