"""Renders handouts to branded, tagged PDF/UA files through Jinja2 and a restricted WeasyPrint."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from aftercare.content import Brand, Handout, Project
from aftercare.errors import InputError, RenderError
from aftercare.schedule import follow_ups

if TYPE_CHECKING:
    from weasyprint import CSS
    from weasyprint.document import Document

# WeasyPrint (and the fetcher, which subclasses its classes) is imported inside the renderer
# only: importing it costs about half a second, and commands that render nothing, which
# import this module for PatientCard, must not pay for it.

# Name, areas and provider print on page 1, which must stay one page even with the longest
# of each (a test renders them).
MAX_FIELD_LENGTH = 120
# Lines to write on by hand: long enough for a name, and for a date such as "Tue 24 Nov".
BLANK = "_" * 22
DATE_BLANK = "_" * 12
PDF_VARIANT = "pdf/ua-1"
FONT_FILES = tuple(
    f"assets/fonts/AtkinsonHyperlegible-{face}.ttf"
    for face in ("Regular", "Italic", "Bold", "BoldItalic")
)
# Dark amber for warning callouts: not a brand colour, so that a warning never looks like a tip.
WARNING_COLOUR = "#8a4a00"
CALLOUT_LABELS = {"tip": "Tip", "warning": "Warning", "emergency": "Emergency"}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


@dataclass(frozen=True)
class PatientCard:
    """The details staff type at checkout to personalise one printed handout."""

    name: str
    treated_on: dt.date
    areas: str | None = None
    provider: str | None = None

    def __post_init__(self) -> None:
        name = _checked_text("--name", self.name)
        if name is None:
            raise InputError("--name", "expected the patient's name; got an empty value")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "areas", _checked_text("--areas", self.areas))
        object.__setattr__(self, "provider", _checked_text("--provider", self.provider))
        if isinstance(self.treated_on, dt.datetime) or not isinstance(self.treated_on, dt.date):
            raise InputError("--treated-on", f"expected a date; got {self.treated_on!r}")


@dataclass(frozen=True)
class DatedStep:
    """One line of "What happens next": a date (None leaves a line to write on) and a label."""

    date: dt.date | None
    label: str


class HandoutRenderer:
    """Renders many handouts of one project; built once because fonts and CSS are costly to load.

    Page 1 ("Your aftercare plan") holds everything typed at the desk, and the topic starts on
    page 2. So a personalised handout is composed: the pages after the first come from the
    unpersonalised handout, laid out once per topic and kept (``_bodies``), and only page 1
    is laid out per patient. WeasyPrint writes the structure tree of the tagged PDF page by
    page from the laid-out boxes, so ``Document.copy`` of pages from two layouts of the same
    template writes one valid tree. Whenever the shortcut cannot be exact (a page 1 that
    would not fit on one page), the whole handout is laid out instead.

    Not safe to share between threads (WeasyPrint makes no such promise, and the log check
    listens to a process-wide logger): use one renderer per worker process.
    """

    def __init__(self, project: Project) -> None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        from aftercare.fetcher import RestrictedURLFetcher

        self.project = project
        self.templates = project.templates.resolve()
        self.fetcher = RestrictedURLFetcher(self.templates)
        self._base_url = self.templates.as_uri() + "/"
        self._environment = _environment(self.templates)
        self._template = self._environment.get_template("handout/handout.html")
        self._fonts = FontConfiguration()
        self._printable = _printable_characters(self.templates)
        self._qr_code = _qr_data_url(project.clinic.booking_url)
        # Per topic: the unpersonalised HTML the pages were laid out from (a changed handout
        # never reuses them) and its laid-out document, or None when page 1 is not one page.
        self._bodies: dict[str, tuple[str, Document | None]] = {}
        self._cover_css: dict[int, CSS] = {}
        with _failing_on_logs("the handout stylesheets"), _refusals_as_errors("the stylesheets"):
            self._stylesheets = (
                CSS(
                    url=self._base_url + "assets/handout.css",
                    url_fetcher=self.fetcher,
                    font_config=self._fonts,
                ),
                CSS(
                    string=clinic_css(project.clinic.brand, project.clinic.paper_size),
                    base_url=self._base_url,
                    url_fetcher=self.fetcher,
                    font_config=self._fonts,
                ),
            )

    def html(
        self, handout: Handout, patient: PatientCard | None, *, cover_only: bool = False
    ) -> str:
        """The handout as HTML; what staff typed is escaped, so it prints as typed.

        ``cover_only`` leaves out everything after page 1, for composing (see the class).
        """
        clinic = self.project.clinic
        return self._template.render(
            clinic=clinic,
            handout=handout,
            patient=patient,
            follow_ups=self._dated_steps(handout, patient),
            qr_code=self._qr_code,
            logo_url=f"assets/{clinic.logo}",
            cover_only=cover_only,
        )

    def pdf(self, handout: Handout, patient: PatientCard | None) -> bytes:
        """The handout as a tagged PDF; raises InputError or RenderError, never half a file."""
        if patient is not None:
            self._check_printable(patient)
        what = handout.id or handout.title
        if patient is None:
            # Rendered once (pipeline build): laying out and caching a body to compose with
            # would only add work.
            return self.pdf_from_html(self.html(handout, None), what)
        body = self._body(handout, what)
        if body is None:
            return self.pdf_from_html(self.html(handout, patient), what)
        # Page 1 alone, its footer counting the pages of the whole handout.
        cover = self._layout(
            self.html(handout, patient, cover_only=True), what, self._cover_footer(len(body.pages))
        )
        if len(cover.pages) != 1:
            # A page 1 that does not fit (not expected within the field limits): lay out
            # the whole handout rather than cut anything.
            return self.pdf_from_html(self.html(handout, patient), what)
        return self._write(body.copy([cover.pages[0], *body.pages[1:]]), what)

    def pdf_from_html(self, html: str, what: str = "the handout") -> bytes:
        """Any HTML through the same fonts, styles and fetcher; fails on any refusal or warning."""
        return self._write(self._layout(html, what), what)

    def _body(self, handout: Handout, what: str) -> Document | None:
        """The unpersonalised handout laid out once, if its page 1 is exactly the cover."""
        html = self.html(handout, None)
        key = handout.id or handout.title
        cached = self._bodies.get(key)
        if cached is not None and cached[0] == html:
            return cached[1]
        body: Document | None = self._layout(html, what)
        blank_cover = self._layout(self.html(handout, None, cover_only=True), what)
        if len(blank_cover.pages) != 1 or body is None or len(body.pages) < 2:
            body = None
        self._bodies[key] = (html, body)
        return body

    def _cover_footer(self, pages: int) -> CSS:
        from weasyprint import CSS

        sheet = self._cover_css.get(pages)
        if sheet is None:
            footer = f'"Page " counter(page) " of {pages}"'
            sheet = CSS(
                string=f"@page {{ @bottom-right {{ content: {footer}; }} }}",
                font_config=self._fonts,
            )
            self._cover_css[pages] = sheet
        return sheet

    def _layout(self, html: str, what: str, *extra: CSS) -> Document:
        from weasyprint import HTML

        with self._errors_named(what):
            document = HTML(string=html, base_url=self._base_url, url_fetcher=self.fetcher)
            return document.render(
                stylesheets=[*self._stylesheets, *extra],
                font_config=self._fonts,
                pdf_variant=PDF_VARIANT,
            )

    def _write(self, document: Document, what: str) -> bytes:
        with self._errors_named(what):
            pdf: bytes = document.write_pdf(pdf_variant=PDF_VARIANT)
        return pdf

    @contextlib.contextmanager
    def _errors_named(self, what: str) -> Iterator[None]:
        """Fail on any refusal or WeasyPrint warning, as one RenderError naming ``what``."""
        refused_before = len(self.fetcher.refusals)
        try:
            with _refusals_as_errors(what), _failing_on_logs(what):
                yield
        except RenderError:
            # Inside SVG drawings WeasyPrint turns our refusal into a vague logged error;
            # name the refused resource instead, as for refusals anywhere else.
            refusals = self.fetcher.refusals[refused_before:]
            if refusals:
                raise RenderError(f"{what}: {refusals[0]}; nothing was written") from None
            raise

    def _dated_steps(self, handout: Handout, patient: PatientCard | None) -> tuple[DatedStep, ...]:
        campaign = self.project.campaign_for(handout.indication)
        if campaign is None:
            return ()
        if patient is None:
            # An undated copy: the labels as a schedule with lines to write the dates on.
            undated = follow_ups(self.project.clinic, campaign, _SAMPLE_DAY)
            return tuple(DatedStep(None, step.label) for step in undated)
        dated = follow_ups(self.project.clinic, campaign, patient.treated_on)
        return tuple(DatedStep(step.local_date, step.label) for step in dated)

    def _check_printable(self, patient: PatientCard) -> None:
        # A character missing from the bundled font would silently come from some system
        # font (or print as a box), so the desk hears about it instead.
        typed = {"--name": patient.name, "--areas": patient.areas, "--provider": patient.provider}
        for option, text in typed.items():
            missing = sorted({c for c in text or "" if ord(c) not in self._printable})
            if missing:
                shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing)
                raise InputError(option, f"expected letters the handout font has; got {shown}")


def build_handouts(project: Project, out_dir: Path, topics: Sequence[str] = ()) -> list[Path]:
    """Render each topic (all when none given) to out_dir/handouts/<id>.pdf; all render first."""
    chosen = list(topics) or sorted(project.handouts)
    unknown = [topic for topic in chosen if topic not in project.handouts]
    if unknown:
        known = ", ".join(sorted(project.handouts))
        raise InputError("TOPIC", f"expected one of {known}; got {', '.join(map(repr, unknown))}")
    renderer = HandoutRenderer(project)
    # Render everything before writing anything, so a failure leaves no mix of old and new.
    rendered = [(topic, renderer.pdf(project.handouts[topic], None)) for topic in chosen]
    target = out_dir / "handouts"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("--out", f"cannot create {target}: {exc.strerror}") from None
    paths: list[Path] = []
    for topic, data in rendered:
        path = target / f"{topic}.pdf"
        write_pdf_atomically(data, path)
        paths.append(path)
    return paths


def write_pdf_atomically(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, then rename."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        # O_EXCL: never follow or reuse something already there; 0o666 lets the umask decide.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
    except OSError as exc:
        raise InputError("--out", f"cannot write {path}: {exc.strerror or exc}") from None
    _sync_folder(path.parent)


def clinic_css(brand: Brand, paper_size: str) -> str:
    """The clinic's part of the stylesheet: brand colours as custom properties, and paper size."""
    palette = {
        "primary": brand.primary,
        "accent": brand.accent,
        "text": brand.text,
        "primary-tint": tint(brand.primary, 0.08),
        "accent-tint": tint(brand.accent, 0.07),
        "warning": WARNING_COLOUR,
        "warning-tint": tint(WARNING_COLOUR, 0.08),
        "rule": tint(brand.text, 0.45),
    }
    properties = "".join(f"  --{name}: {value};\n" for name, value in palette.items())
    size = "letter" if paper_size == "Letter" else "A4"
    return f":root {{\n{properties}}}\n@page {{ size: {size}; }}\n"


def tint(colour: str, strength: float) -> str:
    """``colour`` laid over white at ``strength`` (0 to 1), as #rrggbb: the box backgrounds."""
    channels = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    mixed = (round(255 - (255 - c) * strength) for c in channels)
    return "#" + "".join(f"{c:02x}" for c in mixed)


def contrast_ratio(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two #rrggbb colours (1 to 21; text needs 4.5 or more)."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def short_date(day: dt.date) -> str:
    """Like "Tue 24 Nov": English whatever the process locale, as on the rest of the page."""
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def long_date(day: dt.date) -> str:
    """Like "Mon 23 Nov 2026"."""
    return f"{short_date(day)} {day.year}"


def full_date(day: dt.date) -> str:
    """Like "20 November 2026"."""
    return f"{day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


# Any day works: undated copies only need the labels, in the order follow_ups gives them.
_SAMPLE_DAY = dt.date(2001, 1, 1)


def _environment(templates: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["short_date"] = short_date
    environment.filters["long_date"] = long_date
    environment.filters["full_date"] = full_date
    environment.globals["blank"] = BLANK
    environment.globals["date_blank"] = DATE_BLANK
    environment.globals["callout_labels"] = CALLOUT_LABELS
    return environment


def _checked_text(option: str, text: str | None) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(option, f"expected text; got {text!r}")
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_FIELD_LENGTH:
        raise InputError(
            option, f"expected at most {MAX_FIELD_LENGTH} characters; got {len(text)}"
        )
    for position, char in enumerate(text, start=1):
        # Control, format (bidi overrides, zero-width) and line-break characters could hide
        # or reorder what is printed; no name needs them. The message leaves the text out:
        # it may be a patient's name.
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            raise InputError(
                option,
                f"expected printable characters; got U+{ord(char):04X} at position {position}",
            )
    return text


def _printable_characters(templates: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

    covered: frozenset[int] | None = None
    for name in FONT_FILES:
        try:
            with TTFont(templates / name, lazy=True) as font:
                codes = frozenset(font.getBestCmap())
        except OSError as exc:
            raise RenderError(f"cannot read the handout font templates/{name}: {exc}") from None
        covered = codes if covered is None else covered & codes
    return covered or frozenset()


def _qr_data_url(url: str) -> str:
    import segno

    code = segno.make(url, error="m", micro=False)
    # Dark on white whatever the brand: scanners need the strongest contrast.
    data_url: str = code.svg_data_uri(scale=4, border=2, dark="#000000", light="#ffffff")
    return data_url


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


class _LogCapture(logging.Filter):
    """Takes WeasyPrint's warnings and errors off the logger so they become one RenderError."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self.messages.append(f"{record.levelname.lower()}: {record.getMessage()}")
        return False


@contextlib.contextmanager
def _failing_on_logs(what: str) -> Iterator[None]:
    """Turn any WeasyPrint warning or error during the block into a RenderError.

    A filter on the logger, not a handler: the record is reported once, as the error the
    user sees, instead of also reaching the application's log.
    """
    logger = logging.getLogger("weasyprint")
    capture = _LogCapture()
    # Make sure warnings are produced even if the application raised the log level.
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    logger.addFilter(capture)
    try:
        yield
    finally:
        logger.removeFilter(capture)
        logger.setLevel(previous_level)
    if capture.messages:
        raise RenderError(f"{what}: WeasyPrint reported " + "; ".join(capture.messages))


@contextlib.contextmanager
def _refusals_as_errors(what: str) -> Iterator[None]:
    """Turn the fetcher's refusal (which WeasyPrint lets through to stop the render) into ours."""
    from weasyprint.urls import FatalURLFetchingError

    try:
        yield
    except FatalURLFetchingError as exc:
        raise RenderError(f"{what}: {exc}; nothing was written") from None


def _sync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder is synced; not all systems allow it.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
