"""The one enrolment service the checkout page, `enroll` and the API call: check, store, withdraw.

Checking applies the one rule set (``rules.parse_enrollment``: the treatment-date rule, the
languages the content has, names, addresses, zones) and the consents: aftercare consent is
required, and the wording the patient agreed to must be the wording on file. Storing refuses
an unsubscribed or bounced address and, for a repeat with another reminder consent, records
the new consent and cancels or schedules the reminders. What the provider already holds of a
withdrawn reminder is withdrawn there by the caller's ``withdraw`` (the send stage's
``withdraw_held``), after the transaction. CSV import checks each row here too, and stores the
whole file in one transaction (``csv_import``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from aftercare.content.model import Project
from aftercare.enrol.enrolment import enroll_one
from aftercare.enrol.rules import (
    TYPED_INPUT,
    consent_wording_version,
    parse_enrollment,
    requested_language,
)
from aftercare.errors import ContentError, Problem
from aftercare.outbox.records import Enrollment, EnrollResult, Submitted
from aftercare.outbox.store import Outbox

R = TypeVar("R")

NO_AFTERCARE_CONSENT: Final = (
    "required: enrol a patient only once they agree to aftercare emails")


@dataclass(frozen=True)
class Consents:
    """What the patient agreed to, who recorded it, and the version of the wording they read."""

    aftercare: bool
    reminders: bool | None  # None: as the fields' ``marketing_consent`` says (a CSV column)
    recorded_by: str  # "cli:<os user>", "staff:<user>", "import:<file>", "api:<key>/<who>"
    # The version of the wording read to the patient; None: the wording on file for the
    # enrolment's language (a booking system that sends a version must send that one).
    wording_version: str | None = None


@dataclass(frozen=True)
class Enrolled(Generic[R]):
    """What enrolling did: the stored enrolment, and the withdrawal's report when a changed
    consent withdrew reminders the provider held (None when there was nothing to withdraw)."""

    result: EnrollResult
    withdrawn: R | None


def check_enrolment(
    fields: Mapping[str, str], consents: Consents, project: Project, now: dt.datetime, *,
    consent_hint: str = "", row: int | None = None, source: str | None = None,
) -> Enrollment:
    """The checked enrolment, or a ContentError listing every problem together.

    ``fields`` are the rule set's (email, first_name, campaign, treated_on, timezone, language,
    patient_id); the consents come separately. ``consent_hint`` follows the message for a
    missing aftercare consent (how to give it, where the caller can say). ``row`` and
    ``source`` place problems at a line of a CSV file, as ``parse_enrollment`` does.
    """
    problems: list[Problem] = []
    where = TYPED_INPUT if row is None else (source or "CSV file")
    if not consents.aftercare:
        message = f"{NO_AFTERCARE_CONSENT} {consent_hint}".rstrip()
        problems.append(Problem(where, row, "aftercare_consent", message))
    on_file = consent_wording_version(project, _language_of(fields, project))
    if consents.wording_version is not None and consents.wording_version != on_file:
        problems.append(Problem(where, row, "consent_wording_version", (
            f"expected {on_file!r}, the version of the consent wording on file (the patient "
            f"must have read that wording); got {consents.wording_version[:40]!r}"
        )))
    typed = dict(fields)
    if consents.reminders is not None:
        typed["marketing_consent"] = "true" if consents.reminders else "false"
    try:
        enrollment = parse_enrollment(typed, project, now, consents.recorded_by, row,
                                      source=source)
    except ContentError as exc:
        raise ContentError([*problems, *exc.problems]) from None
    if problems:
        raise ContentError(problems)
    return enrollment


def _language_of(fields: Mapping[str, str], project: Project) -> str:
    """The language the consent wording was read in: the enrolment's when the content is
    written in it, else the clinic's (an unknown language is reported by the rule set)."""
    language = requested_language(fields.get("language") or "", project)
    return language if language in project.languages else project.clinic.language


def enrol(
    outbox: Outbox, project: Project, enrollment: Enrollment, now: dt.datetime,
    withdraw: Callable[[tuple[Submitted, ...]], R],
) -> Enrolled[R]:
    """Plan and store a checked enrolment (InputError on ``email`` for a suppressed address);
    a repeat changes only a reminder consent that differs, and ``withdraw`` is then given what
    the provider holds of the withdrawn reminders."""
    result = enroll_one(outbox, project, enrollment, now)
    withdrawn = withdraw(result.to_withdraw) if result.to_withdraw else None
    return Enrolled(result, withdrawn)
