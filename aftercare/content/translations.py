"""Loads every further language (handouts/<lang>/, campaigns/<lang>/, templates/email/<lang>/,
templates/i18n/<lang>.yaml) and checks that each translation keeps its source's structure.

A translation carries only words; timing, templates, sources and the clinical review come from
its source. So a translated handout has the same section ids in the same order and the same
number of items in every list (the emergency and call-the-clinic lists above all), and a
translated campaign words every step of its source. Every problem names the file and line.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from aftercare.content.model import (
    Callout,
    Campaign,
    Clinic,
    Handout,
    Localisation,
    Section,
    TranslationRecord,
)
from aftercare.content.schema import Document, build, read_document
from aftercare.content.translated import (
    CalloutText,
    CampaignTranslation,
    HandoutTranslation,
    RecordFile,
    SectionText,
    StringsTranslation,
)
from aftercare.content.values import FrozenMap

T = TypeVar("T")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
TEMPLATE_RECORD = "translation.yaml"
# The lists of a section and of a handout that must keep their source's length.
_SECTION_LISTS = ("paragraphs", "bullets", "steps")
SAFETY_LISTS = ("call_clinic_if", "emergency_if")


def languages_in(root: Path) -> list[str]:
    """Every language some content is translated into: folders under handouts/, campaigns/
    and templates/email/, and files templates/i18n/<lang>.yaml."""
    found: set[str] = set()
    for folder in ("handouts", "campaigns", "templates/email"):
        base = root / folder
        if base.is_dir():
            found |= {p.name for p in base.iterdir() if p.is_dir()}
    strings = root / "templates" / "i18n"
    if strings.is_dir():
        found |= {p.stem for p in strings.glob("*.yaml")}
    return sorted(found)


def load_translations(
    root: Path,
    clinic: Clinic | None,
    clinic_doc: Document,
    handouts: Mapping[str, Handout],
    campaigns: Mapping[str, Campaign],
    docs: list[Document],
) -> dict[str, Localisation]:
    """Each further language's content; problems go to the documents in ``docs``."""
    result: dict[str, Localisation] = {}
    languages = []
    own = clinic.language if clinic else None
    for language in languages_in(root):
        if not _LANGUAGE.fullmatch(language) or language == own:
            where = Document(f"{language}/", None, [])
            where.add(None, "", f"expected a folder named for another language than the "
                      f"clinic's own ({own or 'en'}), in lower-case letters, such as 'es'")
            docs.append(where)
            continue
        languages.append(language)
        loaded = _Language(root, language, docs).load(clinic, handouts, campaigns)
        if loaded is not None:
            result[language] = loaded
    if clinic is not None:
        _check_clinic_texts(clinic, clinic_doc, languages)
    return result


def _check_clinic_texts(clinic: Clinic, doc: Document, languages: Sequence[str]) -> None:
    """clinic.yaml must say in each language what patients read (its opening hours)."""
    for code in clinic.translations:
        if code not in languages:
            shown = ", ".join(languages) or "none: no content is translated"
            doc.add_at(f"translations.{code}", f"expected a language the content is "
                       f"translated into ({shown}); got {code!r}")
    for code in languages:
        if code not in clinic.translations:
            doc.add_at("translations", f"expected translations.{code}.hours: the opening "
                       f"hours in {code}, which every {code} handout and email prints; "
                       "got nothing")


class _Language:
    """The loading of one further language, its documents reported into ``docs``."""

    def __init__(self, root: Path, language: str, docs: list[Document]) -> None:
        self.root, self.language, self.docs = root, language, docs
        self.records: dict[str, TranslationRecord] = {}
        self.tags: dict[str, str] = {}

    def load(
        self, clinic: Clinic | None, handouts: Mapping[str, Handout],
        campaigns: Mapping[str, Campaign],
    ) -> Localisation | None:
        before = sum(len(d.problems) for d in self.docs)
        strings = self._strings()
        templates = self._templates()
        local_handouts = {
            key: handout for key, (doc, text) in self._folder("handouts", HandoutTranslation)
            if (handout := self._handout(doc, key, text, handouts)) is not None
        }
        local_campaigns = {
            key: campaign for key, (doc, text) in self._folder("campaigns", CampaignTranslation)
            if (campaign := self._campaign(doc, key, text, campaigns)) is not None
        }
        tag = self._tag()
        problems = sum(len(d.problems) for d in self.docs) - before
        if clinic is None or problems or tag is None:
            return None
        text = clinic.translations.get(self.language)
        local_clinic = dataclasses.replace(
            clinic, locale=tag, hours=text.hours if text else clinic.hours)
        return Localisation(
            language=self.language, tag=tag, clinic=local_clinic,
            handouts=FrozenMap(local_handouts), campaigns=FrozenMap(local_campaigns),
            strings=strings, templates=templates, records=FrozenMap(self.records),
        )

    # ---------------------------------------------------------------- files

    def _read(self, path: Path, name: str, cls: type[object]) -> tuple[Document, object | None]:
        doc = read_document(path, name)
        self.docs.append(doc)
        value = build(cls, doc)
        record = getattr(value, "translation", None)
        if isinstance(record, TranslationRecord):
            self._check_record(doc, record)
        return doc, value

    def _folder(self, folder: str, cls: type[object]) -> list[tuple[str, tuple[Document, object]]]:
        base = self.root / folder / self.language
        found = []
        for path in sorted(base.glob("*.yaml")) if base.is_dir() else []:
            doc, value = self._read(path, f"{folder}/{self.language}/{path.name}", cls)
            if value is not None:
                found.append((path.stem, (doc, value)))
        return found

    def _strings(self) -> Mapping[str, str]:
        name = f"templates/i18n/{self.language}.yaml"
        path = self.root / name
        if not path.is_file():
            missing = Document(name, None, [])
            missing.add(None, "", "expected the shared templates' sentences in this language "
                        f"(every {self.language} handout and email uses them); the file is "
                        "missing")
            self.docs.append(missing)
            return FrozenMap()
        doc, value = self._read(path, name, StringsTranslation)
        if isinstance(value, StringsTranslation):
            self._check_source(doc, value.translation, "templates")
            return value.strings
        return FrozenMap()

    def _templates(self) -> frozenset[str]:
        folder = self.root / "templates" / "email" / self.language
        if not folder.is_dir():
            return frozenset()
        names = frozenset(p.name for p in folder.iterdir()
                          if p.is_file() and p.suffix in (".html", ".txt"))
        record_name = f"templates/email/{self.language}/{TEMPLATE_RECORD}"
        if not (folder / TEMPLATE_RECORD).is_file():
            missing = Document(record_name, None, [])
            missing.add(None, "", "expected the translation record of the templates in this "
                        "folder; the file is missing")
            self.docs.append(missing)
            return names
        doc, value = self._read(folder / TEMPLATE_RECORD, record_name, RecordFile)
        if isinstance(value, RecordFile):
            self._check_source(doc, value.translation, "templates/email")
        english = self.root / "templates" / "email"
        for name in sorted(names):
            if not (english / name).is_file():
                doc.add(None, "", f"{self.language}/{name}: expected a template with the same "
                        f"name in templates/email/ (its source); there is none")
        return names

    # ---------------------------------------------------------------- records

    def _check_record(self, doc: Document, record: TranslationRecord) -> None:
        self.records[doc.name] = record
        self.tags[doc.name] = record.language
        primary = record.language.split("-")[0].lower()
        if primary != self.language:
            doc.add_at("translation.language", f"expected a language tag for "
                       f"{self.language!r} (such as '{self.language}-US'); got "
                       f"{record.language!r}")
        if record.status == "reviewed" and (record.reviewed_by is None
                                            or record.reviewed_on is None):
            doc.add_at("translation.status", "expected reviewed_by and reviewed_on with "
                       "status reviewed (run `pipeline translation stamp FILE --reviewed-by "
                       "NAME`); got none")
        if record.status == "draft" and record.reviewed_by is not None:
            doc.add_at("translation.reviewed_by", "expected no reviewer on a draft (set status: "
                       "reviewed once a translator and a clinician have reviewed it); got "
                       f"{record.reviewed_by!r}")
        if record.reviewed_on is not None and record.reviewed_on < record.translated_on:
            doc.add_at("translation.reviewed_on", f"expected a date on or after translated_on "
                       f"({record.translated_on}); got {record.reviewed_on}")

    def _check_source(self, doc: Document, record: TranslationRecord, expected: str) -> None:
        if record.source != expected:
            doc.add_at("translation.source", f"expected {expected!r}; got {record.source!r}")

    def _source(self, doc: Document, folder: str, key: str, sources: Mapping[str, T],
                record: TranslationRecord) -> T | None:
        """The source a translation names by its file name; None (reported) when missing."""
        source = sources.get(key)
        if source is None:
            if not (self.root / folder / f"{key}.yaml").is_file():
                doc.add(None, "", f"expected a translation of a file in {folder}/; there is no "
                        f"{folder}/{key}.yaml")
            return None  # else the source's own problems are reported
        self._check_source(doc, record, key)
        return source

    def _tag(self) -> str | None:
        tags = sorted(set(self.tags.values()))
        if len(tags) > 1:
            first = next(name for name, tag in self.tags.items() if tag == tags[1])
            doc = next(d for d in self.docs if d.name == first)
            doc.add_at("translation.language", f"expected the same language tag as the other "
                       f"{self.language} files ({tags[0]}); got {tags[1]!r}")
            return None
        return tags[0] if tags else None

    # ---------------------------------------------------------------- handouts

    def _handout(self, doc: Document, key: str, text: object,
                 sources: Mapping[str, Handout]) -> Handout | None:
        assert isinstance(text, HandoutTranslation)
        source = self._source(doc, "handouts", key, sources, text.translation)
        if source is None:
            return None
        before = len(doc.problems)
        sections = self._sections(doc, text.sections, source)
        for field in SAFETY_LISTS:
            _same_length(doc, field, getattr(text, field), getattr(source, field), key)
        if len(doc.problems) > before or sections is None:
            return None
        return dataclasses.replace(
            source, title=text.title, summary=text.summary, sections=sections,
            call_clinic_if=text.call_clinic_if, emergency_if=text.emergency_if,
            language=self.language, translation=text.translation,
        )

    def _sections(self, doc: Document, texts: Sequence[SectionText],
                  source: Handout) -> tuple[Section, ...] | None:
        ids = [s.id for s in source.sections]
        given = [t.id for t in texts]
        for index, section_id in enumerate(given):
            if section_id not in ids:
                doc.add_at(f"sections[{index}].id", f"expected a section id of handouts/"
                           f"{source.id}.yaml ({', '.join(ids)}); got unknown id {section_id!r}")
            elif given.count(section_id) > 1 and given.index(section_id) != index:
                doc.add_at(f"sections[{index}].id", f"expected each section once; got "
                           f"{section_id!r} again")
        for section_id in ids:
            if section_id not in given:
                doc.add_at("sections", f"expected the section {section_id!r} of handouts/"
                           f"{source.id}.yaml; it is missing")
        if set(given) == set(ids) and len(given) == len(ids) and given != ids:
            doc.add_at("sections", f"expected the sections in the source's order "
                       f"({', '.join(ids)}); got {', '.join(given)}")
        if given != ids:
            return None
        return tuple(self._section(doc, f"sections[{i}]", text, section, source.id)
                     for i, (text, section) in enumerate(zip(texts, source.sections, strict=True)))

    def _section(self, doc: Document, where: str, text: SectionText, source: Section,
                 handout_id: str) -> Section:
        for field in _SECTION_LISTS:
            _same_length(doc, f"{where}.{field}", getattr(text, field), getattr(source, field),
                         handout_id)
        callout = self._callout(doc, where, text.callout, source.callout)
        return dataclasses.replace(
            source, heading=text.heading, paragraphs=text.paragraphs, bullets=text.bullets,
            steps=text.steps, callout=callout)

    def _callout(self, doc: Document, section: str, text: CalloutText | None,
                 source: Callout | None) -> Callout | None:
        where = f"{section}.callout"
        if (text is None) != (source is None):
            expected = "no callout" if source is None else "a callout"
            got = "one" if text is not None else "none"
            doc.add_at(where if text is not None else section,
                       f"expected {expected}, as the source has; got {got}")
            return source
        if text is None or source is None:
            return None
        if (text.text is None) != (source.text is None):
            doc.add_at(where, "expected callout text where the source has it, and only there")
        _same_length(doc, f"{where}.bullets", text.bullets, source.bullets, "")
        return dataclasses.replace(source, title=text.title, text=text.text,
                                   bullets=text.bullets)

    # ---------------------------------------------------------------- campaigns

    def _campaign(self, doc: Document, key: str, text: object,
                  sources: Mapping[str, Campaign]) -> Campaign | None:
        assert isinstance(text, CampaignTranslation)
        source = self._source(doc, "campaigns", key, sources, text.translation)
        if source is None:
            return None
        before = len(doc.problems)
        steps = []
        keys = [s.key for s in source.steps]
        for step_key in text.steps:
            if step_key not in keys:
                doc.add_at(f"steps.{step_key}", f"expected a step of campaigns/{key}.yaml "
                           f"({', '.join(keys)}); got unknown step {step_key!r}")
        for step in source.steps:
            words = text.steps.get(step.key)
            if words is None:
                doc.add_at("steps", f"expected the step {step.key!r} of campaigns/{key}.yaml; "
                           "it is missing")
                continue
            if (words.calendar is None) != (step.calendar is None):
                expected = "a calendar entry" if step.calendar else "no calendar entry"
                doc.add_at(f"steps.{step.key}", f"expected {expected}, as the source step has")
            for name, message in words.calendar.placeholder_problems() if words.calendar else ():
                doc.add_at(f"steps.{step.key}.calendar.{name}", message)
            steps.append(dataclasses.replace(
                step, label=words.label, subject=words.subject, preheader=words.preheader,
                calendar=words.calendar))
        if len(doc.problems) > before:
            return None
        return dataclasses.replace(
            source, title=text.title, next_treatment_label=text.next_treatment_label,
            steps=tuple(steps), language=self.language, translation=text.translation)


def _same_length(doc: Document, path: str, given: Sequence[str], source: Sequence[str],
                 handout_id: str) -> None:
    if len(given) != len(source):
        of = f" of handouts/{handout_id}.yaml" if handout_id else ""
        doc.add_at(path or "(top level)", f"expected {len(source)} items, as the source{of} "
                   f"has; got {len(given)}")
