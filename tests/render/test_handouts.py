"""Handout rendering: real PDFs from WeasyPrint, read back with pypdf and pdfplumber."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import pdfplumber
import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, BooleanObject, DictionaryObject, StreamObject

from aftercare.content.load import load_project
from aftercare.content.model import Campaign, Clinic, Handout, Project
from aftercare.content.schema import build, read_document
from aftercare.dates import format_day
from aftercare.errors import InputError, RenderError
from aftercare.files import write_output
from aftercare.plan.schedule import follow_ups
from aftercare.render.build import build as build_outputs
from aftercare.render.card import FIELD_LIMITS, PatientCard
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.page import clinic_css, contrast_ratio
from tests.conftest import FIXTURES, ROOT

T = TypeVar("T")
HERE = FIXTURES / "handouts"
TREATED_ON = dt.date(2026, 11, 23)
CHECKOUT = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)  # Mon 15:00 in New York
PRINTABLE = "expected printable characters; got"
HOSTILE_NAME = '<b>Ann</b> & <link rel=attachment href="file:///etc/passwd">'


def _load(cls: type[T], path: Path, topic: str = "") -> T:
    doc = read_document(path, path.name)
    value = build(cls, doc)
    assert value is not None, doc.problems
    return dataclasses.replace(value, id=topic) if topic else value  # type: ignore[type-var]


@pytest.fixture(scope="module")
def project() -> Project:
    """The repository's clinic (Letter paper) with a fixture checkout handout, its campaign, and
    the same content as a topic of its own (no campaign: no personal details)."""
    clinic = _load(Clinic, ROOT / "clinic.yaml")
    handout = _load(Handout, HERE / "aftercare.yaml", "aftercare")
    campaign = _load(Campaign, HERE / "campaign.yaml", "care")
    leaflet = dataclasses.replace(handout, id="leaflet", indication="general")
    return Project(ROOT, clinic, {"aftercare": handout, "leaflet": leaflet}, {"care": campaign})


@pytest.fixture(scope="module")
def renderer(project: Project) -> HandoutRenderer:
    return HandoutRenderer(project)


@pytest.fixture(scope="module")
def handout(project: Project) -> Handout:
    return project.handouts["aftercare"]


@pytest.fixture(scope="module")
def leaflet(project: Project) -> Handout:
    return project.handouts["leaflet"]


@pytest.fixture(scope="module")
def patient() -> PatientCard:
    return PatientCard(
        "Ana Ruiz", TREATED_ON, areas="frown lines, forehead", provider="Dr Lee",
        product="BOTOX Cosmetic", units="20", lot="C1234", aftercare_consent=True,
        reminder_consent=True, planned_at=CHECKOUT,
    )


@pytest.fixture(scope="module")
def personal_pdf(renderer: HandoutRenderer, handout: Handout, patient: PatientCard) -> bytes:
    return renderer.pdf(handout, patient)


@pytest.fixture(scope="module")
def blank_pdf(renderer: HandoutRenderer, handout: Handout) -> bytes:
    return renderer.pdf(handout, None)


@pytest.fixture(scope="module")
def topic_pdf(renderer: HandoutRenderer, leaflet: Handout) -> bytes:
    return renderer.pdf(leaflet, None)


def _pages(data: bytes) -> list[str]:
    """Each page's text with runs of whitespace made single spaces (lines wrap anywhere)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def _text(data: bytes) -> str:
    return " ".join(_pages(data))


def _squashed(text: str) -> str:
    return "".join(text.split())


# ---------------------------------------------------------------- the checkout sheet


def test_side_1_has_the_details_and_exactly_the_dates_the_outbox_will_send(
    project: Project, personal_pdf: bytes, patient: PatientCard
) -> None:
    pages = _pages(personal_pdf)
    assert len(pages) == 2
    first = pages[0]
    for typed in ("Name: Ana Ruiz", "Treatment date: Mon 23 Nov 2026",
                  "Areas treated: frown lines, forehead", "Treated by: Dr Lee",
                  "Product: BOTOX Cosmetic", "Units: 20", "Lot: C1234"):
        assert typed in first
    campaign = project.campaigns["care"]
    dates = follow_ups(project.clinic, campaign, TREATED_ON, CHECKOUT,
                       aftercare_consent=True, reminder_consent=True)
    assert [f.kind for f in dates].count("email") == len(campaign.steps)
    for follow_up in dates:
        assert _squashed(f"{format_day(follow_up.local_date)}: {follow_up.label}") in _squashed(
            first)
    # 12 weeks after Mon 23 Nov: Mon 15 Feb, a day the clinic is open.
    assert _squashed("Mon 15 Feb: earliest date for your next treatment") in _squashed(first)
    assert "We do not email you" not in first
    assert "Ana Ruiz" not in pages[1]


@pytest.mark.parametrize(
    ("aftercare", "reminders", "printed", "absent"),
    [
        (True, False, ["we email you tips", "results check-in"], ["time to plan your next"]),
        (False, False, ["We do not email you"],
         ["we email you tips", "results check-in", "time to plan your next"]),
        (False, True, ["We do not email you"],
         ["we email you tips", "results check-in", "time to plan your next"]),
    ],
)
def test_the_plan_prints_no_email_the_patient_did_not_agree_to(
    renderer: HandoutRenderer, handout: Handout, aftercare: bool, reminders: bool,
    printed: list[str], absent: list[str],
) -> None:
    card = PatientCard("Ana Ruiz", TREATED_ON, aftercare_consent=aftercare,
                       reminder_consent=reminders, planned_at=CHECKOUT)
    first = _squashed(_pages(renderer.pdf(handout, card))[0])
    for text in printed:
        assert _squashed(text) in first
    for text in absent:
        assert _squashed(text) not in first
    assert _squashed("Mon 15 Feb: earliest date for your next treatment") in first


def test_without_a_planning_time_the_plan_is_made_at_the_start_of_the_treatment_day(
    renderer: HandoutRenderer, handout: Handout
) -> None:
    card = PatientCard("Ana Ruiz", TREATED_ON, aftercare_consent=True, reminder_consent=True)
    start = dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC)  # midnight in New York
    assert renderer.pdf(handout, card) == renderer.pdf(
        handout, dataclasses.replace(card, planned_at=start))


def test_a_blank_sheet_has_lines_to_fill_in_and_promises_no_email(
    project: Project, handout: Handout, blank_pdf: bytes
) -> None:
    first = _pages(blank_pdf)[0]
    for label in ("Name", "Treatment date", "Treated by", "Areas treated", "Product", "Units",
                  "Lot"):
        assert re.search(rf"{label}: _{{10,}}", first), label
    assert re.search(r"_{10,}: earliest date for your next treatment", first)
    for step in project.campaigns["care"].steps:
        assert _squashed(step.label) not in _squashed(first)
    assert "Ana Ruiz" not in first and "Nov:" not in first


def test_every_page_has_header_footer_and_page_x_of_y(
    project: Project, handout: Handout, personal_pdf: bytes, topic_pdf: bytes
) -> None:
    clinic = project.clinic
    for data, topic in ((personal_pdf, handout.id), (topic_pdf, "leaflet")):
        pages = _pages(data)
        for number, text in enumerate(pages, start=1):
            assert clinic.name in text
            assert f"Questions? Call {clinic.name} at {clinic.phone}" in text
            assert f"Handout {topic}, version {handout.version}" in text
            assert f"Page {number} of {len(pages)}" in text


def test_side_1_holds_the_emergency_box_and_how_to_call_us(
    project: Project, handout: Handout, personal_pdf: bytes
) -> None:
    first = _pages(personal_pdf)[0]
    clinic = project.clinic
    assert "Get emergency care now" in first
    assert (f"Call {clinic.emergency_number} or go to the nearest emergency room if you have "
            "any of these:") in first
    assert "They can start hours to weeks after treatment. Do not wait to see if they pass." in (
        first)
    assert "Do not drive or use machines if you feel weak or dizzy, or cannot see well." in first
    assert "Call us" in first
    assert f"Day: {clinic.phone}, {clinic.hours}" in first
    assert f"After hours: {clinic.urgent_line}" in first
    assert "Call us if you have any of these:" in first
    for item in (*handout.call_clinic_if, *handout.emergency_if):
        assert _squashed(item) in _squashed(first)
    assert "emergency department" not in _text(personal_pdf)


def test_callouts_are_labelled_in_words(blank_pdf: bytes) -> None:
    text = _text(blank_pdf)
    assert "Tip: Good to know" in text
    assert "Warning: Bruises" in text
    assert "Emergency: Get help right away" in text


def test_side_2_ends_with_one_line_of_sources_and_a_topic_lists_them_all(
    project: Project, handout: Handout, blank_pdf: bytes, topic_pdf: bytes
) -> None:
    last = _pages(blank_pdf)[-1]
    address = f"{project.clinic.email.public_base_url.removeprefix('https://')}/sources/aftercare"
    assert _squashed(f"Sources: the full list is at {address}.") in _squashed(last)
    assert ("Reviewed on 15 January 2026 by Dr Test Reviewer." in last)
    assert "https://example.org/first-source" not in _text(blank_pdf)
    topic_last = _pages(topic_pdf)[-1]
    assert "Sources" in topic_last
    assert "A first source: https://example.org/first-source" in topic_last
    assert "A printed leaflet with no web address" in topic_last
    assert ("Reviewed on 15 January 2026 by Dr Test Reviewer; next review due 15 January 2027."
            in topic_last)


def test_html_structure_is_the_reading_order(
    renderer: HandoutRenderer, handout: Handout, leaflet: Handout
) -> None:
    outline = _Outline()
    outline.feed(renderer.html(handout, None))
    assert outline.lang == "en-US"
    assert outline.title == handout.title
    assert outline.headings["h1"] == [handout.title]
    assert outline.headings["h2"] == [
        "Get emergency care now",
        "Call us",
        "Your next dates",
        *(section.heading for section in handout.sections),
    ]
    topic = _Outline()
    topic.feed(renderer.html(leaflet, None))
    assert topic.headings["h2"] == [
        "Get emergency care now",
        *(section.heading for section in leaflet.sections),
        "Call the clinic if",
        "Sources",
    ]
    assert all(alt for alt in outline.image_alts + topic.image_alts), "images need alt text"


# ---------------------------------------------------------------- topics: no personal page


def test_a_topic_has_no_personal_page_and_its_emergency_box_on_page_1(
    project: Project, leaflet: Handout, topic_pdf: bytes
) -> None:
    pages = _pages(topic_pdf)
    first = pages[0]
    assert first.index(leaflet.title) < first.index("Get emergency care now")
    for sign in leaflet.emergency_if:
        assert sign in first
    for personal in ("Prepared for", "Name:", "Treatment date", "Your next dates"):
        assert personal not in _text(topic_pdf)
    assert _squashed(project.clinic.booking_url.removeprefix("https://")) in _squashed(
        _text(topic_pdf))


def test_a_topic_cannot_be_personalised(
    renderer: HandoutRenderer, leaflet: Handout, patient: PatientCard
) -> None:
    with pytest.raises(InputError) as caught:
        renderer.pdf(leaflet, patient)
    assert str(caught.value) == (
        "topic: expected a checkout handout (aftercare); got 'leaflet', a topic without "
        "personal details (`pipeline build` prints it)")


# ---------------------------------------------------------------- side 1, composed per patient


def test_side_1_is_laid_out_per_patient_and_side_2_is_the_kept_one(
    handout: Handout, personal_pdf: bytes, blank_pdf: bytes
) -> None:
    pages, blank = _pages(personal_pdf), _pages(blank_pdf)
    assert len(pages) == len(blank) == 2
    assert "Name: Ana Ruiz" in pages[0]
    assert not any(section.heading in pages[0] for section in handout.sections)
    assert pages[1] == blank[1]
    assert pages[1].startswith(f"{handout.sections[0].heading}")


def test_composed_pdf_is_the_same_file_as_a_whole_render(
    renderer: HandoutRenderer, handout: Handout, patient: PatientCard, personal_pdf: bytes
) -> None:
    # Side 1 laid out alone plus the kept side 2 write the very bytes of the handout laid out
    # whole: same layout, same fonts, same structure tree.
    assert personal_pdf == renderer.pdf_from_html(renderer.html(handout, patient))


def test_composed_pdf_structure_tree_is_consistent(personal_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(personal_pdf))
    root = _dictionary(reader.trailer["/Root"])
    tree = _dictionary(root["/StructTreeRoot"])
    nums = _array(_dictionary(tree["/ParentTree"])["/Nums"])
    parents = {int(nums[i]): nums[i + 1].get_object() for i in range(0, len(nums), 2)}
    seen: list[int] = []
    for page in reader.pages:
        index = int(page["/StructParents"])
        seen.append(index)
        assert index in parents, index
        elements = parents[index]
        assert isinstance(elements, ArrayObject)
        content = page.get_contents()
        assert content is not None
        mcids = [int(n) for n in re.findall(rb"/MCID (\d+)", content.get_data())]
        # One structure element per marked-content reference, numbered 0 to n-1.
        assert sorted(mcids) == list(range(len(elements))), index
        for element in elements:
            element = _dictionary(element)
            assert element["/Type"] == "/StructElem"
            assert _dictionary(element["/Pg"]).indirect_reference == page.indirect_reference
    assert len(seen) == len(set(seen)), "duplicate /StructParents"


def test_patients_rendered_one_after_the_other_get_their_own_details(
    project: Project, handout: Handout
) -> None:
    renderer = HandoutRenderer(project)
    first = PatientCard("Ana Ruiz", TREATED_ON, areas="forehead", provider="Dr Lee",
                        lot="LOT-ANA")
    second = PatientCard("Zoë Novák", TREATED_ON + dt.timedelta(days=1))
    one, two, again = (renderer.pdf(handout, card) for card in (first, second, first))
    text = _text(two)
    assert "Name: Zoë Novák" in text and "Treatment date: Tue 24 Nov 2026" in text
    for other in ("Ana Ruiz", "Dr Lee", "forehead", "LOT-ANA"):
        assert other not in text
    assert "Zoë" not in _text(one)
    assert again == one
    assert "Ana Ruiz" not in _text(renderer.pdf(handout, None))


def longest_card(aftercare: bool = True, treated_on: dt.date = TREATED_ON) -> PatientCard:
    """Every field at its longest, in W, the widest letter: the most lines each can take."""
    fields = {field: "W" * FIELD_LIMITS[field]
              for field in ("name", "provider", "product", "units", "lot")}
    areas = ("WMW " * 40)[:FIELD_LIMITS["areas"]]
    return PatientCard(treated_on=treated_on, areas=areas, aftercare_consent=aftercare,
                       reminder_consent=aftercare, planned_at=CHECKOUT, **fields)


@pytest.mark.parametrize("paper_size", ["Letter", "A4"])
def test_the_longest_details_keep_the_sheet_on_two_pages(
    project: Project, paper_size: str
) -> None:
    card = longest_card()
    clinic = dataclasses.replace(project.clinic, paper_size=paper_size)
    renderer = HandoutRenderer(dataclasses.replace(project, clinic=clinic))
    handout = project.handouts["aftercare"]
    pages = _pages(renderer.pdf(handout, card))
    assert len(pages) == 2
    assert _squashed(card.name) in _squashed(pages[0])
    assert _squashed(f"Lot: {card.lot}") in _squashed(pages[0])
    assert "Page 1 of 2" in pages[0]
    assert pages[1].startswith(handout.sections[0].heading)


def test_a_side_1_that_cannot_fit_is_laid_out_whole_not_cut(
    renderer: HandoutRenderer, handout: Handout, patient: PatientCard
) -> None:
    wordy = dataclasses.replace(handout, title=" ".join([handout.title] * 40))
    data = renderer.pdf(wordy, patient)
    assert data == renderer.pdf_from_html(renderer.html(wordy, patient))
    pages = _pages(data)
    assert len(pages) > 2
    assert "Name: Ana Ruiz" in _text(data)
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text


def test_an_edited_handout_never_reuses_the_kept_pages(
    project: Project, renderer: HandoutRenderer, handout: Handout, patient: PatientCard
) -> None:
    renderer.pdf(handout, patient)  # keeps the pages of the original
    sections = [dataclasses.replace(handout.sections[0], heading="A brand new heading")]
    edited = dataclasses.replace(handout, sections=(*sections, *handout.sections[1:]))
    assert "A brand new heading" in _text(renderer.pdf(edited, patient))
    edited_project = dataclasses.replace(project, handouts={"aftercare": edited})
    fresh = HandoutRenderer(edited_project).pdf(edited, patient)
    assert "A brand new heading" in _text(fresh)
    assert "A brand new heading" not in _text(renderer.pdf(handout, patient))


# ---------------------------------------------------------------- the PDF as a file


def test_page_size_follows_the_clinic(
    project: Project, handout: Handout, personal_pdf: bytes
) -> None:
    letter = PdfReader(io.BytesIO(personal_pdf)).pages[0].mediabox
    assert (round(float(letter.width)), round(float(letter.height))) == (612, 792)
    a4_clinic = dataclasses.replace(project.clinic, paper_size="A4")
    a4_pdf = HandoutRenderer(dataclasses.replace(project, clinic=a4_clinic)).pdf(handout, None)
    a4 = PdfReader(io.BytesIO(a4_pdf)).pages[0].mediabox
    assert (round(float(a4.width)), round(float(a4.height))) == (595, 842)


def test_fonts_are_embedded_and_all_atkinson_hyperlegible(personal_pdf: bytes) -> None:
    fonts = list(_fonts(PdfReader(io.BytesIO(personal_pdf))))
    assert fonts
    for font in fonts:
        name = str(font["/BaseFont"])
        assert "Atkinson-Hyperlegible" in name, name
        descendant = _dictionary(_array(font["/DescendantFonts"])[0])
        descriptor = _dictionary(descendant["/FontDescriptor"])
        assert "/FontFile2" in descriptor, f"{name} is not embedded"
    with pdfplumber.open(io.BytesIO(personal_pdf)) as pdf:
        names = {char["fontname"] for page in pdf.pages for char in page.chars}
    assert names and all("Atkinson-Hyperlegible" in name for name in names), names


@pytest.fixture(scope="module")
def diary_pdf(renderer: HandoutRenderer, patient: PatientCard) -> bytes:
    return renderer.diary_pdf(patient)


def test_every_character_is_at_least_12pt(
    personal_pdf: bytes, blank_pdf: bytes, topic_pdf: bytes, diary_pdf: bytes
) -> None:
    for data in (personal_pdf, blank_pdf, topic_pdf, diary_pdf):
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            small = [
                (page.page_number, char["text"], round(char["size"], 2))
                for page in pdf.pages
                for char in page.chars
                if char["size"] < 11.99
            ]
        assert not small, small[:10]


@pytest.mark.parametrize("which", ["personal_pdf", "topic_pdf", "diary_pdf"])
def test_pdf_is_tagged_pdf_ua_with_title_and_language(
    project: Project, handout: Handout, which: str, request: pytest.FixtureRequest
) -> None:
    reader = PdfReader(io.BytesIO(request.getfixturevalue(which)))
    root = _dictionary(reader.trailer["/Root"])
    assert "/StructTreeRoot" in root
    assert _dictionary(root["/MarkInfo"])["/Marked"] == BooleanObject(True)
    assert str(root["/Lang"]) == project.clinic.locale
    title = "My headache diary" if which == "diary_pdf" else handout.title
    assert reader.metadata is not None and reader.metadata.title == title
    assert _dictionary(root["/ViewerPreferences"])["/DisplayDocTitle"] == BooleanObject(True)
    metadata = root["/Metadata"].get_object()
    assert isinstance(metadata, StreamObject)
    xmp = metadata.get_data()
    assert b'pdfuaid:part="1"' in xmp or b"<pdfuaid:part>1</pdfuaid:part>" in xmp


def test_brand_colours_keep_text_readable(project: Project) -> None:
    css = clinic_css(project.clinic.brand, project.clinic.paper_size)
    colours = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6});", css))
    pairs = [
        ("text", "white"), ("primary", "white"), ("accent", "white"),
        ("text", "primary-tint"), ("primary", "primary-tint"),
        ("text", "accent-tint"), ("accent", "accent-tint"),
        ("text", "warning-tint"), ("warning", "warning-tint"),
    ]
    colours["white"] = "#ffffff"
    for foreground, background in pairs:
        ratio = contrast_ratio(colours[foreground], colours[background])
        assert ratio >= 4.5, f"{foreground} on {background}: {ratio:.2f}"
    assert "@page { size: letter; }" in css


# ---------------------------------------------------------------- what staff type


def test_typed_markup_prints_literally_and_attaches_nothing(
    renderer: HandoutRenderer, handout: Handout
) -> None:
    refused_before = list(renderer.fetcher.refused)
    card = PatientCard(HOSTILE_NAME, TREATED_ON, areas="<i>forehead</i>", provider="Dr <Lee>",
                       product="<script>x</script>", units="20 & <4>", lot='"><img src=x>')
    html = renderer.html(handout, card)
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; &lt;link rel=attachment" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "20 &amp; &lt;4&gt;" in html
    assert "&#34;&gt;&lt;img src=x&gt;" in html
    assert "<link" not in html and "<b>" not in html and "<script>" not in html
    assert "<img src=x" not in html
    data = renderer.pdf(handout, card)
    text = _text(data)
    # The name wraps inside the URL, where extraction cannot know whether a space was there.
    assert _squashed(f"Name: {HOSTILE_NAME}") in _squashed(text)
    assert "Areas treated: <i>forehead</i>" in text
    assert "Treated by: Dr <Lee>" in text
    assert "Product: <script>x</script>" in text
    assert "Units: 20 & <4>" in text
    assert 'Lot: "><img src=x>' in text
    for diary in (data, renderer.diary_pdf(card)):
        reader = PdfReader(io.BytesIO(diary))
        assert reader.attachments == {}
        assert "/EmbeddedFiles" not in _dictionary(reader.trailer["/Root"]).get("/Names", {})
        for page in reader.pages:
            for annotation in page.get("/Annots", []):
                assert str(_dictionary(annotation)["/Subtype"]) != "/FileAttachment"
    assert _squashed(f"Name: {HOSTILE_NAME}") in _squashed(_text(renderer.diary_pdf(card)))
    assert renderer.fetcher.refused == refused_before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "   "}, "name: expected the patient's name; got an empty value"),
        ({"name": "A" * 81}, "name: expected at most 80 characters; got 81"),
        ({"name": "Ann\x07"}, f"name: {PRINTABLE} U+0007 at position 4"),
        ({"name": "Ann\u202eLee"}, f"name: {PRINTABLE} U+202E at position 4"),
        ({"name": "Ann\nLee"}, f"name: {PRINTABLE} U+000A at position 4"),
        ({"areas": "x" * 200}, "areas: expected at most 80 characters; got 200"),
        ({"provider": "D" * 41}, "provider: expected at most 40 characters; got 41"),
        ({"provider": "Dr\tLee"}, f"provider: {PRINTABLE} U+0009 at position 3"),
        ({"product": "B" * 41}, "product: expected at most 40 characters; got 41"),
        ({"units": "1" * 13}, "units: expected at most 12 characters; got 13"),
        ({"lot": "L" * 17}, "lot: expected at most 16 characters; got 17"),
        ({"lot": "C12\u200b34"}, f"lot: {PRINTABLE} U+200B at position 4"),
        ({"units": 20}, "units: expected text; got 20"),
        ({"treated_on": "2026-11-23"}, "treated_on: expected a date; got '2026-11-23'"),
    ],
)
def test_patient_card_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "Ana Ruiz", "treated_on": TREATED_ON, **kwargs}
    with pytest.raises(InputError) as caught:
        PatientCard(**fields)
    assert str(caught.value) == message


def test_patient_card_trims_and_drops_empty_options() -> None:
    card = PatientCard("  Ana Ruiz ", TREATED_ON, areas=" ", provider=" Dr Lee ", product="",
                       units=" 20 ", lot="\t")
    assert (card.name, card.areas, card.provider) == ("Ana Ruiz", None, "Dr Lee")
    assert (card.product, card.units, card.lot) == (None, "20", None)


def test_patient_card_needs_an_aware_planning_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PatientCard("Ana", TREATED_ON, planned_at=dt.datetime(2026, 11, 23, 15, 0))


def test_letters_missing_from_the_font_are_refused_before_rendering(
    renderer: HandoutRenderer, handout: Handout
) -> None:
    with pytest.raises(InputError) as caught:
        renderer.pdf(handout, PatientCard("Ana 李", TREATED_ON))
    assert str(caught.value) == "name: expected letters the handout font has; got '李' (U+674E)"
    with pytest.raises(InputError) as caught:
        renderer.diary_pdf(PatientCard("Ana", TREATED_ON, lot="LOT-☃"))
    assert str(caught.value) == "lot: expected letters the handout font has; got '☃' (U+2603)"
    accented = _text(renderer.pdf(handout, PatientCard("Zoë Núñez-Łukasz", TREATED_ON)))
    assert "Name: Zoë Núñez-Łukasz" in accented


# ---------------------------------------------------------------- refusals and files


def test_a_document_reaching_outside_fails_and_writes_nothing(
    renderer: HandoutRenderer, tmp_path: Path
) -> None:
    target = tmp_path / "out.pdf"
    html = _page('<img src="file:///etc/passwd" alt="secret">')
    with pytest.raises(RenderError) as caught:
        write_output(target, renderer.pdf_from_html(html, "the test page"))
    assert str(caught.value) == (
        "the test page: refused file:///etc/passwd: outside the templates folder; "
        "nothing was written"
    )
    assert list(tmp_path.iterdir()) == []
    assert "file:///etc/passwd" in renderer.fetcher.refused


@pytest.mark.parametrize(
    ("body", "url"),
    [
        pytest.param(
            '<base href="file:///etc/"><img src="passwd" alt="x">', "file:///etc/passwd",
            id="base-href",
        ),
        pytest.param(
            '<link rel="attachment" href="file:///etc/hostname">', "file:///etc/hostname",
            id="link-attachment",
        ),
        pytest.param(
            '<a rel="attachment" href="file:///etc/hostname">x</a>', "file:///etc/hostname",
            id="a-attachment",
        ),
        pytest.param(
            '<link rel="stylesheet" href="http://example.com/x.css">', "http://example.com/x.css",
            id="http-css",
        ),
        pytest.param(
            "<style>@import url(https://example.com/x.css);</style>", "https://example.com/x.css",
            id="import",
        ),
        pytest.param(
            "<style>@font-face { font-family: x; src: url(file:///dev/zero) }"
            " p { font-family: x }</style>",
            "file:///dev/zero",
            id="font-dev-zero",
        ),
        pytest.param(
            '<img src="assets/../../pyproject.toml" alt="x">',
            (ROOT / "pyproject.toml").as_uri(),
            id="traversal",
        ),
        pytest.param(
            '<svg width="10" height="10"><title>t</title>'
            '<image href="file:///etc/passwd" width="10" height="10"/></svg>',
            "file:///etc/passwd",
            id="svg-image",
        ),
    ],
)
def test_hostile_documents_are_refused(renderer: HandoutRenderer, body: str, url: str) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.pdf_from_html(_page(body), "the test page")
    assert str(caught.value).startswith(f"the test page: refused {url}: ")
    assert renderer.fetcher.refused[-1] == url


def test_weasyprint_warnings_fail_the_render(renderer: HandoutRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.pdf_from_html(_page('<p style="color: nonsense-colour">x</p>'), "the test page")
    assert str(caught.value).startswith("the test page: WeasyPrint reported warning: ")


def test_build_writes_one_pdf_per_topic(project: Project, tmp_path: Path) -> None:
    paths = list(build_outputs(project, tmp_path, tuple(sorted(project.handouts)), jobs=1).written)
    assert paths == [tmp_path / "handouts" / "aftercare.pdf", tmp_path / "handouts" / "leaflet.pdf"]
    assert paths[0].read_bytes().startswith(b"%PDF-1.7")
    assert sorted(p.name for p in (tmp_path / "handouts").iterdir()) == [
        "aftercare.pdf", "leaflet.pdf"]
    with pytest.raises(InputError) as caught:
        build_outputs(project, tmp_path, ["no-such-topic"], jobs=1)
    assert str(caught.value) == "topic: expected one of aftercare, leaflet; got 'no-such-topic'"


def test_build_stops_at_a_logo_linked_outside_and_writes_nothing(
    project: Project, tmp_path: Path
) -> None:
    copy = tmp_path / "clinic"
    shutil.copytree(ROOT / "templates", copy / "templates", ignore=_skip_non_assets)
    outside = tmp_path / "outside.svg"
    shutil.copy(ROOT / "templates" / "assets" / project.clinic.logo, outside)
    logo = copy / "templates" / "assets" / project.clinic.logo
    logo.unlink()
    logo.symlink_to(outside)
    out = tmp_path / "build"
    with pytest.raises(RenderError, match="outside the templates folder"):
        build_outputs(dataclasses.replace(project, root=copy), out, tuple(sorted(project.handouts)),
              jobs=1)
    assert not out.exists()


def test_importing_the_module_does_not_import_weasyprint() -> None:
    code = "import sys, aftercare.render.handouts; print('weasyprint' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- the clinic's real content


@pytest.fixture(scope="module")
def real_project() -> Project:
    return load_project(ROOT)


def test_every_real_handout_renders_cleanly(real_project: Project) -> None:
    # Layout and sizes are the template's, tested above with the fixture; what the real
    # content can break is a refused resource, a logged warning (both raise) or a letter
    # the bundled font lacks (a system font would show up among the fonts).
    renderer = HandoutRenderer(real_project)
    for topic, handout in sorted(real_project.handouts.items()):
        reader = PdfReader(io.BytesIO(renderer.pdf(handout, None)))
        assert reader.metadata is not None and reader.metadata.title == handout.title, topic
        count = len(reader.pages)
        assert f"Page {count} of {count}" in reader.pages[-1].extract_text(), topic
        names = {str(font["/BaseFont"]) for font in _fonts(reader)}
        assert all("Atkinson-Hyperlegible" in name for name in names), (topic, names)


# ---------------------------------------------------------------- helpers


def _page(body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Test</title></head>'
        f"<body><p>Test page</p>{body}</body></html>"
    )


def _dictionary(value: Any) -> DictionaryObject:
    resolved = value.get_object()
    assert isinstance(resolved, DictionaryObject), resolved
    return resolved


def _array(value: Any) -> ArrayObject:
    resolved = value.get_object()
    assert isinstance(resolved, ArrayObject), resolved
    return resolved


def _fonts(reader: PdfReader) -> Iterator[DictionaryObject]:
    """Every font a page or a form (an SVG drawing) uses."""
    seen: set[int] = set()

    def walk(resources: Any) -> Iterator[DictionaryObject]:
        if resources is None:
            return
        resources = resources.get_object()
        for ref in resources.get("/Font", {}).values():
            font = ref.get_object()
            if id(font) not in seen:
                seen.add(id(font))
                yield font
        for ref in resources.get("/XObject", {}).values():
            yield from walk(ref.get_object().get("/Resources"))

    for page in reader.pages:
        yield from walk(page.get("/Resources"))


def _skip_non_assets(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name in ("email", "staff")]


class _Outline(HTMLParser):
    """The headings, language, title and image alternatives of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: dict[str, list[str]] = {"h1": [], "h2": []}
        self.lang = ""
        self.title = ""
        self.image_alts: list[str] = []
        self._open: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang") or ""
        if tag == "img":
            self.image_alts.append(values.get("alt") or "")
        if tag in ("h1", "h2", "title"):
            self._open, self._buffer = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            text = " ".join("".join(self._buffer).split())
            if tag == "title":
                self.title = text
            else:
                self.headings[tag].append(text)
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._buffer.append(data)
