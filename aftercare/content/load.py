"""Loads clinic.yaml, handouts/ and campaigns/ (and their translations) into a typed Project,
checking every file and the ties between them, and reporting every problem together."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from aftercare.content.model import (
    MINIMAL_TEMPLATE,
    TREATMENT_INDICATIONS,
    Campaign,
    Clinic,
    Handout,
    Project,
    Step,
)
from aftercare.content.schema import Document, build, read_document
from aftercare.content.translations import load_translations
from aftercare.content.values import WEEKDAYS, Slug
from aftercare.errors import ContentError, Problem

T = TypeVar("T")

# A care page link outliving the treatment cycle by years would only widen what a forwarded
# or leaked link shows; two years covers the longest campaign with room to spare.
MAX_CARE_LINK_DAYS = 730


def load_project(root: Path, only: tuple[str, ...] = ()) -> Project:
    """Load and check clinic.yaml, every handout and every campaign; raise all problems together."""
    docs: list[Document] = []
    clinic_doc = read_document(root / "clinic.yaml", "clinic.yaml")
    docs.append(clinic_doc)
    clinic = build(Clinic, clinic_doc)
    handouts = _load_folder(root, "handouts", Handout, docs)
    campaigns = _load_folder(root, "campaigns", Campaign, docs)
    by_name = {d.name: d for d in docs}
    if clinic is not None:
        _check_clinic(root, clinic, clinic_doc)
    for handout_id, handout in handouts.items():
        _check_handout(handout, by_name[f"handouts/{handout_id}.yaml"])
    for campaign_id, campaign in campaigns.items():
        doc = by_name[f"campaigns/{campaign_id}.yaml"]
        if f"handouts/{campaign.handout}.yaml" in by_name and campaign.handout not in handouts:
            continue  # that handout's own problems are reported; don't repeat them here
        _check_campaign(root, campaign, handouts, doc, clinic)
    _check_one_campaign_per_indication(campaigns, by_name)
    translations = load_translations(root, clinic, clinic_doc, handouts, campaigns, docs)
    unknown = [t for t in only if t not in handouts and f"handouts/{t}.yaml" not in by_name]
    problems = [p for d in docs for p in d.problems]
    problems += [Problem(f"handouts/{t}.yaml", None, "", "no such topic") for t in unknown]
    if problems or clinic is None:
        raise ContentError(problems)
    return Project(root, clinic, handouts, campaigns, {d.name: d.lines for d in docs},
                   translations)


def _load_folder(root: Path, folder: str, cls: type[T], docs: list[Document]) -> dict[str, T]:
    loaded: dict[str, T] = {}
    directory = root / folder
    paths = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not paths:
        missing = Problem(f"{folder}/", None, "", "no .yaml files")
        docs.append(Document(f"{folder}/", None, [missing]))
    for path in paths:
        name = f"{folder}/{path.name}"
        doc = read_document(path, name)
        docs.append(doc)
        try:
            Slug.parse(path.stem)
        except ValueError as exc:
            doc.add(None, "", f"file name: {exc}")
            continue
        value = build(cls, doc)
        if value is not None:
            loaded[path.stem] = dataclasses.replace(value, id=path.stem)  # type: ignore[type-var]
    return loaded


def _check_clinic(root: Path, clinic: Clinic, doc: Document) -> None:
    logo = (root / "templates" / "assets" / clinic.logo).resolve()
    assets = (root / "templates" / "assets").resolve()
    if not logo.is_relative_to(assets) or logo.suffix != ".svg" or not logo.is_file():
        doc.add_at("logo", f"expected an .svg file under templates/assets/; got {clinic.logo!r}")
    if not 3 <= clinic.max_reading_grade <= 16:
        doc.add_at("max_reading_grade", f"expected 3 to 16; got {clinic.max_reading_grade}")
    if not 1 <= clinic.delivery.max_parallel <= 32:
        doc.add_at("delivery.max_parallel", f"expected 1 to 32; got {clinic.delivery.max_parallel}")
    if not 1 <= clinic.email.care_link_days <= MAX_CARE_LINK_DAYS:
        doc.add_at("email.care_link_days", f"expected 1 to {MAX_CARE_LINK_DAYS} (days a care "
                   f"page link opens); got {clinic.email.care_link_days}")
    ranges = {
        "staff.idle_timeout_minutes": (clinic.staff.idle_timeout_minutes, 1, 480),
        "csv_import.max_megabytes": (clinic.csv_import.max_megabytes, 1, 1024),
        "csv_import.max_rows": (clinic.csv_import.max_rows, 1, 10_000_000),
        "retention.months_after_last_message": (
            clinic.retention.months_after_last_message, 1, 1200),
    }
    for path, (value, low, high) in ranges.items():
        if value is not None and not low <= value <= high:
            doc.add_at(path, f"expected {low} to {high:,}; got {value:,}")
    if not clinic.email.from_name.isascii():
        doc.add_at("email.from_name", f"expected plain ASCII (SendGrid refuses others); "
                   f"got {clinic.email.from_name!r}")


def _check_handout(handout: Handout, doc: Document) -> None:
    seen: set[str] = set()
    for index, section in enumerate(handout.sections):
        if section.id in seen:
            doc.add_at(f"sections[{index}].id", f"expected a unique id; got {section.id!r} again")
        seen.add(section.id)
        if not (section.paragraphs or section.bullets or section.steps or section.callout):
            doc.add_at(f"sections[{index}]", "expected paragraphs, bullets, steps or a callout")
        callout = section.callout
        if callout is not None and not (callout.text or callout.bullets):
            doc.add_at(f"sections[{index}].callout", "expected text or bullets")
    review = handout.review
    if review.next_review_due <= review.reviewed_on:
        doc.add_at(
            "review.next_review_due",
            f"expected a date after reviewed_on ({review.reviewed_on}); "
            f"got {review.next_review_due}",
        )


def _check_campaign(
    root: Path, campaign: Campaign, handouts: Mapping[str, Handout], doc: Document,
    clinic: Clinic | None = None,
) -> None:
    if campaign.indication not in TREATMENT_INDICATIONS:
        doc.add_at("indication", f"expected one of cosmetic, migraine; got {campaign.indication!r}")
    handout = handouts.get(campaign.handout)
    if handout is None:
        doc.add_at("handout", f"expected a topic in handouts/; got {campaign.handout!r}")
    elif handout.indication != campaign.indication:
        doc.add_at(
            "handout",
            f"expected a {campaign.indication} topic; "
            f"got {campaign.handout!r} ({handout.indication})",
        )
    if set(campaign.quiet_weekdays) >= set(WEEKDAYS):
        # Later steps and the next treatment date move to a day that is not quiet: leave one.
        doc.add_at("quiet_weekdays", "expected at least one weekday that is not quiet (later "
                   "emails and the next treatment date move to one); got all seven")
    keys: set[str] = set()
    # Steps must come in order from every treatment date: "9 months" is not always later
    # than "39 weeks", so a step's shortest span must beat the previous step's longest.
    previous = -1
    for index, step in enumerate(campaign.steps):
        where = f"steps[{index}]"
        if step.key in keys:
            doc.add_at(f"{where}.key", f"expected a unique key; got {step.key!r} again")
        keys.add(step.key)
        for f_index, old in enumerate(step.formerly):
            if old in keys or any(old == other.key for other in campaign.steps):
                doc.add_at(f"{where}.formerly[{f_index}]",
                           f"expected a key no other step uses; got {old!r}")
            keys.add(old)
        _check_send_window(step, where, doc, clinic)
        for name, message in step.calendar.placeholder_problems() if step.calendar else ():
            doc.add_at(f"{where}.calendar.{name}", message)
        if step.offset.shortest_days() <= previous:
            doc.add_at(
                f"{where}.offset", f"expected a span later than the step before; got {step.offset}"
            )
        previous = step.offset.longest_days()
        for kind in ("html", "txt"):
            if not (root / "templates" / "email" / f"{step.template}.{kind}").is_file():
                doc.add_at(
                    f"{where}.template",
                    f"expected templates/email/{step.template}.{kind} to exist; it does not",
                )
        if handout is not None:
            known = {s.id for s in handout.sections}
            for s_index, section_id in enumerate(step.sections):
                if section_id not in known:
                    doc.add_at(
                        f"{where}.sections[{s_index}]",
                        f"expected a section id of handouts/{handout.id}.yaml; got {section_id!r}",
                    )
    if not campaign.steps:
        doc.add_at("steps", "expected at least one step")
    _check_minimal_template(root, campaign, clinic, doc)


def _check_minimal_template(
    root: Path, campaign: Campaign, clinic: Clinic | None, doc: Document
) -> None:
    """A campaign whose emails are minimal needs the clinic's minimal email templates."""
    mode = campaign.content or (clinic.email.content if clinic is not None else "full")
    if mode != "minimal":
        return
    for kind in ("html", "txt"):
        name = f"{MINIMAL_TEMPLATE}.{kind}"
        if not (root / "templates" / "email" / name).is_file():
            where = "" if campaign.content else " (from the clinic's email.content)"
            doc.add_at("content", f"expected templates/email/{name} to exist for minimal "
                       f"emails{where}; it does not")


def _check_send_window(step: Step, where: str, doc: Document, clinic: Clinic | None) -> None:
    """A send_until closes the step's window: later than its send time and the morning one."""
    opens = [t for t in (step.send_time, clinic.send_time if clinic else None) if t]
    latest = max(opens, default=None)
    if step.send_until is not None and latest is not None and step.send_until <= latest:
        doc.add_at(f"{where}.send_until", f"expected a time later than {latest} (the send "
                   f"times of the step and of the clinic); got {step.send_until}")


def _check_one_campaign_per_indication(
    campaigns: Mapping[str, Campaign], by_name: Mapping[str, Document]
) -> None:
    owner: dict[str, str] = {}
    for campaign_id, campaign in sorted(campaigns.items()):
        if campaign.indication in owner:
            by_name[f"campaigns/{campaign_id}.yaml"].add_at(
                "indication",
                f"expected one campaign per indication; {owner[campaign.indication]} "
                f"already serves {campaign.indication!r}",
            )
        owner.setdefault(campaign.indication, campaign_id)
