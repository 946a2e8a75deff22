"""The privacy lint of minimal emails in Spanish: the Spanish steps and the shared template's
Spanish sentences, read whole against the Spanish words (with or without accents), each finding
at the Spanish file and line to fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aftercare.check.minimal import (
    SPANISH_MINIMAL_WORDS,
    check_minimal_emails,
    minimal_words,
)
from aftercare.check.privacy import SPANISH_PRIVATE_WORDS, fold
from aftercare.content.load import load_project
from aftercare.content.model import CalendarEntry, Project
from tests.conftest import ROOT, edit_file
from tests.projects import copy_of_the_clinic

PROJECT = load_project(ROOT)
FILE = "campaigns/es/botox-migraine.yaml"
WHY = "a minimal email must not name a treatment, condition, medicine or body area"
# The words the Spanish lists must hold: medicines, conditions, body areas, medicine words.
ASKED_FOR = ("bótox", "toxina botulínica", "migraña", "jaqueca", "cefalea", "dolor de cabeza",
             "arrugas", "líneas de expresión", "inyección", "pinchazo", "frente", "cejas",
             "párpado", "cuello", "medicamento", "medicina", "diario", "piel", "aguja")


def _with_spanish_step(project: Project, key: str, **changes: object) -> Project:
    """The project with one step of the Spanish migraine campaign reworded."""
    spanish = project.translations["es"]
    campaign = spanish.campaigns["botox-migraine"]
    steps = tuple(dataclasses.replace(s, **changes) if s.key == key else s  # type: ignore[arg-type]
                  for s in campaign.steps)
    edited = dataclasses.replace(spanish, campaigns={
        **spanish.campaigns, "botox-migraine": dataclasses.replace(campaign, steps=steps)})
    return dataclasses.replace(project, translations={**project.translations, "es": edited})


def _found(project: Project) -> list[str]:
    return [str(f) for f in check_minimal_emails(project)]


def test_the_shipped_spanish_minimal_emails_are_clean() -> None:
    assert [f for f in _found(PROJECT) if "/es/" in f] == []


@pytest.mark.parametrize("word", ASKED_FOR)
def test_every_asked_for_spanish_word_is_on_the_list(word: str) -> None:
    listed = {fold(w) for w in (*SPANISH_PRIVATE_WORDS, *SPANISH_MINIMAL_WORDS)}
    # "cejas" and "arrugas" are listed in the singular; the plural is matched.
    assert fold(word) in listed or fold(word).removesuffix("s") in listed
    assert word in minimal_words(PROJECT) or word.removesuffix("s") in minimal_words(PROJECT)


@pytest.mark.parametrize("word", ASKED_FOR)
def test_each_spanish_word_in_a_spanish_preview_is_an_error_at_its_line(word: str) -> None:
    # Capitals and no accents: "PARPADO" is "párpado".
    plain = fold(word).upper()
    project = _with_spanish_step(PROJECT, "week-10", preheader=f"Una nota sobre {plain}")
    line = PROJECT.line_of(FILE, "steps.week-10.preheader")
    assert line is not None
    assert _found(project) == [
        f"error: {FILE}:{line}: steps.week-10.preheader: the minimal email names "
        f"'{plain}' in its preview text; {WHY}"
    ]


def test_an_english_word_in_a_spanish_email_is_named_too() -> None:
    project = _with_spanish_step(PROJECT, "day-0", subject="Sus consejos para el neck")
    line = PROJECT.line_of(FILE, "steps.day-0.subject")
    assert _found(project) == [
        f"error: {FILE}:{line}: steps.day-0.subject: the minimal email names 'neck' in its "
        f"subject; {WHY}"]


def test_a_spanish_calendar_entry_is_checked_at_its_own_line() -> None:
    entry = CalendarEntry("Próxima visita", "Traiga su diario y la lista de medicamentos.")
    project = _with_spanish_step(PROJECT, "week-10", calendar=entry)
    line = PROJECT.line_of(FILE, "steps.week-10.calendar.description")
    assert _found(project) == [
        f"error: {FILE}:{line}: steps.week-10.calendar.description: the minimal email names "
        f"'diario' and 'medicamentos' in its calendar entry's description; {WHY}"]


def test_a_spanish_handout_sentence_in_a_spanish_email_is_a_quotation() -> None:
    quoted = PROJECT.translations["es"].handouts["aftercare-migraine"].emergency_if[0]
    project = _with_spanish_step(PROJECT, "week-2", preheader=quoted)
    found = [f for f in _found(project) if "quotes a handout" in f]
    assert found and all(f.startswith(f"error: {FILE}:") for f in found)
    assert "steps.week-2.preheader: the minimal email quotes a handout in its preview text" in (
        found[0])


def test_a_word_in_a_spanish_sentence_of_the_template_is_reported(tmp_path: Path) -> None:
    clinic = copy_of_the_clinic(ROOT, tmp_path / "clinic")
    edit_file(clinic, "templates/i18n/es.yaml", '"Leer sus notas de cuidados"',
              '"Leer sus notas sobre el parpado"')
    found = _found(load_project(clinic))
    assert len(found) == 3  # the three Spanish steps, not the English ones
    assert all(f.startswith(f"error: {FILE}:") for f in found)
    assert all("names 'parpado' in its plain text (templates/email/minimal.txt with "
               "templates/i18n/es.yaml)" in f for f in found)


def test_the_spanish_opening_hours_are_reported_once_at_their_line(tmp_path: Path) -> None:
    clinic = copy_of_the_clinic(ROOT, tmp_path / "clinic")
    edit_file(clinic, "clinic.yaml", "hours: de lunes a viernes,",
              "hours: clínica de la piel, de lunes a viernes,")
    project = load_project(clinic)
    line = project.line_of("clinic.yaml", "translations.es.hours")
    assert _found(project) == [
        f"error: clinic.yaml:{line}: translations.es.hours: names 'piel', which every minimal "
        f"email shows; {WHY}"]


def test_a_language_that_cannot_send_the_campaign_is_not_read() -> None:
    spanish = PROJECT.translations["es"]
    campaigns = {k: v for k, v in spanish.campaigns.items() if k != "botox-migraine"}
    lacking = dataclasses.replace(spanish, campaigns=campaigns)
    project = dataclasses.replace(PROJECT, translations={"es": lacking})
    # check_untranslated names what it lacks; here nothing is rendered in Spanish.
    assert _found(project) == []
