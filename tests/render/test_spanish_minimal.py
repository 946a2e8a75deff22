"""The minimal email and the care page in Spanish: the neutral email a Spanish-speaking migraine
patient gets (Spanish from subject to footer, a care link that names its language, nothing of
the treatment in any part, accents or not), and the care page's content, which is the full
Spanish email's own part."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import pytest

from aftercare.check.minimal import minimal_words
from aftercare.content.model import Step
from aftercare.render.emails import EmailRenderer, Recipient, RenderedEmail
from aftercare.render.tokens import read_care
from tests.render.test_minimal import (
    KEY,
    MIGRAINE,
    PROJECT,
    SENT,
    Blocks,
    _parts,
    _sentences,
    _words,
)
from tests.render.test_minimal import _recipient as recipient

SPANISH = PROJECT.translations["es"]
# The English of the minimal email and of the shared frame: none may reach a Spanish reader.
ENGLISH = ("aftercare", "has sent you", "Read your", "This link is just", "If you have trouble",
           "We have attached", "Hello", "Take care", "Contact us", "Unsubscribe")


def _recipient(step: Step, language: str = "es") -> Recipient:
    return recipient(step, MIGRAINE, language)


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(PROJECT, KEY)


@pytest.fixture(scope="module")
def spanish(renderer: EmailRenderer) -> dict[str, RenderedEmail]:
    """Each migraine step's email to a Spanish reader, as the clinic sends it (minimal)."""
    return {s.key: renderer.render(MIGRAINE, s, _recipient(s)) for s in MIGRAINE.steps}


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@pytest.mark.parametrize("step", MIGRAINE.steps, ids=lambda s: s.key)
def test_a_spanish_minimal_email_is_spanish_with_a_link_that_names_its_language(
    spanish: dict[str, RenderedEmail], step: Step
) -> None:
    email = spanish[step.key]
    words = SPANISH.campaigns["botox-migraine"].step(step.key)
    assert words is not None and email.minimal
    assert (email.subject, email.preheader, email.language) == (
        words.subject, words.preheader, "es")
    assert '<html lang="es"' in email.html
    html = Blocks(email.html)
    texts = [text for _, _, text in html.items]
    assert texts[texts.index("Hola, Zephyrine:") - 1] == "Sus notas de cuidados"
    assert texts[texts.index("Hola, Zephyrine:") + 1] == (
        "Juniper Lane Clinic le envió notas de cuidados. Para que sean privadas, las pusimos "
        "en nuestra propia página segura y no en este correo.")
    # One link to the care page, named in Spanish; the token names this message.
    assert email.care_url is not None
    assert email.care_url.startswith("https://care.juniperlane.example/care/es/")
    assert [h for h, _ in html.links if "/care/" in h] == [email.care_url]
    assert ("Leer sus notas de cuidados" in dict(html.links).values())
    link = read_care(email.care_url.rsplit("/", 1)[1], KEY)
    assert link.genuine and link.public_id == recipient(step).public_id
    # The last day, written the Spanish way: 120 days after the send time.
    last = (email_sent(step) + dt.timedelta(days=120)).date()
    flat = " ".join(email.text.split())
    months = ("enero", "febrero", "marzo", "abril", "mayo", "junio")
    assert f"Funciona hasta el {last.day} de {months[last.month - 1]} de {last.year}." in flat
    assert "Si le cuesta respirar, tragar o hablar, llame ahora al 911." in flat
    assert "/unsubscribe?l=es&t=" in email.unsubscribe_url
    for english in ENGLISH:
        assert english not in email.text and english not in " ".join(html.texts), english
    if email.ics is not None:
        assert email.ics_filename == "proxima-visita.ics"
        assert "SUMMARY:Próxima visita en Juniper Lane Clinic" in email.ics.decode()


def email_sent(step: Step) -> dt.datetime:
    return dt.datetime.combine(step.offset.after(SENT.date()), SENT.timetz())


@pytest.mark.parametrize("word", minimal_words(PROJECT))
def test_no_spanish_minimal_email_names_the_word_with_or_without_accents(
    spanish: dict[str, RenderedEmail], word: str
) -> None:
    spelled = r"\s+".join(re.escape(w) for w in _folded(word).split()).replace("'", "['’]?")
    pattern = re.compile(rf"(?<!\w){spelled}(?:['’]s|s|es)?(?!\w)")
    for key, email in spanish.items():
        for part, text in _parts(email):
            readable = text.replace(email.care_url or "", " ").replace(email.unsubscribe_url, " ")
            assert not pattern.search(_folded(readable)), f"{key} {part} names {word!r}"


def test_no_spanish_minimal_email_quotes_a_spanish_handout(
    renderer: EmailRenderer, spanish: dict[str, RenderedEmail]
) -> None:
    quotable = sorted({
        piece.strip() for handout in SPANISH.handouts.values() for unit in _sentences(handout)
        for piece in re.split(r"(?<=[.!?])\s+", unit) if len(_words(piece).split()) >= 3})
    assert len(quotable) > 200
    for key, email in spanish.items():
        shown = {part: _words(text) for part, text in _parts(email)}
        for sentence in quotable:
            for part, words in shown.items():
                assert _words(sentence) not in words, f"{key} {part} quotes {sentence!r}"
    # The same reading finds the quotes in the full Spanish email: it can fail.
    first = MIGRAINE.steps[0]
    full = renderer.render(MIGRAINE, first, _recipient(first), "full")
    assert sum(_words(s) in _words(full.text) for s in quotable) > 10


@pytest.mark.parametrize("step", MIGRAINE.steps, ids=lambda s: s.key)
def test_the_spanish_care_page_shows_exactly_what_the_full_spanish_email_shows(
    renderer: EmailRenderer, step: Step
) -> None:
    recipient = _recipient(step)
    full = renderer.render(MIGRAINE, step, recipient, "full")
    page = renderer.care_page(MIGRAINE, step, recipient)
    email = Blocks(full.html, region=("td", "content"))
    shown = [item for item in email.items
             if item[1] != "signoff" and item[2] != "Hola, Zephyrine:"]
    care = Blocks(str(page.body))
    assert care.items == shown and len(shown) > 10
    assert care.links == email.links and care.boxes == email.boxes
    # Spanish: the Spanish handout's headings and the Spanish warning block.
    handout = SPANISH.handouts[MIGRAINE.handout]
    headings = [text for tag, _, text in care.items if tag == "h2"]
    for section_id in step.sections:
        section = handout.section(section_id)
        assert section is not None and section.heading in headings
    assert "Busque atención de emergencia ahora" in page.body
    for frame in ("Hola", "Cuídese", "Dejar de recibir", "<html", "Get emergency care"):
        assert frame not in page.body
    assert page.ics == full.ics


def test_the_english_care_page_of_the_same_step_stays_english(renderer: EmailRenderer) -> None:
    step = MIGRAINE.steps[0]
    english = renderer.care_page(MIGRAINE, step, _recipient(step, "en"))
    spanish = renderer.care_page(MIGRAINE, step, _recipient(step))
    assert "The first 24 hours" in english.body and "Las primeras 24 horas" not in english.body
    assert "Las primeras 24 horas" in spanish.body
    email = renderer.render(MIGRAINE, step, _recipient(step, "en"))
    assert email.care_url is not None and "/care/es/" not in email.care_url
