"""Outbox records as the staff pages show them: grouped by patient, in the clinic's time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from aftercare.content.load import load_project
from aftercare.content.values import EmailAddress
from aftercare.outbox.records import MessageView
from aftercare.outbox.vocabulary import State
from aftercare.web.views import STATE_LABELS, outbox_rows, patient_rows
from tests.conftest import ROOT

PROJECT = load_project(ROOT)
NY = ZoneInfo("America/New_York")


def _view(email: str, step: str, day: dt.date, state: State, **changes: object) -> MessageView:
    base = MessageView(
        message_id=1, public_id="p", email=EmailAddress(email), first_name="Ann", language="en",
        campaign="botox-cosmetic", step_key=step, kind="clinical", treated_on=day,
        due_at=dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC), state=state, attempts=0,
        provider_id=None, content_hash=None, template_version=None, sent_at=None,
        last_error=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_every_state_has_a_label() -> None:
    assert set(STATE_LABELS) == set(State)


def test_patients_are_grouped_and_the_newest_enrolment_is_the_one_to_move() -> None:
    older, newer = dt.date(2026, 8, 1), dt.date(2026, 11, 23)
    messages = [
        _view("ann@example.com", "week-2", older, State.SENT),
        _view("ann@example.com", "week-2", newer, State.SCHEDULED),
        _view("Ben@example.com", "gone-step", newer, State.CANCELLED, first_name="Ben"),
    ]
    ann, ben = patient_rows(PROJECT, messages, lambda email: email.startswith("Ben"),
                            lambda moment: moment.astimezone(NY))
    assert [e.treated_on for e in ann.enrollments] == [newer, older]
    assert [e.latest for e in ann.enrollments] == [True, False]
    assert ann.enrollments[0].unsent == 1 and not ann.unsubscribed
    assert ben.unsubscribed
    assert ben.enrollments[0].messages[0].label == "(no longer in the campaign)"
    row = ann.enrollments[0].messages[0]
    assert (row.step, row.when, row.state_label) == (
        "2 weeks after treatment", "Mon 7 Dec 2026, 10:00 EST", "Scheduled")


def test_outbox_rows_name_the_treatment_and_keep_the_note() -> None:
    row, = outbox_rows(PROJECT, [_view("ann@example.com", "day-0", dt.date(2026, 11, 23),
                                       State.UNKNOWN, last_error="no response")],
                       lambda moment: moment.astimezone(NY))
    assert row.treatment == "Expression lines (botox-cosmetic)"
    assert (row.step, row.state_label, row.note) == (
        "the treatment day", "Unknown: check", "no response")


def test_an_erased_patient_shows_as_erased_not_as_a_hash() -> None:
    erased = _view("forgotten:" + "0" * 64, "week-2", dt.date(2026, 11, 23), State.FAILED,
                   first_name="")
    (row,) = outbox_rows(PROJECT, [erased], lambda moment: moment.astimezone(NY))
    assert (row.email, row.first_name) == ("(erased)", "")
