"""The reading-level rules, in each language the content is written in: every handout section and
list, every sentence, each handout's SMOG (English) and the email templates' own wording.

English is graded with Flesch-Kincaid (a school grade: lower is easier); Spanish with
Fernández-Huerta's reading ease (a score: higher is easier), whose table ties each band of
scores to school grades, so the clinic's grade maximum has a Spanish equivalent.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from aftercare.check.findings import Finding
from aftercare.check.readability import (
    grade,
    measure,
    reading_ease,
    section_text,
    smog,
    split_sentences,
)
from aftercare.check.wording import OwnSentence, own_sentences
from aftercare.content.model import Handout, Project
from aftercare.errors import Problem

# One sentence or list item, read on its own: plain-language guides ask for at most 20 words,
# and a sentence may read a little above the page's grade (the AMA's 6) but not far above it.
MAX_SENTENCE_WORDS = 20
MAX_SENTENCE_GRADE = 9
# SMOG is calibrated for full understanding and scores about 2 grades above Flesch-Kincaid on
# the same health text: a handout at the clinic's Flesch-Kincaid maximum of 6 is typically
# SMOG 8 (the target patient-education programmes set for SMOG when they aim at grade 6).
SMOG_ALLOWANCE = 2
# Fernández-Huerta's table, as (school grade, score): 90-100 reads at grade 4, 80-90 at 5,
# 70-80 at 6, 60-70 at 7 to 8, 50-60 at 9 to 12 ("preuniversitario"), 30-50 beyond. Each
# point is where a grade's share of its band ends: a text of grade 6 scores 70 or more.
FERNANDEZ_HUERTA_GRADES = ((4, 90.0), (5, 80.0), (6, 70.0), (8, 60.0), (12, 50.0), (16, 30.0))
# Reading ease is an average over sentences (Fernández-Huerta, like Flesch, counted samples of
# 100 words); on a sentence of a few words it measures little but the length of its nouns,
# and plain Spanish such as "visión borrosa" or "pequeños moretones" scores as hard as a
# university text. Shorter Spanish sentences and list items count in their section's score
# only; the 20-word limit applies to every sentence.
MIN_EASE_WORDS = 6
_EASIER = "use shorter sentences and everyday words"


def fernandez_huerta_minimum(school_grade: float) -> float:
    """The lowest Fernández-Huerta score of a text readable at ``school_grade`` (6 -> 70.0,
    9 -> 57.5), between the table's points in a straight line."""
    points = FERNANDEZ_HUERTA_GRADES
    if school_grade <= points[0][0]:
        return min(100.0, points[0][1] + (points[0][0] - school_grade) * 10)
    for (g1, s1), (g2, s2) in itertools.pairwise(points):
        if school_grade <= g2:
            return round(s1 + (s2 - s1) * (school_grade - g1) / (g2 - g1), 1)
    return points[-1][1]


@dataclass(frozen=True)
class Scale:
    """How one language's text is graded and what the clinic allows, as the findings say it."""

    language: str
    limit: float            # each summary, section and list
    sentence_limit: float   # each sentence or list item, alone
    grade: int              # the clinic's maximum school grade, which the limits stand for

    @property
    def is_grade(self) -> bool:
        """English: a Flesch-Kincaid grade, lower is easier; else Fernández-Huerta, higher is."""
        return self.language != "es"

    def score(self, units: Sequence[str]) -> float:
        return grade(units) if self.is_grade else reading_ease(units)

    def fails(self, score: float, limit: float) -> bool:
        # Compare what we show: "8.0 is above 8" would read as a bug.
        shown = round(score, 1)
        return shown > limit if self.is_grade else shown < limit

    def section_message(self, score: float) -> str:
        if self.is_grade:
            return f"reading grade {score:.1f} is above the clinic's maximum of {self.grade}; " \
                   f"{_EASIER}"
        return (f"reading ease {score:.1f} (Fernández-Huerta) is below {self.limit:g}, the "
                f"clinic's grade {self.grade} in {self.language}; {_EASIER}")

    def sentence_messages(self, sentence: str) -> Iterator[str]:
        words = measure([sentence]).words
        if words > MAX_SENTENCE_WORDS:
            yield (f"sentence of {words} words is longer than {MAX_SENTENCE_WORDS}; "
                   f"split it: {_start(sentence)}")
        if not self.is_grade and words < MIN_EASE_WORDS:
            return  # graded with its section: see MIN_EASE_WORDS
        score = self.score([sentence])
        if not self.fails(score, self.sentence_limit):
            return
        if self.is_grade:
            yield (f"sentence reading grade {score:.1f} is above {MAX_SENTENCE_GRADE} on its "
                   f"own; use shorter words: {_start(sentence)}")
        else:
            yield (f"sentence reading ease {score:.1f} (Fernández-Huerta) is below "
                   f"{self.sentence_limit:g} (grade {MAX_SENTENCE_GRADE}) on its own; use "
                   f"shorter words: {_start(sentence)}")


def scale_for(project: Project, language: str) -> Scale:
    maximum = project.clinic.max_reading_grade
    if language != "es":
        return Scale(language, maximum, MAX_SENTENCE_GRADE, maximum)
    return Scale(language, fernandez_huerta_minimum(maximum),
                 fernandez_huerta_minimum(MAX_SENTENCE_GRADE), maximum)


def handouts_by_language(project: Project) -> Iterator[tuple[str, str, Handout]]:
    """Every handout in every language, with its file: (language, file, handout)."""
    own = project.clinic.language
    for handout_id, handout in sorted(project.handouts.items()):
        yield own, f"handouts/{handout_id}.yaml", handout
    for code, local in sorted(project.translations.items()):
        for handout_id, handout in sorted(local.handouts.items()):
            yield code, f"handouts/{code}/{handout_id}.yaml", handout


# ---------------------------------------------------------------- rules


def check_reading_grade(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about each summary, section and warning-sign list above the clinic's reading level."""
    for language, file, handout in handouts_by_language(project):
        scale = scale_for(project, language)
        for path, units in _reading_units(handout):
            score = scale.score(units)
            if units and scale.fails(score, scale.limit):
                yield Finding("warning", Problem(file, project.line_of(file, path), path,
                                                 scale.section_message(score)))


def check_sentences(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about each sentence or list item of a handout that is too long or too hard alone."""
    for language, file, handout in handouts_by_language(project):
        scale = scale_for(project, language)
        source = _Source(project, file)
        for path, unit in sentence_units(handout):
            for sentence in split_sentences(unit):
                line = source.line_of(path, unit, sentence)
                for message in scale.sentence_messages(sentence):
                    yield Finding("warning", Problem(file, line, path, message))


def check_smog(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about an English handout whose SMOG grade is above the maximum plus the allowance
    (SMOG is an English measure)."""
    limit = project.clinic.max_reading_grade + SMOG_ALLOWANCE
    for handout_id, handout in sorted(project.handouts.items()):
        score = round(handout_smog(handout), 1)
        if score > limit:
            yield Finding("warning", Problem(
                f"handouts/{handout_id}.yaml", None, "",
                f"SMOG grade {score:.1f} is above {limit} (the clinic's maximum of "
                f"{project.clinic.max_reading_grade} plus {SMOG_ALLOWANCE}, as SMOG reads about "
                f"{SMOG_ALLOWANCE} grades higher); use fewer words of three or more syllables",
            ))


def check_email_wording(project: Project, today: dt.date) -> Iterator[Finding]:
    """Grade what the email templates say themselves, in each language: each sentence, and
    each template whole.

    Every step is rendered as plain text for the sample patient; what it quotes from a handout
    or from clinic.yaml is graded there, so only the templates' own sentences are read here.
    """
    for language in project.languages:
        scale = scale_for(project, language)
        sentences, problems = own_sentences(project, language)
        yield from (Finding("error", problem) for problem in problems)
        for own in sentences:
            for message in scale.sentence_messages(own.text):
                yield Finding("warning", Problem(own.file, own.line, "", message))
        for file, score in _by_template(scale, sentences):
            if scale.fails(score, scale.limit):
                yield Finding("warning", Problem(file, None, "own wording",
                                                 scale.section_message(score)))


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class ReadingScore:
    """How hard one handout, or one template's own wording, reads: its hardest section and
    sentence (English grades, or Spanish reading ease), and for English handouts SMOG."""

    file: str
    section: float
    sentence: float
    longest_sentence: int       # words
    smog: float | None
    scale: Scale
    whole: str = "section"      # what ``section`` scores: a handout's sections, or "own wording"

    def __str__(self) -> str:
        whole = "own wording" if self.whole != "section" else None
        if self.scale.is_grade:
            first = f"{whole} grade" if whole else "highest section grade"
            line = (f"{self.file}: {first} {self.section:.1f}, highest sentence grade "
                    f"{self.sentence:.1f}, longest sentence {self.longest_sentence} words")
            return line + (f", SMOG {self.smog:.1f}" if self.smog is not None else "")
        first = f"{whole} reading ease" if whole else "lowest section reading ease"
        return (f"{self.file}: {first} {self.section:.1f}, lowest sentence reading ease "
                f"{self.sentence:.1f}, longest sentence {self.longest_sentence} words "
                f"(Fernández-Huerta; grade {self.scale.grade} is {self.scale.limit:g} or more)")


def reading_scores(project: Project) -> list[ReadingScore]:
    """Every handout's reading scores in every language, then each email template's own
    wording; what `pipeline check --scores` prints."""
    scores = []
    for language, file, handout in handouts_by_language(project):
        scale = scale_for(project, language)
        sentences = [s for _, u in sentence_units(handout) for s in split_sentences(u)]
        sections = [scale.score(units) for _, units in _reading_units(handout) if units]
        scores.append(_score(file, scale, sections, sentences,
                             handout_smog(handout) if scale.is_grade else None))
    for language in project.languages:
        scale = scale_for(project, language)
        owns, _ = own_sentences(project, language)
        for file, score in _by_template(scale, owns):
            texts = [o.text for o in owns if o.file == file]
            scores.append(_score(file, scale, [score], texts, None, "own wording"))
    return scores


def handout_smog(handout: Handout) -> float:
    """The SMOG grade of everything a reader reads in the handout, headings aside."""
    return smog([unit for _, unit in sentence_units(handout)])


def _score(file: str, scale: Scale, sections: list[float], sentences: list[str],
           smog_grade: float | None, whole: str = "section") -> ReadingScore:
    hardest = max if scale.is_grade else min
    # The sentences the rule grades alone (for Spanish, those of MIN_EASE_WORDS or more).
    graded = [s for s in sentences
              if scale.is_grade or measure([s]).words >= MIN_EASE_WORDS]
    return ReadingScore(
        file=file,
        section=hardest(sections, default=0.0),
        sentence=hardest((scale.score([s]) for s in graded), default=0.0),
        longest_sentence=max((measure([s]).words for s in sentences), default=0),
        smog=smog_grade,
        scale=scale,
        whole=whole,
    )


# ---------------------------------------------------------------- helpers


def _by_template(scale: Scale, owns: Sequence[OwnSentence]) -> Iterator[tuple[str, float]]:
    """Each template's own sentences together, scored, in the order first met."""
    by_file: dict[str, list[str]] = {}
    for own in owns:
        by_file.setdefault(own.file, []).append(own.text)
    for file, texts in by_file.items():
        yield file, scale.score(list(dict.fromkeys(texts)))


def _start(sentence: str, width: int = 48) -> str:
    """The sentence quoted, cut at a word boundary when longer than ``width`` characters."""
    if len(sentence) <= width:
        return f'"{sentence}"'
    cut = sentence[: width + 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f'"{cut}..."'


def sentence_units(handout: Handout) -> Iterator[tuple[str, str]]:
    """Each unit a reader reads, with its key path: the summary, sections, the two lists."""
    yield "summary", handout.summary
    for index, section in enumerate(handout.sections):
        where = f"sections[{index}]"
        for kind in ("paragraphs", "bullets", "steps"):
            for item, text in enumerate(getattr(section, kind)):
                yield f"{where}.{kind}[{item}]", text
        callout = section.callout
        if callout is not None:
            yield f"{where}.callout.title", callout.title
            if callout.text is not None:
                yield f"{where}.callout.text", callout.text
            for item, text in enumerate(callout.bullets):
                yield f"{where}.callout.bullets[{item}]", text
    for key in ("call_clinic_if", "emergency_if"):
        for item, text in enumerate(getattr(handout, key)):
            yield f"{key}[{item}]", text


def _reading_units(handout: Handout) -> Iterator[tuple[str, list[str]]]:
    yield "summary", [handout.summary]
    for index, section in enumerate(handout.sections):
        yield f"sections[{index}]", section_text(section)
    # Each list is read as one unit; an empty list is the safety rule's business.
    yield "call_clinic_if", list(handout.call_clinic_if)
    yield "emergency_if", list(handout.emergency_if)


class _Source:
    """One content file's text, to find the line a sentence starts on inside a folded block."""

    def __init__(self, project: Project, file: str) -> None:
        self._project = project
        self._file = file
        self._text: str | None = None

    def line_of(self, path: str, unit: str, sentence: str) -> int | None:
        """The line the sentence starts on; the unit's own line if it cannot be found."""
        line = self._project.line_of(self._file, path)
        if line is None:
            return None
        if self._text is None:
            self._text = (self._project.root / self._file).read_text(encoding="utf-8")
        offset = sum(len(row) for row in self._text.splitlines(keepends=True)[: line - 1])
        # YAML folds long text over lines: the sentence's first words, any spacing between,
        # looked for only as far as the unit itself can reach with its indentation.
        words = sentence.split()[:4]
        pattern = r"\s+".join(re.escape(word) for word in words)
        found = re.compile(pattern).search(self._text, offset, offset + 2 * len(unit) + 200)
        if found is None:
            return line
        return line + self._text.count("\n", offset, found.start())
