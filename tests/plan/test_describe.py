"""The plan in words, one way for the command line and the staff page."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aftercare.content.load import load_project
from aftercare.plan.describe import describe_plan, moment_words, plan_text, step_words
from aftercare.plan.schedule import plan, rules_for
from tests.conftest import ROOT

NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)  # 15:00 on the treatment day


def _lines() -> list[str]:
    project = load_project(ROOT)
    campaign = project.campaigns["botox-cosmetic"]
    planned = plan(campaign, dt.date(2026, 11, 23), NY, NOW, rules_for(project.clinic, campaign),
                   marketing_consent=False)
    return plan_text(describe_plan(campaign, planned, NY))


def test_the_command_lines_plan_lines_up_its_columns_and_says_why() -> None:
    assert _lines() == [
        "day-0    Mon 23 Nov 2026 18:00 EST (2026-11-23 23:00 UTC)  to send",
        "week-2   Mon 07 Dec 2026 10:00 EST (2026-12-07 15:00 UTC)  to send",
        "month-3  Tue 23 Feb 2027 10:00 EST (2027-02-23 15:00 UTC)  not sent"
        " — skipped: no consent to reminders",
    ]


def test_the_staff_page_gets_the_same_plan_in_its_words() -> None:
    project = load_project(ROOT)
    campaign = project.campaigns["botox-cosmetic"]
    planned = plan(campaign, dt.date(2026, 11, 23), NY, NOW, rules_for(project.clinic, campaign),
                   marketing_consent=True)
    first, second, _ = describe_plan(campaign, planned, NY)
    assert (first.step, first.when, first.status) == (
        "the treatment day", "Mon 23 Nov 2026, 18:00 EST", "Will be sent")
    assert second.step == "2 weeks after treatment"
    assert second.as_json()["utc"] == "2026-12-07T15:00:00+00:00"


def test_a_step_no_longer_in_the_campaign_shows_its_key() -> None:
    assert step_words(None, "day-9") == ("day-9", "(no longer in the campaign)")
    assert moment_words(dt.datetime(2026, 7, 4, 9, 30, tzinfo=NY)) == "Sat 4 Jul 2026, 09:30 EDT"
