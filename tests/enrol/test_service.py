"""The one enrolment service: consents checked with every other field, a repeat with another
reminder consent hands what the provider holds to the caller's withdrawal, suppression refused."""

from __future__ import annotations

import pytest

from aftercare.content.model import Project
from aftercare.enrol.rules import CONSENT_WORDING_VERSION, TYPED_INPUT
from aftercare.enrol.service import NO_AFTERCARE_CONSENT, Consents, check_enrolment, enrol
from aftercare.errors import ContentError, InputError
from aftercare.outbox.records import Submitted
from aftercare.outbox.store import Outbox
from tests.enrol.conftest import NOW

FIELDS = {"email": "ann@example.com", "first_name": "Ann", "campaign": "botox-cosmetic",
          "treated_on": "2026-03-02", "patient_id": "P-7"}
GIVEN = Consents(aftercare=True, reminders=True, recorded_by="api:booking/maria")


def test_a_checked_enrolment_carries_its_consents_and_who_recorded_them(
    project: Project,
) -> None:
    enrollment = check_enrolment(FIELDS, GIVEN, project, NOW)
    assert (enrollment.marketing_consent, enrollment.recorded_by,
            enrollment.consent_wording_version, enrollment.patient_ref) == (
        True, "api:booking/maria", CONSENT_WORDING_VERSION, "P-7")


def test_consents_are_reported_with_every_other_problem(project: Project) -> None:
    refused = Consents(aftercare=False, reminders=False, recorded_by="cli:x",
                       wording_version="old-wording")
    with pytest.raises(ContentError) as caught:
        check_enrolment({**FIELDS, "treated_on": "2026-03-03"}, refused, project, NOW,
                        consent_hint="(tick the box)")
    assert [(p.file, p.path, p.message) for p in caught.value.problems] == [
        (TYPED_INPUT, "aftercare_consent", f"{NO_AFTERCARE_CONSENT} (tick the box)"),
        (TYPED_INPUT, "consent_wording_version",
         f"expected {CONSENT_WORDING_VERSION!r}, the version of the consent wording on file "
         "(the patient must have read that wording); got 'old-wording'"),
        (TYPED_INPUT, "treated_on", "expected today (2026-03-02 at the clinic) or earlier: a "
         "treatment date cannot be in the future; got '2026-03-03'"),
    ]


def test_a_repeat_withdrawing_reminder_consent_calls_withdraw_only_when_something_is_held(
    project: Project, outbox: Outbox
) -> None:
    given: list[tuple[Submitted, ...]] = []

    def withdraw(held: tuple[Submitted, ...]) -> int:
        given.append(held)
        return len(held)

    first = enrol(outbox, project, check_enrolment(FIELDS, GIVEN, project, NOW), NOW, withdraw)
    assert first.result.created and first.withdrawn is None
    no_reminders = Consents(aftercare=True, reminders=False, recorded_by="staff:desk")
    again = enrol(outbox, project, check_enrolment(FIELDS, no_reminders, project, NOW), NOW,
                  withdraw)
    assert not again.result.created
    assert again.result.changes == (
        "Reminder consent withdrawn: cancelled 1 reminder (month-3, Tue 2 Jun)",)
    assert again.withdrawn is None and given == []  # nothing was held by a provider yet
    trail = outbox.events(enrollment_id=first.result.enrollment_id)
    assert trail[-1].actor == "staff:desk"


def test_a_suppressed_address_is_refused(project: Project, outbox: Outbox) -> None:
    outbox.unsubscribe("ann@example.com", NOW, source="test", actor="test")
    enrollment = check_enrolment(FIELDS, GIVEN, project, NOW)
    with pytest.raises(InputError, match="this address has unsubscribed"):
        enrol(outbox, project, enrollment, NOW, lambda held: None)
    assert outbox.messages() == []
