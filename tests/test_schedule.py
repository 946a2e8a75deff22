"""Scheduling: local send times across DST, month ends, quiet days, late enrolment, properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftercare.content import Campaign, load_project
from aftercare.schedule import (
    SendRules,
    follow_ups,
    local_moment,
    next_treatment_day,
    plan,
    rules_for,
)
from aftercare.values import WEEKDAYS, ClockTime, Offset
from tests.conftest import FIXTURES

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
    spans = sorted({Offset.parse(f"{n} {unit}s") for n, unit in offsets}, key=Offset.approx_days)
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
        assert message.local_due.weekday() not in quiet
        assert message.local_due.date() not in closed
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
