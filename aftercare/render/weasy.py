"""What wraps WeasyPrint: its warnings and the fetcher's refusals as one RenderError, the bundled
fonts' characters, the booking QR code, and the language of each page of a tagged PDF."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aftercare.errors import RenderError

FONT_FILES = tuple(
    f"assets/fonts/AtkinsonHyperlegible-{face}.ttf"
    for face in ("Regular", "Italic", "Bold", "BoldItalic")
)


def printable_characters(templates: Path) -> frozenset[int]:
    """The characters every face of the bundled font can print (a character missing from one
    would come from some system font, or print as a box)."""
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


def qr_data_url(url: str) -> str:
    """The address as a QR code, an SVG data: URL (the fetcher allows only those and templates/)."""
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
def failing_on_logs(what: str) -> Iterator[None]:
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
def refusals_as_errors(what: str) -> Iterator[None]:
    """Turn the fetcher's refusal (which WeasyPrint lets through to stop the render) into ours."""
    from weasyprint.urls import FatalURLFetchingError

    try:
        yield
    except FatalURLFetchingError as exc:
        raise RenderError(f"{what}: {exc}; nothing was written") from None


def page_languages(languages: Sequence[tuple[int, str]]) -> Any:
    """A ``write_pdf`` finisher marking the language of the pages that differ from the
    document's: ``languages`` holds (first page index, language tag) for each such run, to
    the end of the document or the next run. WeasyPrint writes one /Lang, for the document;
    a bilingual handout's second sheet needs its own on every structure element of its pages.
    """
    import pydyf

    def finish(document: Any, pdf: Any) -> None:
        pages = pdf.page_references
        tags: dict[str, str] = {}
        for position, (first, tag) in enumerate(languages):
            last = languages[position + 1][0] if position + 1 < len(languages) else len(pages)
            tags.update({str(pages[index]): tag for index in range(first, last)})
        for item in pdf.objects:
            if isinstance(item, pydyf.Dictionary) and item.get("Type") == "/StructElem":
                language = tags.get(str(item.get("Pg")))
                if language is not None:
                    item["Lang"] = pydyf.String(language)

    return finish
