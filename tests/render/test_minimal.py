"""Minimal emails on the real content: what they say, what they never say (word by word, and no
handout sentence), and the care page's content, which is exactly the full email's own part."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from aftercare.check.minimal import minimal_words
from aftercare.content.load import load_project
from aftercare.content.model import Campaign, Handout, Step
from aftercare.content.values import EmailAddress
from aftercare.render.care_links import CARE_PATH
from aftercare.render.emails import EmailRenderer, Recipient, RenderedEmail
from aftercare.render.tokens import read_care, verify
from tests.conftest import ROOT

PROJECT = load_project(ROOT)
KEY = b"m" * 32
NY = zoneinfo.ZoneInfo("America/New_York")
SENT = dt.datetime(2026, 11, 23, 18, 0, tzinfo=NY)
PUBLIC_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
MIGRAINE = PROJECT.campaigns["botox-migraine"]
COSMETIC = PROJECT.campaigns["botox-cosmetic"]
SAFETY = "If you have trouble breathing, swallowing or speaking, call 911 now."
ALL_STEPS = [pytest.param(c, s, id=f"{c.id}/{s.key}") for c in (COSMETIC, MIGRAINE)
             for s in c.steps]


def _recipient(step: Step, campaign: Campaign = MIGRAINE, language: str = "en") -> Recipient:
    due = dt.datetime.combine(step.offset.after(SENT.date()), SENT.timetz())
    return Recipient(first_name="Zephyrine", email=EmailAddress("zephyrine@example.com"),
                     language=language, treated_on=SENT.date(), local_due=due,
                     public_id=PUBLIC_ID)


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(PROJECT, KEY)


@pytest.fixture(scope="module")
def minimal(renderer: EmailRenderer) -> dict[str, RenderedEmail]:
    """Each migraine step's email as the clinic sends it (minimal)."""
    return {s.key: renderer.render(MIGRAINE, s, _recipient(s)) for s in MIGRAINE.steps}


def _parts(email: RenderedEmail) -> Iterator[tuple[str, str]]:
    """Everything a minimal email shows or attaches, the HTML read as a browser shows it."""
    yield "subject", email.subject
    yield "preview", email.preheader
    yield "text", email.text
    yield "html", " ".join(Blocks(email.html).texts) + " " + " ".join(Blocks(email.html).attrs)
    if email.ics is not None:
        yield "ics", re.sub(r"\r\n ", "", email.ics.decode()).replace("\\,", ",")
        yield "ics name", email.ics_filename or ""


class Blocks(HTMLParser):
    """The blocks (headings, paragraphs, list items), links and boxes of an HTML document or of
    one region of it: with ``region`` (tag, class) the first such element and what is inside."""

    BLOCKS = ("h1", "h2", "h3", "p", "li")

    def __init__(self, source: str, region: tuple[str, str] | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, str, str]] = []  # (tag, class, text)
        self.links: list[tuple[str, str]] = []
        self.boxes: list[str] = []
        self.texts: list[str] = []
        self.attrs: list[str] = []
        self._region = region
        self._depth = 0 if region else 1
        self._open: list[tuple[str, str, list[str]]] = []
        self._link: tuple[str, list[str]] | None = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.attrs += [v for k, v in attrs if v and k not in ("class", "style")]
        if self._region and tag == self._region[0]:
            if self._depth:
                self._depth += 1
            elif found.get("class") == self._region[1]:
                self._depth = 1
        if not self._depth:
            return
        if tag in self.BLOCKS:
            self._open.append((tag, found.get("class") or "", []))
        elif tag == "a":
            self._link = (found.get("href") or "", [])
        elif tag == "table":
            self.boxes.append(found.get("class") or "")

    def handle_endtag(self, tag: str) -> None:
        if self._region and tag == self._region[0] and self._depth:
            self._depth -= 1
            if not self._depth:
                self._region = ("", "")  # only the first such element
        if tag in self.BLOCKS and self._open and self._open[-1][0] == tag:
            name, css, text = self._open.pop()
            self.items.append((name, css, " ".join("".join(text).split())))
        elif tag == "a" and self._link is not None:
            self.links.append((self._link[0], " ".join("".join(self._link[1]).split())))
            self._link = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if not self._depth:
            return
        for _, _, text in self._open:
            text.append(data)
        if self._link is not None:
            self._link[1].append(data)


# ------------------------------------------------------------------ the sample clinic's modes


def test_the_sample_clinic_sends_migraine_minimal_and_cosmetic_full(
    renderer: EmailRenderer, minimal: dict[str, RenderedEmail]
) -> None:
    assert PROJECT.clinic.email.content == "full"
    assert (PROJECT.content_of(MIGRAINE), PROJECT.content_of(COSMETIC)) == ("minimal", "full")
    assert all(e.minimal and e.care_url for e in minimal.values())
    cosmetic = renderer.render(COSMETIC, COSMETIC.steps[0], _recipient(COSMETIC.steps[0]))
    assert not cosmetic.minimal and cosmetic.care_url is None
    assert "The first 24 hours" in cosmetic.text


# ------------------------------------------------------------------ what a minimal email says


@pytest.mark.parametrize("step", MIGRAINE.steps, ids=lambda s: s.key)
def test_a_minimal_email_gives_one_link_the_numbers_and_the_safety_line(
    minimal: dict[str, RenderedEmail], step: Step
) -> None:
    email = minimal[step.key]
    html = Blocks(email.html)
    texts = [text for _, _, text in html.items]
    assert texts[texts.index("Hello Zephyrine,") - 1] == "Your aftercare notes"
    assert texts[texts.index("Hello Zephyrine,") + 1] == (
        "Juniper Lane Clinic has sent you aftercare notes. To keep them private, we put them "
        "on our own secure page instead of in this email.")
    assert SAFETY in texts and SAFETY in " ".join(email.text.replace("\u00a0", " ").split())
    # One link to the notes (the button), in both parts; the clinic's numbers as in every email.
    care = [href for href, _ in html.links if CARE_PATH in href]
    assert care == [email.care_url] and email.text.count(CARE_PATH) == 1
    assert (email.care_url, "Read your aftercare notes") in html.links
    assert email.care_url is not None and email.care_url + "\n" in email.text
    for number in ("tel:6175550142", "tel:6175550199", "tel:911"):
        assert number in [href for href, _ in html.links]
    assert "Phone: (617)\u00a0555-0142" in email.text
    # The link names this message and the time it is meant to arrive; it works 120 days.
    link = read_care(email.care_url.rsplit("/", 1)[1], KEY)
    assert (link.public_id, link.genuine) == (PUBLIC_ID, True)
    assert link.issued == dt.datetime.combine(step.offset.after(SENT.date()), SENT.timetz())
    until = (link.issued + dt.timedelta(days=120)).date()
    assert f"This link is just for you. It works until {until.day} {until:%B %Y}." in texts
    # Unsubscribing works as from any email: the same signed link, in the footer.
    assert verify(email.unsubscribe_url.split("t=")[1], KEY) == PUBLIC_ID
    assert (email.unsubscribe_url, "Unsubscribe from these emails") in html.links


def test_the_subject_and_preview_are_the_steps_own(minimal: dict[str, RenderedEmail]) -> None:
    for step in MIGRAINE.steps:
        assert (minimal[step.key].subject, minimal[step.key].preheader) == (
            step.subject, step.preheader)


def test_the_reminder_is_the_same_file_as_the_full_emails(
    renderer: EmailRenderer, minimal: dict[str, RenderedEmail]
) -> None:
    step = MIGRAINE.step("week-10")
    assert step is not None
    full = renderer.render(MIGRAINE, step, _recipient(step), "full")
    email = minimal["week-10"]
    assert email.ics is not None and email.ics == full.ics
    assert email.ics_filename == "next-visit.ics"
    assert "We have attached a reminder that you can save to your calendar." in email.text


# ------------------------------------------------------------------ what it never says


@pytest.mark.parametrize("word", minimal_words(PROJECT))
def test_no_minimal_email_names_the_word(minimal: dict[str, RenderedEmail], word: str) -> None:
    spelled = r"\s+".join(re.escape(w) for w in word.split()).replace("'", "['’]?")
    pattern = re.compile(rf"(?<!\w){spelled}(?:['’]s|s|es)?(?!\w)", re.IGNORECASE)
    for key, email in minimal.items():
        for part, text in _parts(email):
            assert not pattern.search(text), f"{key} {part} names {word!r}"


def _sentences(handout: Handout) -> Iterator[str]:
    yield handout.title
    yield handout.summary
    for section in handout.sections:
        yield section.heading
        yield from (*section.paragraphs, *section.bullets, *section.steps)
        if section.callout is not None:
            yield section.callout.title
            yield section.callout.text or ""
            yield from section.callout.bullets
    yield from (*handout.call_clinic_if, *handout.emergency_if)


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+(?:['’]\w+)*", text.casefold())) + " "


QUOTABLE = sorted({
    piece.strip() for handout in PROJECT.handouts.values() for unit in _sentences(handout)
    for piece in re.split(r"(?<=[.!?])\s+", unit) if len(_words(piece).split()) >= 3
})


def test_no_minimal_email_quotes_a_handout(
    renderer: EmailRenderer, minimal: dict[str, RenderedEmail]
) -> None:
    assert len(QUOTABLE) > 200
    for key, email in minimal.items():
        shown = {part: _words(text) for part, text in _parts(email)}
        for sentence in QUOTABLE:
            for part, words in shown.items():
                assert _words(sentence) not in words, f"{key} {part} quotes {sentence!r}"
    # The same reading finds the quotes in a full email: it can fail.
    full = renderer.render(MIGRAINE, MIGRAINE.steps[0], _recipient(MIGRAINE.steps[0]), "full")
    assert sum(_words(s) in _words(full.text) for s in QUOTABLE) > 10


# ------------------------------------------------------------------ the care page's content


@pytest.mark.parametrize(("campaign", "step"), ALL_STEPS)
def test_the_care_page_shows_exactly_what_the_full_email_shows(
    renderer: EmailRenderer, campaign: Campaign, step: Step
) -> None:
    recipient = _recipient(step, campaign)
    full = renderer.render(campaign, step, recipient, "full")
    page = renderer.care_page(campaign, step, recipient)
    email = Blocks(full.html, region=("td", "content"))
    shown = [item for item in email.items
             if item[1] != "signoff" and item[2] != "Hello Zephyrine,"]
    care = Blocks(str(page.body))
    assert care.items == shown and len(shown) > 10
    assert care.links == email.links and care.boxes == email.boxes
    assert care.items[0][0] == "h1"
    # Nothing of the email's frame: no greeting, sign-off, footer or unsubscribe link.
    for frame in ("Hello", "Take care", "Unsubscribe", "<html", "<style", "48 Linden"):
        assert frame not in page.body
    assert page.ics == full.ics
    assert recipient.local_due is not None
    assert page.expires_on == (recipient.local_due + dt.timedelta(days=120)).date()


def test_a_change_to_a_handout_section_shows_on_the_care_page_as_in_the_email(
    renderer: EmailRenderer,
) -> None:
    handout = PROJECT.handouts["aftercare-migraine"]
    first = handout.sections[0]
    edited = dataclasses.replace(first, bullets=("Rest tonight, and drink water.",))
    project = dataclasses.replace(PROJECT, handouts={
        **PROJECT.handouts,
        "aftercare-migraine": dataclasses.replace(handout, sections=(edited,
                                                                     *handout.sections[1:])),
    })
    step = MIGRAINE.steps[0]
    page = EmailRenderer(project, KEY).care_page(MIGRAINE, step, _recipient(step))
    assert "<li>Rest tonight, and drink water.</li>" in page.body
    assert first.bullets[0] not in page.body
