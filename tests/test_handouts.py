"""Handout rendering: real PDFs from WeasyPrint, read back with pypdf and pdfplumber."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
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

from aftercare.content import Campaign, Clinic, Handout, Project, load_project
from aftercare.errors import InputError, RenderError
from aftercare.handouts import (
    MAX_FIELD_LENGTH,
    HandoutRenderer,
    PatientCard,
    build_handouts,
    clinic_css,
    contrast_ratio,
    short_date,
    write_pdf_atomically,
)
from aftercare.schedule import follow_ups
from aftercare.schema import build, read_document
from tests.conftest import FIXTURES, ROOT

T = TypeVar("T")
HERE = FIXTURES / "handouts"
TREATED_ON = dt.date(2026, 11, 23)
PRINTABLE = "expected printable characters; got"
HOSTILE_NAME = '<b>Ann</b> & <link rel=attachment href="file:///etc/passwd">'


def _load(cls: type[T], path: Path, topic: str = "") -> T:
    doc = read_document(path, path.name)
    value = build(cls, doc)
    assert value is not None, doc.problems
    return dataclasses.replace(value, id=topic) if topic else value  # type: ignore[type-var]


@pytest.fixture(scope="module")
def project() -> Project:
    """The repository's clinic (Letter paper) with a fixture topic and campaign."""
    clinic = _load(Clinic, ROOT / "clinic.yaml")
    handout = _load(Handout, HERE / "aftercare.yaml", "aftercare")
    campaign = _load(Campaign, HERE / "campaign.yaml", "care")
    return Project(ROOT, clinic, {"aftercare": handout}, {"care": campaign})


@pytest.fixture(scope="module")
def renderer(project: Project) -> HandoutRenderer:
    return HandoutRenderer(project)


@pytest.fixture(scope="module")
def handout(project: Project) -> Handout:
    return project.handouts["aftercare"]


@pytest.fixture(scope="module")
def patient() -> PatientCard:
    return PatientCard("Ana Ruiz", TREATED_ON, areas="frown lines, forehead", provider="Dr Lee")


@pytest.fixture(scope="module")
def personal_pdf(renderer: HandoutRenderer, handout: Handout, patient: PatientCard) -> bytes:
    return renderer.pdf(handout, patient)


@pytest.fixture(scope="module")
def blank_pdf(renderer: HandoutRenderer, handout: Handout) -> bytes:
    return renderer.pdf(handout, None)


def _pages(data: bytes) -> list[str]:
    """Each page's text with runs of whitespace made single spaces (lines wrap anywhere)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def _text(data: bytes) -> str:
    return " ".join(_pages(data))


def _squashed(text: str) -> str:
    return "".join(text.split())


# ---------------------------------------------------------------- what the patient reads


def test_personalised_pdf_has_title_sections_name_and_own_dates(
    project: Project, handout: Handout, personal_pdf: bytes
) -> None:
    text = _text(personal_pdf)
    assert handout.title in text
    for section in handout.sections:
        assert section.heading in text
    assert "Name: Ana Ruiz" in text
    assert "Treatment date: Mon 23 Nov 2026" in text
    assert "Areas treated: frown lines, forehead" in text
    assert "Treated by: Dr Lee" in text
    for expected in (
        "Tue 24 Nov: we email you tips for the first days",
        "Mon 7 Dec: results check-in",
        "Tue 23 Feb: time to plan your next visit, if you want one",
        "Mon 15 Feb: earliest date for your next treatment",
    ):
        assert expected in text
    campaign = project.campaigns["care"]
    for follow_up in follow_ups(project.clinic, campaign, TREATED_ON):
        assert f"{short_date(follow_up.local_date)}: {follow_up.label}" in text
    assert "_____" not in text


def test_unpersonalised_pdf_has_lines_to_fill_in(
    project: Project, handout: Handout, blank_pdf: bytes
) -> None:
    text = _text(blank_pdf)
    for label in ("Name", "Treatment date", "Areas treated", "Treated by"):
        assert re.search(rf"{label}: _{{10,}}", text), label
    for follow_up in follow_ups(project.clinic, project.campaigns["care"], TREATED_ON):
        assert re.search(rf"_{{10,}}: {re.escape(follow_up.label)}", text), follow_up.label
    assert "Ana Ruiz" not in text
    assert "Nov:" not in text


def test_general_topic_says_to_call_and_book_without_dates(
    renderer: HandoutRenderer, handout: Handout, patient: PatientCard
) -> None:
    general = dataclasses.replace(handout, indication="general")
    text = _text(renderer.pdf(general, patient))
    assert "Name: Ana Ruiz" in text
    assert "If you have any questions, call us on (617) 555-0142" in text
    assert "When you are ready, book a visit online or by phone." in text
    assert "Tue 24 Nov" not in text


def test_every_page_has_header_footer_and_page_x_of_y(
    project: Project, handout: Handout, personal_pdf: bytes
) -> None:
    pages = _pages(personal_pdf)
    assert len(pages) >= 2, "the fixture should span pages so that running elements are tested"
    clinic = project.clinic
    for number, text in enumerate(pages, start=1):
        assert clinic.name in text
        assert f"Questions? Call {clinic.name} on {clinic.phone}" in text
        assert f"Handout {handout.id}, version {handout.version}" in text
        assert f"Page {number} of {len(pages)}" in text


def test_call_and_emergency_boxes_carry_the_clinic_numbers(
    project: Project, handout: Handout, blank_pdf: bytes
) -> None:
    text = _text(blank_pdf)
    clinic = project.clinic
    assert "Call the clinic if" in text
    assert f"Call us on {clinic.phone} if you have any of these:" in text
    assert f"We are open {clinic.hours}." in text
    assert f"After hours, call our urgent line on {clinic.urgent_line}." in text
    assert "Get emergency care now" in text
    assert (
        f"Call {clinic.emergency_number} or go to the nearest emergency department "
        "if you have any of these:"
    ) in text
    assert "These signs can start hours to weeks after treatment." in text
    assert "Do not drive if you feel weak, dizzy or have vision problems." in text
    for item in (*handout.call_clinic_if, *handout.emergency_if):
        assert item in text
    assert clinic.booking_url in _squashed(text)  # may wrap in its box on page 1


def test_callouts_are_labelled_in_words(blank_pdf: bytes) -> None:
    text = _text(blank_pdf)
    assert "Tip: Good to know" in text
    assert "Warning: Bruises" in text
    assert "Emergency: Get help right away" in text


def test_sources_and_review_close_the_handout(handout: Handout, blank_pdf: bytes) -> None:
    last_page = _pages(blank_pdf)[-1]
    assert "Sources" in last_page
    assert "A first source: https://example.org/first-source" in last_page
    assert "A printed leaflet with no web address" in last_page
    assert (
        "Reviewed by Dr Test Reviewer on 15 January 2026; next review due 15 January 2027."
        in last_page
    )


def test_html_structure_is_the_reading_order(renderer: HandoutRenderer, handout: Handout) -> None:
    outline = _Outline()
    outline.feed(renderer.html(handout, None))
    assert outline.lang == "en-US"
    assert outline.title == handout.title
    assert outline.headings["h1"] == [handout.title]
    assert outline.headings["h2"] == [
        "Prepared for",
        "What happens next",
        "Book your next visit",
        *(section.heading for section in handout.sections),
        "Call the clinic if",
        "Get emergency care now",
        "Sources",
    ]
    assert all(alt for alt in outline.image_alts), "every image needs a text alternative"


# ---------------------------------------------------------------- page 1, composed per patient


def test_page_1_is_the_patients_plan_and_the_topic_starts_on_page_2(
    handout: Handout, personal_pdf: bytes, blank_pdf: bytes
) -> None:
    pages = _pages(personal_pdf)
    count = len(_pages(blank_pdf))
    assert len(pages) == count
    first = pages[0]
    assert "Your aftercare plan" in first.replace("YOUR AFTERCARE PLAN", "Your aftercare plan")
    assert handout.title in first
    assert "Name: Ana Ruiz" in first
    assert "Tue 24 Nov: we email you tips for the first days" in first
    assert "Book your next visit" in first
    assert "Emergency: 911" in first
    assert f"Page 1 of {count}" in first
    assert not any(section.heading in first for section in handout.sections)
    assert handout.sections[0].heading in pages[1]
    for number, text in enumerate(pages[1:], start=2):
        assert f"Page {number} of {count}" in text
        assert "Ana Ruiz" not in text


def test_composed_pdf_is_the_same_file_as_a_whole_render(
    renderer: HandoutRenderer, handout: Handout, patient: PatientCard, personal_pdf: bytes
) -> None:
    # Page 1 laid out alone plus the kept pages 2 to N write the very bytes of the handout
    # laid out whole: same layout, same fonts, same structure tree.
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
    first = PatientCard("Ana Ruiz", TREATED_ON, areas="forehead", provider="Dr Lee")
    second = PatientCard("Zoë Novák", TREATED_ON + dt.timedelta(days=1))
    one, two, again = (renderer.pdf(handout, card) for card in (first, second, first))
    text = _text(two)
    assert "Name: Zoë Novák" in text and "Treatment date: Tue 24 Nov 2026" in text
    assert "Ana Ruiz" not in text and "Dr Lee" not in text and "forehead" not in text
    assert "Zoë" not in _text(one)
    assert again == one
    assert "Ana Ruiz" not in _text(renderer.pdf(handout, None))


@pytest.mark.parametrize("paper_size", ["Letter", "A4"])
def test_the_longest_details_still_fit_page_1(
    project: Project, real_project: Project, paper_size: str
) -> None:
    # W is the widest letter: the most lines a field can take within the length limits.
    longest = "W" * MAX_FIELD_LENGTH
    areas = ("WMW " * 40)[:MAX_FIELD_LENGTH]
    card = PatientCard(longest, TREATED_ON, areas=areas, provider=longest)
    for source in (project, real_project):
        clinic = dataclasses.replace(source.clinic, paper_size=paper_size)
        renderer = HandoutRenderer(dataclasses.replace(source, clinic=clinic))
        for topic, handout in sorted(source.handouts.items()):
            pages = _pages(renderer.pdf(handout, card))
            count = len(_pages(renderer.pdf(handout, None)))
            assert len(pages) == count, topic
            assert _squashed(longest) in _squashed(pages[0]), topic
            assert f"Page 1 of {count}" in pages[0], topic
            assert pages[1].startswith(handout.sections[0].heading), topic


def test_a_page_1_that_cannot_fit_is_laid_out_whole_not_cut(
    renderer: HandoutRenderer, handout: Handout, patient: PatientCard
) -> None:
    wordy = dataclasses.replace(handout, summary=" ".join([handout.summary] * 30))
    data = renderer.pdf(wordy, patient)
    assert data == renderer.pdf_from_html(renderer.html(wordy, patient))
    pages = _pages(data)
    assert "Name: Ana Ruiz" in _text(data)
    assert "Ana Ruiz" not in " ".join(pages[3:])
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


def test_every_character_is_at_least_12pt(personal_pdf: bytes, blank_pdf: bytes) -> None:
    for data in (personal_pdf, blank_pdf):
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            small = [
                (page.page_number, char["text"], round(char["size"], 2))
                for page in pdf.pages
                for char in page.chars
                if char["size"] < 11.99
            ]
        assert not small, small[:10]


def test_pdf_is_tagged_pdf_ua_with_title_and_language(
    project: Project, handout: Handout, personal_pdf: bytes
) -> None:
    reader = PdfReader(io.BytesIO(personal_pdf))
    root = _dictionary(reader.trailer["/Root"])
    assert "/StructTreeRoot" in root
    assert _dictionary(root["/MarkInfo"])["/Marked"] == BooleanObject(True)
    assert str(root["/Lang"]) == project.clinic.locale
    assert reader.metadata is not None and reader.metadata.title == handout.title
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
    card = PatientCard(HOSTILE_NAME, TREATED_ON, areas="<i>forehead</i>", provider="Dr <Lee>")
    html = renderer.html(handout, card)
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; &lt;link rel=attachment" in html
    assert "<link" not in html and "<b>" not in html
    data = renderer.pdf(handout, card)
    text = _text(data)
    # The name wraps inside the URL, where extraction cannot know whether a space was there.
    assert _squashed(f"Name: {HOSTILE_NAME}") in _squashed(text)
    assert "Areas treated: <i>forehead</i>" in text
    assert "Treated by: Dr <Lee>" in text
    reader = PdfReader(io.BytesIO(data))
    assert reader.attachments == {}
    assert "/EmbeddedFiles" not in _dictionary(reader.trailer["/Root"]).get("/Names", {})
    for page in reader.pages:
        for annotation in page.get("/Annots", []):
            assert str(_dictionary(annotation)["/Subtype"]) != "/FileAttachment"
    assert renderer.fetcher.refused == refused_before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "   "}, "--name: expected the patient's name; got an empty value"),
        ({"name": "A" * 121}, "--name: expected at most 120 characters; got 121"),
        ({"name": "Ann\x07"}, f"--name: {PRINTABLE} U+0007 at position 4"),
        ({"name": "Ann\u202eLee"}, f"--name: {PRINTABLE} U+202E at position 4"),
        ({"name": "Ann\nLee"}, f"--name: {PRINTABLE} U+000A at position 4"),
        ({"areas": "x" * 200}, "--areas: expected at most 120 characters; got 200"),
        ({"provider": "Dr\tLee"}, f"--provider: {PRINTABLE} U+0009 at position 3"),
        ({"treated_on": "2026-11-23"}, "--treated-on: expected a date; got '2026-11-23'"),
    ],
)
def test_patient_card_refuses_bad_input(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "Ana Ruiz", "treated_on": TREATED_ON, **kwargs}
    with pytest.raises(InputError) as caught:
        PatientCard(**fields)
    assert str(caught.value) == message


def test_patient_card_trims_and_drops_empty_options() -> None:
    card = PatientCard("  Ana Ruiz ", TREATED_ON, areas=" ", provider=" Dr Lee ")
    assert (card.name, card.areas, card.provider) == ("Ana Ruiz", None, "Dr Lee")


def test_letters_missing_from_the_font_are_refused_before_rendering(
    renderer: HandoutRenderer, handout: Handout
) -> None:
    with pytest.raises(InputError) as caught:
        renderer.pdf(handout, PatientCard("Ana 李", TREATED_ON))
    assert str(caught.value) == "--name: expected letters the handout font has; got '李' (U+674E)"
    accented = _text(renderer.pdf(handout, PatientCard("Zoë Núñez-Łukasz", TREATED_ON)))
    assert "Name: Zoë Núñez-Łukasz" in accented


# ---------------------------------------------------------------- refusals and files


def test_a_document_reaching_outside_fails_and_writes_nothing(
    renderer: HandoutRenderer, tmp_path: Path
) -> None:
    target = tmp_path / "out.pdf"
    html = _page('<img src="file:///etc/passwd" alt="secret">')
    with pytest.raises(RenderError) as caught:
        write_pdf_atomically(renderer.pdf_from_html(html, "the test page"), target)
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
    paths = build_handouts(project, tmp_path)
    assert paths == [tmp_path / "handouts" / "aftercare.pdf"]
    assert paths[0].read_bytes().startswith(b"%PDF-1.7")
    assert sorted(p.name for p in (tmp_path / "handouts").iterdir()) == ["aftercare.pdf"]
    with pytest.raises(InputError) as caught:
        build_handouts(project, tmp_path, ["no-such-topic"])
    assert str(caught.value) == "TOPIC: expected one of aftercare; got 'no-such-topic'"


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
        build_handouts(dataclasses.replace(project, root=copy), out)
    assert not out.exists()


def test_write_pdf_atomically_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "handout.pdf"
    write_pdf_atomically(b"%PDF-first", target)
    write_pdf_atomically(b"%PDF-second", target)
    assert target.read_bytes() == b"%PDF-second"
    assert [p.name for p in tmp_path.iterdir()] == ["handout.pdf"]


def test_write_pdf_atomically_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "handout.pdf"
    target.write_bytes(b"%PDF-old")
    new = tmp_path / "new.pdf"

    def failing_fsync(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    for path in (target, new):
        with pytest.raises(InputError) as caught:
            write_pdf_atomically(b"%PDF-new " * 1000, path)
        assert str(caught.value) == f"--out: cannot write {path}: No space left on device"
    assert target.read_bytes() == b"%PDF-old"
    assert [p.name for p in tmp_path.iterdir()] == ["handout.pdf"]


def test_importing_the_module_does_not_import_weasyprint() -> None:
    code = "import sys, aftercare.handouts; print('weasyprint' in sys.modules)"
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
