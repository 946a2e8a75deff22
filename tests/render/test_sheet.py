"""The clinic's real printouts: the one-sheet checkout handouts, the topics and the diary."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Iterator

import pdfplumber
import pytest
from pypdf import PdfReader

from aftercare.check.readability import grade, section_text
from aftercare.content.load import load_project
from aftercare.content.model import Handout, Project
from aftercare.render.card import PatientCard
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.page import checkout_campaign
from tests.conftest import ROOT
from tests.render.test_handouts import CHECKOUT, longest_card

PAPER_SIZES = ("Letter", "A4")
SHEETS = ("aftercare-cosmetic", "aftercare-migraine")
# The sections the aftercare emails quote: their ids are the emails' interface.
QUOTED = {
    "aftercare-cosmetic": ("first-day", "what-is-normal", "your-results"),
    "aftercare-migraine": ("first-day", "what-is-normal", "headache-diary"),
}


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="module", params=PAPER_SIZES)
def renderer(request: pytest.FixtureRequest, project: Project) -> HandoutRenderer:
    clinic = dataclasses.replace(project.clinic, paper_size=request.param)
    return HandoutRenderer(dataclasses.replace(project, clinic=clinic))


def _pages(data: bytes) -> list[str]:
    """Each page's text without any whitespace: lines wrap anywhere in narrow boxes."""
    return ["".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def _squashed(text: str) -> str:
    return "".join(text.split())


def _small_characters(data: bytes) -> list[tuple[int, str, float]]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [(page.page_number, char["text"], round(char["size"], 2))
                for page in pdf.pages for char in page.chars if char["size"] < 11.99]


# ---------------------------------------------------------------- the checkout sheet


@pytest.mark.parametrize("topic", SHEETS)
@pytest.mark.parametrize("aftercare", [True, False], ids=["enrolled", "print-only"])
def test_the_checkout_handout_is_one_sheet_at_the_longest_details(
    project: Project, renderer: HandoutRenderer, topic: str, aftercare: bool
) -> None:
    handout = project.handouts[topic]
    card = longest_card(aftercare)
    data = renderer.pdf(handout, card)
    pages = _pages(data)
    assert len(pages) == 2, renderer.project.clinic.paper_size
    side_1, side_2 = pages
    clinic = project.clinic
    # Side 1: who, when, what; the whole emergency box; the whole "Call us" box; the dates.
    for typed in (card.name, card.provider, card.product, card.units, card.lot):
        assert _squashed(str(typed)) in side_1
    for text in ("Get emergency care now", f"Call {clinic.emergency_number} or go to the "
                 "nearest emergency room", *handout.emergency_if,
                 "They can start hours to weeks after treatment.",
                 "Do not drive or use machines if you feel weak or dizzy, or cannot see well.",
                 "Call us", f"Day: {clinic.phone}", f"After hours: {clinic.urgent_line}",
                 *handout.call_clinic_if, "Your next dates"):
        assert _squashed(text) in side_1, text
    # Side 2: what fills it, the medicine's guide and the FDA line, and the sources in one line.
    for section in handout.sections:
        assert _squashed(section.heading) in side_2
    assert "MedicationGuide" in side_2
    assert "MedWatchat1-800-FDA-1088" in side_2 and "www.fda.gov/medwatch" in side_2
    assert f"/sources/{topic}" in side_2
    assert not _small_characters(data)


@pytest.mark.parametrize("topic", SHEETS)
def test_the_blank_checkout_handout_is_one_sheet_too(
    project: Project, renderer: HandoutRenderer, topic: str
) -> None:
    data = renderer.pdf(project.handouts[topic], None)
    assert len(_pages(data)) == 2
    assert not _small_characters(data)


@pytest.mark.parametrize(
    ("treated_on", "expected"),
    [
        # 12 weeks after Sun 22 Nov is a Sunday, a quiet day: the clinic's next open day.
        (dt.date(2026, 11, 22), "Mon15Feb:"),
        # 12 weeks after Fri 2 Oct is Fri 25 Dec, a closure in clinic.yaml.
        (dt.date(2026, 10, 2), "Sat26Dec:"),
    ],
)
def test_the_printed_next_treatment_is_on_a_day_the_clinic_is_open(
    project: Project, treated_on: dt.date, expected: str
) -> None:
    renderer = HandoutRenderer(project)
    campaign = project.campaigns["botox-cosmetic"]
    card = PatientCard("Ana", treated_on, planned_at=CHECKOUT)
    side_1 = _pages(renderer.pdf(project.handouts["aftercare-cosmetic"], card))[0]
    assert expected + _squashed(campaign.next_treatment_label) in side_1


def test_each_checkout_handout_belongs_to_its_campaign(project: Project) -> None:
    for topic in SHEETS:
        campaign = checkout_campaign(project, project.handouts[topic])
        assert campaign is not None and campaign.handout == topic
    assert checkout_campaign(project, project.handouts["what-is-botox"]) is None


# ---------------------------------------------------------------- topics and the diary


def test_every_topic_fits_two_sheets_with_no_personal_page_and_the_emergency_box_first(
    project: Project, renderer: HandoutRenderer
) -> None:
    topics = sorted(set(project.handouts) - set(SHEETS))
    assert topics
    for topic in topics:
        handout = project.handouts[topic]
        pages = _pages(renderer.pdf(handout, None))
        assert len(pages) <= 4, (topic, len(pages))
        text = "".join(pages)
        for personal in ("Preparedfor", "Name:", "Treatmentdate", "Yournextdates"):
            assert personal not in text, topic
        if handout.emergency_if:
            first = pages[0]
            assert "Getemergencycarenow" in first, topic
            for sign in handout.emergency_if:
                assert _squashed(sign) in first, (topic, sign)


@pytest.mark.parametrize("card", [None, longest_card(True)], ids=["blank", "longest-name"])
def test_the_headache_diary_is_one_page(
    renderer: HandoutRenderer, card: PatientCard | None
) -> None:
    data = renderer.diary_pdf(card)
    (page,) = _pages(data)
    for heading in ("Day", "Headache?", "Hours", "Howbad?", "Medicineyoutook,andhowmuch",
                    "Howbad:0isnopain,10istheworst.", "Bringthispagetoyournextvisit."):
        assert heading in page
    if card is None:
        assert page.count("yesno") == 28 and "28.____" in page
    else:
        assert "Mon23Nov" in page and "Sun20Dec" in page and _squashed(card.name) in page
    assert not _small_characters(data)


# ---------------------------------------------------------------- the words on the sheet


def _sentences(handout: Handout) -> Iterator[str]:
    units = [handout.summary, *handout.call_clinic_if, *handout.emergency_if]
    for section in handout.sections:
        units += section_text(section)
    for unit in units:
        yield from (s for s in re.split(r"(?<=[.!?])\s+", unit.strip()) if s)


@pytest.mark.parametrize("topic", SHEETS)
def test_the_sheet_is_plain_language_sentence_by_sentence(project: Project, topic: str) -> None:
    handout = project.handouts[topic]
    for sentence in _sentences(handout):
        words = re.findall(r"[A-Za-z]+(?:['’][A-Za-z]+)*", sentence)
        assert len(words) <= 20, sentence
        assert grade([sentence]) <= 9.0, sentence
    for section in handout.sections:
        assert grade(section_text(section)) <= 6.0, section.id
    for unit in (handout.call_clinic_if, handout.emergency_if, (handout.summary,)):
        assert grade(list(unit)) <= 6.0, unit


@pytest.mark.parametrize("topic", SHEETS)
def test_the_quoted_sections_hold_whenever_the_email_is_read(
    project: Project, topic: str
) -> None:
    handout = project.handouts[topic]
    for section_id in QUOTED[topic]:
        words = " ".join([handout.section(section_id).heading,
                          *section_text(handout.section(section_id))]).lower()
        assert not re.search(r"\b(today|tonight|tomorrow)\b", words), section_id
    assert "first 24 hours" in handout.section("first-day").heading.lower()


def test_the_sheets_say_what_the_clinical_review_asked_for(project: Project) -> None:
    cosmetic, migraine = (project.handouts[topic] for topic in SHEETS)
    for handout in (cosmetic, migraine):
        # Allergy by urgency: breathing or swelling is an emergency, a rash is a call.
        assert {"Wheezing or asthma symptoms", "Swelling of your face or throat",
                "Feeling dizzy or faint", "Double vision", "Blurred vision"} <= set(
            handout.emergency_if)
        assert "Itching, a rash, or red itchy welts on your skin" in handout.call_clinic_if
    next_cycle = " ".join(section_text(migraine.section("next-treatment")))
    for words in ("155 units", "31 small shots", "7 areas", "Every 12 weeks", "ALS",
                  "weakens muscles over time", "myasthenia gravis", "swallowing or breathing",
                  "last 4 months", "Botox, Dysport, Xeomin, Jeuveau or Daxxify", "antibiotic",
                  "pregnant or breastfeeding"):
        assert words in next_cycle, words
    touch_up = " ".join(section_text(cosmetic.section("your-results")))
    rule = " ".join(section_text(cosmetic.section("next-treatment")))
    assert "part of this same treatment" in touch_up
    assert "A new full treatment waits at least 12 weeks after this one." in rule


def test_one_name_for_the_emergency_department_everywhere_printed() -> None:
    printed = [*(ROOT / "templates" / "handout").glob("*.html"),
               *(ROOT / "handouts" / f"{topic}.yaml" for topic in SHEETS)]
    for path in printed:
        text = path.read_text(encoding="utf-8").lower()
        assert "emergency department" not in text and "a&e" not in text, path.name
    macros = (ROOT / "templates" / "handout" / "macros.html").read_text(encoding="utf-8")
    assert "nearest emergency room" in macros
