"""The rules a translation must keep: its source unchanged since it was translated or reviewed,
every handout and campaign step translated, every shared sentence translated with the same
values, and every character printable in the handout font."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from aftercare.check.findings import Finding
from aftercare.check.reading import sentence_units
from aftercare.content.fingerprint import changed_parts, describe_parts
from aftercare.content.model import Handout, Project
from aftercare.content.stamp import translation_files
from aftercare.enrol.rules import CONSENT_WORDING
from aftercare.errors import Problem
from aftercare.render.i18n import CODE_MESSAGES, template_messages
from aftercare.render.weasy import printable_characters

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def check_translation_drift(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about a translation whose source changed since it was reviewed (a draft: since it
    was translated), naming the parts that changed."""
    sentences = list(used_sentences(project)) if project.translations else []
    for file in translation_files(project):
        current = file.source_parts(project, sentences)
        record = file.record
        line = project.line_of(file.name, "translation")
        stamp_it = f"`pipeline translation stamp {file.name} --translated-by NAME`"
        if record.status == "reviewed":
            recorded, event, day = record.reviewed_from, "review", record.reviewed_on
            if recorded is None:
                stamp_it = stamp_it.replace("--translated-by", "--reviewed-by")
        else:
            recorded, event, day = record.translated_from, "translation", record.translated_on
        if not recorded:
            yield Finding("warning", Problem(
                file.name, line, "", f"no record of the source at its {event}; after checking "
                f"it against the source, run {stamp_it}"))
            continue
        changed = changed_parts(recorded, current)
        if changed:
            yield Finding("warning", Problem(
                file.name, line, "", f"source changed since {event} on {day}: "
                f"{describe_parts(changed)}"))


def check_untranslated(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about a handout with no translation, or a campaign a language cannot send (an
    enrolment in that language is refused)."""
    for code, local in sorted(project.translations.items()):
        for handout_id in sorted(set(project.handouts) - set(local.handouts)):
            yield Finding("warning", Problem(
                f"handouts/{code}/", None, "", f"no {code} translation of "
                f"handouts/{handout_id}.yaml; `pipeline build` leaves it out in {code}"))
        for campaign_id, campaign in sorted(project.campaigns.items()):
            missing = local.missing_for(campaign)
            if missing:
                yield Finding("warning", Problem(
                    f"campaigns/{code}/", None, "", f"cannot send campaigns/{campaign_id}.yaml "
                    f"in {code} (enrolments in {code} are refused); missing: "
                    f"{', '.join(missing)}"))


def check_shared_sentences(project: Project, today: dt.date) -> Iterator[Finding]:
    """Every sentence the templates and the code write needs each language's translation, with
    the same values in it; a translated sentence nothing writes any more is a warning."""
    if not project.translations:
        return
    used = used_sentences(project)
    for code, local in sorted(project.translations.items()):
        strings = f"templates/i18n/{code}.yaml"
        for message, (file, line) in used.items():
            translated = local.strings.get(message)
            if translated is None:
                yield Finding("error", Problem(
                    file, line or None, "", f"no {code} translation in {strings} of "
                    f"{_short(message)}; nothing in {code} can be rendered with it"))
                continue
            problem = _values_problem(message, translated)
            if problem:
                yield Finding("error", Problem(
                    strings, project.line_of(strings, f"strings.{message}"), "", problem))
        for message in local.strings:
            if message not in used:
                yield Finding("warning", Problem(
                    strings, project.line_of(strings, f"strings.{message}"), "",
                    f"{_short(message)} is written by no template any more (its English "
                    "changed?): translate the new sentence, and remove this one"))


def used_sentences(project: Project) -> dict[str, tuple[str, int]]:
    """Every shared sentence the templates and the code write, with where it is first written
    (line 0: in the code)."""
    used = template_messages(project.templates)
    for message in CODE_MESSAGES:
        used.setdefault(message, ("aftercare/render", 0))
    for message in CONSENT_WORDING.values():
        used.setdefault(message, ("aftercare/enrol/rules.py", 0))
    return used


def check_printable(project: Project, today: dt.date) -> Iterator[Finding]:
    """Every character a translation prints must be in the bundled handout font; otherwise it
    would come from some other font, or print as a box."""
    if not project.translations:
        return
    printable = printable_characters(project.templates.resolve())
    for code, local in sorted(project.translations.items()):
        texts: list[tuple[str, str, str]] = [
            (f"templates/i18n/{code}.yaml", f"strings.{k}", v) for k, v in local.strings.items()]
        texts.append(("clinic.yaml", f"translations.{code}.hours", local.clinic.hours))
        for handout_id, handout in local.handouts.items():
            texts += [(f"handouts/{code}/{handout_id}.yaml", "", t) for t in _words(handout)]
        for campaign_id, campaign in local.campaigns.items():
            texts += [(f"campaigns/{code}/{campaign_id}.yaml", "", t) for t in
                      (campaign.next_treatment_label, *(s.label for s in campaign.steps))]
        for file, path, text in texts:
            missing = sorted({c for c in text if ord(c) not in printable and not c.isspace()})
            if missing:
                shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing)
                yield Finding("error", Problem(
                    file, project.line_of(file, path) if path else None, path,
                    f"{shown} not in the handout font; use another character"))


TRANSLATION_RULES = (check_translation_drift, check_untranslated, check_shared_sentences,
                     check_printable)


def _words(handout: Handout) -> Iterator[str]:
    """Every text of a handout, as printed."""
    yield handout.title
    for section in handout.sections:
        yield section.heading
    yield from (text for _, text in sentence_units(handout))


def _values_problem(message: str, translated: str) -> str | None:
    expected = sorted(set(_PLACEHOLDER.findall(message)))
    got = sorted(set(_PLACEHOLDER.findall(translated)))
    if expected != got:
        shown = ", ".join(f"%({name})s" for name in expected) or "none"
        given = ", ".join(f"%({name})s" for name in got) or "none"
        return (f"{_short(message)}: expected the same values as the English ({shown}); "
                f"got {given}")
    try:
        translated % dict.fromkeys(expected, "")
    except (ValueError, TypeError, KeyError):
        return f"{_short(message)}: a lone % in the translation; write %% for a percent sign"
    return None


def _short(message: str) -> str:
    return repr(message if len(message) <= 60 else message[:60] + "…")
