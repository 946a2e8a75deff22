"""Short content hashes of each part of a translation's source, and the parts named for people.

A translation records these hashes when it is made and when it is reviewed; comparing them
with the source's hashes now names exactly the sections, steps or templates that changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from aftercare.content.model import Campaign, Handout, Section

HASH_LENGTH = 12


def digest(value: object) -> str:
    """A short, stable hash of text or of plain data (lists, mappings, strings, None)."""
    data = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def handout_parts(handout: Handout) -> dict[str, str]:
    """The hash of each part of a handout a translation follows: title, summary, each section
    (``sections.<id>``) and the two safety lists."""
    parts = {"title": digest(handout.title), "summary": digest(handout.summary)}
    for section in handout.sections:
        parts[f"sections.{section.id}"] = digest(_section_words(section))
    parts["call_clinic_if"] = digest(list(handout.call_clinic_if))
    parts["emergency_if"] = digest(list(handout.emergency_if))
    return parts


def campaign_parts(campaign: Campaign) -> dict[str, str]:
    """The hash of each part of a campaign a translation follows: its title, the next-treatment
    label and the words of each step (``steps.<key>``)."""
    parts = {"title": digest(campaign.title),
             "next_treatment_label": digest(campaign.next_treatment_label)}
    for step in campaign.steps:
        calendar = None if step.calendar is None else [step.calendar.summary,
                                                       step.calendar.description]
        parts[f"steps.{step.key}"] = digest([step.label, step.subject, step.preheader, calendar])
    return parts


def template_parts(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """The hash of each named source template file in ``folder`` (``templates.<name>``; ""
    when it is missing)."""
    parts: dict[str, str] = {}
    for name in sorted(names):
        try:
            value = hashlib.sha256((folder / name).read_bytes()).hexdigest()[:HASH_LENGTH]
        except OSError:
            value = ""
        parts[f"templates.{name}"] = value
    return parts


def changed_parts(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """The parts whose hash differs, in the source's order, then any the source no longer has."""
    changed = [part for part, value in current.items() if recorded.get(part) != value]
    return changed + [part for part in recorded if part not in current]


def describe_parts(parts: Iterable[str]) -> str:
    """Parts as people name them: "sections first-day, what-is-normal; emergency_if"."""
    groups: dict[str, list[str]] = {}
    for part in parts:
        group, dot, name = part.partition(".")
        groups.setdefault(group if dot else "", []).append(name if dot else part)
    named = [f"{group} {', '.join(names)}" for group, names in groups.items() if group]
    return "; ".join(named + groups.get("", []))


def _section_words(section: Section) -> list[object]:
    callout = section.callout
    said = None if callout is None else [callout.kind, callout.title, callout.text,
                                         list(callout.bullets)]
    return [section.heading, list(section.paragraphs), list(section.bullets),
            list(section.steps), said]
