"""The house rules in Spanish, on a copy of the clinic: lock-screen words with or without accents,
reading ease section by section and sentence by sentence, the email templates' own Spanish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aftercare.check.lint import lint
from aftercare.check.privacy import fold, named_words, private_pattern
from aftercare.content.load import load_project
from tests.conftest import ROOT, edit_file
from tests.projects import copy_of_the_clinic

TODAY = dt.date(2026, 12, 1)
CAMPAIGN = "campaigns/es/botox-cosmetic.yaml"
HANDOUT = "handouts/es/aftercare-cosmetic.yaml"
LOCK_SCREEN = ("subjects and previews show on lock screens, so they must not name a treatment, "
               "condition or medicine")


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_of_the_clinic(ROOT, tmp_path / "clinic")


def _findings(root: Path) -> list[str]:
    return [str(f) for f in lint(load_project(root), TODAY)]


def _line(root: Path, name: str, text: str) -> int:
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


@pytest.mark.parametrize(("text", "named"), [
    ("Su migraña y usted", ["migraña"]),
    ("Sus MIGRAÑAS", ["MIGRAÑAS"]),
    ("Su migrana", ["migrana"]),                      # without the accent: still named
    ("Después del bótox", ["bótox"]),
    ("Después del Botox", ["Botox"]),                 # the brand, in any language
    ("Su toxina botulinica", ["toxina botulinica"]),  # the longest term, as written
    ("Sus líneas de expresión", ["líneas de expresión"]),
    ("Sus lineas  de expresion", ["lineas  de expresion"]),
    ("Menos arrugas, menos jaquecas", ["arrugas", "jaquecas"]),
    ("Su próxima inyección", ["inyección"]),
    ("Su cefalea", ["cefalea"]),
    ("Sus dolores de cabeza", ["dolores de cabeza"]),
    ("Tratamiento estético", ["estético"]),
])
def test_spanish_treatments_and_conditions_are_named_with_or_without_accents(
    text: str, named: list[str]
) -> None:
    assert named_words(private_pattern(()), text) == named


@pytest.mark.parametrize("text", [
    "¿Cómo le va?", "Es hora de hacer su próxima cita", "Cómo cuidarse después de su visita",
    "Consejos sencillos para los primeros días", "Su cabeza y su cuello",
])
def test_plain_spanish_subjects_name_nothing(text: str) -> None:
    assert named_words(private_pattern(()), text) == []


def test_folding_keeps_positions() -> None:
    assert fold("Migraña ÉXITO") == "migrana exito"


def test_a_spanish_subject_naming_a_condition_is_an_error_at_its_line(clinic: Path) -> None:
    edit_file(clinic, CAMPAIGN, "subject: ¿Cómo le va?", "subject: ¿Cómo va su migraña?")
    edit_file(clinic, CAMPAIGN, "preheader: Si desea continuar, así puede hacer una cita",
              "preheader: Si desea continuar con el botox, así puede hacer una cita")
    subject = _line(clinic, CAMPAIGN, "su migraña?")
    preheader = _line(clinic, CAMPAIGN, "con el botox")
    assert _findings(clinic) == [
        f"error: {CAMPAIGN}:{subject}: steps.week-2.subject: names 'migraña'; {LOCK_SCREEN}",
        f"error: {CAMPAIGN}:{preheader}: steps.month-3.preheader: names 'botox'; {LOCK_SCREEN}",
    ]


def test_a_spanish_calendar_entry_is_checked_as_the_patient_sees_it(clinic: Path) -> None:
    edit_file(clinic, "clinic.yaml", "name: Juniper Lane Clinic", "name: Juniper Lane Botox")
    findings = _findings(clinic)
    line = _line(clinic, CAMPAIGN, "summary: Seguimiento con {clinic}")
    assert (f"error: {CAMPAIGN}:{line}: steps.week-2.calendar.summary: names 'Botox'; "
            f"{LOCK_SCREEN}") in findings


# ---------------------------------------------------------------- reading ease


def test_a_hard_spanish_sentence_is_a_warning_with_its_reading_ease(clinic: Path) -> None:
    hard = ("Evite ejercicios extenuantes, particularmente actividades cardiovasculares "
            "intensas.")
    edit_file(clinic, HANDOUT, "No haga ejercicio fuerte, como correr o levantar pesas. "
              "Caminar está bien.", hard)
    line = _line(clinic, HANDOUT, "Evite ejercicios")
    # 7 words, 1 sentence; e-vi-te 3, e-jer-ci-cios 4, ex-te-nuan-tes 4, par-ti-cu-lar-men-te 6,
    # ac-ti-vi-da-des 5, car-dio-vas-cu-la-res 6, in-ten-sas 3 = 31 syllables:
    # 206.84 − 60 × 31/7 − 1.02 × 7 = −66.0
    assert _findings(clinic) == [
        f"warning: {HANDOUT}:{line}: sections[0].bullets[3]: sentence reading ease -66.0 "
        "(Fernández-Huerta) is below 57.5 (grade 9) on its own; use shorter words: "
        '"Evite ejercicios extenuantes, particularmente..."',
    ]


def test_a_short_spanish_item_counts_in_its_section_only(clinic: Path) -> None:
    # "Visión borrosa" alone scores 54.8 (2.5 syllables a word): plain Spanish, too short
    # for a reading-ease formula; its list as a whole is graded.
    project = load_project(clinic)
    assert "Visión borrosa" in project.translations["es"].handouts[
        "aftercare-cosmetic"].emergency_if
    assert _findings(clinic) == []


def test_a_hard_spanish_section_is_below_the_clinics_grade_6(clinic: Path) -> None:
    hard = ("Evite ejercicios extenuantes. Particularmente actividades cardiovasculares "
            "intensas. Consulte inmediatamente.")
    edit_file(clinic, HANDOUT, "No haga ejercicio fuerte, como correr o levantar pesas. "
              "Caminar está bien.", hard)
    findings = _findings(clinic)
    section = _line(clinic, HANDOUT, "  - id: first-day")
    assert any(f.startswith(f"warning: {HANDOUT}:{section}: sections[0]: reading ease ")
               and f.endswith("(Fernández-Huerta) is below 70, the clinic's grade 6 in es; use "
                              "shorter sentences and everyday words") for f in findings), findings


def test_a_hard_sentence_of_a_spanish_email_is_traced_to_its_template(clinic: Path) -> None:
    template = "templates/email/es/day-0.txt"
    edit_file(clinic, template, "Gracias por venir a vernos.",
              "Agradecemos profundamente su confianza institucional y preferencia.")
    line = _line(clinic, template, "Agradecemos")
    findings = _findings(clinic)
    assert (f"warning: {template}:{line}: sentence reading ease -6.0 (Fernández-Huerta) is "
            "below 57.5 (grade 9) on its own; use shorter words: \"Agradecemos profundamente "
            "su confianza...\"") in findings


def test_a_hard_shared_sentence_is_traced_to_the_spanish_sentences_file(clinic: Path) -> None:
    strings = "templates/i18n/es.yaml"
    edit_file(clinic, strings, '"Cuídese,"', '"Reciba nuestras consideraciones institucionales,"')
    line = _line(clinic, strings, "consideraciones institucionales")
    findings = _findings(clinic)
    assert any(f.startswith(f"warning: {strings}:{line}: sentence reading ease ")
               for f in findings), findings


def test_the_shipped_spanish_meets_the_clinics_grade_6_equivalent() -> None:
    project = load_project(ROOT)
    assert project.clinic.max_reading_grade == 6
    findings = [str(f) for f in lint(project, TODAY) if "/es/" in f.problem.file
                or "i18n" in f.problem.file]
    assert findings == []
