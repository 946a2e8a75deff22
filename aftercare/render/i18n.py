"""The shared templates' fixed sentences in the reader's language: one gettext for Jinja and Python.

Shared templates (the email frame, the handout frame and boxes, the patients' web pages) write
each sentence once, in the clinic's own language, as ``_("Call us at %(phone)s ...",
phone=...)``; templates/i18n/<language>.yaml gives each sentence in another language. A
sentence without its translation is an error, never the English shown by surprise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from aftercare.content.model import Project
from aftercare.errors import RenderError

EXTENSIONS = ("jinja2.ext.i18n",)


class MissingTranslation(RenderError):
    """A shared sentence has no translation in templates/i18n/<language>.yaml."""

    def __init__(self, language: str, message: str) -> None:
        self.language = language
        self.message = message
        super().__init__(f"templates/i18n/{language}.yaml: expected a translation of "
                         f"{message!r}; there is none (nothing was rendered)")


@dataclass(frozen=True)
class Translator:
    """The sentences of one language; ``strings`` None is the clinic's own language."""

    language: str
    strings: Mapping[str, str] | None = None

    def gettext(self, message: str) -> str:
        if self.strings is None:
            return message
        translated = self.strings.get(message)
        if translated is None:
            raise MissingTranslation(self.language, message)
        return translated

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.gettext(singular if count == 1 else plural)

    def format(self, message: str, **values: object) -> str:
        """A sentence for Python code (a file name, a page footer), its values filled in."""
        return self.gettext(message) % values


def translator(project: Project, language: str) -> Translator:
    """The translator for ``language``; RenderError if the project has no such language."""
    if language == project.clinic.language:
        return Translator(language)
    found = project.translations.get(language)
    if found is None:
        known = ", ".join(project.languages)
        raise RenderError(f"no content in language {language!r}; the project has {known}")
    return Translator(language, found.strings)


def install(environment: jinja2.Environment, translate: Translator) -> jinja2.Environment:
    """Give the environment's templates ``_()`` in the translator's language.

    New-style gettext: every message is %-formatted with its keyword values, which are escaped
    in HTML templates (so a patient's name can never become markup).
    """
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        translate.gettext, translate.ngettext, newstyle=True)
    return environment


def by_context(translators: Mapping[str, Translator], default: str) -> tuple[Any, Any]:
    """gettext and ngettext for an environment shared by several languages (the web pages):
    each render's ``lang`` variable picks the translator (``default`` without one)."""

    def pick(context: jinja2.runtime.Context) -> Translator:
        return translators.get(context.get("lang") or default) or translators[default]

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str) -> str:
        return pick(context).gettext(message)

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
        return pick(context).ngettext(singular, plural, count)

    return gettext, ngettext


# Sentences the code itself writes for patients (the handout footer, the calendar file names),
# for `pipeline check` to find beside the templates' own.
CODE_MESSAGES = ("Page %(page)s of %(pages)s", "next-visit.ics", "check-in.ics")
# The folders under templates/ whose templates write _("...") sentences.
MESSAGE_FOLDERS = ("email", "handout", "staff")


def template_messages(templates: Path) -> dict[str, tuple[str, int]]:
    """Every sentence the templates write with _(), each with where it is first written
    ("templates/handout/macros.html", line)."""
    # Only parsed, never rendered: escaping does not apply, but say so rather than leave it off.
    environment = jinja2.Environment(extensions=EXTENSIONS, autoescape=True)
    found: dict[str, tuple[str, int]] = {}
    for folder in MESSAGE_FOLDERS:
        for path in sorted((templates / folder).rglob("*")):
            if path.suffix not in (".html", ".txt") or not path.is_file():
                continue
            name = f"templates/{path.relative_to(templates).as_posix()}"
            source = path.read_text(encoding="utf-8")
            extracted = environment.extract_translations(source)  # type: ignore[attr-defined]
            for line, _function, message in extracted:
                text = message[0] if isinstance(message, tuple) else message
                if isinstance(text, str):
                    found.setdefault(text, (name, line))
    return found
