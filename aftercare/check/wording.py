"""Finds the email templates' own sentences: each step's plain text for the sample patient, less
what it quotes from a handout or clinic.yaml, each sentence traced to the template that wrote it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.meta

from aftercare.check.readability import section_text, split_sentences, words_of
from aftercare.content.model import Clinic, ContentMode, Handout, Project
from aftercare.errors import PipelineError, Problem
from aftercare.render.emails import EmailRenderer, step_template
from aftercare.render.previews import PREVIEW_KEY, preview_recipient

_RULE = re.compile(r"[-=_*]{3,}")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# A value a _("...") sentence takes ("%(phone)s"): a gap in the literal text, like {{ x }}.
_PLACEHOLDER = re.compile(r"%\(\w+\)s")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+\.)\s+")


@dataclass(frozen=True)
class OwnSentence:
    """A sentence an email template wrote itself, where it was written."""

    file: str                  # "templates/email/_macros.txt"
    line: int | None           # None when no literal text of the template starts it
    text: str


@dataclass(frozen=True)
class _Piece:
    """A run of literal text in a template (between tags, or a quoted string in a tag)."""

    file: str
    line: int
    text: str


def own_sentences(
    project: Project, language: str | None = None
) -> tuple[list[OwnSentence], list[Problem]]:
    """Every distinct own sentence of the templates the campaigns use, in ``language`` (the
    clinic's own by default), in the order first met.

    A step that cannot be rendered for the sample patient is a problem naming its template.
    A campaign a language lacks parts of is left out here (check_untranslated names them).
    """
    code = language or project.clinic.language
    local = project.in_language(code)
    folder = "" if code == project.clinic.language else f"{code}/"
    renderer = EmailRenderer(project, PREVIEW_KEY)
    recipient = preview_recipient(project, code)
    quoted = _quoted(local)
    dropped = _clinic_lines(local.clinic)
    shared = _catalog_pieces(project, code)
    found: dict[tuple[str, int | None, str], OwnSentence] = {}
    problems: list[Problem] = []
    for campaign_id, campaign in sorted(project.campaigns.items()):
        translation = project.translations.get(code)
        if translation is not None and translation.missing_for(campaign):
            continue
        # A minimal campaign's full content is still read, on its care page.
        modes: list[ContentMode] = ["full"]
        if project.content_of(campaign) == "minimal":
            modes.append("minimal")
        for step, mode in [(step, mode) for step in campaign.steps for mode in modes]:
            template = f"{step_template(step, mode, folder)}.txt"
            file = f"templates/email/{template}"
            try:
                text = renderer.render(campaign, step, recipient, mode).text
            except (PipelineError, jinja2.TemplateError) as exc:
                problems.append(Problem(
                    file, None, "",
                    f"cannot render campaigns/{campaign_id}.yaml step {step.key} "
                    f"for the sample patient{f' in {code}' if folder else ''}: {exc}",
                ))
                continue
            pieces = _pieces(project.templates / "email", template)
            for unit in _units(text, dropped):
                for sentence in split_sentences(unit):
                    if _key(sentence) in quoted:
                        continue
                    own = _trace(sentence, pieces + shared, file)
                    found.setdefault((own.file, own.line, own.text), own)
    return list(found.values()), problems


def _catalog_pieces(project: Project, code: str) -> list[_Piece]:
    """The shared sentences in a further language, as literal text of templates/i18n/<code>."""
    local = project.translations.get(code)
    if local is None:
        return []
    file = f"templates/i18n/{code}.yaml"
    return [_Piece(file, project.line_of(file, f"strings.{key}") or 0, chunk)
            for key, value in local.strings.items() for chunk in _PLACEHOLDER.split(value)]


# ---------------------------------------------------------------- what is quoted


def _quoted(project: Project) -> set[str]:
    """Every sentence of every handout, as compared: a template that quotes it adds no wording."""
    keys: set[str] = set()
    for handout in project.handouts.values():
        for unit in _handout_units(handout):
            keys.update(_key(sentence) for sentence in split_sentences(unit))
    return keys


def _handout_units(handout: Handout) -> Iterator[str]:
    yield handout.title
    yield handout.summary
    for section in handout.sections:
        yield section.heading
        yield from section_text(section)
    yield from handout.call_clinic_if
    yield from handout.emergency_if


def _clinic_lines(clinic: Clinic) -> set[str]:
    """Lines printed straight from clinic.yaml (the name, the address): the clinic's, not ours."""
    values = [clinic.name, clinic.phone, clinic.urgent_line, clinic.hours, clinic.website,
              clinic.booking_url, *clinic.address]
    return {" ".join(v.split()).casefold() for v in values}


def _key(sentence: str) -> str:
    return " ".join(words_of(sentence)).casefold()


# ---------------------------------------------------------------- reading the plain text


def _units(text: str, dropped: set[str]) -> list[str]:
    """Paragraphs, list items, headings and shouted titles of a plain-text email, each whole."""
    units: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            units.append(" ".join(current))
            current.clear()

    lines = text.splitlines()
    for index, raw in enumerate(lines):
        line = " ".join(raw.split())
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if not line or _RULE.fullmatch(line) or line.casefold() in dropped:
            flush()
        elif _RULE.fullmatch(following) or (line.isupper() and not _LIST_ITEM.match(raw)):
            # A heading (underlined) or a title in capitals stands alone: it has no full stop.
            flush()
            units.append(line)
        else:
            if _LIST_ITEM.match(raw):
                flush()
                line = _LIST_ITEM.sub("", line, count=1)
            current.append(line)
            if line.endswith(":"):
                flush()  # "Book a visit:" introduces a link or a list; it ends there
    flush()
    return units


# ---------------------------------------------------------------- tracing to the template


def _pieces(folder: Path, name: str) -> list[_Piece]:
    """Literal text of the template and of every template it extends, imports or includes."""
    # Only lexed, never rendered: escaping does not apply, but say so rather than leave it off.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True)
    pieces: list[_Piece] = []
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            source, _, _ = env.loader.get_source(env, current)  # type: ignore[union-attr]
            referenced = jinja2.meta.find_referenced_templates(env.parse(source))
        except jinja2.TemplateError:
            continue  # rendering reports it; tracing does without this file
        file = f"templates/email/{current}"
        pieces += [
            _Piece(file, line, chunk)
            for line, kind, value in env.lex(source)
            if kind in ("data", "string")
            for chunk in _PLACEHOLDER.split(value)
        ]
        pending += sorted(r for r in referenced if r is not None)
    return pieces


def _trace(sentence: str, pieces: list[_Piece], fallback: str) -> OwnSentence:
    """Where the sentence was written: the piece of literal text that starts it and follows it
    furthest (across the variables printed inside it); the step's own template first on a tie.
    A sentence no literal text starts (a variable alone) is laid at the step's template.
    """
    wanted = [w.casefold() for w in words_of(sentence)]
    best: tuple[int, bool, str, int | None] = (0, False, fallback, None)
    for index, piece in enumerate(pieces):
        for start, (word, line) in enumerate(_words(piece)):
            if word == wanted[0]:
                # Between equals, text that starts a piece ("Book a visit" as a macro's
                # argument) beats the same words inside a longer one (a title).
                score = (_follow(wanted, pieces, index, start), start == 0)
                if score > best[:2]:
                    best = (*score, piece.file, line)
    return OwnSentence(best[2], best[3], sentence)


# A variable printed inside a sentence (a clinic name, a date) is at most this many words.
_VARIABLE_WORDS = 6


def _follow(wanted: list[str], pieces: list[_Piece], index: int, start: int) -> int:
    """How many of the sentence's words the template holds from here, in order."""
    words = [w for w, _ in _words(pieces[index])]
    matched, at, pos = 0, 0, start
    while True:
        while pos < len(words) and at < len(wanted) and words[pos] == wanted[at]:
            matched, at, pos = matched + 1, at + 1, pos + 1
        if at == len(wanted) or pos < len(words):
            return matched  # the sentence ends, or the template says something else here
        # This piece ends mid-sentence: a variable is printed, then the next piece goes on.
        index += 1
        if index == len(pieces) or pieces[index].file != pieces[index - 1].file:
            return matched
        words, pos = [w for w, _ in _words(pieces[index])], 0
        if words:
            ahead = wanted[at : at + _VARIABLE_WORDS + 1]
            if words[0] not in ahead:
                return matched
            at += ahead.index(words[0])


def _words(piece: _Piece) -> list[tuple[str, int]]:
    """The piece's words, each with the template line it is on."""
    return [
        (match.group(0).casefold(), piece.line + piece.text.count("\n", 0, match.start()))
        for match in _WORD.finditer(piece.text)
    ]
