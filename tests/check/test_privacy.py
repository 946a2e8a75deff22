"""The privacy lint of minimal emails: every word of the list, handout quotations, each part of
the email and of its hand-over, with the file and line to fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

import pipeline
from aftercare.check.lint import lint
from aftercare.check.minimal import MINIMAL_WORDS, check_minimal_emails, minimal_words
from aftercare.content.load import load_project
from aftercare.content.model import CalendarEntry, Campaign, Project
from tests.conftest import ROOT, edit_file

PROJECT = load_project(ROOT)
FILE = "campaigns/botox-migraine.yaml"
WHY = "a minimal email must not name a treatment, condition, medicine or body area"


def _with_step(project: Project, index: int, **changes: object) -> Project:
    campaign = project.campaigns["botox-migraine"]
    steps = list(campaign.steps)
    steps[index] = dataclasses.replace(steps[index], **changes)  # type: ignore[arg-type]
    edited = dataclasses.replace(campaign, steps=tuple(steps))
    return dataclasses.replace(project, campaigns={**project.campaigns, "botox-migraine": edited})


def _found(project: Project) -> list[str]:
    return [str(f) for f in check_minimal_emails(project)]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The sample clinic's content and templates, to edit."""
    target = tmp_path / "clinic"
    for folder in ("handouts", "campaigns", "templates"):
        shutil.copytree(ROOT / folder, target / folder)
    shutil.copy(ROOT / "clinic.yaml", target / "clinic.yaml")
    return target


def test_the_shipped_minimal_emails_are_clean() -> None:
    assert _found(PROJECT) == []
    assert [f for f in lint(PROJECT, dt.date(2026, 12, 1)) if f.severity == "error"] == []


def test_a_clinic_without_minimal_campaigns_checks_nothing() -> None:
    full = dataclasses.replace(PROJECT, campaigns={
        cid: dataclasses.replace(c, content=None) for cid, c in PROJECT.campaigns.items()})
    named = _with_step(full, 0, preheader="About your neck")
    assert _found(named) == []


def test_the_list_holds_body_areas_and_treatment_words_beyond_the_lock_screen_ones() -> None:
    words = minimal_words(PROJECT)
    for word in ("botox", "migraine", "headache", "forehead", "eyelid", "neck", "needle",
                 "diary", "medicine", "shot", "frown lines", "crow's feet"):
        assert word in words
    assert len(set(MINIMAL_WORDS)) == len(MINIMAL_WORDS)


# The first step alone: each word below renders its email and both hand-overs once.
FIRST_ONLY = dataclasses.replace(PROJECT, campaigns={"botox-migraine": dataclasses.replace(
    PROJECT.campaigns["botox-migraine"], steps=PROJECT.campaigns["botox-migraine"].steps[:1])})


@pytest.mark.parametrize("word", minimal_words(PROJECT))
def test_each_word_in_a_preview_is_an_error_at_its_line(word: str) -> None:
    project = _with_step(FIRST_ONLY, 0, preheader=f"A note about {word.upper()} for you")
    line = PROJECT.line_of(FILE, "steps[0].preheader")
    assert line is not None
    assert _found(project) == [
        f"error: {FILE}:{line}: steps[0].preheader: the minimal email names "
        f"'{word.upper()}' in its preview text; {WHY}"
    ]


def test_plurals_possessives_and_hyphens_are_caught() -> None:
    project = _with_step(PROJECT, 0, subject="Your eyelids, the brow's care and neck-pain tips")
    (finding,) = _found(project)
    assert "names 'eyelids', 'brow's', 'neck' and 'pain' in its subject" in finding


def test_a_calendar_entry_is_checked_at_its_own_line() -> None:
    entry = CalendarEntry("Next visit", "Bring the diary you keep of each headache.")
    project = _with_step(PROJECT, 2, calendar=entry)
    line = PROJECT.line_of(FILE, "steps[2].calendar.description")
    assert _found(project) == [
        f"error: {FILE}:{line}: steps[2].calendar.description: the minimal email names "
        f"'diary' and 'headache' in its calendar entry's description; {WHY}"
    ]


def test_a_quoted_handout_sentence_is_an_error() -> None:
    entry = CalendarEntry("Next visit", "A walk is fine.")
    quoted = _with_step(PROJECT, 2, calendar=entry,
                        subject="Skip hard exercise, like running or lifting weights")
    found = _found(quoted)
    assert any("steps[2].subject: the minimal email quotes a handout in its subject: "
               "'Skip hard exercise, like running or lifting weights.'" in f for f in found)
    assert any("steps[2].calendar.description: the minimal email quotes a handout in its "
               "calendar entry's description: 'A walk is fine.'" in f for f in found)


def test_what_clinic_yaml_puts_in_every_email_is_reported_once_at_its_line() -> None:
    clinic = dataclasses.replace(PROJECT.clinic, name="Brookline Migraine Center")
    found = _found(dataclasses.replace(PROJECT, clinic=clinic))
    line = PROJECT.line_of("clinic.yaml", "name")
    assert found == [f"error: clinic.yaml:{line}: name: names 'Migraine', which every minimal "
                     f"email shows; {WHY}"]
    email = dataclasses.replace(PROJECT.clinic.email, privacy_words=("Lumen",))
    clinic = dataclasses.replace(PROJECT.clinic, email=email)
    project = _with_step(dataclasses.replace(PROJECT, clinic=clinic), 0, preheader="Lumen tips")
    assert "names 'Lumen' in its preview text" in _found(project)[0]


def test_a_word_in_the_template_is_reported_with_the_template(copy: Path) -> None:
    edit_file(copy, "templates/email/minimal.html", "has sent you aftercare notes.",
              "has sent you aftercare notes for your forehead.")
    found = _found(load_project(copy))
    assert len(found) == 3
    assert all("names 'forehead' in its HTML (templates/email/minimal.html)" in f for f in found)


def test_a_handout_sentence_in_the_template_is_a_quotation(copy: Path) -> None:
    edit_file(copy, "templates/email/minimal.txt", "{% block content %}",
              "{% block content %}\nSmall bruises. They fade in 1 to 2 weeks.\n")
    found = [f for f in _found(load_project(copy)) if "quotes" in f]
    # Every step, in English and in Spanish: the Spanish emails share the template.
    english = [f for f in found if f.startswith(f"error: {FILE}:")]
    spanish = [f for f in found if f.startswith("error: campaigns/es/botox-migraine.yaml:")]
    assert all("quotes a handout in its plain text (templates/email/minimal.txt): "
               "'They fade in 1 to 2 weeks.'" in f for f in english) and len(english) == 3
    assert all("quotes a handout in its plain text (templates/email/minimal.txt with "
               "templates/i18n/es.yaml): 'They fade in 1 to 2 weeks.'" in f for f in spanish)
    assert len(spanish) == 3 and len(found) == 6


def test_what_only_the_hand_over_carries_is_checked_too(copy: Path) -> None:
    # The sender's name is in the From header of the file backend's message and in the request
    # to SendGrid, never in the email's own parts.
    edit_file(copy, "clinic.yaml", "from_name: Juniper Lane Clinic",
              "from_name: Juniper Lane Dermatology")
    project = load_project(copy)
    line = project.line_of("clinic.yaml", "email.from_name")
    assert _found(project) == [
        f"error: clinic.yaml:{line}: email.from_name: names 'Dermatology', which every minimal "
        f"email shows; {WHY}"]
    # The recipient's address is only in the hand-over (the sample patient is
    # patient@example.com): a clinic word that matches it shows there, and only there.
    email = dataclasses.replace(project.clinic.email, from_name="Juniper Lane Clinic",
                                privacy_words=("patient",))
    clinic = dataclasses.replace(project.clinic, email=email)
    found = _found(dataclasses.replace(project, clinic=clinic))
    assert len(found) == 6  # each step, in English and in Spanish
    assert len([f for f in found if f.startswith(f"error: {FILE}:")]) == 3
    assert all("names 'patient' in the message the file backend writes" in f for f in found)


def test_pipeline_check_fails_on_a_minimal_email_naming_a_body_area(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_file(copy, "campaigns/botox-migraine.yaml",
              "preheader: Your next appointment is coming up",
              "preheader: Your next appointment for your neck is coming up")
    assert pipeline.main(["--project", str(copy), "check"]) == 1
    err = capsys.readouterr().err
    line = PROJECT.line_of(FILE, "steps[2].preheader")
    assert (f"error: {FILE}:{line}: steps[2].preheader: the minimal email names 'neck' in its "
            f"preview text; {WHY}") in err


def test_a_full_campaign_with_the_same_words_is_not_a_minimal_email(copy: Path) -> None:
    edit_file(copy, "campaigns/botox-migraine.yaml", "content: minimal", "content: full")
    project = load_project(copy)
    assert project.content_of(project.campaigns["botox-migraine"]) == "full"
    assert _found(_with_step(project, 0, preheader="About your neck")) == []


def test_a_campaign_made_minimal_is_told_what_its_own_texts_give_away() -> None:
    campaign = PROJECT.campaigns["botox-cosmetic"]
    minimal = dataclasses.replace(campaign, content="minimal")
    assert isinstance(minimal, Campaign)
    project = dataclasses.replace(PROJECT, campaigns={**PROJECT.campaigns,
                                                      "botox-cosmetic": minimal})
    # The cosmetic check-in's reminder says what a handout says, word for word: in English,
    # and in Spanish what the Spanish handout says.
    line = PROJECT.line_of("campaigns/botox-cosmetic.yaml", "steps[1].calendar.description")
    spanish = "campaigns/es/botox-cosmetic.yaml"
    line_es = PROJECT.line_of(spanish, "steps.week-2.calendar.description")
    assert _found(project) == [
        f"error: campaigns/botox-cosmetic.yaml:{line}: steps[1].calendar.description: the "
        "minimal email quotes a handout in its calendar entry's description: 'Call us if "
        "anything looks uneven.'; the care page shows handouts, the email only links to it",
        f"error: {spanish}:{line_es}: steps.week-2.calendar.description: the minimal email "
        "quotes a handout in its calendar entry's description: 'Llámenos si algo se ve "
        "desigual.'; the care page shows handouts, the email only links to it"]
