"""Translations that cannot silently go stale: drift after an English edit, the stamp command, the
shared sentences, the font, and `pipeline check --strict` on a copy of the clinic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import pipeline
from aftercare.check.lint import lint
from aftercare.check.translations import (
    check_printable,
    check_shared_sentences,
    used_sentences,
)
from aftercare.content.load import load_project
from aftercare.content.stamp import rewrite_record, stamp, translation_files
from tests.conftest import ROOT, edit_file
from tests.projects import copy_of_the_clinic

TODAY = dt.date(2026, 12, 1)
HANDOUT = "handouts/es/aftercare-cosmetic.yaml"
TEMPLATES = "templates/email/es/translation.yaml"


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_of_the_clinic(ROOT, tmp_path / "clinic")


def _findings(root: Path) -> list[str]:
    return [str(f) for f in lint(load_project(root), TODAY)]


def _record_line(root: Path, name: str) -> int:
    """Where a record is reported: its first key, the line after "translation:"."""
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    return lines.index("translation:") + 2


def test_every_shipped_translation_records_its_source_and_none_has_drifted() -> None:
    project = load_project(ROOT)
    files = translation_files(project)
    assert len(files) == 13  # 9 handouts, 2 campaigns, the email templates, the sentences
    sentences = used_sentences(project)
    for file in files:
        parts = file.source_parts(project, sentences)
        assert dict(file.record.translated_from) == parts, file.name
    assert [f for f in lint(project, TODAY) if "changed since" in str(f)] == []


def test_editing_an_english_section_names_it_in_its_translation(clinic: Path) -> None:
    english = "handouts/aftercare-cosmetic.yaml"
    edit_file(clinic, english, "A walk is fine.", "A short walk is fine.")
    edit_file(clinic, english, "  - Double vision\n",
              "  - Seeing double\n")
    line = _record_line(clinic, HANDOUT)
    assert _findings(clinic) == [
        f"warning: {HANDOUT}:{line}: source changed since translation on 2026-11-29: "
        "sections first-day; emergency_if",
    ]
    # A warning fails `check --strict`, and only then.
    assert pipeline.main(["--project", str(clinic), "check"]) == 0
    assert pipeline.main(["--project", str(clinic), "check", "--strict"]) == 1


def test_after_a_review_the_drift_is_counted_from_the_review(
    clinic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pipeline.main([
        "--project", str(clinic), "translation", "stamp", HANDOUT, "--reviewed-by",
        "Ana Example, medical translator; Dr. Rana Patel", "--on", "2026-12-01"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{HANDOUT}: reviewed, source recorded as of 2026-12-01",
        "stamped 1 translation files",
    ]
    record = load_project(clinic).translations["es"].records[HANDOUT]
    assert (record.status, record.reviewed_by, record.reviewed_on) == (
        "reviewed", "Ana Example, medical translator; Dr. Rana Patel", dt.date(2026, 12, 1))
    assert _findings(clinic) == []
    english = "handouts/aftercare-cosmetic.yaml"
    edit_file(clinic, english, "Small bruises.", "Small bruises, if any.")
    edit_file(clinic, english, "A walk is fine.", "A walk is good.")
    assert _findings(clinic) == [
        f"warning: {HANDOUT}:{_record_line(clinic, HANDOUT)}: source changed since review on "
        "2026-12-01: sections first-day, what-is-normal",
    ]
    # The translator updates the Spanish and records it: a draft again, to be reviewed again.
    assert pipeline.main(["--project", str(clinic), "translation", "stamp", HANDOUT,
                          "--translated-by", "Ana Example", "--on", "2026-12-02"]) == 0
    record = load_project(clinic).translations["es"].records[HANDOUT]
    assert (record.status, record.reviewed_by, record.reviewed_from) == ("draft", None, None)
    assert _findings(clinic) == []


def test_a_reviewed_translation_prints_as_reviewed_and_a_draft_as_a_draft(clinic: Path) -> None:
    project = load_project(clinic)
    stamp(project, HANDOUT, dt.date(2026, 12, 1), reviewed_by="Dr. Luz Soto")
    from aftercare.render.handouts import HandoutRenderer

    reviewed = load_project(clinic).translations["es"].handouts["aftercare-cosmetic"]
    html = HandoutRenderer(load_project(clinic)).html(reviewed, None)
    assert "Traducción revisada el 1 de diciembre de 2026, del texto en inglés revisado el " \
           "29 de noviembre de 2026." in html
    draft = project.translations["es"].handouts["aftercare-cosmetic"]
    html = HandoutRenderer(project).html(draft, None)
    assert "Traducción preliminar, aún sin revisar, del texto en inglés revisado el 29 de " \
           "noviembre de 2026." in html
    assert "Revisado el" not in html


def test_an_english_email_template_edit_names_the_template(clinic: Path) -> None:
    edit_file(clinic, "templates/email/day-0.txt", "Thank you for coming to see us.",
              "Thank you for visiting us.")
    assert _findings(clinic) == [
        f"warning: {TEMPLATES}:{_record_line(clinic, TEMPLATES)}: source changed since "
        "translation on 2026-11-29: templates day-0.txt",
    ]


def test_a_campaign_step_edit_names_the_step(clinic: Path) -> None:
    edit_file(clinic, "campaigns/botox-cosmetic.yaml", "subject: How are you doing?",
              "subject: How are things?")
    name = "campaigns/es/botox-cosmetic.yaml"
    assert _findings(clinic) == [
        f"warning: {name}:{_record_line(clinic, name)}: source changed since translation on "
        "2026-11-29: steps week-2",
    ]


def test_a_translation_never_stamped_says_how_to_record_it(clinic: Path) -> None:
    text = (clinic / HANDOUT).read_text(encoding="utf-8")
    start = text.index("  translated_from:")
    end = text.index("  reviewed_by:")
    (clinic / HANDOUT).write_text(text[:start] + text[end:], encoding="utf-8")
    assert _findings(clinic) == [
        f"warning: {HANDOUT}:{_record_line(clinic, HANDOUT)}: no record of the source at its "
        f"translation; after checking it against the source, run `pipeline translation stamp "
        f"{HANDOUT} --translated-by NAME`",
    ]


def test_stamping_keeps_the_rest_of_the_file_and_its_comments() -> None:
    text = (ROOT / HANDOUT).read_text(encoding="utf-8")
    project = load_project(ROOT)
    record = project.translations["es"].records[HANDOUT]
    assert rewrite_record(text, record) == text
    changed = rewrite_record(text, record.__class__(**{**record.__dict__, "status": "reviewed",
                                                       "reviewed_by": "Dr. Luz Soto"}))
    assert "  status: reviewed                   # draft until a qualified medical translator" \
           in changed
    assert "  reviewed_by: Dr. Luz Soto\n" in changed
    assert changed.split("\ntitle:", 1)[1] == text.split("\ntitle:", 1)[1]


def test_stamp_refuses_a_file_that_is_not_a_translation(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert pipeline.main(["--project", str(ROOT), "translation", "stamp",
                          "handouts/aftercare-cosmetic.yaml", "--reviewed-by", "X"]) == 1
    assert "error: FILE: expected a translation file of this project (campaigns/es/" in \
           capsys.readouterr().err


def test_translation_status_lists_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline.main(["--project", str(ROOT), "translation", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "13 translation files"
    assert (f"{HANDOUT}: draft, translated on 2026-11-29 by Project team (machine-assisted "
            "draft, not yet reviewed); not reviewed") in out


# ---------------------------------------------------------------- the shared sentences


def test_a_shared_sentence_without_its_translation_is_an_error_where_it_is_written(
    clinic: Path,
) -> None:
    edit_file(clinic, "templates/i18n/es.yaml", '  "Call us": "Llámenos"\n', "")
    line = next(i for i, row in enumerate(
        (clinic / "templates/handout/macros.html").read_text().splitlines(), start=1)
        if '_("Call us")' in row)
    findings = [str(f) for f in check_shared_sentences(load_project(clinic), TODAY)]
    assert findings == [
        f"error: templates/handout/macros.html:{line}: no es translation in "
        "templates/i18n/es.yaml of 'Call us'; nothing in es can be rendered with it",
    ]


def test_a_translation_must_keep_the_sentences_values_and_an_unused_one_is_a_warning(
    clinic: Path,
) -> None:
    edit_file(clinic, "templates/i18n/es.yaml", '"Teléfono: %(phone)s"', '"Teléfono: %(fono)s"')
    edit_file(clinic, "templates/i18n/es.yaml", '  "Call us": "Llámenos"\n',
              '  "Call us": "Llámenos"\n  "Call us now": "Llámenos ya"\n')
    strings = "templates/i18n/es.yaml"
    lines = (clinic / strings).read_text().splitlines()
    phone = next(i for i, row in enumerate(lines, 1) if row.startswith('  "Phone: '))
    extra = next(i for i, row in enumerate(lines, 1) if row.startswith('  "Call us now"'))
    findings = [str(f) for f in check_shared_sentences(load_project(clinic), TODAY)]
    assert findings == [
        f"error: {strings}:{phone}: 'Phone: %(phone)s': expected the same values as the "
        "English (%(phone)s); got %(fono)s",
        f"warning: {strings}:{extra}: 'Call us now' is written by no template any more (its "
        "English changed?): translate the new sentence, and remove this one",
    ]


def test_a_character_the_handout_font_lacks_is_an_error(clinic: Path) -> None:
    edit_file(clinic, HANDOUT, "  - Visión doble", "  - Visión doble ↯")
    findings = [str(f) for f in check_printable(load_project(clinic), TODAY)]
    assert findings == [f"error: {HANDOUT}: '↯' (U+21AF) not in the handout font; use another "
                        "character"]


def test_the_shipped_spanish_prints_in_the_bundled_font() -> None:
    assert list(check_printable(load_project(ROOT), TODAY)) == []


def test_a_shared_sentence_added_since_the_translation_is_named_on_the_sentences_file(
    clinic: Path,
) -> None:
    # Translated at once, so nothing is missing; but a reviewed file would not have seen it.
    edit_file(clinic, "templates/handout/macros.html", '<h2>{{ _("Call us") }}</h2>',
              '<h2>{{ _("Call us") }}</h2>\n  <p>{{ _("We are here to help.") }}</p>')
    edit_file(clinic, "templates/i18n/es.yaml", '  "Call us": "Llámenos"\n',
              '  "Call us": "Llámenos"\n  "We are here to help.": "Estamos para ayudarle."\n')
    strings = "templates/i18n/es.yaml"
    assert _findings(clinic) == [
        f"warning: {strings}:{_record_line(clinic, strings)}: source changed since translation "
        "on 2026-11-29: sentences",
    ]
