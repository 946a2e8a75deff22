"""A Spanish-speaking patient through the command line: enrolled in Spanish, their emails sent in
Spanish on the English schedule, their handout printed in Spanish (and in both languages)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from aftercare.content.load import load_project
from tests.conftest import ROOT
from tests.test_pipeline_emails import SATURDAY, at, emls, enroll, env, run, send_due

__all__ = ["env"]  # the fixture, shared with the English end-to-end tests


def _text(message: object) -> str:
    from email.message import EmailMessage

    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(part.get_content().split())


def test_a_spanish_enrolment_gets_spanish_emails_on_the_same_schedule(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T14:00")
    assert enroll("--aftercare-consent", "--reminder-consent", "--language", "es") == 0
    out = capsys.readouterr().out
    # The same plan as in English: the evening email, two weeks, three months.
    assert "day-0    Sat 21 Nov 2026 18:00 EST (2026-11-21 23:00 UTC)  to send" in out
    assert "enrolled in botox-cosmetic: 3 messages planned" in out
    spanish = load_project(ROOT).translations["es"].campaigns["botox-cosmetic"]
    assert send_due("2026-11-21T23:00Z") == 0
    (first,) = emls(env)
    assert first["Subject"] == spanish.steps[0].subject == "Cómo cuidarse después de su visita"
    text = _text(first)
    assert text.startswith("JUNIPER LANE CLINIC")
    assert "Hola, Ana:" in text and "Las primeras 24 horas" in text
    assert "Hello" not in text and "Warning signs" not in text
    html = first.get_body(preferencelist=("html",))
    assert html is not None and '<html lang="es"' in html.get_content()
    # Two weeks on (Sat 5 Dec, 10:00 in New York): the check-in, with its calendar file.
    assert send_due("2026-12-05T15:00Z") == 0
    messages = emls(env)  # by file name: not in the order they were sent
    assert sorted(m["Subject"] for m in messages) == [
        "Cómo cuidarse después de su visita", "¿Cómo le va?"]
    (second,) = [m for m in messages if m["Subject"] == "¿Cómo le va?"]
    (attachment,) = [p for p in second.iter_attachments()]
    assert attachment.get_filename() == "seguimiento.ics"
    assert "SUMMARY:Seguimiento con Juniper Lane Clinic" in attachment.get_content().replace(
        "\r\n ", "")


def test_a_language_the_content_lacks_is_refused_and_nothing_is_written(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T14:00")
    assert enroll("--aftercare-consent", "--language", "fr") == 1
    assert capsys.readouterr().err == (
        "command line: --language: expected one of en, es (the languages the content is "
        "written in); got 'fr'\n")
    assert not (env / "var").exists()


def test_the_handout_prints_in_spanish_and_in_both_languages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T14:00")
    spanish, both, diary = tmp_path / "es.pdf", tmp_path / "both.pdf", tmp_path / "diary.pdf"
    assert run("handout", "aftercare-migraine", "--name", "Ana Núñez", "--treated-on", SATURDAY,
               "--aftercare-consent", "--language", "es", "--out", str(spanish),
               "--diary", str(diary)) == 0
    reader = PdfReader(io.BytesIO(spanish.read_bytes()))
    assert len(reader.pages) == 2 and reader.trailer["/Root"]["/Lang"] == "es-US"
    side_1 = "".join(reader.pages[0].extract_text().split())
    # The printed plan, in Spanish: the evening email and the next treatment.
    assert "sáb21denov:consejosporcorreoparalosprimerosdías" in side_1
    assert "AnaNúñez" in side_1
    assert "".join(PdfReader(diary).pages[0].extract_text().split()).count("síno") == 28
    assert run("handout", "aftercare-migraine", "--name", "Ana Núñez", "--treated-on", SATURDAY,
               "--language", "es", "--also-language", "en", "--out", str(both)) == 0
    pages = ["".join(p.extract_text().split()) for p in PdfReader(both).pages]
    assert len(pages) == 4
    assert "Busqueatencióndeemergenciaahora" in pages[0]
    assert "Getemergencycarenow" in pages[2]
    capsys.readouterr()
    assert run("handout", "what-is-botox", "--name", "Ana", "--treated-on", SATURDAY,
               "--language", "pt") == 1
    assert "--language: expected a language what-is-botox is written in (en, es); got 'pt'" \
        in capsys.readouterr().err


def test_preview_shows_a_step_in_spanish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("preview", "botox-migraine", "week-10", "--language", "es") == 0
    out = capsys.readouterr().out
    assert out.startswith("Subject: Es hora de hacer su próxima cita\n")
    assert "ICS: build/emails/es/botox-migraine/week-10.ics" in out
    assert (tmp_path / "build/emails/es/botox-migraine/week-10.html").is_file()
