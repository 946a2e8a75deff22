"""The one rule set for an enrolment, typed at the desk or the command line or read from CSV."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from zoneinfo import ZoneInfo

from aftercare.content.model import Project
from aftercare.content.schema import parse_date
from aftercare.content.values import EmailAddress, ZoneName
from aftercare.dates import require_aware
from aftercare.errors import ContentError, InputError, Problem
from aftercare.outbox.records import IMPLICIT_SITE, Enrollment

# What the patient is shown and agrees to. Changing a word changes the version stored with
# every later enrolment, so we can always tell which wording a patient agreed to.
CONSENT_WORDING: Mapping[str, str] = MappingProxyType(
    {
        "aftercare": (
            "I agree that the clinic may email me aftercare advice about looking after myself "
            "after my treatment, at the email address I have given."
        ),
        "marketing": (
            "I would also like the clinic to email me a reminder when it is time to book a "
            "future visit. This is optional, and I can stop these reminders at any time."
        ),
    }
)
CONSENT_WORDING_VERSION: str = hashlib.sha256(
    json.dumps(dict(CONSENT_WORDING), sort_keys=True, ensure_ascii=False).encode("utf-8")
).hexdigest()[:12]


# The fields of one enrolment: the columns of an import file, the options of `enroll`.
REQUIRED_COLUMNS = ("email", "first_name", "campaign", "treated_on")
OPTIONAL_COLUMNS = ("patient_id", "timezone", "marketing_consent", "language", "site")
FIELDS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# What a problem with typed fields (not a file) is reported under; its path is the field name,
# which the command line shows as its option and the checkout page as its form field.
TYPED_INPUT = "command line"

MAX_NAME = 60
MAX_PATIENT_ID = 64
# The treatment-date rule, the same for the command line, the checkout page and CSV import:
# never in the future at the clinic (the treatment happened there, whatever the patient's
# zone), and at most a year back, so staff can catch up on a late entry; a step already past
# its grace is then recorded as skipped, never sent late.
MAX_DAYS_AGO = 365
_PATIENT_ID = re.compile(r"[A-Za-z0-9._-]+")
_YES = {"true", "yes", "1"}
_NO = {"false", "no", "0", ""}
# Bidirectional overrides can make a name display differently from what is stored.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# ---------------------------------------------------------------- one enrolment


def parse_enrollment(
    fields: Mapping[str, str],
    project: Project,
    now: dt.datetime,
    recorded_by: str,
    row: int | None = None,
    *,
    source: str | None = None,
) -> Enrollment:
    """Check one enrolment; raise every problem together, naming each field and the CSV line.

    ``row`` is the CSV line the record starts on and ``source`` the file's name; without a row
    the fields were typed, and problems are reported under ``TYPED_INPUT``.
    """
    require_aware(now, "now")
    problems: list[Problem] = []
    file = (source or "CSV file") if row is not None else TYPED_INPUT

    def problem(field: str, message: str) -> None:
        problems.append(Problem(file, row, field, message))

    for unknown in sorted(set(fields) - set(FIELDS)):
        problem(unknown, f"expected one of {', '.join(FIELDS)}; got unknown field {unknown!r}")

    def text(field: str) -> str:
        return (fields.get(field) or "").strip()

    # The site decides the default zone and the day "today" is at the clinic.
    site = text("site") or IMPLICIT_SITE
    sites = known_sites(project)
    if site not in sites:
        problem("site", f"expected one of {', '.join(sites)} (the sites of sites/ and the "
                f"organisation's own, {IMPLICIT_SITE}); got {_shown(site)}")
    clinic = project.at_site(site).clinic

    email: EmailAddress | None = None
    try:
        email = EmailAddress.parse(text("email"))
    except ValueError as exc:
        problem("email", f"{exc}; got {_shown(text('email'))}")

    first_name = unicodedata.normalize("NFC", text("first_name"))
    name_problem = _check_name(first_name)
    if name_problem:
        problem("first_name", name_problem)

    campaign = text("campaign")
    if campaign not in project.campaigns:
        known = ", ".join(sorted(project.campaigns)) or "(none: campaigns/ is empty)"
        problem("campaign", f"expected one of {known}; got {_shown(campaign)}")

    zone_text = text("timezone") or clinic.timezone
    zone: ZoneName | None = None
    try:
        zone = ZoneName.parse(zone_text)
    except ValueError as exc:
        problem("timezone", f"{exc}; got {_shown(zone_text)}")

    treated_on, date_problem = _treatment_date(text("treated_on"), clinic.timezone.zone, now)
    if date_problem:
        problem("treated_on", date_problem)

    language = requested_language(text("language"), project)
    language_problem = check_language(project, language, campaign)
    if language_problem:
        problem("language", f"{language_problem}; got {_shown(text('language'))}")

    consent_text = text("marketing_consent").lower()
    if consent_text not in _YES | _NO:
        problem(
            "marketing_consent",
            "expected true, false, yes, no, 1, 0 or nothing; "
            f"got {_shown(text('marketing_consent'))}",
        )

    patient_ref = text("patient_id") or None
    if patient_ref is not None and (
        len(patient_ref) > MAX_PATIENT_ID or not _PATIENT_ID.fullmatch(patient_ref)
    ):
        problem(
            "patient_id",
            f"expected up to {MAX_PATIENT_ID} letters, digits, '.', '_' or '-'; "
            f"got {_shown(patient_ref)}",
        )

    if problems or email is None or zone is None or treated_on is None:
        raise ContentError(problems)
    return Enrollment(
        email=email,
        first_name=first_name,
        campaign=campaign,
        treated_on=treated_on,
        timezone=zone,
        language=language,
        marketing_consent=consent_text in _YES,
        recorded_by=recorded_by,
        consent_wording_version=consent_wording_version(project, language),
        patient_ref=patient_ref,
        site=site,
    )


def check_treatment_date(text: str, zone: ZoneInfo, now: dt.datetime) -> dt.date:
    """A typed treatment date (YYYY-MM-DD), from a year ago to today in ``zone`` (the site's);
    InputError on the field ``treated_on``."""
    require_aware(now, "now")
    day, problem = _treatment_date(text.strip(), zone, now)
    if problem or day is None:
        raise InputError("treated_on", problem or "expected a date (YYYY-MM-DD)")
    return day


def _treatment_date(text: str, zone: ZoneInfo, now: dt.datetime) -> tuple[dt.date | None, str]:
    try:
        day = parse_date(text)
    except ValueError as exc:
        return None, f"{exc}; got {_shown(text)}"
    problem = treatment_date_problem(day, now.astimezone(zone).date())
    return (None, f"{problem}; got {text!r}") if problem else (day, "")


def treatment_date_problem(day: dt.date, today: dt.date) -> str | None:
    """What is wrong with a treatment date, ``today`` being the clinic's; None when it is fine."""
    if day > today:
        return (f"expected today ({today} at the clinic) or earlier: a treatment date cannot "
                "be in the future")
    earliest = today - dt.timedelta(days=MAX_DAYS_AGO)
    if day < earliest:
        return f"expected a date within the last {MAX_DAYS_AGO} days (on or after {earliest})"
    return None


def consent_wording(project: Project, language: str) -> dict[str, str]:
    """The consent wording as read to a patient of ``language`` (templates/i18n/<language>.yaml
    translates it; the English when it has no translation, which `pipeline check` reports)."""
    strings = project.translations[language].strings if language in project.translations else {}
    return {kind: strings.get(text, text) for kind, text in CONSENT_WORDING.items()}


def consent_wording_version(project: Project, language: str) -> str:
    """The version of the wording a patient agreed to: the English wording's, or for another
    language a hash of the English and the translation read to them."""
    if language == project.clinic.language or language not in project.translations:
        return CONSENT_WORDING_VERSION
    read = json.dumps([dict(CONSENT_WORDING), consent_wording(project, language)],
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(read.encode("utf-8")).hexdigest()[:12]


def supported_languages(project: Project) -> tuple[str, ...]:
    """Languages the content is written in: the clinic's own, then every translation's."""
    return project.languages


def language_code(text: str) -> str:
    """A language as typed ("es", "ES", "es-US", "es_US") as the code the outbox stores."""
    return re.split(r"[-_]", text.strip().lower(), maxsplit=1)[0]


def requested_language(typed: str, project: Project) -> str:
    """The language an enrolment asks for, as the outbox stores it: the typed one, else the
    clinic's (a site keeps the organisation's language)."""
    return language_code(typed) or project.clinic.language


def check_language(project: Project, language: str, campaign: str) -> str | None:
    """What keeps an enrolment in ``language`` from going ahead: a language the content is not
    written in, or a campaign whose translation lacks any part of a step (no email in another
    language is ever sent by surprise). None when it can go ahead."""
    languages = supported_languages(project)
    if language not in languages:
        return (f"expected one of {', '.join(languages)} (the languages the content is "
                "written in)")
    local = project.translations.get(language)
    source = project.campaigns.get(campaign)
    if local is None or source is None:
        return None
    missing = local.missing_for(source)
    if missing:
        return (f"{campaign} has no complete {language} translation, so no email could be "
                f"sent in {language}; missing: {', '.join(missing)}. Enrol in "
                f"{project.clinic.language}, or add the translation first")
    return None


def known_sites(project: Project) -> tuple[str, ...]:
    """The sites enrolments, staff and API keys may belong to: the organisation's own (the
    implicit "main", clinic.yaml) first, then every site of sites/."""
    return (IMPLICIT_SITE, *sorted(s for s in project.sites if s != IMPLICIT_SITE))


def _check_name(name: str) -> str | None:
    if not name:
        return "expected a first name; got nothing"
    if len(name) > MAX_NAME:
        return f"expected at most {MAX_NAME} characters; got {len(name)}"
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return (
                "expected a name without control characters (tabs, line breaks); "
                f"got {_shown(name)}"
            )
    return None


def _shown(value: str) -> str:
    """A value quoted for an error message, cut short so a message never carries a whole row."""
    if not value:
        return "nothing"
    return repr(value if len(value) <= 40 else value[:40] + "…")

