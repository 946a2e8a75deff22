"""The lock-screen rule: subjects, previews and calendar entries, in every language, name no
treatment, condition or medicine (accents and case aside)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterator, Sequence

from aftercare.check.findings import Finding
from aftercare.content.model import Campaign, Project
from aftercare.errors import Problem

# Shown on lock screens, notification previews and shared calendars, so a subject must not say
# what the patient was treated for. Whole words, any case, with or without accents; plurals
# and possessives match too. Every list applies to every language: brand names are the same
# everywhere, and an English word in a Spanish subject (or the reverse) is no safer.
PRIVATE_WORDS: tuple[str, ...] = (
    "botox", "onabotulinumtoxina", "botulinum", "toxin", "neurotoxin",
    "dysport", "xeomin", "jeuveau", "daxxify", "letybo",
    "filler", "fillers", "injection", "injections", "injectable", "injectables", "jab",
    "migraine", "migraines", "headache", "headaches",
    "wrinkle", "wrinkles", "frown lines", "crow's feet", "forehead lines",
    "ptosis", "botulism", "aesthetic", "cosmetic", "anti-wrinkle",
)
# The same in Spanish: treatments and medicines, conditions, the areas treated, the common
# words for a shot. Written with their accents; matched with or without them.
SPANISH_PRIVATE_WORDS: tuple[str, ...] = (
    "bótox", "toxina", "toxina botulínica", "botulínica", "botulínico", "neurotoxina",
    "inyección", "inyecciones", "inyectable", "inyectables", "pinchazo", "pinchazos",
    "relleno", "rellenos",
    "migraña", "migrañas", "jaqueca", "jaquecas", "cefalea", "cefaleas",
    "dolor de cabeza", "dolores de cabeza",
    "arruga", "arrugas", "antiarrugas", "líneas de expresión", "patas de gallo",
    "entrecejo", "líneas de la frente",
    "ptosis", "botulismo", "estético", "estética", "estéticos", "estéticas",
    "cosmético", "cosmética", "cosméticos", "cosméticas",
)
_LOCK_SCREEN = (
    "subjects and previews show on lock screens, "
    "so they must not name a treatment, condition or medicine"
)


def check_private_subjects(project: Project, today: dt.date) -> Iterator[Finding]:
    """Subjects, previews and calendar entries must not name a treatment, condition or
    medicine, in any language (the calendar entry as shown, the clinic's name in place)."""
    pattern = private_pattern(project.clinic.email.privacy_words)
    campaigns: list[tuple[str, Campaign]] = [
        (f"campaigns/{campaign_id}.yaml", campaign)
        for campaign_id, campaign in sorted(project.campaigns.items())]
    for code, local in sorted(project.translations.items()):
        campaigns += [(f"campaigns/{code}/{campaign_id}.yaml", campaign)
                      for campaign_id, campaign in sorted(local.campaigns.items())]
    for file, campaign in campaigns:
        translated = campaign.translation is not None
        # step.label is printed on the handout, never shown on a lock screen: not checked.
        for index, step in enumerate(campaign.steps):
            where = f"steps.{step.key}" if translated else f"steps[{index}]"
            shown = {"subject": step.subject, "preheader": step.preheader}
            if step.calendar is not None:
                entry = step.calendar.filled(project.clinic.name)
                shown["calendar.summary"] = entry.summary
                shown["calendar.description"] = entry.description
            for key, text in shown.items():
                named = named_words(pattern, text)
                if named:
                    path = f"{where}.{key}"
                    yield Finding("error", Problem(
                        file, project.line_of(file, path), path,
                        f"names {_quoted_list(named)}; {_LOCK_SCREEN}"))


def fold(text: str) -> str:
    """Text without accents and in lower case ("Migraña" -> "migrana"), the same length."""
    stripped = "".join(c for c in unicodedata.normalize("NFD", text)
                       if not unicodedata.combining(c))
    # Letters such as "ß" decompose to more than one; keep positions by falling back.
    return stripped.casefold() if len(stripped) == len(text) else text.casefold()


@functools.lru_cache(maxsize=8)
def private_pattern(extra: tuple[str, ...]) -> re.Pattern[str]:
    """The words no lock-screen text may hold, as one pattern over folded text."""
    words = (*PRIVATE_WORDS, *SPANISH_PRIVATE_WORDS, *extra)
    terms = {" ".join(fold(w).split()) for w in words if w.strip()}
    # Longest first, so "anti-wrinkle" is reported as itself rather than as "wrinkle".
    alternatives = "|".join(_term_pattern(t) for t in sorted(terms, key=lambda t: (-len(t), t)))
    suffix = r"(?:['’]s|s['’]?|es)?"
    # A hyphen or quote is a word boundary: "Botox-free" and "'migraine'" are still named.
    return re.compile(rf"(?<!\w)(?:{alternatives}){suffix}(?!\w)")


def named_words(pattern: re.Pattern[str], text: str) -> list[str]:
    """The private words ``text`` holds, as written there, each once."""
    folded = fold(text)
    found: dict[str, str] = {}
    for match in pattern.finditer(folded):
        written = text[match.start():match.end()] if len(folded) == len(text) else match[0]
        found.setdefault(match.group(0), written)
    return list(found.values())


def _term_pattern(term: str) -> str:
    # Any run of spaces between words; straight or curly apostrophe, or none ("crows feet").
    words = [re.escape(w) for w in term.split(" ")]
    return r"\s+".join(words).replace("'", "['’]?")


def _quoted_list(items: Sequence[str]) -> str:
    quoted = [f"'{item}'" for item in items]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
