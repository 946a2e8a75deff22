"""A tiny project built in code, for tests that need campaigns and a clinic but no files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from aftercare.content.model import (
    Brand,
    CalendarEntry,
    Campaign,
    Clinic,
    EmailSettings,
    Handout,
    Project,
    Review,
    Section,
    SourceRef,
    Step,
)
from aftercare.content.values import ClockTime, Colour, EmailAddress, Offset, Slug, Url, ZoneName

HTML_TEMPLATE = (
    '<!doctype html><html lang="{{ lang }}"><head><title>{{ subject }}</title></head>'
    "<body><p>Hello {{ first_name }},</p><p>{{ step.label }}</p>"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>\n'
)
TEXT_TEMPLATE = (
    "Hello {{ first_name }},\n\n{{ step.label }}\n\nUnsubscribe: {{ unsubscribe_url }}\n"
)


def _step(key: str, offset: str, kind: str, grace: str, calendar: bool = False) -> Step:
    return Step(
        key=Slug(key),
        offset=Offset.parse(offset),
        kind=kind,  # type: ignore[arg-type]
        label=f"the {key} email",
        subject="A note from your care team",
        preheader="Something for you",
        template=Slug("note"),
        grace=Offset.parse(grace),
        calendar=CalendarEntry("Check-in", "Call us if you are worried.") if calendar else None,
    )


def make_project(root: Path) -> Project:
    """Two campaigns (day-1, week-2, month-3) and one email template, written under ``root``."""
    email_dir = root / "templates" / "email"
    email_dir.mkdir(parents=True, exist_ok=True)
    (email_dir / "note.html").write_text(HTML_TEMPLATE, encoding="utf-8")
    (email_dir / "note.txt").write_text(TEXT_TEMPLATE, encoding="utf-8")
    clinic = Clinic(
        name="Test Clinic",
        logo="logo.svg",
        brand=Brand(Colour("#1d5c63"), Colour("#b5462f"), Colour("#1f2933")),
        phone="(555) 010-0100",
        urgent_line="(555) 010-0199",
        emergency_number="911",
        address=("1 High Street", "Testtown"),
        website=Url("https://clinic.example"),
        booking_url=Url("https://clinic.example/book"),
        timezone=ZoneName("America/New_York"),
        paper_size="Letter",
        locale="en-US",
        send_time=ClockTime(10, 0),
        hours="Monday to Friday, 9 to 5",
        email=EmailSettings(
            from_address=EmailAddress("care@clinic.example"),
            from_name="Test Clinic",
            reply_to=EmailAddress("desk@clinic.example"),
            public_base_url=Url("https://care.clinic.example"),
        ),
    )
    handout = Handout(
        title="After your treatment",
        indication="cosmetic",
        version="1",
        summary="What to do after your treatment.",
        sections=(Section(Slug("first-day"), "Today", paragraphs=("Do not rub the area.",)),),
        review=Review("Dr Test", dt.date(2026, 1, 1), dt.date(2027, 1, 1)),
        sources=(SourceRef("A source"),),
        id="aftercare",
    )
    cosmetic = Campaign(
        title="Cosmetic aftercare",
        indication="cosmetic",
        handout=Slug("aftercare"),
        next_treatment_after=Offset.parse("12 weeks"),
        next_treatment_label="earliest next treatment",
        steps=(
            _step("day-1", "1 day", "clinical", "2 days"),
            _step("week-2", "2 weeks", "clinical", "7 days", calendar=True),
            _step("month-3", "3 months", "marketing", "14 days", calendar=True),
        ),
        quiet_weekdays=("sunday",),
        id="botox-cosmetic",
    )
    migraine = Campaign(
        title="Migraine aftercare",
        indication="migraine",
        handout=Slug("aftercare"),
        next_treatment_after=Offset.parse("12 weeks"),
        next_treatment_label="next treatment due",
        steps=(
            _step("day-1", "1 day", "clinical", "2 days"),
            _step("week-2", "2 weeks", "clinical", "7 days"),
            _step("month-3", "10 weeks", "clinical", "14 days", calendar=True),
        ),
        quiet_weekdays=("sunday",),
        id="botox-migraine",
    )
    return Project(
        root=root,
        clinic=clinic,
        handouts={"aftercare": handout},
        campaigns={"botox-cosmetic": cosmetic, "botox-migraine": migraine},
    )


def copy_of_the_clinic(root: Path, destination: Path) -> Path:
    """A copy of the clinic's real content (clinic.yaml, handouts, campaigns, templates, in every
    language) to edit in a test."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "clinic.yaml", destination / "clinic.yaml")
    for folder in ("handouts", "campaigns", "templates"):
        shutil.copytree(root / folder, destination / folder)
    return destination
