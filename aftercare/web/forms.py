"""Reads and checks the checkout form, turning every problem into a message for its field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from aftercare.content.model import Campaign, Handout, Project
from aftercare.content.schema import parse_date
from aftercare.content.values import EmailAddress
from aftercare.enrol.rules import MAX_NAME, supported_languages, treatment_date_problem
from aftercare.enrol.service import Consents, check_enrolment
from aftercare.errors import ContentError, InputError, MissingGlyphs
from aftercare.outbox.records import Enrollment
from aftercare.render.card import FIELD_LIMITS, PatientCard
from aftercare.render.localised import language_name

Action = Literal["enrol", "print"]
TEXT_FIELDS: Final = (
    "treatment", "first_name", "last_name", "email", "treated_on", "areas", "provider", "product",
    "units", "lot", "language", "also_print",
)
CHECKBOXES: Final = ("consent_aftercare", "consent_marketing")
# The form field of each field the enrol rules and the handout report a problem with, where
# its name differs; "name" (first and last name together) is placed by ``card_field``.
FORM_FIELDS: Final = {"campaign": "treatment", "marketing_consent": "consent_marketing",
                      "aftercare_consent": "consent_aftercare"}
INDICATION_LABELS: Final = {"cosmetic": "Expression lines", "migraine": "Chronic migraine"}


@dataclass(frozen=True)
class Checkout:
    """A checked checkout: what to print, and what to enrol (None when printing only)."""

    campaign: Campaign
    handout: Handout                  # in the patient's language
    card: PatientCard
    enrollment: Enrollment | None
    also: Handout | None = None       # the same sheet in a second language, printed after it
    language: str = ""

    @property
    def handouts(self) -> tuple[Handout, ...]:
        """What the PDF holds, one sheet each: the patient's language first."""
        return (self.handout,) if self.also is None else (self.handout, self.also)


def language_options(project: Project) -> list[tuple[str, str]]:
    """Each language the content is written in, by its own name: ("es", "Español")."""
    return [(code, language_label(code)) for code in supported_languages(project)]


def language_label(code: str) -> str:
    """A language by its own name, as its readers look for it in a list: "Español"."""
    name = language_name(code, code)
    return name[:1].upper() + name[1:]


def read_form(form: Mapping[str, str]) -> dict[str, str]:
    """The form's values as typed (ticked boxes as "yes"), for checking and for re-showing."""
    values = {name: form.get(name, "") for name in TEXT_FIELDS}
    values.update({name: "yes" if form.get(name) else "" for name in CHECKBOXES})
    return values


def treatment_label(campaign: Campaign) -> str:
    """Like "Expression lines (botox-cosmetic)"."""
    return f"{INDICATION_LABELS.get(campaign.indication, campaign.title)} ({campaign.id})"


def check_checkout(
    values: Mapping[str, str],
    action: Action,
    project: Project,
    now: dt.datetime,
    recorded_by: str,
) -> tuple[Checkout | None, dict[str, str]]:
    """The checked checkout, or None and one message per field that needs fixing."""
    errors: dict[str, str] = {}
    enrolling = action == "enrol"

    campaign = project.campaigns.get(values["treatment"])
    if campaign is None:
        errors["treatment"] = "Choose the treatment from the list."

    first, last = values["first_name"].strip(), values["last_name"].strip()
    if not first:
        errors["first_name"] = "Enter the patient's first name."
    for name, text in (("first_name", first), ("last_name", last)):
        if len(text) > MAX_NAME:
            errors[name] = f"Use at most {MAX_NAME} characters (this has {len(text)})."

    if enrolling:
        _check_email(values["email"], errors)
        if not values["consent_aftercare"]:
            errors["consent_aftercare"] = (
                "The patient must agree to aftercare emails to be enrolled. If they do not "
                "want emails, choose “Print handout only”."
            )

    today = now.astimezone(project.clinic.timezone.zone).date()
    treated_on = _check_date(values["treated_on"], today, errors)

    languages = supported_languages(project)
    if values["language"] not in languages:
        errors["language"] = "Choose a language from the list."
    second = values["also_print"]
    if second and (second not in languages or second == values["language"]):
        errors["also_print"] = "Choose a second language for the handout, or none."

    full_name = f"{first} {last}".strip()
    if len(full_name) > FIELD_LIMITS["name"] and not errors.keys() & {"first_name", "last_name"}:
        errors["last_name"] = (
            f"Use at most {FIELD_LIMITS['name']} characters for the first and last name "
            f"together (these have {len(full_name)})."
        )

    card: PatientCard | None = None
    if treated_on is not None and "first_name" not in errors and "last_name" not in errors:
        try:
            # What is printed follows what is enrolled: print-only lists no email at all.
            card = PatientCard(
                full_name, treated_on, values["areas"], values["provider"], values["product"],
                values["units"], values["lot"],
                aftercare_consent=enrolling and bool(values["consent_aftercare"]),
                reminder_consent=enrolling and bool(values["consent_marketing"]),
                planned_at=now,
            )
        except InputError as exc:
            errors.setdefault(card_field(exc, values), sentence(exc))

    enrollment: Enrollment | None = None
    if enrolling and not errors and campaign is not None:
        fields = {
            "email": values["email"], "first_name": first, "campaign": campaign.id,
            "treated_on": values["treated_on"], "language": values["language"],
        }
        consents = Consents(aftercare=bool(values["consent_aftercare"]),
                            reminders=bool(values["consent_marketing"]), recorded_by=recorded_by)
        try:
            enrollment = check_enrolment(fields, consents, project, now)
        except ContentError as exc:
            for problem in exc.problems:
                field = FORM_FIELDS.get(problem.path, problem.path)
                if field not in values:
                    field = "treatment"
                errors.setdefault(field, sentence(problem.message))

    handouts: list[Handout] = []
    if campaign is not None and not errors:
        for field in ("language", "also_print"):
            code = values[field]
            handout = project.in_language(code).handouts.get(campaign.handout) if code else None
            if code and handout is None:
                errors[field] = (f"The handout is not translated into {language_label(code)}; "
                                 "choose another language.")
            elif handout is not None:
                handouts.append(handout)
    if errors or campaign is None or card is None:
        return None, errors
    extra = handouts[1] if len(handouts) > 1 else None
    return Checkout(campaign, handouts[0], card, enrollment, extra, values["language"]), errors


def _check_email(text: str, errors: dict[str, str]) -> None:
    if not text.strip():
        errors["email"] = (
            "Enter the patient's email address. If they do not want emails, choose "
            "“Print handout only”."
        )
        return
    try:
        EmailAddress.parse(text)
    except ValueError:
        errors["email"] = "Enter an email address like name@example.com."


def _check_date(text: str, today: dt.date, errors: dict[str, str]) -> dt.date | None:
    try:
        day = parse_date(text.strip())
    except ValueError:
        errors["treated_on"] = "Enter the treatment date as year-month-day, like 2026-11-23."
        return None
    problem = treatment_date_problem(day, today)  # the rule `enroll` and CSV import use
    if problem:
        errors["treated_on"] = sentence(problem)
        return None
    return day


def card_field(exc: InputError, values: Mapping[str, str]) -> str:
    """The form field a PatientCard or renderer complaint is about."""
    if exc.field != "name":
        return FORM_FIELDS.get(exc.field, exc.field)
    # The name is first and last name together: blame the last name only when the characters
    # the font lacks are there and not in the first name.
    missing = set(exc.characters) if isinstance(exc, MissingGlyphs) else set()
    if missing & set(values["last_name"]) and not missing & set(values["first_name"]):
        return "last_name"
    return "first_name"


def sentence(message: object) -> str:
    """A library message ("expected ...; got ...") as a sentence for the page."""
    text = str(message)
    if isinstance(message, InputError):
        text = text.removeprefix(f"{message.field}: ")
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
