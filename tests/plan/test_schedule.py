"""Scheduling: local send times across DST, month ends, quiet days, late enrolment, properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftercare.content.load import load_project
from aftercare.content.model import Campaign
from aftercare.content.values import WEEKDAYS, ClockTime, Offset
from aftercare.plan.schedule import (
    SendRules,
    follow_ups,
    local_moment,
    next_treatment_day,
    plan,
    rules_for,
)
from tests.conftest import FIXTURES, ROOT

UTC = dt.UTC
PROJECT = load_project(FIXTURES / "minimal")
BASE: Campaign = PROJECT.campaigns["care"]
TEN = ClockTime(10, 0)
NO_RULES = SendRules(TEN, frozenset(), frozenset())


def campaign_with(*offsets: str, quiet: tuple[str, ...] = ()) -> Campaign:
    template = BASE.steps[0]
    steps = tuple(
        dataclasses.replace(template, key=f"step-{i}", offset=Offset.parse(o), kind="clinical")
        for i, o in enumerate(offsets)
    )
    return dataclasses.replace(BASE, steps=steps, quiet_weekdays=quiet)  # type: ignore[arg-type]


def early(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=UTC) - dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("zone", "treated_on", "offset", "expected_utc"),
    [
        # America/New_York springs forward on 2026-03-08: 10:00 is 15:00 UTC before, 14:00 after.
        ("America/New_York", dt.date(2026, 3, 7), "1 day", dt.datetime(2026, 3, 8, 14, tzinfo=UTC)),
        ("America/New_York", dt.date(2026, 3, 6), "1 day", dt.datetime(2026, 3, 7, 15, tzinfo=UTC)),
        # ...and falls back on 2026-11-01.
        ("America/New_York", dt.date(2026, 10, 31), "1 day",
         dt.datetime(2026, 11, 1, 15, tzinfo=UTC)),
        ("America/New_York", dt.date(2026, 10, 30), "1 day",
         dt.datetime(2026, 10, 31, 14, tzinfo=UTC)),
        # Europe/London: BST starts 2026-03-29 and ends 2026-10-25.
        ("Europe/London", dt.date(2026, 3, 28), "1 day", dt.datetime(2026, 3, 29, 9, tzinfo=UTC)),
        ("Europe/London", dt.date(2026, 3, 27), "1 day", dt.datetime(2026, 3, 28, 10, tzinfo=UTC)),
        ("Europe/London", dt.date(2026, 10, 24), "1 day",
         dt.datetime(2026, 10, 25, 10, tzinfo=UTC)),
        ("Europe/London", dt.date(2026, 10, 11), "2 weeks",
         dt.datetime(2026, 10, 25, 10, tzinfo=UTC)),
    ],
)
def test_ten_oclock_local_on_both_sides_of_dst(
    zone: str, treated_on: dt.date, offset: str, expected_utc: dt.datetime
) -> None:
    (message,) = plan(campaign_with(offset), treated_on, ZoneInfo(zone), early(treated_on),
                      NO_RULES, marketing_consent=True)
    assert message.due_at == expected_utc
    assert message.local_due.hour == 10
    assert message.local_due.minute == 0


@pytest.mark.parametrize(
    ("treated_on", "months", "expected"),
    [
        (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
        (dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),  # leap year
        (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2026, 8, 31), 1, dt.date(2026, 9, 30)),
        (dt.date(2026, 11, 23), 3, dt.date(2027, 2, 23)),
        (dt.date(2028, 2, 29), 12, dt.date(2029, 2, 28)),
    ],
)
def test_calendar_months_clamp_to_the_month_end(
    treated_on: dt.date, months: int, expected: dt.date
) -> None:
    (message,) = plan(campaign_with(f"{months} months"), treated_on, ZoneInfo("Europe/London"),
                      early(treated_on), NO_RULES, marketing_consent=True)
    assert message.local_due.date() == expected


def test_quiet_days_and_closures_move_a_message_on_never_drop_it() -> None:
    rules = SendRules(TEN, frozenset({6}), frozenset({dt.date(2026, 12, 28)}))
    # 2026-12-13 + 2 weeks = Sunday 27 Dec (quiet) -> Monday 28 Dec (closed) -> Tuesday 29 Dec.
    (message,) = plan(campaign_with("2 weeks"), dt.date(2026, 12, 13), ZoneInfo("Europe/London"),
                      early(dt.date(2026, 12, 13)), rules, marketing_consent=True)
    assert message.local_due.date() == dt.date(2026, 12, 29)
    assert message.action == "send"
    assert message.note == "moved from Sun 27 Dec (quiet day)"


def test_late_enrolment_sends_within_grace_and_skips_after() -> None:
    treated = dt.date(2026, 11, 2)
    zone = ZoneInfo("Europe/London")
    day1, _ = plan(BASE, treated, zone, early(treated), NO_RULES, True)
    assert day1.due_at == dt.datetime(2026, 11, 3, 10, tzinfo=UTC)
    # One day after day-1 was due: inside its 2-day grace, so it goes now.
    now = dt.datetime(2026, 11, 4, 9, tzinfo=UTC)
    late, _ = plan(BASE, treated, zone, now, NO_RULES, True)
    assert (late.action, late.due_at) == ("send-now", now)
    assert late.note == "was due Tue 3 Nov; sent now (within 2 days)"
    # Three days late: past the grace; kept as a skipped message with a reason.
    now = dt.datetime(2026, 11, 6, 9, tzinfo=UTC)
    skipped, later = plan(BASE, treated, zone, now, NO_RULES, True)
    assert skipped.action == "skip"
    assert skipped.note == "skipped: was due Tue 3 Nov, more than 2 days ago"
    assert later.action == "send"


def test_marketing_steps_need_consent() -> None:
    treated = dt.date(2026, 11, 23)
    _, month3 = plan(BASE, treated, ZoneInfo("Europe/London"), early(treated), NO_RULES, False)
    assert (month3.action, month3.note) == ("skip", "skipped: no consent to reminders")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(BASE, dt.date(2026, 1, 1), ZoneInfo("UTC"), dt.datetime(2026, 1, 1), NO_RULES, True)


def test_a_send_time_inside_the_spring_gap_moves_forward() -> None:
    moment = local_moment(dt.date(2026, 3, 8), ClockTime(2, 30), ZoneInfo("America/New_York"))
    assert moment.astimezone(UTC) == dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert (moment.hour, moment.minute) == (3, 30)


# ---------------------------------------------------------------- the printed plan


CHECKOUT = dt.datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # Mon 23 Nov, 15:00 in New York


def _printed(campaign: Campaign, now: dt.datetime = CHECKOUT, **consents: bool) -> list[
    tuple[dt.date, str, str]
]:
    dates = follow_ups(PROJECT.clinic, campaign, dt.date(2026, 11, 23), now,
                       aftercare_consent=consents.get("aftercare", True),
                       reminder_consent=consents.get("reminders", True))
    return [(f.local_date, f.label, f.kind) for f in dates]


def _outbox_plan(campaign: Campaign, now: dt.datetime, reminders: bool) -> list[
    tuple[dt.date, str, str]
]:
    """What the outbox carries out for the same enrolment: the printed plan must match it."""
    labels = {step.key: step.label for step in campaign.steps}
    planned = plan(campaign, dt.date(2026, 11, 23), PROJECT.clinic.timezone.zone, now,
                   rules_for(PROJECT.clinic, campaign), reminders)
    return [(p.local_due.date(), labels[p.step_key], "email")
            for p in planned if p.action != "skip"]


def test_the_printed_emails_are_the_outbox_plan_and_the_next_treatment_is_added() -> None:
    printed = _printed(BASE)
    emails = [entry for entry in printed if entry[2] == "email"]
    assert emails == _outbox_plan(BASE, CHECKOUT, reminders=True)
    assert [label for _, label, _ in emails] == ["tips by email", "plan your next visit"]
    # 12 weeks after Mon 23 Nov is Mon 15 Feb: an open day, so it stays.
    assert (dt.date(2027, 2, 15), "earliest next treatment", "treatment") in printed
    assert printed == sorted(printed, key=lambda entry: entry[0])


def test_without_reminder_consent_the_reminder_is_not_printed() -> None:
    printed = _printed(BASE, reminders=False)
    assert [entry for entry in printed if entry[2] == "email"] == _outbox_plan(
        BASE, CHECKOUT, reminders=False)
    assert "plan your next visit" not in [label for _, label, _ in printed]
    assert "tips by email" in [label for _, label, _ in printed]


def test_without_aftercare_consent_no_email_is_printed() -> None:
    # Nobody is enrolled (print-only): reminder consent alone sends nothing either.
    for reminders in (False, True):
        printed = _printed(BASE, aftercare=False, reminders=reminders)
        assert printed == [(dt.date(2027, 2, 15), "earliest next treatment", "treatment")]


def test_a_late_checkout_prints_only_what_will_still_be_sent() -> None:
    # Printed 20 days after treatment: day-1 is past its 2-day grace, so the outbox skips it.
    late = CHECKOUT + dt.timedelta(days=20)
    printed = _printed(BASE, late)
    assert [entry for entry in printed if entry[2] == "email"] == _outbox_plan(
        BASE, late, reminders=True)
    assert "tips by email" not in [label for _, label, _ in printed]


@pytest.mark.parametrize(
    ("treated_on", "closed", "expected"),
    [
        # 12 weeks after a Sunday is a Sunday, a quiet day: the next open day is Monday.
        (dt.date(2026, 11, 22), (), dt.date(2027, 2, 15)),
        # ...and a closure on that Monday moves it to Tuesday.
        (dt.date(2026, 11, 22), (dt.date(2027, 2, 15),), dt.date(2027, 2, 16)),
        (dt.date(2026, 11, 23), (), dt.date(2027, 2, 15)),
    ],
)
def test_the_next_treatment_moves_on_to_an_open_day(
    treated_on: dt.date, closed: tuple[dt.date, ...], expected: dt.date
) -> None:
    clinic = dataclasses.replace(
        PROJECT.clinic, email=dataclasses.replace(PROJECT.clinic.email, closed_on=closed))
    assert next_treatment_day(clinic, BASE, treated_on) == expected


@settings(max_examples=200, deadline=None)
@given(
    treated_on=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    quiet=st.sets(st.sampled_from(WEEKDAYS), max_size=5),
    closed=st.sets(st.dates(dt.date(2025, 3, 1), dt.date(2031, 6, 30)), max_size=40),
)
def test_the_next_treatment_is_never_sooner_nor_on_a_quiet_or_closed_day(
    treated_on: dt.date, quiet: set[str], closed: set[dt.date]
) -> None:
    campaign = dataclasses.replace(BASE, quiet_weekdays=tuple(sorted(quiet)))
    clinic = dataclasses.replace(
        PROJECT.clinic, email=dataclasses.replace(PROJECT.clinic.email, closed_on=tuple(closed)))
    day = next_treatment_day(clinic, campaign, treated_on)
    earliest = campaign.next_treatment_after.after(treated_on)
    assert day >= earliest
    assert WEEKDAYS[day.weekday()] not in quiet and day not in closed
    # The first open day: every day skipped was quiet or closed.
    for skipped in range((day - earliest).days):
        moved_over = earliest + dt.timedelta(days=skipped)
        assert WEEKDAYS[moved_over.weekday()] in quiet or moved_over in closed


def test_follow_ups_for_the_printed_handout_match_the_issue_example() -> None:
    project = load_project(ROOT)
    cosmetic = project.campaigns["botox-cosmetic"]
    dates = follow_ups(project.clinic, cosmetic, dt.date(2026, 11, 23), CHECKOUT,
                       aftercare_consent=True, reminder_consent=True)
    assert [(f.local_date, f.label) for f in dates][:2] == [
        (dt.date(2026, 11, 23), cosmetic.steps[0].label),  # the evening of the treatment day
        (dt.date(2026, 12, 7), cosmetic.steps[1].label),
    ]
    assert dt.date(2027, 2, 23) in [f.local_date for f in dates]
    assert [f.local_date for f in dates] == sorted(f.local_date for f in dates)


ZONES = st.sampled_from(
    ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland",
     "America/Sao_Paulo", "UTC"]
)
OFFSETS = st.lists(
    st.tuples(st.integers(1, 40), st.sampled_from(["day", "week", "month"])),
    min_size=1, max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    zone=ZONES,
    treated_on=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    offsets=OFFSETS,
    quiet=st.sets(st.integers(0, 6), max_size=5),
    closed=st.sets(st.dates(dt.date(2025, 1, 1), dt.date(2034, 12, 31)), max_size=30),
    hour=st.integers(7, 19),
)
def test_every_due_time_is_at_the_send_time_on_an_allowed_day_in_order_after_treatment(
    zone: str,
    treated_on: dt.date,
    offsets: list[tuple[int, str]],
    quiet: set[int],
    closed: set[dt.date],
    hour: int,
) -> None:
    spans = sorted({Offset.parse(f"{n} {unit}s") for n, unit in offsets},
                   key=lambda span: (span.shortest_days(), span.longest_days()))
    distinct = []
    for span in spans:  # the loader refuses steps that are not surely later
        if not distinct or span.shortest_days() > distinct[-1].longest_days():
            distinct.append(span)
    campaign = campaign_with(*(str(s) for s in distinct))
    rules = SendRules(ClockTime(hour, 0), frozenset(quiet), frozenset(closed))
    tz = ZoneInfo(zone)
    messages = plan(campaign, treated_on, tz, early(treated_on), rules, marketing_consent=True)
    assert len(messages) == len(distinct)
    previous: dt.datetime | None = None
    for message in messages:
        assert message.action == "send"
        assert message.due_at.tzinfo is UTC
        assert message.local_due.utcoffset() is not None
        assert (message.local_due.hour, message.local_due.minute) == (hour, 0)
        step = campaign.step(message.step_key)
        nominal = step.offset.after(treated_on)
        if step.is_safety:  # safety messages keep their day, whatever the quiet days
            assert message.local_due.date() == nominal
        else:
            assert message.local_due.weekday() not in quiet
            assert message.local_due.date() not in closed
            assert message.local_due.date() >= nominal
        assert message.local_due.date() > treated_on
        assert message.due_at == message.local_due.astimezone(UTC)
        if previous is not None:
            assert message.due_at >= previous
        previous = message.due_at


@settings(max_examples=200, deadline=None)
@given(
    treated_on=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    late_by=st.integers(0, 60 * 24 * 30),
)
def test_late_enrolment_never_schedules_in_the_past(treated_on: dt.date, late_by: int) -> None:
    zone = ZoneInfo("America/New_York")
    start = plan(BASE, treated_on, zone, early(treated_on), NO_RULES, True)
    now = start[0].due_at + dt.timedelta(minutes=late_by)
    for message in plan(BASE, treated_on, zone, now, NO_RULES, True):
        if message.action != "skip":
            assert message.due_at >= now
        else:
            assert message.note is not None


def test_rules_come_from_clinic_and_campaign() -> None:
    rules = rules_for(PROJECT.clinic, BASE)
    assert rules.quiet_weekdays == frozenset({6})
    assert rules.send_time == TEN


# ------------------------------------------------------------------ the evening email

EVENING, UNTIL = ClockTime(18, 0), ClockTime(21, 0)
NY = ZoneInfo("America/New_York")
SATURDAY = dt.date(2026, 11, 21)


def evening_campaign() -> Campaign:
    """Day 0 at 18:00 (until 21:00), then a week-2 step that quiet days and closures move."""
    first = dataclasses.replace(
        BASE.steps[0], key="day-0", offset=Offset.parse("0 days"), send_time=EVENING,
        send_until=UNTIL, formerly=("day-1",))
    later = dataclasses.replace(BASE.steps[0], key="week-2", offset=Offset.parse("2 weeks"),
                                grace=Offset.parse("7 days"))
    return dataclasses.replace(BASE, steps=(first, later))


def ny(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NY)


QUIET_SUNDAY_CLOSED_SATURDAY = SendRules(TEN, frozenset({5, 6}), frozenset({SATURDAY}))


def test_enrolled_at_two_on_saturday_the_first_email_goes_that_evening() -> None:
    first, later = plan(evening_campaign(), SATURDAY, NY, ny(SATURDAY, 14), NO_RULES, True)
    assert (first.step_key, first.action, first.local_due) == ("day-0", "send", ny(SATURDAY, 18))
    assert first.due_at == dt.datetime(2026, 11, 21, 23, tzinfo=UTC)
    assert first.note is None
    assert later.local_due == ny(dt.date(2026, 12, 5), 10)


def test_quiet_days_and_closures_never_move_the_safety_email_but_move_later_steps() -> None:
    first, later = plan(evening_campaign(), SATURDAY, NY, ny(SATURDAY, 14),
                        QUIET_SUNDAY_CLOSED_SATURDAY, True)
    assert first.local_due == ny(SATURDAY, 18)  # Saturday: quiet and closed, still sent
    assert later.local_due == ny(dt.date(2026, 12, 7), 10)  # Sat 5 Dec -> Mon 7 Dec
    assert later.note == "moved from Sat 5 Dec (quiet day)"
    follow = follow_ups(PROJECT.clinic, evening_campaign(), SATURDAY, ny(SATURDAY, 14),
                        aftercare_consent=True, reminder_consent=True)
    assert follow[0].local_date == SATURDAY


def test_enrolled_after_the_send_time_but_before_the_latest_hour_goes_at_the_next_run() -> None:
    now = ny(SATURDAY, 19, 30)
    first, _ = plan(evening_campaign(), SATURDAY, NY, now, NO_RULES, True)
    assert (first.action, first.due_at) == ("send-now", now)
    assert first.note == "was due Sat 21 Nov 18:00; sent at the next run, before 21:00"


@pytest.mark.parametrize(("enrolled", "expected"), [
    (ny(SATURDAY, 21), ny(dt.date(2026, 11, 22), 10)),  # at the latest hour: next morning
    (ny(SATURDAY, 23, 59), ny(dt.date(2026, 11, 22), 10)),
    (ny(dt.date(2026, 11, 22), 3), ny(dt.date(2026, 11, 22), 10)),  # small hours: that morning
])
def test_enrolled_too_late_in_the_evening_it_goes_the_next_morning(
    enrolled: dt.datetime, expected: dt.datetime
) -> None:
    # Sunday is quiet and Saturday closed: the safety email still goes on Sunday morning.
    first, _ = plan(evening_campaign(), SATURDAY, NY, enrolled, QUIET_SUNDAY_CLOSED_SATURDAY, True)
    assert (first.action, first.local_due) == ("send", expected)
    assert first.note == "was due Sat 21 Nov 18:00; too late that evening, so sent Sun 22 Nov 10:00"


def test_enrolled_past_the_grace_the_evening_email_is_skipped() -> None:
    first, _ = plan(evening_campaign(), SATURDAY, NY, ny(dt.date(2026, 11, 23), 19), NO_RULES, True)
    assert (first.action, first.note) == (
        "skip", "skipped: was due Sat 21 Nov 18:00, more than 2 days ago")


@settings(max_examples=300, deadline=None)
@given(
    zone=ZONES,
    treated_on=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    minutes_after_midnight=st.integers(0, 60 * 24 * 4),
    quiet=st.sets(st.integers(0, 6), max_size=6),
    closed=st.sets(st.dates(dt.date(2024, 12, 25), dt.date(2031, 1, 10)), max_size=30),
)
def test_the_evening_email_never_goes_at_night_and_never_waits_for_an_open_day(
    zone: str, treated_on: dt.date, minutes_after_midnight: int, quiet: set[int],
    closed: set[dt.date],
) -> None:
    """Late enrolment across DST changes: sent at 18:00 on the day, at the next run before
    21:00, or at the next 10:00; never at night, never in the past, never moved to an open day."""
    tz = ZoneInfo(zone)
    midnight = dt.datetime.combine(treated_on, dt.time(), tzinfo=tz).astimezone(UTC)
    now = midnight + dt.timedelta(minutes=minutes_after_midnight)
    rules = SendRules(TEN, frozenset(quiet), frozenset(closed))
    first, _ = plan(evening_campaign(), treated_on, tz, now, rules, True)
    local = first.local_due.astimezone(tz)
    if first.action == "skip":
        assert now - dt.datetime.combine(treated_on, dt.time(18), tzinfo=tz) > dt.timedelta(days=2)
        return
    assert first.due_at >= now
    assert first.local_due.utcoffset() == local.utcoffset()
    if first.action == "send-now":
        assert first.due_at == now
        assert dt.time(10) <= local.time() < dt.time(21)
    elif local.date() == treated_on and (local.hour, local.minute) != (10, 0):
        assert (local.hour, local.minute) == (18, 0)
    else:  # the next morning after a late evening: the next day, whatever day it is
        assert (local.hour, local.minute) == (10, 0)
        assert local.date() - now.astimezone(tz).date() <= dt.timedelta(days=1)
