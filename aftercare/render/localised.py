"""A printed page's words in one language: the handout templates with that language's sentences,
dates and campaign labels, and the page footer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from aftercare.content.model import Campaign, Project
from aftercare.dates import format_day
from aftercare.render.i18n import EXTENSIONS, Translator, install, translator
from aftercare.render.page import bare_url

# Lines to write on by hand: long enough for a name, and for a date such as "Tue 24 Nov".
BLANK = "_" * 22
DATE_BLANK = "_" * 12
TEMPLATES = ("sheet", "topic", "diary")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class HandoutLanguage:
    """One language's templates, sentences and content, for the handout renderer."""

    project: Project                       # as the language's readers see it
    translator: Translator
    templates: Mapping[str, jinja2.Template]
    campaigns: Mapping[str, Campaign]      # by the handout each sends home from the desk


def handout_language(project: Project, templates: Path, code: str) -> HandoutLanguage:
    """The handout templates of ``project`` in ``code``; RenderError for a language it lacks."""
    translate = translator(project, code)
    local = project.in_language(code)
    environment = install(_environment(templates, code), translate)
    environment.globals["source_language"] = language_name(project.clinic.language, code)
    return HandoutLanguage(
        project=local,
        translator=translate,
        templates={kind: environment.get_template(f"handout/{kind}.html") for kind in TEMPLATES},
        campaigns={c.handout: c for c in local.campaigns.values()},
    )


def language_name(language: str, in_language: str) -> str:
    """A language's name as a reader of ``in_language`` writes it mid-sentence: "inglés"."""
    from babel import Locale

    name: str = Locale.parse(language).get_display_name(in_language.replace("-", "_")) or language
    return name


def footer_css(wording: str, pages: int | None) -> str:
    """The page footer rule for "Page %(page)s of %(pages)s" in some language: the page counter,
    and the total counted (None) or fixed (a side 1 laid out alone, counting the whole)."""
    total = "counter(pages)" if pages is None else _css_string(str(pages))
    values = {"page": "counter(page)", "pages": total}
    parts = []
    position = 0
    for match in _PLACEHOLDER.finditer(wording):
        parts.append(_css_string(wording[position:match.start()]))
        parts.append(values.get(match.group(1), '""'))
        position = match.end()
    parts.append(_css_string(wording[position:]))
    content = " ".join(p for p in parts if p != '""')
    return f"@page {{ @bottom-right {{ content: {content}; }} }}"


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _environment(templates: Path, code: str) -> jinja2.Environment:
    environment = jinja2.Environment(
        extensions=EXTENSIONS,
        loader=jinja2.FileSystemLoader(templates),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["short_date"] = lambda day: format_day(day, "short", code)
    environment.filters["long_date"] = lambda day: format_day(day, "long", code)
    environment.filters["full_date"] = lambda day: format_day(day, "full", code)
    environment.filters["bare_url"] = bare_url
    # A phone number or an address inside a sentence: kept whole, in its own style.
    environment.filters["number"] = lambda text: Markup('<span class="number">{}</span>').format(
        text)
    environment.filters["url"] = lambda text: Markup('<span class="url">{}</span>').format(text)
    environment.globals["blank"] = BLANK
    environment.globals["date_blank"] = DATE_BLANK
    return environment
