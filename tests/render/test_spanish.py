"""Everything a Spanish-speaking patient reads, rendered from the clinic's real content: the emails
(HTML, text, calendar), the one-sheet handout on Letter and A4, the topics, the diary, and a
handout printed in both languages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re

import pdfplumber
import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from aftercare.content.load import load_project
from aftercare.content.model import ContentMode, Project
from aftercare.content.values import EmailAddress
from aftercare.errors import RenderError
from aftercare.render.emails import EmailRenderer, Recipient, RenderedEmail
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.tokens import verify
from tests.conftest import ROOT
from tests.projects import copy_of_the_clinic
from tests.render.test_handouts import longest_card

KEY = b"test-key-" * 4
TREATED_ON = dt.date(2026, 11, 23)  # a Monday
SHEETS = ("aftercare-cosmetic", "aftercare-migraine")
# Sentences of the shared templates in English: none may reach a Spanish reader.
ENGLISH = ("Hello", "Take care", "The care team", "Warning signs", "Get emergency care now",
           "Call us", "Contact us", "Unsubscribe", "You get these emails", "Before your next",
           "Phone:", "Open:", "Sources", "Reviewed on", "Page ", "Your next dates", "Treated by")


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="module")
def emails(project: Project) -> EmailRenderer:
    return EmailRenderer(project, KEY)


@pytest.fixture(scope="module")
def handouts(project: Project) -> HandoutRenderer:
    return HandoutRenderer(project)


def _recipient(language: str = "es", **changes: object) -> Recipient:
    recipient = Recipient("Ana", EmailAddress("ana@example.com"), language, TREATED_ON, None,
                          "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    return dataclasses.replace(recipient, **changes)  # type: ignore[arg-type]


def _render(emails: EmailRenderer, project: Project, campaign: str, step: str,
            content: ContentMode = "full") -> RenderedEmail:
    """A step's email to a Spanish reader: the full email unless ``content`` says (the sample
    clinic's migraine emails are minimal; their full content is what the care page shows)."""
    source = project.campaigns[campaign]
    found = source.step(step)
    assert found is not None
    return emails.render(source, found, _recipient(), content)


def _squashed(text: str) -> str:
    return "".join(text.split())


def _pages(data: bytes) -> list[str]:
    return [_squashed(page.extract_text()) for page in PdfReader(io.BytesIO(data)).pages]


# ---------------------------------------------------------------- emails


@pytest.mark.parametrize("campaign", ["botox-cosmetic", "botox-migraine"])
def test_every_spanish_email_is_spanish_from_subject_to_footer(
    project: Project, emails: EmailRenderer, campaign: str
) -> None:
    spanish = project.translations["es"]
    for step in project.campaigns[campaign].steps:
        email = _render(emails, project, campaign, step.key)
        words = spanish.campaigns[campaign].step(step.key)
        assert words is not None
        assert (email.subject, email.preheader, email.language) == (
            words.subject, words.preheader, "es")
        assert '<html lang="es"' in email.html and 'lang="es"' in email.html
        assert email.text.startswith("JUNIPER LANE CLINIC")
        assert "Hola, Ana:" in email.text and "Cuídese," in email.text
        assert "El equipo de atención de Juniper Lane Clinic" in email.text
        assert "Horario: de lunes a viernes, de 9 a. m. a 5 p. m." in " ".join(email.text.split())
        assert "Dejar de recibir estos correos:" in email.text
        for sentence in ENGLISH:
            assert sentence not in email.text, (step.key, sentence)
        # The handout it quotes, and its warning lists, are the Spanish handout's.
        handout = spanish.handouts[project.campaigns[campaign].handout]
        flat = " ".join(email.text.split())
        for section_id in step.sections:
            section = handout.section(section_id)
            assert section is not None and section.heading in email.text
        if step.warning_signs:
            assert "BUSQUE ATENCIÓN DE EMERGENCIA AHORA" in email.text
            assert all(" ".join(sign.split()) in flat for sign in handout.emergency_if)
        # The link to stop emails names the page's language ahead of the token.
        url = email.unsubscribe_url
        assert url.startswith("https://care.juniperlane.example/unsubscribe?l=es&t=")
        assert verify(url.rsplit("t=", 1)[1], KEY) == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_dates_and_spans_in_an_email_are_spanish(project: Project, emails: EmailRenderer) -> None:
    email = _render(emails, project, "botox-migraine", "week-10")
    flat = " ".join(email.text.split())
    # 12 weeks after Mon 23 Nov 2026 is Mon 15 Feb 2027.
    assert "Su próximo tratamiento toca 12 semanas después del anterior, cerca de esta fecha: " \
           "lunes 15 de febrero." in flat
    assert "<strong>lunes 15 de febrero</strong>" in email.html
    assert email.ics is not None and email.ics_filename == "proxima-visita.ics"
    ics = email.ics.decode()
    assert "SUMMARY:Próxima visita en Juniper Lane Clinic" in ics
    assert "DTSTART;VALUE=DATE:20270215" in ics
    assert "{clinic}" not in ics


def test_an_english_recipient_still_reads_english(project: Project, emails: EmailRenderer) -> None:
    source = project.campaigns["botox-cosmetic"]
    email = emails.render(source, source.steps[1], _recipient("en"))
    assert email.subject == "How are you doing?" and "Hello Ana," in email.text
    assert email.ics_filename == "check-in.ics"
    assert "/unsubscribe?t=" in email.unsubscribe_url


def test_a_step_whose_spanish_template_is_gone_renders_nothing_in_english(
    tmp_path: object,
) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    clinic = copy_of_the_clinic(ROOT, tmp_path / "clinic")
    (clinic / "templates" / "email" / "es" / "day-0.html").unlink()
    project = load_project(clinic)
    campaign = project.campaigns["botox-cosmetic"]
    with pytest.raises(RenderError, match=r"templates/email/es/day-0\.html: no such template"):
        EmailRenderer(project, KEY).render(campaign, campaign.steps[0], _recipient())


def test_a_language_the_project_lacks_is_an_error_not_english(
    project: Project, emails: EmailRenderer
) -> None:
    campaign = project.campaigns["botox-cosmetic"]
    with pytest.raises(RenderError, match="no content in language 'fr'; the project has en, es"):
        emails.render(campaign, campaign.steps[0], _recipient("fr"))


# ---------------------------------------------------------------- the one-sheet handout


@pytest.mark.parametrize("paper_size", ["Letter", "A4"])
@pytest.mark.parametrize("topic", SHEETS)
@pytest.mark.parametrize("aftercare", [True, False], ids=["enrolled", "print-only"])
def test_the_spanish_checkout_handout_is_one_sheet_at_the_longest_details(
    project: Project, paper_size: str, topic: str, aftercare: bool
) -> None:
    clinic = dataclasses.replace(project.clinic, paper_size=paper_size)
    renderer = HandoutRenderer(dataclasses.replace(project, clinic=clinic))
    handout = project.translations["es"].handouts[topic]
    card = longest_card(aftercare)
    data = renderer.pdf(handout, card)
    pages = _pages(data)
    assert len(pages) == 2, (paper_size, topic)
    side_1, side_2 = pages
    assert PdfReader(io.BytesIO(data)).trailer["/Root"]["/Lang"] == "es-US"
    for text in ("Busque atención de emergencia ahora", "Llame al 911 o vaya a la sala de "
                 "emergencias más cercana", *handout.emergency_if, "Llámenos",
                 "De día: (617) 555-0142", *handout.call_clinic_if, "Sus próximas fechas",
                 "Fecha: lun 23 de nov de 2026", "Página 1 de 2", _squashed(str(card.lot))):
        assert _squashed(text) in side_1, text
    if aftercare:
        assert _squashed("lun 23 de nov: consejos por correo para los primeros días") in side_1
    else:
        assert "Nolemandamos" not in side_1 and "Noleenviamoscorreos" in side_1
    for section in handout.sections:
        assert _squashed(section.heading) in side_2
    assert f"/sources/es/{topic}" in side_2
    assert _squashed("Traducción preliminar, aún sin revisar, del texto en inglés revisado el "
                     "29 de noviembre de 2026.") in side_2
    assert "Revisadoel" not in side_2  # a draft is never printed as reviewed
    for sentence in ENGLISH:
        assert _squashed(sentence) not in "".join(pages), sentence
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        assert all(char["size"] >= 11.99 for page in pdf.pages for char in page.chars)


@pytest.mark.parametrize("topic", SHEETS)
def test_side_2_keeps_a_line_to_spare_on_letter(
    project: Project, handouts: HandoutRenderer, topic: str
) -> None:
    # The migraine sheet's side 2 is the fullest page: a longer Spanish sentence must not
    # push the sources line onto a third page unnoticed.
    data = handouts.pdf(project.translations["es"].handouts[topic], longest_card())
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        page = pdf.pages[1]
        words = page.extract_words()
        footer = min(w["top"] for w in words if w["text"] == "¿Preguntas?")
        body = max(w["bottom"] for w in words if w["bottom"] < footer - 12)
    assert footer - body >= 14.4, footer - body  # one 12 pt line, spaced 1.2


def test_the_spanish_sheet_is_composed_like_the_english_one(
    project: Project, handouts: HandoutRenderer
) -> None:
    # Side 2 is laid out once per topic and language, side 1 per patient; the result is the
    # same as laying out the whole sheet.
    handout = project.translations["es"].handouts["aftercare-cosmetic"]
    card = longest_card()
    composed = handouts.pdf(handout, card)
    again = handouts.pdf(handout, card)
    whole = handouts.pdf_from_html(handouts.html(handout, card), "x", "es")
    assert _pages(composed) == _pages(again) == _pages(whole)
    assert ("aftercare-cosmetic", "es") in handouts._bodies
    assert ("aftercare-cosmetic", "en") not in handouts._bodies


def test_both_languages_print_one_sheet_each_each_page_marked_in_its_language(
    project: Project, handouts: HandoutRenderer
) -> None:
    spanish = project.translations["es"].handouts["aftercare-migraine"]
    english = project.handouts["aftercare-migraine"]
    data = handouts.pdf_sheets([spanish, english], longest_card())
    pages = _pages(data)
    assert len(pages) == 4
    assert "Buscaatención" not in pages[0] and "Busqueatencióndeemergenciaahora" in pages[0]
    assert "Página2de2" in pages[1]
    assert "Getemergencycarenow" in pages[2] and "Page2of2" in pages[3]
    reader = PdfReader(io.BytesIO(data))
    assert reader.trailer["/Root"]["/Lang"] == "es-US"
    numbers = {page.indirect_reference.idnum: index for index, page in enumerate(reader.pages)}
    marked: dict[int, set[object]] = {}
    for number in range(1, len(reader.xref_objStm) + 10_000):
        try:
            item = reader.get_object(number)
        except Exception:  # numbers past the last object
            continue
        if isinstance(item, DictionaryObject) and item.get("/Type") == "/StructElem" \
                and "/Pg" in item:
            page = numbers[item.raw_get("/Pg").idnum]
            marked.setdefault(page, set()).add(item.get("/Lang"))
    assert marked == {0: {None}, 1: {None}, 2: {"en-US"}, 3: {"en-US"}}


# ---------------------------------------------------------------- topics and the diary


def test_every_spanish_topic_fits_two_sheets_with_the_emergency_box_first(
    project: Project, handouts: HandoutRenderer
) -> None:
    spanish = project.translations["es"]
    for topic in sorted(set(spanish.handouts) - set(SHEETS)):
        handout = spanish.handouts[topic]
        data = handouts.pdf(handout, None)
        pages = _pages(data)
        assert len(pages) <= 4, topic
        assert PdfReader(io.BytesIO(data)).trailer["/Root"]["/Lang"] == "es-US"
        if handout.emergency_if:
            assert "Busqueatencióndeemergenciaahora" in pages[0], topic
            assert all(_squashed(sign) in pages[0] for sign in handout.emergency_if), topic
        text = "".join(pages)
        assert "Fuentes" in text and "Próximarevisión:" in text
        assert "Traducciónpreliminar,aúnsinrevisar,deltextoeninglésrevisadoel" in text


def test_the_spanish_headache_diary_is_one_page_with_spanish_dates(
    handouts: HandoutRenderer,
) -> None:
    data = handouts.diary_pdf(longest_card(), "es")
    (page,) = _pages(data)
    for text in ("Midiariodedolordecabeza", "Día", "¿Ledolió?", "Horas", "¿Cuánto?",
                 "lun23denov", "dom20dedic", "síno", "Traigaestahojaasupróximavisita."):
        assert text in page, text
    assert PdfReader(io.BytesIO(data)).trailer["/Root"]["/Lang"] == "es-US"
    assert not re.search(r"Mon|Sun|Headache", page)
