"""Translations as content: the shipped Spanish loads with its source's structure, and every way a
translation can lose that structure is an error naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.errors import ContentError
from tests.conftest import ROOT, edit_file
from tests.projects import copy_of_the_clinic

HANDOUT = "handouts/es/aftercare-cosmetic.yaml"
CAMPAIGN = "campaigns/es/botox-cosmetic.yaml"


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_of_the_clinic(ROOT, tmp_path / "clinic")


def _problems(root: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_project(root)
    return [str(p) for p in caught.value.problems]


def _line(root: Path, name: str, text: str) -> int:
    """The first line starting with ``text`` (indentation aside)."""
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.lstrip(" -").startswith(text))


def _list_line(root: Path, name: str, key: str) -> int:
    """Where a top-level list is reported: its first item, the line after ``key:``."""
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1)
                if line.split("#")[0].rstrip() == f"{key}:") + 1


def test_the_shipped_spanish_is_every_handout_and_campaign_in_its_sources_shape() -> None:
    project = load_project(ROOT)
    assert project.languages == ("en", "es")
    spanish = project.translations["es"]
    assert spanish.tag == "es-US"
    assert set(spanish.handouts) == set(project.handouts)
    assert set(spanish.campaigns) == set(project.campaigns)
    for handout_id, handout in spanish.handouts.items():
        source = project.handouts[handout_id]
        assert handout.language == "es" and handout.translation is not None
        assert [s.id for s in handout.sections] == [s.id for s in source.sections]
        assert len(handout.emergency_if) == len(source.emergency_if)
        assert len(handout.call_clinic_if) == len(source.call_clinic_if)
        # What is not words comes from the source: the clinical review, sources, version.
        assert (handout.review, handout.sources, handout.version) == (
            source.review, source.sources, source.version)
        assert handout.title != source.title
    for campaign_id, campaign in spanish.campaigns.items():
        source = project.campaigns[campaign_id]
        assert [(s.key, s.offset, s.template, s.kind) for s in campaign.steps] == [
            (s.key, s.offset, s.template, s.kind) for s in source.steps]
        assert spanish.missing_for(source) == []
    # The clinic's words patients read have their Spanish form; the rest is the clinic's own.
    assert spanish.clinic.hours.startswith("de lunes a viernes")
    assert (spanish.clinic.name, spanish.clinic.locale) == (project.clinic.name, "es-US")
    # Every shipped translation is a draft until a translator and a clinician review it.
    assert {r.status for r in spanish.records.values()} == {"draft"}
    assert all(r.reviewed_by is None for r in spanish.records.values())


def test_a_missing_section_is_an_error_at_the_sections_line(clinic: Path) -> None:
    text = (clinic / HANDOUT).read_text(encoding="utf-8")
    start = text.index("  - id: your-results")
    end = text.index("  - id: next-treatment")
    (clinic / HANDOUT).write_text(text[:start] + text[end:], encoding="utf-8")
    assert _problems(clinic) == [
        f"{HANDOUT}:{_list_line(clinic, HANDOUT, 'sections')}: sections: expected the section "
        "'your-results' of handouts/aftercare-cosmetic.yaml; it is missing",
    ]


def test_an_unknown_section_id_is_an_error_at_its_line(clinic: Path) -> None:
    edit_file(clinic, HANDOUT, "  - id: what-is-normal", "  - id: what-is-usual")
    line = _line(clinic, HANDOUT, "id: what-is-usual")
    assert _problems(clinic) == [
        f"{HANDOUT}:{_list_line(clinic, HANDOUT, 'sections')}: sections: expected the section "
        "'what-is-normal' of handouts/aftercare-cosmetic.yaml; it is missing",
        f"{HANDOUT}:{line}: sections[1].id: expected a section id of handouts/"
        "aftercare-cosmetic.yaml (first-day, what-is-normal, your-results, next-treatment, "
        "your-medicine); got unknown id 'what-is-usual'",
    ]


def test_an_extra_section_is_an_error(clinic: Path) -> None:
    edit_file(clinic, HANDOUT, "\ncall_clinic_if:", "\n  - id: extra\n    heading: Más\n"
              "    paragraphs:\n      - Algo más.\ncall_clinic_if:")
    line = _line(clinic, HANDOUT, "id: extra")
    assert _problems(clinic) == [
        f"{HANDOUT}:{line}: sections[5].id: expected a section id of handouts/"
        "aftercare-cosmetic.yaml (first-day, what-is-normal, your-results, next-treatment, "
        "your-medicine); got unknown id 'extra'",
    ]


def test_sections_out_of_order_are_an_error(clinic: Path) -> None:
    text = (clinic / HANDOUT).read_text(encoding="utf-8")
    first = text.index("  - id: first-day")
    second = text.index("  - id: what-is-normal")
    third = text.index("  - id: your-results")
    swapped = text[:first] + text[second:third] + text[first:second] + text[third:]
    (clinic / HANDOUT).write_text(swapped, encoding="utf-8")
    assert _problems(clinic) == [
        f"{HANDOUT}:{_list_line(clinic, HANDOUT, 'sections')}: sections: expected the sections "
        "in the source's order (first-day, what-is-normal, your-results, next-treatment, "
        "your-medicine); got what-is-normal, first-day, your-results, next-treatment, "
        "your-medicine",
    ]


@pytest.mark.parametrize("field", ["emergency_if", "call_clinic_if"])
def test_a_safety_list_one_item_short_is_an_error(clinic: Path, field: str) -> None:
    text = (clinic / HANDOUT).read_text(encoding="utf-8")
    start = text.index(f"{field}:\n") + len(f"{field}:\n")
    first_item_end = text.index("\n", start) + 1
    (clinic / HANDOUT).write_text(text[:start] + text[first_item_end:], encoding="utf-8")
    source = load_project(ROOT).handouts["aftercare-cosmetic"]
    expected = len(getattr(source, field))
    assert _problems(clinic) == [
        f"{HANDOUT}:{_list_line(clinic, HANDOUT, field)}: {field}: expected {expected} items, "
        f"as the source of handouts/aftercare-cosmetic.yaml has; got {expected - 1}",
    ]


def test_a_section_list_of_another_length_is_an_error(clinic: Path) -> None:
    edit_file(clinic, HANDOUT, "      - Un dolor de cabeza leve el primer día.\n", "")
    line = _line(clinic, HANDOUT, "Pequeños bultos")
    assert _problems(clinic) == [
        f"{HANDOUT}:{line}: sections[1].bullets: expected 4 items, as the source of "
        "handouts/aftercare-cosmetic.yaml has; got 3",
    ]


def test_a_campaign_step_left_out_or_unknown_is_an_error(clinic: Path) -> None:
    edit_file(clinic, CAMPAIGN, "  week-2:", "  week-3:")
    line = _line(clinic, CAMPAIGN, "week-3:")
    assert _problems(clinic) == [
        f"{CAMPAIGN}:{_list_line(clinic, CAMPAIGN, 'steps')}: steps: expected the step 'week-2' of "
        "campaigns/botox-cosmetic.yaml; it is missing",
        f"{CAMPAIGN}:{line}: steps.week-3: expected a step of campaigns/botox-cosmetic.yaml "
        "(day-0, week-2, month-3); got unknown step 'week-3'",
    ]


def test_a_translation_without_a_source_is_an_error(clinic: Path) -> None:
    (clinic / "handouts" / "es" / "aftercare-cosmetic.yaml").rename(
        clinic / "handouts" / "es" / "aftercare-cosmetics.yaml")
    problems = _problems(clinic)
    assert "handouts/es/aftercare-cosmetics.yaml: expected a translation of a file in " \
           "handouts/; there is no handouts/aftercare-cosmetics.yaml" in problems


def test_a_record_must_name_its_language_and_a_review_its_reviewer(clinic: Path) -> None:
    edit_file(clinic, HANDOUT, "  language: es-US", "  language: pt-BR")
    edit_file(clinic, CAMPAIGN, "  status: draft", "  status: reviewed")
    assert _problems(clinic) == [
        f"{CAMPAIGN}:{_line(clinic, CAMPAIGN, 'status: reviewed')}: translation.status: "
        "expected reviewed_by and reviewed_on with status reviewed (run `pipeline translation "
        "stamp FILE --reviewed-by NAME`); got none",
        f"{HANDOUT}:{_line(clinic, HANDOUT, 'language: pt-BR')}: translation.language: "
        "expected a language tag for 'es' (such as 'es-US'); got 'pt-BR'",
        f"{HANDOUT}:{_line(clinic, HANDOUT, 'language: pt-BR')}: translation.language: "
        "expected the same language tag as the other es files (es-US); got 'pt-BR'",
    ]


def test_the_clinic_must_give_its_hours_in_every_language(clinic: Path) -> None:
    edit_file(clinic, "clinic.yaml", "  es:\n    hours:", "  fr:\n    hours:")
    assert _problems(clinic) == [
        f"clinic.yaml:{_list_line(clinic, 'clinic.yaml', 'translations')}: translations: expected "
        "translations.es.hours: the opening hours in es, which every es handout and email "
        "prints; got nothing",
        f"clinic.yaml:{_line(clinic, 'clinic.yaml', 'fr:')}: translations.fr: expected a "
        "language the content is translated into (es); got 'fr'",
    ]


def test_a_calendar_entry_may_hold_only_the_clinics_name(clinic: Path) -> None:
    edit_file(clinic, CAMPAIGN, "summary: Seguimiento con {clinic}",
              "summary: Seguimiento con {clínica}")
    line = _line(clinic, CAMPAIGN, "summary: Seguimiento con {clínica}")
    assert _problems(clinic) == [
        f"{CAMPAIGN}:{line}: steps.week-2.calendar.summary: expected no placeholder but "
        "{clinic} (the clinic's name); got {clínica}",
    ]
