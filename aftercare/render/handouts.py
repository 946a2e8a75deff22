"""Renders handouts to branded, tagged PDF/UA files through Jinja2 and a restricted WeasyPrint."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jinja2

from aftercare.content.model import Campaign, Handout, Project
from aftercare.content.values import ClockTime
from aftercare.dates import format_day
from aftercare.errors import InputError, MissingGlyphs, RenderError
from aftercare.plan.schedule import follow_ups, local_moment
from aftercare.render.card import PatientCard
from aftercare.render.page import bare_url, clinic_css, sources_address

if TYPE_CHECKING:
    from weasyprint import CSS
    from weasyprint.document import Document

# WeasyPrint (and the fetcher, which subclasses its classes) is imported inside the renderer
# only: importing it costs about half a second, and commands that render nothing, which
# import this module for PatientCard, must not pay for it.

# Lines to write on by hand: long enough for a name, and for a date such as "Tue 24 Nov".
BLANK = "_" * 22
DATE_BLANK = "_" * 12
PDF_VARIANT = "pdf/ua-1"
FONT_FILES = tuple(
    f"assets/fonts/AtkinsonHyperlegible-{face}.ttf"
    for face in ("Regular", "Italic", "Bold", "BoldItalic")
)
CALLOUT_LABELS = {"tip": "Tip", "warning": "Warning", "emergency": "Emergency"}
# One page of the headache diary: four weeks, the span a doctor compares before and after.
DIARY_DAYS = 28
_MIDNIGHT = ClockTime(0, 0)


@dataclass(frozen=True)
class DatedStep:
    """One of "Your next dates": a date (None leaves a line to write on) and a label."""

    date: dt.date | None
    label: str
    kind: Literal["email", "treatment"] = "email"


class HandoutRenderer:
    """Renders many handouts of one project; built once because fonts and CSS are costly to load.

    A campaign's handout is the checkout sheet (sheet.html): side 1 holds everything typed at
    the desk and the patient's own dates, side 2 the rest. So a personalised sheet is
    composed: side 2 comes from the unpersonalised sheet, laid out once per topic and kept
    (``_bodies``), and only side 1 is laid out per patient. WeasyPrint writes the structure
    tree of the tagged PDF page by page from the laid-out boxes, so ``Document.copy`` of pages
    from two layouts of the same template writes one valid tree. Whenever the shortcut cannot
    be exact (a side 1 that would not fit on one page), the whole handout is laid out instead.
    Every other topic (topic.html) has no personal details.

    Not safe to share between threads (WeasyPrint makes no such promise, and the log check
    listens to a process-wide logger): use one renderer per worker process.
    """

    def __init__(self, project: Project) -> None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        from aftercare.render.fetcher import RestrictedURLFetcher

        self.project = project
        self.templates = project.templates.resolve()
        self.fetcher = RestrictedURLFetcher(self.templates)
        self._base_url = self.templates.as_uri() + "/"
        self._environment = _environment(self.templates)
        self._templates = {
            kind: self._environment.get_template(f"handout/{kind}.html")
            for kind in ("sheet", "topic", "diary")
        }
        self._campaigns: dict[str, Campaign] = {
            campaign.handout: campaign for campaign in project.campaigns.values()
        }
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

        ``cover_only`` leaves out everything after side 1, for composing (see the class).
        """
        clinic = self.project.clinic
        campaign = self._campaign(handout, patient)
        if campaign is None:
            return self._templates["topic"].render(
                clinic=clinic, handout=handout, qr_code=self._qr_code,
                logo_url=f"assets/{clinic.logo}",
            )
        return self._templates["sheet"].render(
            clinic=clinic,
            handout=handout,
            patient=patient,
            follow_ups=self._dated_steps(campaign, patient),
            emails=patient is not None and patient.aftercare_consent,
            sources_url=sources_address(clinic, handout),
            logo_url=f"assets/{clinic.logo}",
            cover_only=cover_only,
        )

    def pdf(self, handout: Handout, patient: PatientCard | None) -> bytes:
        """The handout as a tagged PDF; raises InputError or RenderError, never half a file."""
        what = handout.id or handout.title
        if patient is None:
            # Rendered once (pipeline build): laying out and caching a body to compose with
            # would only add work.
            return self.pdf_from_html(self.html(handout, None), what)
        self._campaign(handout, patient)
        self._check_printable(patient)
        body = self._body(handout, what)
        if body is None:
            return self.pdf_from_html(self.html(handout, patient), what)
        # Side 1 alone, its footer counting the pages of the whole handout.
        cover = self._layout(
            self.html(handout, patient, cover_only=True), what, self._cover_footer(len(body.pages))
        )
        if len(cover.pages) != 1:
            # A side 1 that does not fit (not expected within the field limits): lay out
            # the whole handout rather than cut anything.
            return self.pdf_from_html(self.html(handout, patient), what)
        return self._write(body.copy([cover.pages[0], *body.pages[1:]]), what)

    def diary_pdf(self, patient: PatientCard | None) -> bytes:
        """The one-page headache diary: four weeks from the treatment day, or blank dates."""
        if patient is not None:
            self._check_printable(patient)
        start = None if patient is None else patient.treated_on
        days = [None if start is None else start + dt.timedelta(days=i)
                for i in range(DIARY_DAYS)]
        clinic = self.project.clinic
        html = self._templates["diary"].render(
            clinic=clinic, patient=patient, days=days, logo_url=f"assets/{clinic.logo}"
        )
        return self.pdf_from_html(html, "the headache diary")

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

    def _campaign(self, handout: Handout, patient: PatientCard | None) -> Campaign | None:
        """The campaign whose checkout sheet this is; a topic cannot be personalised."""
        campaign = self._campaigns.get(handout.id)
        if campaign is None and patient is not None:
            sheets = " or ".join(sorted(self._campaigns)) or "none in this project"
            raise InputError(
                "topic",
                f"expected a checkout handout ({sheets}); got {handout.id!r}, a topic "
                "without personal details (`pipeline build` prints it)",
            )
        return campaign

    def _dated_steps(
        self, campaign: Campaign, patient: PatientCard | None
    ) -> tuple[DatedStep, ...]:
        if patient is None:
            # A blank copy may go to a patient who gets no email: it promises none, and
            # leaves a line to write the next treatment date on.
            return (DatedStep(None, campaign.next_treatment_label, "treatment"),)
        clinic = self.project.clinic
        planned_at = patient.planned_at or local_moment(
            patient.treated_on, _MIDNIGHT, clinic.timezone.zone
        )
        dated = follow_ups(
            clinic, campaign, patient.treated_on, planned_at,
            aftercare_consent=patient.aftercare_consent,
            reminder_consent=patient.reminder_consent,
        )
        return tuple(DatedStep(step.local_date, step.label, step.kind) for step in dated)

    def _check_printable(self, patient: PatientCard) -> None:
        # A character missing from the bundled font would silently come from some system
        # font (or print as a box), so the desk hears about it instead.
        for field, text in patient.typed().items():
            missing = sorted({c for c in text or "" if ord(c) not in self._printable})
            if missing:
                raise MissingGlyphs(field, tuple(missing))


def _environment(templates: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["short_date"] = lambda day: format_day(day, "short")
    environment.filters["long_date"] = lambda day: format_day(day, "long")
    environment.filters["full_date"] = lambda day: format_day(day, "full")
    environment.filters["bare_url"] = bare_url
    environment.globals["blank"] = BLANK
    environment.globals["date_blank"] = DATE_BLANK
    environment.globals["callout_labels"] = CALLOUT_LABELS
    return environment


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
