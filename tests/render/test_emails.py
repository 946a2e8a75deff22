"""Email rendering: real templates and CSS inlining, fixture handouts, no network."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import shutil
import urllib.parse
import zoneinfo
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.content.model import (
    Callout,
    Campaign,
    Clinic,
    Handout,
    Project,
    Review,
    Section,
    SourceRef,
)
from aftercare.content.schema import build, read_document
from aftercare.content.values import EmailAddress, Slug
from aftercare.errors import InputError, RenderError
from aftercare.render.calendar import escape_text
from aftercare.render.emails import EmailRenderer, Recipient, RenderedEmail
from aftercare.render.plaintext import wrap
from aftercare.render.previews import PREVIEW_KEY, preview_recipient, preview_step, preview_text
from aftercare.render.tokens import verify
from tests.conftest import ROOT

KEY = b"test-key-" * 4
NY = zoneinfo.ZoneInfo("America/New_York")
TREATED_ON = dt.date(2026, 11, 23)
# Words that must never reach a lock screen or a shared calendar.
PRIVATE_WORDS = ("botox", "migraine", "headache", "wrinkle", "toxin", "injection", "cosmetic")

# ------------------------------------------------------------------ fixture project
# The real clinic.yaml, campaigns and templates, with small fixture handouts written here, so
# these tests neither wait for nor break on the clinical writer's wording.


def preview_all(project: Project, out_dir: Path) -> list[Path]:
    """Every step of every campaign for the sample patient, in every language the project has,
    written as `pipeline build` does."""
    return [path for language in project.languages
            for campaign_id, campaign in sorted(project.campaigns.items())
            for step in campaign.steps
            for path in preview_step(project, campaign_id, step.key, out_dir, language).paths]


def _section(section_id: str, heading: str, **parts: object) -> Section:
    return Section(id=Slug(section_id), heading=heading, **parts)  # type: ignore[arg-type]


def _handout(indication: str, sections: tuple[Section, ...], marker: str) -> Handout:
    return Handout(
        title=f"Fixture {indication} aftercare",
        indication=indication,  # type: ignore[arg-type]
        version="1",
        summary="A fixture.",
        sections=sections,
        review=Review("Fixture reviewer", dt.date(2026, 1, 1), dt.date(2027, 1, 1)),
        sources=(SourceRef("A fixture source"),),
        call_clinic_if=(f"Call-clinic sign one {marker}", f"Call-clinic sign two {marker}"),
        emergency_if=(f"Emergency sign one {marker}", f"Emergency sign two {marker}"),
        id=f"aftercare-{indication}",
    )


def _common_sections(marker: str) -> tuple[Section, ...]:
    return (
        _section(
            "first-day",
            f"First day {marker}",
            paragraphs=(
                f"A first-day paragraph for {marker} that is long enough to need wrapping when "
                "it is written out as plain text at seventy-two columns, see?",
            ),
            bullets=(f"First-day bullet {marker}; with a semicolon, and a comma",),
            steps=(f"First-day step one {marker}", f"First-day step two {marker}"),
            callout=Callout("tip", f"Tip title {marker}", text=f"Tip text {marker}"),
        ),
        _section(
            "what-is-normal",
            f"What is normal {marker}",
            bullets=(f"Normal bullet {marker}",),
            callout=Callout(
                "warning", f"Warning title {marker}", bullets=(f"Callout bullet {marker}",)
            ),
        ),
    )


def _fixture_handouts() -> dict[str, Handout]:
    cosmetic = (
        *_common_sections("C"),
        _section("your-results", "Your results C", paragraphs=("Results paragraph C.",)),
    )
    migraine = (
        *_common_sections("M"),
        _section(
            "headache-diary",
            "Diary M",
            paragraphs=("Diary paragraph M.",),
            bullets=("Diary bullet M",),
        ),
    )
    return {
        "aftercare-cosmetic": _handout("cosmetic", cosmetic, "C"),
        "aftercare-migraine": _handout("migraine", migraine, "M"),
    }


def _load(cls: type[object], name: str) -> object:
    doc = read_document(ROOT / name, name)
    value = build(cls, doc)
    assert value is not None, doc.problems
    return value


def _fixture_project(root: Path = ROOT) -> Project:
    clinic = _load(Clinic, "clinic.yaml")
    campaigns = {}
    for path in sorted((ROOT / "campaigns").glob("*.yaml")):
        campaign = _load(Campaign, f"campaigns/{path.name}")
        assert isinstance(campaign, Campaign)
        campaigns[path.stem] = dataclasses.replace(campaign, id=path.stem)
    assert isinstance(clinic, Clinic)
    return Project(root, clinic, _fixture_handouts(), campaigns)


PROJECT = _fixture_project()
STEPS = [
    pytest.param(campaign_id, step.key, id=f"{campaign_id}/{step.key}")
    for campaign_id, campaign in sorted(PROJECT.campaigns.items())
    for step in campaign.steps
]


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(PROJECT, KEY)


def _recipient(**changes: object) -> Recipient:
    base = Recipient(
        first_name="Zephyrine",
        email=EmailAddress("zephyrine@example.com"),
        language="en",
        treated_on=TREATED_ON,
        local_due=None,
        public_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _render(
    renderer: EmailRenderer, campaign_id: str, step_key: str, **changes: object
) -> RenderedEmail:
    """The step's full email (the migraine campaign's are minimal: tests/render/test_minimal)."""
    campaign = PROJECT.campaigns[campaign_id]
    return renderer.render(campaign, campaign.step(step_key), _recipient(**changes), "full")


def _flat(text: str) -> str:
    """Whitespace collapsed, so wrapped plain text compares with the one-line YAML value."""
    return " ".join(text.split())


# ------------------------------------------------------------------ an HTML reader for checks


class Page(HTMLParser):
    """The parts of an HTML email the checks look at."""

    BLOCKS = ("h1", "h2", "h3", "p", "li")

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html_lang: str | None = None
        self.metas: list[dict[str, str | None]] = []
        self.tables: list[dict[str, str | None]] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.inline_styles: list[str] = []
        self.headings: list[int] = []
        self.blocks: list[str] = []
        self.preheader = ""
        self.first_body_child: str | None = None
        self._stack: list[str] = []
        self._in_body = False
        self._block: list[str] | None = None
        self._link: tuple[str, list[str]] | None = None
        self._style: list[str] | None = None
        self._preheader: list[str] | None = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._in_body and self.first_body_child is None:
            self.first_body_child = f"{tag}.{attributes.get('class')}"
        if tag == "body":
            self._in_body = True
        if tag == "html":
            self.html_lang = attributes.get("lang")
        elif tag == "meta":
            self.metas.append(attributes)
        elif tag == "table":
            self.tables.append(attributes)
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "style":
            self._style = []
        elif tag == "a":
            self._link = (attributes.get("href") or "", [])
        elif tag in self.BLOCKS and self._preheader is None:
            self._block = []
            if tag[0] == "h":
                self.headings.append(int(tag[1]))
        if tag == "div" and attributes.get("class") == "preheader":
            self._preheader = []
        if attributes.get("style"):
            self.inline_styles.append(attributes["style"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style is not None:
            self.styles.append("".join(self._style))
            self._style = None
        elif tag == "a" and self._link is not None:
            self.links.append((self._link[0], _flat("".join(self._link[1]))))
            self._link = None
        elif tag in self.BLOCKS and self._block is not None:
            self.blocks.append(_flat("".join(self._block)))
            self._block = None
        elif tag == "div" and self._preheader is not None:
            self.preheader = "".join(self._preheader)
            self._preheader = None

    def handle_data(self, data: str) -> None:
        for sink in (self._style, self._block, self._preheader):
            if sink is not None:
                sink.append(data)
        if self._link is not None:
            self._link[1].append(data)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "br" and self._block is not None:
            self._block.append(" ")


def _without_media_rules(css: str) -> str:
    """The stylesheet with every @media block (and its nested braces) removed."""
    out, index = [], 0
    while (start := css.find("@media", index)) != -1:
        out.append(css[index:start])
        depth, position = 0, css.index("{", start)
        while True:
            depth += {"{": 1, "}": -1}.get(css[position], 0)
            position += 1
            if depth == 0:
                break
        index = position
    out.append(css[index:])
    return "".join(out)


# ------------------------------------------------------------------ every step renders


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_every_step_renders_subject_and_preview_from_the_campaign(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    step = PROJECT.campaigns[campaign_id].step(step_key)
    email = _render(renderer, campaign_id, step_key)
    assert (email.subject, email.preheader) == (step.subject, step.preheader)
    assert email.language == "en"
    assert email.text.startswith("JUNIPER LANE CLINIC\n")
    assert "Hello Zephyrine," in email.text


def test_all_campaign_templates_exist_as_html_and_text() -> None:
    folder = ROOT / "templates" / "email"
    for campaign in PROJECT.campaigns.values():
        for step in campaign.steps:
            assert (folder / f"{step.template}.html").is_file()
            assert (folder / f"{step.template}.txt").is_file()


def test_real_content_renders_and_quotes_the_real_handouts() -> None:
    project = load_project(ROOT)
    real = EmailRenderer(project, KEY)
    for campaign in project.campaigns.values():
        handout = project.handouts[campaign.handout]
        for step in campaign.steps:
            email = real.render(campaign, step, _recipient(), "full")
            for section_id in step.sections:
                section = handout.section(section_id)
                for line in (section.heading, *section.paragraphs, *section.bullets):
                    assert _flat(line) in _flat(email.text)
                    assert _flat(line) in Page(email.html).blocks
            if step.warning_signs:
                signs = handout.call_clinic_if + handout.emergency_if
                for sign in (*signs, DRIVING):
                    assert sign in Page(email.html).blocks


# ------------------------------------------------------------------ HTML structure


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_html_is_accessible_and_inlined(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    page = Page(_render(renderer, campaign_id, step_key).html)
    assert page.html_lang == "en"
    assert {"name": "color-scheme", "content": "light dark"} in page.metas
    assert page.tables and all(t.get("role") == "presentation" for t in page.tables)
    assert all(image.get("alt") is not None for image in page.images)
    # Headings start at h1 and never skip a level on the way down.
    assert page.headings[0] == 1 and page.headings.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(page.headings, page.headings[1:], strict=False))
    # Only @media rules stay in <style> (dark mode, small screens); everything else is inlined.
    assert page.styles, "the @media rules must be kept"
    assert all(_without_media_rules(css).strip() == "" for css in page.styles)
    assert "prefers-color-scheme: dark" in "".join(page.styles)
    # Body text is never smaller than 16px (the hidden preheader is not body text).
    sizes = [int(s) for css in page.inline_styles for s in re.findall(r"font-size:\s*(\d+)px", css)]
    assert sizes and min(s for s in sizes if s != 1) >= 16


def test_brand_header_is_real_text_in_brand_colours(renderer: EmailRenderer) -> None:
    email = _render(renderer, "botox-cosmetic", "day-0")
    brand = PROJECT.clinic.brand
    assert re.search(rf'class="header" style="background-color: {brand.primary};', email.html)
    assert ">Juniper Lane Clinic</p>" in email.html
    assert "max-width: 600px" in email.html
    assert brand.accent in email.html  # the emergency box, and only there
    assert "<img" not in email.html  # many clients block SVG logos; the name is real text


def test_preheader_is_the_hidden_first_thing_in_the_body(renderer: EmailRenderer) -> None:
    email = _render(renderer, "botox-migraine", "week-2")
    page = Page(email.html)
    assert page.first_body_child == "div.preheader"
    assert page.preheader.startswith(email.preheader)
    assert re.search(r'<div class="preheader" style="display: none;', email.html)


def test_meta_charset_is_within_the_first_1024_bytes(renderer: EmailRenderer) -> None:
    email = _render(renderer, "botox-cosmetic", "week-2")
    assert b'<meta charset="utf-8">' in email.html.encode()[:1024]


# ------------------------------------------------------------------ the unsubscribe link


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_unsubscribe_link_carries_a_token_for_the_public_id(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    links = dict((text, href) for href, text in Page(email.html).links)
    href = links["Unsubscribe from these emails"]
    assert href == email.unsubscribe_url
    assert href.startswith("https://care.juniperlane.example/unsubscribe?t=")
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["t"][0]
    assert verify(token, KEY) == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert "zephyrine" not in href.lower()
    assert href in email.text.splitlines()


# ------------------------------------------------------------------ one source: the handouts


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_named_sections_are_quoted_exactly_in_html_and_text(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    campaign = PROJECT.campaigns[campaign_id]
    step = campaign.step(step_key)
    handout = PROJECT.handouts[campaign.handout]
    email = _render(renderer, campaign_id, step_key)
    blocks = Page(email.html).blocks
    quoted = [handout.section(s) for s in step.sections]
    for section in quoted:
        callout = section.callout
        parts = [section.heading, *section.paragraphs, *section.bullets, *section.steps]
        if callout is not None:
            parts += [callout.title, *([callout.text] if callout.text else []), *callout.bullets]
        for part in parts:
            assert part in blocks, part
            assert part in _flat(email.text) or part.upper() in email.text, part
    others = [s for s in handout.sections if s not in quoted]
    for section in others:
        assert section.heading not in blocks


def test_changing_a_handout_paragraph_changes_the_email() -> None:
    handouts = dict(PROJECT.handouts)
    cosmetic = handouts["aftercare-cosmetic"]
    first_day = cosmetic.section("first-day")
    old = first_day.paragraphs[0]
    new = "Edited in the handout only: sleep on your back tonight if that is comfortable."
    edited = dataclasses.replace(first_day, paragraphs=(new,))
    handouts["aftercare-cosmetic"] = dataclasses.replace(
        cosmetic, sections=tuple(edited if s is first_day else s for s in cosmetic.sections)
    )
    project = dataclasses.replace(PROJECT, handouts=handouts)
    email = _render(EmailRenderer(project, KEY), "botox-cosmetic", "day-0")
    assert new in _flat(email.text) and new in Page(email.html).blocks
    assert _flat(old) not in _flat(email.text) and old not in email.html


def test_text_keeps_numbered_steps_and_callouts(renderer: EmailRenderer) -> None:
    text = _render(renderer, "botox-cosmetic", "day-0").text
    assert "  1. First-day step one C\n  2. First-day step two C\n" in text
    assert "TIP TITLE C\n\nTip text C\n" in text
    assert "  - Callout bullet C\n" in text


# ------------------------------------------------------------------ safety and contact blocks


DRIVING = "Do not drive if you feel weak, dizzy or have vision problems."
# The allergy signs by urgency, as the shipped handouts list them (clinical facts, section 11).
ALLERGY_EMERGENCY = ("Wheezing or asthma symptoms", "Swelling of your face or throat",
                     "Feeling dizzy or faint")
ALLERGY_CALL = "Itching, a rash, or red itchy welts on your skin"


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_every_shipped_email_has_the_warning_block_with_driving_and_allergy_signs(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    campaign = PROJECT.campaigns[campaign_id]
    handout = PROJECT.handouts[campaign.handout]
    assert campaign.step(step_key).warning_signs
    email = _render(renderer, campaign_id, step_key)
    blocks, text = Page(email.html).blocks, _flat(email.text)
    for sign in handout.call_clinic_if + handout.emergency_if:
        assert sign in blocks and _flat(f"- {sign}") in text
        # Each sign once: the email adds no list of its own beside the handout's.
        assert blocks.count(sign) == 1
        assert text.count(_flat(f"- {sign}")) == 1
    intro = (
        "Call us at (617) 555-0142 if you have any of these. "
        "After hours, call (617) 555-0199."
    )
    assert intro in blocks and intro in text
    assert "Get emergency care now" in blocks and "GET EMERGENCY CARE NOW" in email.text
    emergency = ("Call 911 or go to the nearest emergency room right away if you have any of "
                 "these. They can start hours or even weeks after your visit.")
    assert emergency in blocks and emergency in text
    # The allergy signs by urgency: the bad ones in the emergency box, the mild ones in the
    # call-the-clinic box; the driving rule in the emergency box.
    html = email.html
    emergency_box = html[html.index("Get emergency care now"):html.index("Call the clinic</h3>")]
    assert DRIVING in emergency_box
    assert _flat(DRIVING) in text
    assert text.index(_flat(DRIVING)) < text.index("CALL THE CLINIC")
    assert "emergency department" not in html.lower() + text.lower()


@pytest.mark.parametrize("campaign_id", ["botox-cosmetic", "botox-migraine"])
def test_shipped_emails_give_the_allergy_signs_by_urgency_once_each(campaign_id: str) -> None:
    # The shipped handouts' own lists, as the one-sheet handout prints them: the bad signs in
    # the emergency box, the mild ones in the call-the-clinic box, and nothing said twice.
    project = load_project(ROOT)
    campaign = project.campaigns[campaign_id]
    real = EmailRenderer(project, KEY)
    for step in campaign.steps:
        email = real.render(campaign, step, _recipient(), "full")
        html = email.html
        start, middle = html.index("Get emergency care now"), html.index("Call the clinic</h3>")
        emergency_box = html[start:middle]
        call_box = html[middle:]
        text_emergency, text_call = email.text.split("CALL THE CLINIC")
        for sign in ALLERGY_EMERGENCY:
            assert sign in emergency_box and sign not in call_box
            assert sign in text_emergency and sign not in text_call
        assert ALLERGY_CALL in call_box and ALLERGY_CALL not in emergency_box
        assert _flat(ALLERGY_CALL) in _flat(text_call)
        for sign in (*ALLERGY_EMERGENCY, ALLERGY_CALL):
            assert Page(html).blocks.count(sign) == 1


def test_a_step_without_warning_signs_shows_none(renderer: EmailRenderer) -> None:
    campaign = PROJECT.campaigns["botox-cosmetic"]
    step = dataclasses.replace(campaign.step("month-3"), warning_signs=False)
    handout = PROJECT.handouts[campaign.handout]
    email = renderer.render(campaign, step, _recipient())
    for sign in (*handout.call_clinic_if, *handout.emergency_if, DRIVING):
        assert sign not in email.html and _flat(sign) not in _flat(email.text)


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_every_email_has_contact_urgent_care_and_address(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    page = Page(email.html)
    clinic = PROJECT.clinic
    expected = [
        f"Phone: {clinic.phone} Open: {clinic.hours}",
        f"After hours, if it is urgent: {clinic.urgent_line}",
        "For an emergency, call 911 or go to the nearest emergency room.",
    ]
    for line in expected:
        assert line in page.blocks
        assert line in _flat(email.text)
    for line in clinic.address:
        assert f"{line}\n" in email.text and f"{line}<br>" in email.html
    assert ("tel:6175550142", "(617) 555-0142") in page.links
    assert ("tel:911", "911") in page.links


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_html_and_text_say_the_same_things(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    text = _flat(email.text).casefold()
    for block in Page(email.html).blocks:
        assert block.casefold() in text, block


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_text_is_wrapped_at_72_columns(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    text = _render(renderer, campaign_id, step_key).text
    for line in text.splitlines():
        assert len(line) <= 72 or " " not in line.strip(), line
        assert line == line.rstrip()
    assert text.endswith("\n") and "\n\n\n" not in text


def test_wrap_hangs_list_items_and_keeps_long_addresses_whole() -> None:
    long_url = "https://example.org/" + "a" * 80
    assert wrap(f"See {long_url} now.") == f"See\n{long_url}\nnow."
    item = wrap("word " * 20, "  - ")
    assert item.splitlines()[1].startswith("    word")
    assert wrap("One\ntwo.\n\n- three\n- four") == "One two.\n\n- three\n- four"


def test_a_renderer_that_remembers_wrapped_text_renders_what_a_fresh_one_does() -> None:
    # One renderer remembers wrapped lines across messages (for speed); every email must
    # still be exactly what a renderer seeing it first would produce.
    remembering = EmailRenderer(PROJECT, KEY)
    names = ("Ana", "Zephyrine", "Ana Ruiz", "")
    for campaign_id, campaign in sorted(PROJECT.campaigns.items()):
        for step in campaign.steps:
            for name in names:
                got = _render(remembering, campaign_id, step.key, first_name=name)
                assert got == _render(EmailRenderer(PROJECT, KEY), campaign_id, step.key,
                                      first_name=name)


def test_remembered_wrapped_text_never_holds_the_recipients_name() -> None:
    renderer = EmailRenderer(PROJECT, KEY)
    for campaign_id, campaign in sorted(PROJECT.campaigns.items()):
        for step in campaign.steps:
            _render(renderer, campaign_id, step.key, first_name="Quillonia")
    remembered = renderer._wrapped
    assert remembered  # the sections and the templates' lines are there
    assert not [text for text, _ in remembered if "Quillonia" in text]


# ------------------------------------------------------------------ personal data


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_first_name_only_in_the_greeting(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    assert "Zephyrine" not in email.subject + email.preheader + email.unsubscribe_url
    assert email.text.count("Zephyrine") == 1 and "Hello Zephyrine," in email.text
    assert email.html.count("Zephyrine") == 1 and ">Hello Zephyrine,</p>" in email.html
    assert email.ics is None or b"Zephyrine" not in email.ics
    assert "zephyrine@example.com" not in email.html + email.text


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_lock_screen_and_calendar_text_names_no_treatment(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    exposed = f"{email.subject} {email.preheader} {email.ics_filename or ''}".lower()
    exposed += (email.ics or b"").decode().lower()
    assert not [word for word in PRIVATE_WORDS if word in exposed]


def test_name_is_escaped_in_html_and_literal_in_text(renderer: EmailRenderer) -> None:
    email = _render(renderer, "botox-cosmetic", "day-0", first_name="<b>Ann</b> & co")
    assert "Hello &lt;b&gt;Ann&lt;/b&gt; &amp; co," in email.html
    assert "<b>Ann</b>" not in email.html
    assert "Hello <b>Ann</b> & co,\n" in email.text


def test_name_cannot_add_lines_or_reorder_text(renderer: EmailRenderer) -> None:
    email = _render(
        renderer, "botox-cosmetic", "day-0", first_name="Ann\r\n\r\nCall 555-0000\u202e now"
    )
    assert "Hello Ann Call 555-0000 now,\n" in email.text
    assert "\u202e" not in email.html + email.text


def test_blank_name_gives_a_plain_greeting(renderer: EmailRenderer) -> None:
    email = _render(renderer, "botox-cosmetic", "day-0", first_name="  ")
    assert "\nHello,\n" in email.text and ">Hello,</p>" in email.html


# ------------------------------------------------------------------ calendar invitations


def _unfold(ics: bytes) -> list[str]:
    return ics.decode("utf-8").replace("\r\n ", "").split("\r\n")[:-1]


def _value(lines: list[str], name: str) -> str:
    return next(line.split(":", 1)[1] for line in lines if line.split(":", 1)[0] == name)


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_ics_only_for_calendar_steps_and_well_formed(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    step = PROJECT.campaigns[campaign_id].step(step_key)
    email = _render(renderer, campaign_id, step_key)
    if step.calendar is None:
        assert (email.ics, email.ics_filename) == (None, None)
        return
    assert email.ics is not None and email.ics_filename in {"check-in.ics", "next-visit.ics"}
    assert email.ics.endswith(b"\r\n") and b"\n" not in email.ics.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in email.ics.split(b"\r\n"))
    lines = _unfold(email.ics)
    assert lines[:2] == ["BEGIN:VCALENDAR", "VERSION:2.0"] and lines[-1] == "END:VCALENDAR"
    assert "METHOD:PUBLISH" in lines and _value(lines, "PRODID").startswith("-//")
    assert lines.count("BEGIN:VEVENT") == 1 and lines.count("END:VEVENT") == 1
    assert _value(lines, "UID") == "0f1e2d3c4b5a69788796a5b4c3d2e1f0@juniperlane.example"
    assert re.fullmatch(r"\d{8}T\d{6}Z", _value(lines, "DTSTAMP"))
    assert re.fullmatch(r"\d{8}", _value(lines, "DTSTART;VALUE=DATE"))
    # The clinic's name comes from clinic.yaml, never written into the campaign.
    shown = step.calendar.filled(PROJECT.clinic.name)
    assert "{clinic}" not in shown.summary + shown.description
    assert _value(lines, "SUMMARY") == escape_text(shown.summary)
    assert _value(lines, "DESCRIPTION") == escape_text(shown.description)


def test_ics_day_is_the_local_due_date_and_stamp_is_reproducible(renderer: EmailRenderer) -> None:
    due = dt.datetime(2026, 12, 7, 10, 0, tzinfo=NY)
    email = _render(renderer, "botox-cosmetic", "week-2", local_due=due)
    assert email.ics is not None
    lines = _unfold(email.ics)
    assert _value(lines, "DTSTART;VALUE=DATE") == "20261207"
    assert _value(lines, "DTEND;VALUE=DATE") == "20261208"
    assert _value(lines, "DTSTAMP") == "20261207T150000Z"
    assert _render(renderer, "botox-cosmetic", "week-2", local_due=due).ics == email.ics


def test_migraine_booking_step_names_the_next_cycle_date(renderer: EmailRenderer) -> None:
    due = dt.datetime(2027, 2, 1, 10, 0, tzinfo=NY)  # 10 weeks on: the reminder email
    email = _render(renderer, "botox-migraine", "week-10", local_due=due)
    assert email.ics is not None and email.ics_filename == "next-visit.ics"
    assert _value(_unfold(email.ics), "DTSTART;VALUE=DATE") == "20270215"  # 12 weeks on
    assert "Monday 15 February" in _flat(email.text)
    assert "around <strong>Monday 15 February</strong>" in email.html
    assert "Bring your diary" in Page(email.html).blocks


# ------------------------------------------------------------------ hashes and versions


def test_content_hash_is_stable_and_follows_the_content(renderer: EmailRenderer) -> None:
    first = _render(renderer, "botox-cosmetic", "week-2")
    again = _render(EmailRenderer(PROJECT, KEY), "botox-cosmetic", "week-2")
    assert again == first
    assert len(first.content_hash) == 64
    other_name = _render(renderer, "botox-cosmetic", "week-2", first_name="Ann")
    other_id = _render(renderer, "botox-cosmetic", "week-2", public_id="another")
    other_day = _render(
        renderer, "botox-cosmetic", "week-2", local_due=dt.datetime(2026, 12, 8, 10, tzinfo=NY)
    )
    hashes = {e.content_hash for e in (first, other_name, other_id, other_day)}
    assert len(hashes) == 4
    # What changed is the recipient, not the templates or the step.
    assert {e.template_version for e in (first, other_name, other_id, other_day)} == {
        first.template_version
    }


def test_template_version_follows_the_step_definition(renderer: EmailRenderer) -> None:
    campaign = PROJECT.campaigns["botox-cosmetic"]
    step = campaign.step("week-2")
    edited = dataclasses.replace(step, preheader="Two weeks on, a quick hello")
    before = renderer.render(campaign, step, _recipient())
    after = renderer.render(campaign, edited, _recipient())
    assert re.fullmatch(r"[0-9a-f]{12}", before.template_version)
    assert after.template_version != before.template_version
    assert after.content_hash != before.content_hash


def test_template_version_follows_the_template_files(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    project = _fixture_project(tmp_path)
    before = _render(EmailRenderer(project, KEY), "botox-cosmetic", "day-0")
    other_step = _render(EmailRenderer(project, KEY), "botox-cosmetic", "week-2")
    macros = tmp_path / "templates" / "email" / "_macros.txt"
    macros.write_text(macros.read_text() + "{# a comment changes the source #}\n")
    after = _render(EmailRenderer(project, KEY), "botox-cosmetic", "day-0")
    assert before.template_version != other_step.template_version
    assert after.template_version != before.template_version
    assert after.content_hash == before.content_hash  # the comment renders as nothing


def test_missing_template_is_a_clear_error(renderer: EmailRenderer) -> None:
    campaign = PROJECT.campaigns["botox-cosmetic"]
    step = dataclasses.replace(campaign.step("day-0"), template=Slug("no-such-step"))
    with pytest.raises(RenderError) as caught:
        renderer.render(campaign, step, _recipient())
    assert str(caught.value) == "templates/email/no-such-step.html: no such template"


def test_missing_section_is_a_clear_error(renderer: EmailRenderer) -> None:
    campaign = PROJECT.campaigns["botox-cosmetic"]
    step = dataclasses.replace(campaign.step("day-0"), sections=(Slug("gone"),))
    with pytest.raises(RenderError) as caught:
        renderer.render(campaign, step, _recipient())
    assert str(caught.value) == (
        "campaigns/botox-cosmetic.yaml: step day-0: no section 'gone' "
        "in handouts/aftercare-cosmetic.yaml"
    )


# ------------------------------------------------------------------ previews


def _expected_preview_files(out: Path) -> set[Path]:
    expected = set()
    for campaign_id, campaign in PROJECT.campaigns.items():
        for step in campaign.steps:
            stem = out / "emails" / campaign_id / step.key
            expected |= {stem.with_suffix(".html"), stem.with_suffix(".txt")}
            if step.calendar is not None:
                expected.add(stem.with_suffix(".ics"))
    return expected


def _files(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file())


def test_build_previews_writes_every_step_reproducibly(tmp_path: Path) -> None:
    written = preview_all(PROJECT, tmp_path / "a")
    assert set(written) == _expected_preview_files(tmp_path / "a") == set(_files(tmp_path / "a"))
    assert len(written) == 6 * 2 + 3
    preview_all(PROJECT, tmp_path / "b")
    for path in written:
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert twin.read_bytes() == path.read_bytes()
    text = (tmp_path / "a" / "emails" / "botox-cosmetic" / "day-0.txt").read_text()
    assert "Hello Sample," in text
    ics = (tmp_path / "a" / "emails" / "botox-migraine" / "week-10.ics").read_bytes()
    assert b"UID:preview@juniperlane.example\r\n" in ics
    assert b"DTSTART;VALUE=DATE:20270215\r\n" in ics


def test_build_previews_overwrites_in_place(tmp_path: Path) -> None:
    preview_all(PROJECT, tmp_path)
    target = tmp_path / "emails" / "botox-cosmetic" / "day-0.html"
    target.write_text("stale")
    preview_all(PROJECT, tmp_path)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in _files(tmp_path) if p.name.endswith(".tmp")]


def test_build_previews_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(InputError) as caught:
        preview_all(PROJECT, blocker)
    assert str(caught.value).startswith(f"out: cannot create {blocker}/emails/")


def test_preview_links_never_verify_with_a_real_key() -> None:
    email = EmailRenderer(PROJECT, PREVIEW_KEY).render(
        PROJECT.campaigns["botox-cosmetic"],
        PROJECT.campaigns["botox-cosmetic"].step("day-0"),
        preview_recipient(PROJECT),
    )
    token = email.unsubscribe_url.split("?t=", 1)[1]
    assert verify(token, PREVIEW_KEY) == "preview"
    assert verify(token, KEY) is None


def test_preview_text_shows_subject_preview_paths_and_text(tmp_path: Path) -> None:
    shown = preview_text(PROJECT, "botox-migraine", "week-10", tmp_path)
    folder = tmp_path / "emails" / "botox-migraine"
    assert shown.startswith(
        "Subject: Time to book your next visit\n"
        "Preview: Your next appointment is coming up\n"
        f"HTML: {folder / 'week-10.html'}\n"
        f"ICS: {folder / 'week-10.ics'}\n\n"
        "JUNIPER LANE CLINIC\n"
    )
    assert "Hello Sample," in shown
    assert (folder / "week-10.html").is_file()
    preview = preview_step(PROJECT, "botox-cosmetic", "day-0", tmp_path)
    assert [p.suffix for p in preview.paths] == [".html", ".txt"]


def test_preview_of_unknown_campaign_or_step_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        preview_text(PROJECT, "botox-nope", "day-1", tmp_path)
    assert str(caught.value) == (
        "campaign: expected one of botox-cosmetic, botox-migraine; got 'botox-nope'"
    )
    with pytest.raises(InputError) as caught:
        preview_text(PROJECT, "botox-cosmetic", "week-9", tmp_path)
    assert str(caught.value) == "step: expected one of day-0, week-2, month-3; got 'week-9'"


def test_step_is_hashable_so_compiled_templates_can_be_cached() -> None:
    # The renderer caches compiled templates per (campaign, step); a Step must stay hashable.
    assert all(isinstance(hash(step), int) for c in PROJECT.campaigns.values() for step in c.steps)


def test_html_entities_in_handout_text_are_shown_not_run() -> None:
    handouts = dict(PROJECT.handouts)
    cosmetic = handouts["aftercare-cosmetic"]
    normal = cosmetic.section("what-is-normal")
    risky = dataclasses.replace(normal, bullets=('<script>alert("x")</script> & <i>more</i>',))
    handouts["aftercare-cosmetic"] = dataclasses.replace(
        cosmetic, sections=tuple(risky if s is normal else s for s in cosmetic.sections)
    )
    project = dataclasses.replace(PROJECT, handouts=handouts)
    email = _render(EmailRenderer(project, KEY), "botox-cosmetic", "day-0")
    assert "<script>" not in email.html and "<i>more</i>" not in email.html
    assert html.escape('<script>alert("x")</script>', quote=False) in email.html


# ------------------------------------------------------------------ wording that holds


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_phone_numbers_never_wrap_in_html_or_text(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    clinic = PROJECT.clinic
    links = re.findall(r'<a class="phone" href="tel:[0-9+]+" style="([^"]*)">([^<]*)</a>',
                       email.html)
    assert links and all("white-space: nowrap" in style for style, _ in links)
    for number in (clinic.phone, clinic.urgent_line):
        kept = number.replace(" ", "&nbsp;")
        # Written only with no-break spaces, and in HTML only inside a nowrap phone link.
        assert number not in email.html and number not in email.text
        assert email.html.count(kept) == sum(shown == kept for _, shown in links) > 0
        assert number.replace(" ", "\u00a0") in email.text


def test_a_phone_number_is_never_split_across_plain_text_lines() -> None:
    long_line = "word " * 13 + "call us on (617)\u00a0555-0142 today"
    wrapped = wrap(long_line)
    assert "(617)\u00a0555-0142" in wrapped.splitlines()[-1]
    assert wrap(long_line, "  - ").count("(617)\u00a0555-0142") == 1


def test_subjects_and_previews_hold_whenever_the_email_arrives() -> None:
    for campaign in load_project(ROOT).campaigns.values():
        for step in campaign.steps:
            for text in (step.subject, step.preheader):
                words = set(re.findall(r"[a-z]+", text.lower()))
                assert not words & {"today", "tonight", "tomorrow", "yesterday"}, text


@pytest.mark.parametrize(("campaign_id", "step_key"), STEPS)
def test_the_footer_says_the_patient_agreed_to_these_emails(
    renderer: EmailRenderer, campaign_id: str, step_key: str
) -> None:
    email = _render(renderer, campaign_id, step_key)
    said = "You get these emails because you agreed to them at your visit."
    assert said in Page(email.html).blocks[-1] and said in email.text.split("-" * 72)[-1]
