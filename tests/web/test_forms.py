"""The checkout form: each problem becomes a sentence on its own field, from the one rule set."""

from __future__ import annotations

import datetime as dt

import pytest

from aftercare.content.load import load_project
from aftercare.errors import InputError, MissingGlyphs
from aftercare.web.forms import card_field, check_checkout, read_form, sentence
from tests.conftest import ROOT

PROJECT = load_project(ROOT)
NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)  # 15:00 at the clinic


def _form(**changes: str) -> dict[str, str]:
    values = read_form({
        "treatment": "botox-cosmetic", "first_name": "Ann", "last_name": "Lee",
        "email": "ann@example.com", "treated_on": "2026-11-23", "language": "en",
        "consent_aftercare": "on",
    })
    values.update(changes)
    return values


def test_a_good_checkout_gives_the_card_and_the_enrolment() -> None:
    checked, errors = check_checkout(_form(), "enrol", PROJECT, NOW, "staff:x")
    assert errors == {}
    assert checked is not None and checked.enrollment is not None
    assert checked.card.name == "Ann Lee" and checked.card.aftercare_consent
    assert checked.enrollment.email == "ann@example.com"
    assert checked.handout.id == "aftercare-cosmetic"


def test_print_only_enrols_nobody_and_needs_no_email_or_consent() -> None:
    checked, errors = check_checkout(_form(email="", consent_aftercare=""), "print", PROJECT,
                                     NOW, "staff:x")
    assert errors == {} and checked is not None
    assert checked.enrollment is None and not checked.card.aftercare_consent


@pytest.mark.parametrize(("changes", "field", "start"), [
    ({"treatment": "botox-hair"}, "treatment", "Choose the treatment"),
    ({"first_name": ""}, "first_name", "Enter the patient's first name."),
    ({"email": "ann@"}, "email", "Enter an email address like name@example.com."),
    ({"consent_aftercare": ""}, "consent_aftercare", "The patient must agree"),
    ({"treated_on": "23/11/2026"}, "treated_on", "Enter the treatment date as year-month-day"),
    ({"treated_on": "2026-11-24"}, "treated_on", "Expected today (2026-11-23 at the clinic)"),
    ({"areas": "a\tb"}, "areas", "Expected printable characters; got U+0009"),
    ({"language": "fr"}, "language", "Choose a language from the list."),
])
def test_each_problem_lands_on_its_field(changes: dict[str, str], field: str, start: str) -> None:
    checked, errors = check_checkout(_form(**changes), "enrol", PROJECT, NOW, "staff:x")
    assert checked is None
    assert errors[field].startswith(start), errors


def test_a_missing_letter_is_blamed_on_the_name_that_has_it() -> None:
    values = _form(first_name="Ann", last_name="李")
    assert card_field(MissingGlyphs("name", ("李",)), values) == "last_name"
    assert card_field(MissingGlyphs("name", ("李",)), _form(first_name="李")) == "first_name"
    assert card_field(InputError("name", "too long"), values) == "first_name"
    assert card_field(InputError("lot", "too long"), values) == "lot"


def test_messages_become_sentences() -> None:
    assert sentence(InputError("email", "expected an address; got 'x'")) == (
        "Expected an address; got 'x'.")
    assert sentence("already a sentence.") == "Already a sentence."
