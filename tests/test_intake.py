"""Intake: bad enrolments, typed or imported, are refused precisely; good ones are stored once."""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from aftercare.enrol.csv_import import import_file, read_rows
from aftercare.enrol.enrolment import enroll_one, replanner
from aftercare.enrol.rules import (
    CONSENT_WORDING,
    CONSENT_WORDING_VERSION,
    check_treatment_date,
    parse_enrollment,
)
from aftercare.errors import ContentError, InputError
from aftercare.outbox.records import EnrollResult
from aftercare.outbox.store import Outbox
from aftercare.plan.describe import describe_plan, plan_text

CSV = Path(__file__).resolve().parent / "fixtures" / "csv"
UTC = dt.UTC
# 10:00 in New York on Monday 2 March 2026, the clinic's "today".
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BY = "cli:frontdesk"

# ---------------------------------------------------------------- a tiny project, in code

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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(tmp_path / "var" / "aftercare.db")
    try:
        yield box
    finally:
        box.close()


GOOD: Mapping[str, str] = {
    "email": "ann@example.com",
    "first_name": "Ann",
    "campaign": "botox-cosmetic",
    "treated_on": "2026-03-02",
}


def typed_problems(project: Project, **changes: str) -> list[str]:
    with pytest.raises(ContentError) as caught:
        parse_enrollment({**GOOD, **changes}, project, NOW, BY)
    return [str(p) for p in caught.value.problems]


def import_problems(path: Path, project: Project) -> list[str]:
    with pytest.raises(ContentError) as caught:
        read_rows(path, project, NOW, "import:test")
    return [str(p) for p in caught.value.problems]


# ---------------------------------------------------------------- consent wording


def test_consent_wording_names_both_consents_and_has_a_short_stable_version() -> None:
    assert set(CONSENT_WORDING) == {"aftercare", "marketing"}
    assert "aftercare" in CONSENT_WORDING["aftercare"]
    assert "optional" in CONSENT_WORDING["marketing"]
    assert len(CONSENT_WORDING_VERSION) == 12
    assert int(CONSENT_WORDING_VERSION, 16) >= 0
    with pytest.raises(TypeError):
        CONSENT_WORDING["marketing"] = "changed"  # type: ignore[index]


# ---------------------------------------------------------------- typed input


def test_a_good_typed_enrolment_gets_the_clinic_defaults(project: Project) -> None:
    enrollment = parse_enrollment(
        {**GOOD, "email": " Ann@Example.COM ", "first_name": " Ann "}, project, NOW, BY
    )
    assert enrollment.email == "Ann@example.com"
    assert enrollment.first_name == "Ann"
    assert enrollment.treated_on == dt.date(2026, 3, 2)
    assert enrollment.timezone == "America/New_York"
    assert enrollment.language == "en"
    assert enrollment.marketing_consent is False
    assert enrollment.recorded_by == BY
    assert enrollment.consent_wording_version == CONSENT_WORDING_VERSION
    assert enrollment.patient_ref is None


def test_invalid_email(project: Project) -> None:
    assert typed_problems(project, email="ann@example") == [
        "command line: email: expected an email address like name@example.com; "
        "got 'ann@example'"
    ]


def test_missing_email(project: Project) -> None:
    assert typed_problems(project, email="") == [
        "command line: email: expected an email address like name@example.com; got nothing"
    ]


def test_unknown_campaign_lists_the_known_ones(project: Project) -> None:
    assert typed_problems(project, campaign="botox-hair") == [
        "command line: campaign: expected one of botox-cosmetic, botox-migraine; "
        "got 'botox-hair'"
    ]


def test_unknown_timezone(project: Project) -> None:
    assert typed_problems(project, timezone="Mars/Olympus") == [
        "command line: timezone: expected an IANA time zone such as America/New_York; "
        "got 'Mars/Olympus'"
    ]


def test_impossible_date(project: Project) -> None:
    assert typed_problems(project, treated_on="2026-02-30") == [
        "command line: treated_on: expected a real calendar date "
        "(day is out of range for month); got '2026-02-30'"
    ]


def test_badly_written_date(project: Project) -> None:
    assert typed_problems(project, treated_on="02/03/2026") == [
        "command line: treated_on: expected a date (YYYY-MM-DD); got '02/03/2026'"
    ]


def test_today_is_accepted_but_not_tomorrow(project: Project) -> None:
    assert parse_enrollment({**GOOD, "treated_on": "2026-03-02"}, project, NOW, BY)
    assert typed_problems(project, treated_on="2026-03-03") == [
        "command line: treated_on: expected today (2026-03-02 at the clinic) or earlier: "
        "a treatment date cannot be in the future; got '2026-03-03'"
    ]


def test_future_limit_uses_today_at_the_clinic_whatever_the_patients_zone(
    project: Project,
) -> None:
    # 02:00 UTC on 3 March: still 2 March at the clinic in New York, already 3 March in Tokyo.
    late_evening = dt.datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    fields = {**GOOD, "timezone": "Asia/Tokyo"}
    tokyo = parse_enrollment({**fields, "treated_on": "2026-03-02"}, project, late_evening, BY)
    assert tokyo.treated_on == dt.date(2026, 3, 2)
    with pytest.raises(ContentError, match=r"expected today \(2026-03-02 at the clinic\)"):
        parse_enrollment({**fields, "treated_on": "2026-03-03"}, project, late_evening, BY)


def test_a_date_more_than_a_year_ago_is_refused(project: Project) -> None:
    assert parse_enrollment({**GOOD, "treated_on": "2025-03-02"}, project, NOW, BY)
    assert typed_problems(project, treated_on="2025-03-01") == [
        "command line: treated_on: expected a date within the last 365 days "
        "(on or after 2025-03-02); got '2025-03-01'"
    ]


def test_first_name_rules(project: Project) -> None:
    assert typed_problems(project, first_name="  ") == [
        "command line: first_name: expected a first name; got nothing"
    ]
    assert typed_problems(project, first_name="A" * 61) == [
        "command line: first_name: expected at most 60 characters; got 61"
    ]
    assert typed_problems(project, first_name="Ann\nBcc: x") == [
        "command line: first_name: expected a name without control characters "
        "(tabs, line breaks); got 'Ann\\nBcc: x'"
    ]
    assert typed_problems(project, first_name="Ann\u202eevil") == [
        "command line: first_name: expected a name without control characters "
        "(tabs, line breaks); got 'Ann\\u202eevil'"
    ]
    # Markup is allowed in a name (it is escaped wherever it is shown), as are joiners.
    assert parse_enrollment({**GOOD, "first_name": "<b>Jo</b>"}, project, NOW, BY)
    assert parse_enrollment({**GOOD, "first_name": "Nasrin\u200cDokht"}, project, NOW, BY)


@given(name=st.text(max_size=80))
def test_any_first_name_is_either_kept_as_typed_or_refused_on_that_field_alone(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    project = make_project(tmp_path_factory.getbasetemp() / "names")
    try:
        enrollment = parse_enrollment({**GOOD, "first_name": name}, project, NOW, BY)
    except ContentError as exc:
        assert [p.path for p in exc.problems] == ["first_name"]
        assert "\n" not in str(exc)
    else:
        assert enrollment.first_name == unicodedata.normalize("NFC", name.strip())
        assert 0 < len(enrollment.first_name) <= 60
        assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in enrollment.first_name)


def test_language_other_than_the_clinics_is_refused_for_now(project: Project) -> None:
    assert parse_enrollment({**GOOD, "language": "EN"}, project, NOW, BY).language == "en"
    assert typed_problems(project, language="fr") == [
        "command line: language: expected en (the emails are written in en only for now); "
        "got 'fr'"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("false", False), ("NO", False),
     ("0", False), ("", False)],
)
def test_marketing_consent_spellings(project: Project, text: str, expected: bool) -> None:
    enrollment = parse_enrollment({**GOOD, "marketing_consent": text}, project, NOW, BY)
    assert enrollment.marketing_consent is expected


def test_marketing_consent_must_be_a_yes_or_no(project: Project) -> None:
    assert typed_problems(project, marketing_consent="maybe") == [
        "command line: marketing_consent: expected true, false, yes, no, 1, 0 or nothing; "
        "got 'maybe'"
    ]


def test_patient_id_rules(project: Project) -> None:
    assert parse_enrollment({**GOOD, "patient_id": "P-0.1_a"}, project, NOW, BY).patient_ref == (
        "P-0.1_a"
    )
    expected = "expected up to 64 letters, digits, '.', '_' or '-'"
    assert typed_problems(project, patient_id="P 01") == [
        f"command line: patient_id: {expected}; got 'P 01'"
    ]
    assert typed_problems(project, patient_id="P" * 65) == [
        f"command line: patient_id: {expected}; got '{'P' * 40}…'"
    ]


def test_every_problem_of_a_typed_enrolment_is_reported_together(project: Project) -> None:
    assert typed_problems(
        project, email="nope", first_name="", campaign="x", treated_on="2026-13-01"
    ) == [
        "command line: campaign: expected one of botox-cosmetic, botox-migraine; got 'x'",
        "command line: email: expected an email address like name@example.com; got 'nope'",
        "command line: first_name: expected a first name; got nothing",
        "command line: treated_on: expected a real calendar date "
        "(month must be in 1..12); got '2026-13-01'",
    ]


def test_check_treatment_date_for_commands_that_take_only_a_date() -> None:
    zone = ZoneName("America/New_York").zone
    assert check_treatment_date(" 2026-03-02 ", zone, NOW) == dt.date(2026, 3, 2)
    with pytest.raises(InputError) as caught:
        check_treatment_date("2026-03-03", zone, NOW)
    assert caught.value.show() == (
        "error: treated_on: expected today (2026-03-02 at the clinic) or earlier: a treatment "
        "date cannot be in the future; got '2026-03-03'"
    )
    with pytest.raises(InputError) as empty:
        check_treatment_date("", zone, NOW)
    assert str(empty.value) == "treated_on: expected a date (YYYY-MM-DD); got nothing"


def test_naive_now_is_a_bug(project: Project) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_enrollment(GOOD, project, dt.datetime(2026, 3, 2, 15, 0), BY)


# ---------------------------------------------------------------- CSV files


def test_a_good_file_is_read_with_columns_in_any_order_and_duplicates_collapsed(
    project: Project,
) -> None:
    rows, _ = read_rows(CSV / "patients.csv", project, NOW, "import:patients.csv")
    enrollments = [row.enrollment for row in rows]
    assert [(e.email, e.first_name, e.campaign, str(e.treated_on)) for e in enrollments] == [
        ("ann@example.com", "Ann", "botox-cosmetic", "2026-03-02"),
        ("ben@example.com", "Ben", "botox-migraine", "2026-02-27"),
        ("zoe@example.com", "Zoë", "botox-cosmetic", "2026-03-01"),
    ]
    assert [e.marketing_consent for e in enrollments] == [True, False, False]
    assert [e.patient_ref for e in enrollments] == ["P-001", None, "P.003"]
    assert {e.recorded_by for e in enrollments} == {"import:patients.csv"}


def test_wrong_header_names_the_unknown_and_missing_columns_at_line_1(project: Project) -> None:
    assert import_problems(CSV / "wrong-header.csv", project) == [
        "wrong-header.csv:1: expected the columns email, first_name, campaign, treated_on "
        "(required); patient_id, timezone, marketing_consent, language (optional); "
        "got unknown column 'phone'; missing column 'treated_on'"
    ]


def test_an_unnamed_column_is_named_by_position(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text(
        "email,first_name,campaign,treated_on,\nann@example.com,Ann,botox-cosmetic,2026-03-02,\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "trailing.csv:1: expected the columns email, first_name, campaign, treated_on "
        "(required); patient_id, timezone, marketing_consent, language (optional); "
        "got no name for column 5; delete it or name it"
    ]


def test_semicolon_separated_file_is_explained(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("email;first_name;campaign;treated_on\n", encoding="utf-8")
    assert import_problems(path, project) == [
        "semi.csv:1: expected the columns email, first_name, campaign, treated_on (required); "
        "patient_id, timezone, marketing_consent, language (optional); "
        "got columns are separated by ';'; separate them with commas"
    ]


def test_byte_order_mark_is_refused_with_how_to_save(project: Project) -> None:
    assert import_problems(CSV / "bom.csv", project) == [
        "bom.csv:1: expected UTF-8 text without a byte-order mark (BOM); got a file that starts "
        'with one: save it as "CSV UTF-8 without BOM"'
    ]


def test_latin_1_bytes_name_the_first_bad_line(project: Project) -> None:
    assert import_problems(CSV / "latin1.csv", project) == [
        "latin1.csv:3: expected UTF-8 text; got bytes in another encoding (perhaps Latin-1 or "
        'Windows-1252) first on this line: save it as "CSV UTF-8 without BOM"'
    ]


def test_utf_16_is_refused(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("email,first_name,campaign,treated_on\n", encoding="utf-16")
    assert import_problems(path, project) == [
        'wide.csv:1: expected UTF-8 text; got UTF-16: save it as "CSV UTF-8 without BOM"'
    ]


def test_every_bad_row_is_listed_by_line(project: Project) -> None:
    assert import_problems(CSV / "bad-rows.csv", project) == [
        "bad-rows.csv:3: email: expected an email address like name@example.com; "
        "got 'ben@example'",
        "bad-rows.csv:4: campaign: expected one of botox-cosmetic, botox-migraine; "
        "got 'botox-hair'",
        "bad-rows.csv:5: treated_on: expected a real calendar date "
        "(day is out of range for month); got '2026-02-30'",
        "bad-rows.csv:6: treated_on: expected today (2026-03-02 at the clinic) or earlier: "
        "a treatment date cannot be in the future; "
        "got '2026-03-09'",
        "bad-rows.csv:7: timezone: expected an IANA time zone such as America/New_York; "
        "got 'Mars/Olympus'",
    ]


def test_the_error_shows_every_line_and_says_nothing_was_written(project: Project) -> None:
    with pytest.raises(ContentError) as caught:
        read_rows(CSV / "bad-rows.csv", project, NOW, "import:test")
    shown = caught.value.show().splitlines()
    assert len(shown) == 6
    assert shown[-1] == "5 problems found; nothing was written."
    # Never a whole row: the good row's values, and the bad rows' other values, are not echoed.
    assert "ann@example.com" not in caught.value.show()
    assert "Fay" not in caught.value.show()


def test_a_row_with_the_wrong_number_of_values(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "email,first_name,campaign,treated_on\n"
        "ann@example.com,Ann,botox-cosmetic,2026-03-02,extra\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "ragged.csv:2: expected 4 values, one per column; got 5"
    ]


def test_a_quoted_line_break_keeps_later_line_numbers_right(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "multiline.csv"
    path.write_text(
        "email,first_name,campaign,treated_on\n"
        '"ann@example.com","Ann\nMarie",botox-cosmetic,2026-03-02\n'
        "bad,Ben,botox-cosmetic,2026-03-02\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "multiline.csv:2: first_name: expected a name without control characters "
        "(tabs, line breaks); got 'Ann\\nMarie'",
        "multiline.csv:4: email: expected an email address like name@example.com; got 'bad'",
    ]


def test_conflicting_duplicate_rows_are_refused(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "conflict.csv"
    path.write_text(
        "email,first_name,campaign,treated_on,marketing_consent\n"
        "ann@example.com,Ann,botox-cosmetic,2026-03-02,yes\n"
        "ann@example.com,Ann,botox-cosmetic,2026-03-02,no\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "conflict.csv:3: expected one row per patient, campaign and treatment date; this row "
        "repeats line 2 with different values (marketing_consent); keep one"
    ]


def test_empty_file_and_header_only_file(project: Project, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert import_problems(empty, project) == [
        "empty.csv:1: expected a header line (email, first_name, campaign, treated_on "
        "(required); patient_id, timezone, marketing_consent, language (optional)); "
        "got an empty file"
    ]
    header_only = tmp_path / "header.csv"
    header_only.write_text("email,first_name,campaign,treated_on\n", encoding="utf-8")
    assert import_problems(header_only, project) == [
        "header.csv: expected at least one patient row; got none"
    ]


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


def test_import_stores_every_row_and_reimport_adds_nothing(
    project: Project, outbox: Outbox, tmp_path: Path
) -> None:
    path = tmp_path / "patients.csv"
    shutil.copy(CSV / "patients.csv", path)
    report = import_file(outbox, project, path, NOW, "import:patients.csv")
    assert (report.rows, report.created, report.existing, report.duplicate_rows) == (
        3, 3, 0, 1
    )
    stored = outbox.messages()
    assert len(stored) == 9
    again = import_file(outbox, project, path, NOW, "import:patients.csv")
    assert (again.rows, again.created, again.existing) == (3, 0, 3)
    assert outbox.messages() == stored


def test_nothing_is_written_when_one_row_is_bad(project: Project, outbox: Outbox) -> None:
    with pytest.raises(ContentError) as caught:
        import_file(outbox, project, CSV / "one-bad-row.csv", NOW, "import:one-bad-row.csv")
    assert [str(p) for p in caught.value.problems] == [
        "one-bad-row.csv:4: treated_on: expected today (2026-03-02 at the clinic) or earlier: "
        "a treatment date cannot be in the future; "
        "got '2026-03-20'"
    ]
    assert outbox.messages() == []


def test_import_refuses_an_unsubscribed_address_and_writes_nothing(
    project: Project, outbox: Outbox
) -> None:
    outbox.unsubscribe("ben@example.com", NOW, source="test", actor="test")
    with pytest.raises(ContentError) as caught:
        import_file(outbox, project, CSV / "patients.csv", NOW, "import:patients.csv")
    assert [str(p) for p in caught.value.problems] == [
        "patients.csv:3: email: this address unsubscribed or bounced; remove the row"
    ]
    assert outbox.messages() == []
