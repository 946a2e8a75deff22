"""Flesch-Kincaid reading grade of handout text, offline and deterministic."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyphen

from aftercare.content import Section

# Numbers are not words: "1 to 2 weeks" is two words. Apostrophes (straight or curly) join
# contractions and possessives into one word; a hyphen splits ("life-threatening" is two).
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_SENTENCE_END = re.compile(r"[.!?]+")
# Closing marks that may follow the end punctuation of a unit: 'Call us (any time).'
_CLOSERS = " \t\n\"'”’)]"
_VOWELS = re.compile(r"[aeiouy]+")
_SILENT_ENDING = re.compile(r"(?:[^aeiouysxzcg]|[^s]h)es$|(?:[^aeiouytd])ed$")


@dataclass(frozen=True)
class Counts:
    """What the Flesch-Kincaid formula reads from a text: words, sentences and syllables."""

    words: int
    sentences: int
    syllables: int

    @property
    def grade(self) -> float:
        """The Flesch-Kincaid grade level; 0.0 for text without words."""
        if self.words == 0:
            return 0.0
        return (
            0.39 * self.words / self.sentences
            + 11.8 * self.syllables / self.words
            - 15.59
        )


def grade(sentences: Sequence[str]) -> float:
    """The Flesch-Kincaid grade of sentence-like units (paragraphs, list items, titles)."""
    return measure(sentences).grade


def measure(sentences: Sequence[str]) -> Counts:
    """Count words, sentences and syllables; each unit ends a sentence even without a full stop."""
    words: list[str] = []
    ends = 0
    for unit in sentences:
        unit_words = _WORD.findall(unit)
        if not unit_words:
            continue  # a bare number or symbol adds nothing to read
        words += unit_words
        # A list item is a sentence even when it is written without a full stop.
        text = unit if unit.rstrip(_CLOSERS).endswith((".", "!", "?")) else unit + "."
        ends += len(_SENTENCE_END.findall(text))
    return Counts(len(words), max(ends, 1), sum(syllables(w) for w in words))


@functools.lru_cache(maxsize=4096)
def syllables(word: str) -> int:
    """Syllables in one word: the larger of two estimates, so hard words are not missed.

    Pyphen's hyphenation points undercount (it never splits "medicine"), and a vowel-group
    count overcounts a few words; a plain-language check should err on the strict side.
    """
    lowered = word.lower().replace("’", "'")
    positions: list[Any] = _dictionary().positions(lowered)
    return max(len(positions) + 1, _vowel_groups(lowered.split("'")[0]), 1)


def _vowel_groups(word: str) -> int:
    count = len(_VOWELS.findall(word))
    if count > 1 and word.endswith("e") and not word.endswith(("le", "ee", "ye")):
        count -= 1  # silent e: "time", "medicine"
    elif count > 1 and _SILENT_ENDING.search(word):
        count -= 1  # "times", "asked"
    return count


def section_text(section: Section) -> list[str]:
    """The units a reader reads in a section, in order; the heading is not scored."""
    units = [*section.paragraphs, *section.bullets, *section.steps]
    callout = section.callout
    if callout is not None:
        units.append(callout.title)
        if callout.text is not None:
            units.append(callout.text)
        units += callout.bullets
    return units


@functools.cache
def _dictionary() -> Any:
    # Loading the hyphenation dictionary costs more than scoring a handout; do it once.
    return pyphen.Pyphen(lang="en_US")
