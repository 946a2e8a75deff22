"""The typed content model: the clinic, its handouts and campaigns, as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aftercare.content.values import (
    ClockTime,
    Colour,
    EmailAddress,
    FrozenMap,
    Offset,
    Slug,
    Url,
    Weekday,
    ZoneName,
)

if TYPE_CHECKING:
    from aftercare.content.sites import Site

Indication = Literal["cosmetic", "migraine", "general"]
TREATMENT_INDICATIONS: tuple[Indication, ...] = ("cosmetic", "migraine")
# What an aftercare email carries: "full", the step's content itself; "minimal", a neutral
# note with a personal link to the same content on the clinic's own care page.
ContentMode = Literal["full", "minimal"]
MINIMAL_TEMPLATE = "minimal"  # templates/email/minimal.html and .txt: every minimal email

# ---------------------------------------------------------------- clinic.yaml


@dataclass(frozen=True)
class Brand:
    primary: Colour
    accent: Colour
    text: Colour


@dataclass(frozen=True)
class EmailSettings:
    from_address: EmailAddress
    from_name: str
    reply_to: EmailAddress
    public_base_url: Url               # where `pipeline serve` is reachable: unsubscribe links
    closed_on: tuple[dt.date, ...] = ()
    privacy_words: tuple[str, ...] = ()
    content: ContentMode = "full"      # each campaign may say otherwise
    care_link_days: int = 120          # how long the link of a minimal email opens its care page
    care_handout: bool = False         # the care page also links the patient's one-sheet handout


@dataclass(frozen=True)
class DeliverySettings:
    """How email reaches the provider; every key has a safe default."""

    # Messages due within this many hours are handed to the provider with an exact send
    # time (SendGrid accepts at most 72 hours ahead). Short windows leave fewer queued
    # messages to cancel when a patient unsubscribes.
    lookahead_hours: int = 2
    max_parallel: int = 8
    sandbox: bool = False
    unsubscribe_group_id: int | None = None
    webhook_public_key: str | None = None


@dataclass(frozen=True)
class StaffSettings:
    """The staff page's sessions."""

    # A session unused this long ends (front desks share computers); 1 to 480 (8 hours).
    idle_timeout_minutes: int = 30


@dataclass(frozen=True)
class ImportLimits:
    """The largest CSV file `pipeline import` reads."""

    max_megabytes: int = 20
    max_rows: int = 100_000


@dataclass(frozen=True)
class RetentionSettings:
    """How long the outbox keeps a patient's name and address (None: until `pipeline forget`)."""

    months_after_last_message: int | None = None


@dataclass(frozen=True)
class ClinicText:
    """What clinic.yaml says to patients in words, in one more language (``translations.es``)."""

    hours: str


@dataclass(frozen=True)
class Clinic:
    name: str
    logo: str
    brand: Brand
    phone: str
    urgent_line: str
    emergency_number: str
    address: tuple[str, ...]
    website: Url
    booking_url: Url
    timezone: ZoneName
    paper_size: Literal["A4", "Letter"]
    locale: str
    send_time: ClockTime
    hours: str
    email: EmailSettings
    max_reading_grade: int = 8
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    staff: StaffSettings = field(default_factory=StaffSettings)
    csv_import: ImportLimits = field(default_factory=ImportLimits)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    # The clinic's words in each further language, by language code ("es").
    translations: Mapping[str, ClinicText] = field(default_factory=FrozenMap)

    @property
    def language(self) -> str:
        return self.locale.split("-")[0]

    def in_language(self, language: str, tag: str) -> Clinic:
        """The clinic in ``language`` (document language ``tag``): its hours as written in it."""
        text = self.translations.get(language)
        return dataclasses.replace(self, locale=tag, hours=text.hours if text else self.hours)


# ---------------------------------------------------------------- translations

TranslationStatus = Literal["draft", "reviewed"]


@dataclass(frozen=True)
class TranslationRecord:
    """Who translated a file and who reviewed it, and what its source was at each time.

    ``translated_from`` and ``reviewed_from`` hold a short content hash of each part of the
    source (a handout's sections, a campaign's steps, an email template) as it was when the
    translation was made and when it was reviewed (`pipeline translation stamp` writes them),
    so `pipeline check` can name the parts that changed since.
    """

    source: str                     # what it translates: "aftercare-cosmetic", "templates/email"
    language: str                   # a language tag: "es-US"
    status: TranslationStatus
    translated_by: str
    translated_on: dt.date
    reviewed_by: str | None = None
    reviewed_on: dt.date | None = None
    translated_from: Mapping[str, str] = field(default_factory=FrozenMap)
    reviewed_from: Mapping[str, str] | None = None


# ---------------------------------------------------------------- handouts/<id>.yaml


@dataclass(frozen=True)
class Callout:
    kind: Literal["tip", "warning", "emergency"]
    title: str
    text: str | None = None
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    id: Slug
    heading: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    callout: Callout | None = None


@dataclass(frozen=True)
class Review:
    reviewed_by: str
    reviewed_on: dt.date
    next_review_due: dt.date


@dataclass(frozen=True)
class SourceRef:
    title: str
    url: Url | None = None


@dataclass(frozen=True)
class Handout:
    title: str
    indication: Indication
    version: str
    summary: str
    sections: tuple[Section, ...]
    review: Review
    sources: tuple[SourceRef, ...]
    call_clinic_if: tuple[str, ...] = ()
    emergency_if: tuple[str, ...] = ()
    id: str = field(default="", metadata={"yaml": False})
    # A translation's language code ("es"); "" for the clinic's own language. ``translation``
    # is its record; the source's review stays in ``review``.
    language: str = field(default="", metadata={"yaml": False})
    translation: TranslationRecord | None = field(default=None, metadata={"yaml": False})

    def section(self, section_id: str) -> Section | None:
        """The section with this id, or None."""
        return next((s for s in self.sections if s.id == section_id), None)

    @property
    def is_treatment(self) -> bool:
        return self.indication in TREATMENT_INDICATIONS


# ---------------------------------------------------------------- campaigns/<id>.yaml


# The one placeholder a calendar entry may hold: the clinic's name, from clinic.yaml.
CLINIC_PLACEHOLDER = "{clinic}"


@dataclass(frozen=True)
class CalendarEntry:
    summary: str
    description: str

    def filled(self, clinic_name: str) -> CalendarEntry:
        """The entry as the patient's calendar shows it, the clinic's name in place."""
        return CalendarEntry(self.summary.replace(CLINIC_PLACEHOLDER, clinic_name),
                             self.description.replace(CLINIC_PLACEHOLDER, clinic_name))

    def placeholder_problems(self) -> list[tuple[str, str]]:
        """(field, message) for each brace placeholder other than {clinic}."""
        found = []
        for name in ("summary", "description"):
            for other in re.findall(r"\{[^{}]*\}", getattr(self, name)):
                if other != CLINIC_PLACEHOLDER:
                    found.append((name, f"expected no placeholder but {CLINIC_PLACEHOLDER} "
                                        f"(the clinic's name); got {other}"))
        return found


# Clinical steps due within this many days of treatment are safety messages: they go out on
# their own day whatever quiet weekdays or closures say (an email is not the clinic opening).
SAFETY_DAYS = 7


@dataclass(frozen=True)
class Step:
    key: Slug
    offset: Offset
    kind: Literal["clinical", "marketing"]
    label: str
    subject: str
    preheader: str
    template: Slug
    grace: Offset
    send_time: ClockTime | None = None
    # The latest local time a late message still goes out that day; later, the next morning.
    send_until: ClockTime | None = None
    formerly: tuple[Slug, ...] = ()
    sections: tuple[Slug, ...] = ()
    warning_signs: bool = False
    calendar: CalendarEntry | None = None

    @property
    def is_safety(self) -> bool:
        """A clinical step in the first days: never moved by quiet weekdays or closures."""
        return self.kind == "clinical" and self.offset.longest_days() <= SAFETY_DAYS

    def answers_to(self, key: str) -> bool:
        """Whether a message stored under ``key`` belongs to this step (its key or a former one)."""
        return key == self.key or key in self.formerly


@dataclass(frozen=True)
class Campaign:
    title: str
    indication: Indication
    handout: Slug
    next_treatment_after: Offset
    next_treatment_label: str
    steps: tuple[Step, ...]
    quiet_weekdays: tuple[Weekday, ...] = ()
    content: ContentMode | None = None  # None: the clinic's email.content
    id: str = field(default="", metadata={"yaml": False})
    language: str = field(default="", metadata={"yaml": False})  # as Handout.language
    translation: TranslationRecord | None = field(default=None, metadata={"yaml": False})

    def step(self, key: str) -> Step | None:
        """The step a message stored under ``key`` belongs to, also under a key it had before."""
        return next((s for s in self.steps if s.answers_to(key)), None)


# ---------------------------------------------------------------- further languages


@dataclass(frozen=True)
class Localisation:
    """One further language: the clinic, handouts and campaigns in it, ready to render."""

    language: str                                 # the code the outbox stores: "es"
    tag: str                                      # the document language: "es-US"
    clinic: Clinic
    handouts: Mapping[str, Handout]
    campaigns: Mapping[str, Campaign]
    strings: Mapping[str, str]                    # English sentence -> this language's
    templates: frozenset[str]                     # translated email templates: "day-0.html"
    records: Mapping[str, TranslationRecord]      # by file: "handouts/es/x.yaml" -> record

    def missing_for(self, campaign: Campaign) -> list[str]:
        """What this language lacks to send ``campaign`` (empty when it can): files, steps."""
        missing: list[str] = []
        translated = self.campaigns.get(campaign.id)
        folder = f"campaigns/{self.language}/{campaign.id}.yaml"
        if translated is None:
            missing.append(folder)
        if campaign.handout not in self.handouts:
            missing.append(f"handouts/{self.language}/{campaign.handout}.yaml")
        for step in campaign.steps:
            if translated is not None and translated.step(step.key) is None:
                missing.append(f"step {step.key} in {folder}")
            for kind in ("html", "txt"):
                if f"{step.template}.{kind}" not in self.templates:
                    missing.append(f"templates/email/{self.language}/{step.template}.{kind}")
        return list(dict.fromkeys(missing))


# ---------------------------------------------------------------- the project


@dataclass(frozen=True)
class Project:
    """Everything the clinic wrote, validated; the only thing later stages read."""

    root: Path
    clinic: Clinic
    handouts: Mapping[str, Handout]
    campaigns: Mapping[str, Campaign]
    # Where each key path was written, per file ("handouts/x.yaml" -> "sections[2].id" -> 14),
    # so later checks (lint) can name the line.
    lines: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Every further language the content is written in, by code ("es").
    translations: Mapping[str, Localisation] = field(default_factory=dict)
    # sites/, by id (none: the organisation is one site, the implicit "main")
    sites: Mapping[str, Site] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        """The clinic's own language first, then every translation's."""
        return (self.clinic.language, *sorted(self.translations))

    def language_tag(self, language: str) -> str:
        """The document language for a code: "es" -> "es-US"; the clinic's locale for its own."""
        found = self.translations.get(language)
        return found.tag if found is not None else self.clinic.locale

    def in_language(self, language: str) -> Project:
        """This project as a reader of ``language`` sees it: its clinic, handouts and campaigns
        in that language (the same project for the clinic's own language)."""
        if (found := self.translations.get(language)) is None:
            return self
        return dataclasses.replace(
            self, clinic=found.clinic, handouts=found.handouts, campaigns=found.campaigns)

    def at_site(self, site: str) -> Project:
        """This project as a patient of ``site`` reads it: the site's name, numbers, hours,
        zone, closures and sender in every language (the organisation's: no such file)."""
        if (found := self.sites.get(site)) is None:
            return self
        local = {code: dataclasses.replace(loc, clinic=found.clinic.in_language(code, loc.tag))
                 for code, loc in self.translations.items()}
        return dataclasses.replace(self, clinic=found.clinic, translations=local)

    def language_of(self, item: Handout | Campaign) -> str:
        """The language code a handout or campaign is written in."""
        return item.language or self.clinic.language

    def line_of(self, file: str, path: str) -> int | None:
        return self.lines.get(file, {}).get(path)

    def content_of(self, campaign: Campaign) -> ContentMode:
        """What the campaign's emails carry: its own content setting, else the clinic's."""
        return campaign.content or self.clinic.email.content

    def campaign_for(self, indication: str) -> Campaign | None:
        return next((c for c in self.campaigns.values() if c.indication == indication), None)

    @property
    def templates(self) -> Path:
        return self.root / "templates"
