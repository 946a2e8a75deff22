"""Renders handouts to branded, tagged PDF/UA files, in the handout's language, through Jinja2 and
a restricted WeasyPrint."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aftercare.content.model import Campaign, Handout, Project
from aftercare.content.values import ClockTime
from aftercare.errors import InputError, MissingGlyphs, RenderError
from aftercare.plan.schedule import follow_ups, local_moment
from aftercare.render.card import PatientCard
from aftercare.render.localised import HandoutLanguage, footer_css, handout_language
from aftercare.render.page import clinic_css, sources_address
from aftercare.render.weasy import (
    failing_on_logs,
    page_languages,
    printable_characters,
    qr_data_url,
    refusals_as_errors,
)

if TYPE_CHECKING:
    from weasyprint import CSS
    from weasyprint.document import Document, Page

# WeasyPrint (and the fetcher, which subclasses its classes) is imported inside the renderer
# only: importing it costs about half a second, and commands that render nothing, which
# import this module for PatientCard, must not pay for it.

PDF_VARIANT = "pdf/ua-1"
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
    """Renders many handouts of one project, in each of its languages; built once because fonts
    and CSS are costly to load.

    A campaign's handout is the checkout sheet (sheet.html): side 1 holds everything typed at
    the desk and the patient's own dates, side 2 the rest. So a personalised sheet is
    composed: side 2 comes from the unpersonalised sheet, laid out once per topic and language
    and kept (``_bodies``), and only side 1 is laid out per patient. WeasyPrint writes the
    structure tree of the tagged PDF page by page from the laid-out boxes, so
    ``Document.copy`` of pages from two layouts of the same template writes one valid tree.
    Whenever the shortcut cannot be exact (a side 1 that would not fit on one page), the whole
    handout is laid out instead. Every other topic (topic.html) has no personal details.

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
        self._fonts = FontConfiguration()
        self._printable = printable_characters(self.templates)
        self._qr_code = qr_data_url(project.clinic.booking_url)
        self._languages: dict[str, HandoutLanguage] = {}
        # Per topic and language: the unpersonalised HTML the pages were laid out from (a
        # changed handout never reuses them) and its laid-out document, or None when page 1
        # is not one page.
        self._bodies: dict[tuple[str, str], tuple[str, Document | None]] = {}
        self._css: dict[tuple[str, int | None], CSS] = {}
        with failing_on_logs("the handout stylesheets"), refusals_as_errors("the stylesheets"):
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
        """The handout as HTML, in its language; what staff typed is escaped, so it prints as
        typed. ``cover_only`` leaves out everything after side 1, for composing (see the class).
        """
        lang = self._language(self.project.language_of(handout))
        clinic = lang.project.clinic
        campaign = self._campaign(lang, handout, patient)
        if campaign is None:
            return lang.templates["topic"].render(
                clinic=clinic, handout=handout, qr_code=self._qr_code,
                logo_url=f"assets/{clinic.logo}",
            )
        return lang.templates["sheet"].render(
            clinic=clinic,
            handout=handout,
            patient=patient,
            follow_ups=self._dated_steps(lang, campaign, patient),
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
            return self.pdf_from_html(self.html(handout, None), what, self._code(handout))
        return self.pdf_sheets([handout], patient)

    def pdf_sheets(self, handouts: Sequence[Handout], patient: PatientCard) -> bytes:
        """One patient's checkout handout in several languages, one after another in one PDF
        (each on its own sheet), marked with the language of each page."""
        if not handouts:
            raise InputError("language", "expected at least one handout to print")
        self._check_printable(patient)
        pages: list[Page] = []
        languages: list[tuple[int, str]] = []
        first: Document | None = None
        for handout in handouts:
            lang = self._language(self.project.language_of(handout))
            self._campaign(lang, handout, patient)
            document, own = self._sheet_pages(handout, patient)
            first = first or document
            languages.append((len(pages), lang.project.clinic.locale))
            pages += own
        assert first is not None
        finisher = page_languages(languages[1:]) if len(languages) > 1 else None
        return self._write(first.copy(pages), handouts[0].id or handouts[0].title, finisher)

    def diary_pdf(self, patient: PatientCard | None, language: str | None = None) -> bytes:
        """The one-page headache diary: four weeks from the treatment day, or blank dates."""
        if patient is not None:
            self._check_printable(patient)
        code = language or self.project.clinic.language
        lang = self._language(code)
        start = None if patient is None else patient.treated_on
        days = [None if start is None else start + dt.timedelta(days=i)
                for i in range(DIARY_DAYS)]
        clinic = lang.project.clinic
        html = lang.templates["diary"].render(
            clinic=clinic, patient=patient, days=days, logo_url=f"assets/{clinic.logo}"
        )
        return self.pdf_from_html(html, "the headache diary", code)

    def pdf_from_html(self, html: str, what: str = "the handout", language: str | None = None,
                      ) -> bytes:
        """Any HTML through the same fonts, styles and fetcher; fails on any refusal or warning.
        ``language`` (default: the clinic's) words the page footer."""
        code = language or self.project.clinic.language
        return self._write(self._layout(html, what, code), what)

    def _sheet_pages(self, handout: Handout, patient: PatientCard) -> tuple[Document, list[Page]]:
        """A personal checkout handout's pages: side 1 laid out for the patient, the rest kept."""
        what, code = handout.id or handout.title, self._code(handout)
        body = self._body(handout, what)
        if body is not None:
            # Side 1 alone, its footer counting the pages of the whole handout.
            cover = self._layout(self.html(handout, patient, cover_only=True), what, code,
                                 len(body.pages))
            if len(cover.pages) == 1:
                return body, [cover.pages[0], *body.pages[1:]]
        # A side 1 that does not fit (not expected within the field limits): lay out the
        # whole handout rather than cut anything.
        whole = self._layout(self.html(handout, patient), what, code)
        return whole, list(whole.pages)

    def _body(self, handout: Handout, what: str) -> Document | None:
        """The unpersonalised handout laid out once, if its page 1 is exactly the cover."""
        html = self.html(handout, None)
        code = self._code(handout)
        key = (handout.id or handout.title, code)
        cached = self._bodies.get(key)
        if cached is not None and cached[0] == html:
            return cached[1]
        body: Document | None = self._layout(html, what, code)
        blank_cover = self._layout(self.html(handout, None, cover_only=True), what, code)
        if len(blank_cover.pages) != 1 or body is None or len(body.pages) < 2:
            body = None
        self._bodies[key] = (html, body)
        return body

    def _footer(self, code: str, pages: int | None) -> CSS:
        """The page footer in the language: "Page 1 of 2", the total counted or given."""
        from weasyprint import CSS

        sheet = self._css.get((code, pages))
        if sheet is None:
            wording = self._language(code).translator.gettext("Page %(page)s of %(pages)s")
            sheet = CSS(string=footer_css(wording, pages), font_config=self._fonts)
            self._css[(code, pages)] = sheet
        return sheet

    def _layout(self, html: str, what: str, code: str, pages: int | None = None) -> Document:
        from weasyprint import HTML

        with self._errors_named(what):
            document = HTML(string=html, base_url=self._base_url, url_fetcher=self.fetcher)
            return document.render(
                stylesheets=[*self._stylesheets, self._footer(code, pages)],
                font_config=self._fonts,
                pdf_variant=PDF_VARIANT,
            )

    def _write(self, document: Document, what: str, finisher: object = None) -> bytes:
        with self._errors_named(what):
            pdf: bytes = document.write_pdf(pdf_variant=PDF_VARIANT, finisher=finisher)
        return pdf

    @contextlib.contextmanager
    def _errors_named(self, what: str) -> Iterator[None]:
        """Fail on any refusal or WeasyPrint warning, as one RenderError naming ``what``."""
        refused_before = len(self.fetcher.refusals)
        try:
            with refusals_as_errors(what), failing_on_logs(what):
                yield
        except RenderError:
            # Inside SVG drawings WeasyPrint turns our refusal into a vague logged error;
            # name the refused resource instead, as for refusals anywhere else.
            refusals = self.fetcher.refusals[refused_before:]
            if refusals:
                raise RenderError(f"{what}: {refusals[0]}; nothing was written") from None
            raise

    def _code(self, handout: Handout) -> str:
        return self.project.language_of(handout)

    def _language(self, code: str) -> HandoutLanguage:
        found = self._languages.get(code)
        if found is None:
            found = self._languages[code] = handout_language(self.project, self.templates, code)
        return found

    def _campaign(
        self, lang: HandoutLanguage, handout: Handout, patient: PatientCard | None
    ) -> Campaign | None:
        """The campaign whose checkout sheet this is; a topic cannot be personalised."""
        campaign = lang.campaigns.get(handout.id)
        if campaign is None and patient is not None:
            sheets = " or ".join(sorted(lang.campaigns)) or "none in this project"
            raise InputError(
                "topic",
                f"expected a checkout handout ({sheets}); got {handout.id!r}, a topic "
                "without personal details (`pipeline build` prints it)",
            )
        return campaign

    def _dated_steps(
        self, lang: HandoutLanguage, campaign: Campaign, patient: PatientCard | None
    ) -> tuple[DatedStep, ...]:
        if patient is None:
            # A blank copy may go to a patient who gets no email: it promises none, and
            # leaves a line to write the next treatment date on.
            return (DatedStep(None, campaign.next_treatment_label, "treatment"),)
        clinic = lang.project.clinic
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
