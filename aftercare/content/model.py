"""The typed content model: the clinic, its handouts and campaigns, as frozen dataclasses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aftercare.content.values import (
    ClockTime,
    Colour,
    EmailAddress,
    Offset,
    Slug,
    Url,
    Weekday,
    ZoneName,
)

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

    @property
    def language(self) -> str:
        return self.locale.split("-")[0]


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

    def section(self, section_id: str) -> Section | None:
        """The section with this id, or None."""
        return next((s for s in self.sections if s.id == section_id), None)

    @property
    def is_treatment(self) -> bool:
        return self.indication in TREATMENT_INDICATIONS


# ---------------------------------------------------------------- campaigns/<id>.yaml


@dataclass(frozen=True)
class CalendarEntry:
    summary: str
    description: str


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

    def step(self, key: str) -> Step | None:
        """The step a message stored under ``key`` belongs to, also under a key it had before."""
        return next((s for s in self.steps if s.answers_to(key)), None)


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
