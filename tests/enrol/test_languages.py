"""Choosing the language at enrolment: every language the content has, typed or in CSV, and a
clear refusal when a campaign's translation lacks any part of its steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.content.model import Project
from aftercare.enrol.csv_import import read_rows
from aftercare.enrol.enrolment import enroll_one
from aftercare.enrol.rules import parse_enrollment, supported_languages
from aftercare.errors import ContentError
from aftercare.outbox.store import Outbox
from tests.conftest import ROOT
from tests.enrol.conftest import BY, NOW
from tests.projects import copy_of_the_clinic

FIELDS = {"email": "ana@example.com", "first_name": "Ana", "campaign": "botox-cosmetic",
          "treated_on": "2026-03-02", "marketing_consent": "true"}


@pytest.fixture(scope="module")
def clinic() -> Project:
    return load_project(ROOT)


def _problems(project: Project, **fields: str) -> list[str]:
    with pytest.raises(ContentError) as caught:
        parse_enrollment({**FIELDS, **fields}, project, NOW, BY)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("typed", ["es", "ES", "es-US", " es_us "])
def test_spanish_is_accepted_however_it_is_written(clinic: Project, typed: str) -> None:
    assert supported_languages(clinic) == ("en", "es")
    assert parse_enrollment({**FIELDS, "language": typed}, clinic, NOW, BY).language == "es"


def test_an_unknown_language_names_the_ones_there_are(clinic: Project) -> None:
    assert _problems(clinic, language="fr") == [
        "command line: language: expected one of en, es (the languages the content is written "
        "in); got 'fr'",
    ]


def test_a_campaign_whose_translation_lacks_a_template_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    root = copy_of_the_clinic(ROOT, tmp_path / "clinic")
    (root / "templates" / "email" / "es" / "cosmetic-week-2.txt").unlink()
    project = load_project(root)
    assert _problems(project, language="es") == [
        "command line: language: botox-cosmetic has no complete es translation, so no email "
        "could be sent in es; missing: templates/email/es/cosmetic-week-2.txt. Enrol in en, or "
        "add the translation first; got 'es'",
    ]
    # The other campaign is complete, and English is always there.
    assert parse_enrollment({**FIELDS, "campaign": "botox-migraine", "language": "es"},
                            project, NOW, BY).language == "es"
    assert parse_enrollment({**FIELDS, "language": "en"}, project, NOW, BY).language == "en"


def test_a_campaign_without_its_translation_is_refused_naming_every_missing_part(
    tmp_path: Path,
) -> None:
    root = copy_of_the_clinic(ROOT, tmp_path / "clinic")
    (root / "campaigns" / "es" / "botox-migraine.yaml").unlink()
    (root / "handouts" / "es" / "aftercare-migraine.yaml").unlink()
    project = load_project(root)
    assert _problems(project, campaign="botox-migraine", language="es") == [
        "command line: language: botox-migraine has no complete es translation, so no email "
        "could be sent in es; missing: campaigns/es/botox-migraine.yaml, "
        "handouts/es/aftercare-migraine.yaml. Enrol in en, or add the translation first; "
        "got 'es'",
    ]


def test_a_csv_row_in_spanish_is_enrolled_and_a_refused_one_named_by_line(
    tmp_path: Path, clinic: Project,
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("email,first_name,campaign,treated_on,language\n"
                    "ana@example.com,Ana,botox-cosmetic,2026-03-02,es\n"
                    "ben@example.com,Ben,botox-migraine,2026-03-01,en\n", encoding="utf-8")
    rows, _ = read_rows(path, clinic, NOW, "import:patients.csv")
    assert [row.enrollment.language for row in rows] == ["es", "en"]
    path.write_text(path.read_text().replace(",en\n", ",pt\n"), encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        read_rows(path, clinic, NOW, "import:patients.csv")
    assert [str(p) for p in caught.value.problems] == [
        "patients.csv:3: language: expected one of en, es (the languages the content is "
        "written in); got 'pt'",
    ]


def test_the_language_is_stored_with_the_patient(clinic: Project, outbox: Outbox) -> None:
    enrollment = parse_enrollment({**FIELDS, "language": "es"}, clinic, NOW, BY)
    result = enroll_one(outbox, clinic, enrollment, NOW)
    assert result.created
    assert {m.language for m in outbox.messages()} == {"es"}
