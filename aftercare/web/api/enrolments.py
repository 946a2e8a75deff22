"""Enrolments in and out of the API: a request body checked by the one rule set, and an
enrolment shown with its messages (never the patient's name or address)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from aftercare.content.model import Project
from aftercare.enrol.service import Consents, check_enrolment
from aftercare.errors import ContentError
from aftercare.outbox.api_keys import api_actor
from aftercare.outbox.records import IMPLICIT_SITE, Enrollment, EnrollmentView, MessageView
from aftercare.outbox.vocabulary import State
from aftercare.send.withdrawal import Stopped
from aftercare.web.api.bodies import Reader, check_site, read_consents, read_json
from aftercare.web.api.problems import FieldError, invalid

# Where each field of the enrolment rules is in the request body.
POINTERS: Final = {
    "email": "/patient/email", "first_name": "/patient/first_name",
    "patient_id": "/patient/external_id", "timezone": "/patient/timezone",
    "language": "/patient/language", "campaign": "/campaign", "treated_on": "/treated_on",
    "aftercare_consent": "/consents/aftercare", "marketing_consent": "/consents/reminders",
    "consent_wording_version": "/consents/wording_version",
}
_SHOWN_NOTE: Final = frozenset({State.CANCELLED})  # why a message will not be sent


def read_enrolment(
    project: Project, now: dt.datetime, key_name: str
) -> tuple[Enrollment, str]:
    """The request's enrolment and its site, checked by the rules the desk and `enroll` use;
    422 with every invalid field otherwise."""
    errors: list[FieldError] = []
    top = Reader(read_json(), errors)
    top.only("campaign", "treatment", "site", "patient", "treated_on", "consents")
    campaign, campaign_at = _campaign(top, project)
    site = check_site(top, project) or IMPLICIT_SITE
    treated_on = top.text("treated_on")
    patient = top.member("patient")
    patient.only("first_name", "email", "external_id", "language", "timezone")
    fields = {
        "first_name": patient.text("first_name"), "email": patient.text("email"),
        "patient_id": patient.text("external_id", required=False),
        "language": patient.text("language", required=False),
        "timezone": patient.text("timezone", required=False),
        "campaign": campaign, "treated_on": treated_on,
    }
    given = read_consents(top)
    consents = Consents(  # a member already reported wrong is not checked again
        aftercare=True if given.aftercare is None else given.aftercare,
        reminders=bool(given.reminders),
        recorded_by=f"{api_actor(key_name)}/{given.recorded_by}",
        wording_version=given.wording_version or None,
    )
    typed = {name: value or "" for name, value in fields.items()}
    pointers = {**POINTERS, "campaign": campaign_at}
    try:
        enrollment = check_enrolment(typed, consents, project, now)
    except ContentError as exc:
        errors.extend(_unless_reported(errors, [
            FieldError(pointers.get(p.path, "/" + p.path), p.message) for p in exc.problems]))
        raise invalid(errors) from None
    if errors:
        raise invalid(errors)
    return enrollment, site


def enrolment_json(view: EnrollmentView, messages: Sequence[MessageView],
                   project: Project) -> dict[str, Any]:
    """An enrolment as the API shows it."""
    campaign = project.campaigns.get(view.campaign)
    return {
        "id": view.public_id,
        "site": IMPLICIT_SITE,
        "campaign": view.campaign,
        "treatment": None if campaign is None else campaign.indication,
        "treated_on": view.treated_on.isoformat(),
        "timezone": str(view.timezone),
        "language": view.language,
        "external_patient_id": view.patient_ref,
        "consents": {
            "aftercare": True,  # nobody is enrolled without it
            "reminders": view.marketing_consent,
            "recorded_by": view.consent_recorded_by,
            "recorded_at": _utc(view.consent_at),
            "wording_version": view.consent_wording_version,
        },
        "created_at": _utc(view.created_at),
        "messages": [_message(m, view) for m in messages],
    }


def stopped_json(stopped: Stopped) -> dict[str, int]:
    return {
        "cancelled": stopped.cancelled,
        "withdrawn_at_provider": stopped.withdrawn.cancelled,
        "still_delivered": stopped.withdrawn.kept,
    }


def _message(message: MessageView, view: EnrollmentView) -> dict[str, Any]:
    due = message.send_at or message.due_at
    return {
        "step": message.step_key,
        "kind": message.kind,
        "status": message.state.value,
        "due_at": _utc(due),
        "due_local": due.astimezone(view.timezone.zone).isoformat(timespec="seconds"),
        "note": message.last_error if message.state in _SHOWN_NOTE else None,
    }


def _campaign(top: Reader, project: Project) -> tuple[str | None, str]:
    """The campaign, named or found by its treatment (indication), and where it was given."""
    named = top.text("campaign", required=False)
    treatment = top.text("treatment", required=False)
    if treatment is None:
        if "campaign" not in top.body and "treatment" not in top.body:
            top.problem("campaign", "required (or treatment); got nothing")
        return named, top.at("campaign")
    by_treatment: dict[str, str] = {c.indication: c.id for c in project.campaigns.values()}
    found = by_treatment.get(treatment)
    if found is None:
        top.problem("treatment", f"expected one of {', '.join(sorted(by_treatment))}; got "
                                 f"{treatment[:40]!r}")
    elif named is not None and named != found:
        top.problem("treatment", f"expected the treatment of campaign {named[:40]!r}, or only "
                                 f"one of the two; got {treatment!r} ({found})")
    return found, top.at("treatment")


def _unless_reported(reported: list[FieldError], found: list[FieldError]) -> list[FieldError]:
    """The rules' findings, but none about a member (or inside one) already reported."""
    taken = [e.pointer for e in reported]
    return [e for e in found
            if not any(e.pointer == t or e.pointer.startswith(t + "/") for t in taken)]


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
