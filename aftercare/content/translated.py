"""The shapes of translation files as written: a handout's, a campaign's, the email templates'
record and the shared templates' sentences; loading turns them into localised content."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aftercare.content.model import CalendarEntry, TranslationRecord
from aftercare.content.values import Slug


@dataclass(frozen=True)
class CalloutText:
    title: str
    text: str | None = None
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True)
class SectionText:
    id: Slug
    heading: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    callout: CalloutText | None = None


@dataclass(frozen=True)
class HandoutTranslation:
    """handouts/<language>/<id>.yaml: a handout's words in another language, section by section."""

    translation: TranslationRecord
    title: str
    summary: str
    sections: tuple[SectionText, ...]
    call_clinic_if: tuple[str, ...] = ()
    emergency_if: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepText:
    label: str
    subject: str
    preheader: str
    calendar: CalendarEntry | None = None


@dataclass(frozen=True)
class CampaignTranslation:
    """campaigns/<language>/<id>.yaml: the words of each step; timing stays in the source."""

    translation: TranslationRecord
    title: str
    next_treatment_label: str
    steps: Mapping[Slug, StepText]


@dataclass(frozen=True)
class RecordFile:
    """templates/email/<language>/translation.yaml: the record of the translated templates."""

    translation: TranslationRecord


@dataclass(frozen=True)
class StringsTranslation:
    """templates/i18n/<language>.yaml: the shared templates' fixed sentences, by English text."""

    translation: TranslationRecord
    strings: Mapping[str, str]
