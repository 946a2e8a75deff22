"""Reading ease of patient text, offline and deterministic: Flesch-Kincaid and SMOG for English,
Fernández-Huerta (corrected) for Spanish, with each language's syllables, words and sentences."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyphen

from aftercare.content.model import Section

# Numbers are not words: "1 to 2 weeks" is two words. Letters are any alphabet's, so "inyección"
# and "café" are one word each. Apostrophes (straight or curly) join contractions and
# possessives into one word; a hyphen splits ("life-threatening" is two).
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# A sentence ends at a run of end marks, after any closing quotes or brackets, before a space
# or the end of the text: "1.5", "www.fda.gov" and "9 a.m. to 5" are not ends.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
# Read out, not spelled: web and email addresses are skipped ("the link") and their dots end
# nothing; an address's own closing full stop is kept. Times and common abbreviations lose
# their dots so they do not end a sentence.
_ADDRESS = re.compile(
    r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]”’\"']*(?:\s|$))"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|gov|net|edu|uk|example)(?:/\S*?)?(?=[.,;:!?)]*(?:\s|$))",
    re.IGNORECASE,
)
_DOTTED = re.compile(
    r"\b(?:[ap]\.m|[ap]\. m|e\.g|i\.e|Dr|Dra|Mr|Mrs|Ms|Sr|Sra|St|Ud|Uds|vs|etc)\.(?=\s|$|[,;:])",
    re.IGNORECASE,
)
_VOWELS = re.compile(r"[aeiouy]+")
_SILENT_ENDING = re.compile(r"(?:[^aeiouysxzcg]|[^s]h)es$|(?:[^aeiouytd])ed$")


@dataclass(frozen=True)
class Counts:
    """What the formulas read from a text: words, sentences and syllables."""

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

    @property
    def fernandez_huerta(self) -> float:
        """Fernández-Huerta's reading ease for Spanish (0 hard to 100 easy), in its corrected
        form: 206.84 − 0.60 × syllables per 100 words − 1.02 × words per sentence. The formula
        as often printed takes sentences per 100 words for the last term, which makes shorter
        sentences read harder; Fernández-Huerta adapted Flesch's reading ease, whose last term
        is words per sentence. 100.0 for text without words."""
        if self.words == 0:
            return 100.0
        return (
            206.84
            - 0.60 * 100 * self.syllables / self.words
            - 1.02 * self.words / self.sentences
        )


def grade(sentences: Sequence[str]) -> float:
    """The Flesch-Kincaid grade of sentence-like units (paragraphs, list items, titles)."""
    return measure(sentences).grade


def reading_ease(sentences: Sequence[str]) -> float:
    """The Fernández-Huerta reading ease of Spanish sentence-like units."""
    return measure(sentences, "es").fernandez_huerta


def measure(sentences: Sequence[str], language: str = "en") -> Counts:
    """Count words, sentences and syllables; each unit ends a sentence even without a full stop.
    Syllables are counted the way ``language`` ("en" or "es") divides words."""
    words: list[str] = []
    ends = 0
    for unit in sentences:
        for sentence in split_sentences(unit):
            words += words_of(sentence)
            ends += 1
    count = spanish_syllables if language == "es" else syllables
    return Counts(len(words), max(ends, 1), sum(count(w) for w in words))


def smog(units: Sequence[str]) -> float:
    """The SMOG grade (McLaughlin 1969) of the units, scaled to 30 sentences; 0.0 without words.

    SMOG counts words of three or more syllables; it is calibrated for full understanding of
    the text, so it reads higher than Flesch-Kincaid on the same words.
    """
    sentences = [s for unit in units for s in split_sentences(unit)]
    if not sentences:
        return 0.0
    hard = sum(syllables(w) >= 3 for s in sentences for w in words_of(s))
    return 1.0430 * math.sqrt(hard * 30 / len(sentences)) + 3.1291


def split_sentences(unit: str) -> list[str]:
    """The sentences of one unit, as written; a list item without a full stop is one sentence.

    Pieces without a word (a phone number, a web address, "(1 of 3)") are not sentences.
    """
    found: list[str] = []
    start = 0
    masked = _mask(unit)
    for end in _SENTENCE_END.finditer(masked):
        found.append(unit[start : end.end()])
        start = end.end()
    found.append(unit[start:])
    return [" ".join(s.split()) for s in found if _WORD.search(_mask(s, keep_length=False))]


def words_of(text: str) -> list[str]:
    """The words a reader reads: numbers, symbols and web or email addresses are not words."""
    return _WORD.findall(_mask(text, keep_length=False))


def _mask(text: str, keep_length: bool = True) -> str:
    # With keep_length, positions in the result are positions in the text (for splitting).
    def address(match: re.Match[str]) -> str:
        return " " * len(match.group(0)) if keep_length else " "

    def undotted(match: re.Match[str]) -> str:
        letters = match.group(0).replace(".", "").replace(" ", "")
        return letters + " " * (len(match.group(0)) - len(letters)) if keep_length else letters

    return _DOTTED.sub(undotted, _ADDRESS.sub(address, text))


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


# Spanish vowels; the strong ones (a, e, o, and an accented i or u) are each a syllable of
# their own, while an unaccented i, u or ü next to another vowel glides into it ("bueno",
# "ciudad", "hoy" at a word's end).
_SPANISH_VOWELS = re.compile(r"[aeiouáéíóúü]+(?:y(?![aeiouáéíóú]))?|y(?![aeiouáéíóú])")
_STRONG = frozenset("aeoáéóíú")


@functools.lru_cache(maxsize=8192)
def spanish_syllables(word: str) -> int:
    """Syllables in one Spanish word, by the rules of Spanish: each run of vowels is one
    syllable (a diphthong or triphthong) plus one for each pair of strong vowels side by side
    (a hiatus: "le-er", "dí-a", "pa-ís")."""
    lowered = word.lower().replace("’", "'").split("'")[0]
    count = 0
    for run in _SPANISH_VOWELS.findall(lowered):
        count += 1 + sum(a in _STRONG and b in _STRONG for a, b in itertools.pairwise(run))
    return max(count, 1)


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
