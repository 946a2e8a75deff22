"""The one rule set for an enrolment: every field checked, every problem named by field."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftercare.content.model import (
    Project,
)
from aftercare.content.values import ZoneName
from aftercare.enrol.rules import (
    CONSENT_WORDING,
    CONSENT_WORDING_VERSION,
    check_treatment_date,
    parse_enrollment,
)
from aftercare.errors import ContentError, InputError
from tests.enrol.conftest import BY, NOW, UTC
from tests.projects import make_project

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


def test_language_the_content_is_not_written_in_is_refused(project: Project) -> None:
    assert parse_enrollment({**GOOD, "language": "EN"}, project, NOW, BY).language == "en"
    assert parse_enrollment({**GOOD, "language": "en-US"}, project, NOW, BY).language == "en"
    assert typed_problems(project, language="fr") == [
        "command line: language: expected one of en (the languages the content is written "
        "in); got 'fr'"
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
