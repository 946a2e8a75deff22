"""Reading grades of patient text (Flesch-Kincaid, SMOG, sentences), offline and deterministic."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyphen

from aftercare.content.model import Section

# Numbers are not words: "1 to 2 weeks" is two words. Apostrophes (straight or curly) join
# contractions and possessives into one word; a hyphen splits ("life-threatening" is two).
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
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
_DOTTED = re.compile(r"\b(?:[ap]\.m|e\.g|i\.e|Dr|Mr|Mrs|Ms|St|vs)\.(?=\s|$|[,;:])", re.IGNORECASE)
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
        for sentence in split_sentences(unit):
            words += words_of(sentence)
            ends += 1
    return Counts(len(words), max(ends, 1), sum(syllables(w) for w in words))


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
        letters = match.group(0).replace(".", "")
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
