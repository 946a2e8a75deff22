"""Checks loaded content against house rules: reading level, safety, reviews, private subjects."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from aftercare.check.readability import grade, measure, section_text, smog, split_sentences
from aftercare.check.wording import OwnSentence, own_sentences
from aftercare.content.model import Handout, Project
from aftercare.delivery.providers import LONGEST_HOLD, SENDGRID
from aftercare.errors import Problem

Severity = Literal["error", "warning"]

# Shown on lock screens, notification previews and shared calendars, so a subject must not say
# what the patient was treated for. Whole words, any case; plurals and possessives match too.
PRIVATE_WORDS: tuple[str, ...] = (
    "botox", "onabotulinumtoxina", "botulinum", "toxin", "neurotoxin",
    "dysport", "xeomin", "jeuveau", "daxxify", "letybo",
    "filler", "fillers", "injection", "injections", "injectable", "injectables", "jab",
    "migraine", "migraines", "headache", "headaches",
    "wrinkle", "wrinkles", "frown lines", "crow's feet", "forehead lines",
    "ptosis", "botulism", "aesthetic", "cosmetic", "anti-wrinkle",
)

# One sentence or list item, read on its own: plain-language guides ask for at most 20 words,
# and a sentence may read a little above the page's grade (the AMA's 6) but not far above it.
MAX_SENTENCE_WORDS = 20
MAX_SENTENCE_GRADE = 9
# SMOG is calibrated for full understanding and scores about 2 grades above Flesch-Kincaid on
# the same health text: a handout at the clinic's Flesch-Kincaid maximum of 6 is typically
# SMOG 8 (the target patient-education programmes set for SMOG when they aim at grade 6).
SMOG_ALLOWANCE = 2
_EASIER = "use shorter sentences and everyday words"

_LOCK_SCREEN = (
    "subjects and previews show on lock screens, "
    "so they must not name a treatment, condition or medicine"
)


@dataclass(frozen=True)
class Finding:
    """One broken house rule; an error fails `pipeline check`, a warning only with --strict."""

    severity: Severity
    problem: Problem

    def __str__(self) -> str:
        return f"{self.severity}: {self.problem}"


Rule = Callable[[Project, dt.date], Iterator[Finding]]


def lint(project: Project, today: dt.date) -> list[Finding]:
    """Run every rule over the project; findings come sorted by file, line and key path."""
    findings = [finding for rule in RULES for finding in rule(project, today)]
    return sorted(findings, key=_order)


def has_errors(findings: Iterable[Finding], strict: bool) -> bool:
    """Whether the findings fail a check; in strict mode warnings count as errors."""
    return any(strict or f.severity == "error" for f in findings)


# ---------------------------------------------------------------- rules


def check_reading_grade(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about each summary, section and warning-sign list above the clinic's reading grade."""
    maximum = project.clinic.max_reading_grade
    for handout_id, handout in sorted(project.handouts.items()):
        for path, units in _reading_units(handout):
            # Compare what we show: "8.0 is above 8" would read as a bug.
            score = round(grade(units), 1)
            if score > maximum:
                yield _finding(
                    project, "warning", _handout_file(handout_id), path,
                    _above_maximum(score, maximum),
                )


def check_sentences(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about each sentence or list item of a handout that is too long or too hard alone."""
    for handout_id, handout in sorted(project.handouts.items()):
        file = _handout_file(handout_id)
        source = _Source(project, file)
        for path, unit in _sentence_units(handout):
            for sentence in split_sentences(unit):
                line = source.line_of(path, unit, sentence)
                for message in _sentence_problems(sentence):
                    yield Finding("warning", Problem(file, line, path, message))


def check_smog(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about a handout whose SMOG grade is above the clinic's maximum plus the allowance."""
    limit = project.clinic.max_reading_grade + SMOG_ALLOWANCE
    for handout_id, handout in sorted(project.handouts.items()):
        score = round(handout_smog(handout), 1)
        if score > limit:
            yield Finding("warning", Problem(
                _handout_file(handout_id), None, "",
                f"SMOG grade {score:.1f} is above {limit} (the clinic's maximum of "
                f"{project.clinic.max_reading_grade} plus {SMOG_ALLOWANCE}, as SMOG reads about "
                f"{SMOG_ALLOWANCE} grades higher); use fewer words of three or more syllables",
            ))


def check_email_wording(project: Project, today: dt.date) -> Iterator[Finding]:
    """Grade what the email templates say themselves: each sentence, and each template whole.

    Every step is rendered as plain text for the sample patient; what it quotes from a handout
    or from clinic.yaml is graded there, so only the templates' own sentences are read here.
    """
    sentences, problems = own_sentences(project)
    yield from (Finding("error", problem) for problem in problems)
    by_file: dict[str, list[OwnSentence]] = {}
    for own in sentences:
        by_file.setdefault(own.file, []).append(own)
        for message in _sentence_problems(own.text):
            yield Finding("warning", Problem(own.file, own.line, "", message))
    maximum = project.clinic.max_reading_grade
    for file, owns in by_file.items():
        score = round(grade(list(dict.fromkeys(o.text for o in owns))), 1)
        if score > maximum:
            yield Finding("warning", Problem(
                file, None, "own wording", _above_maximum(score, maximum)
            ))


def check_review_due(project: Project, today: dt.date) -> Iterator[Finding]:
    """Warn about handouts whose clinical review date has passed."""
    for handout_id, handout in sorted(project.handouts.items()):
        due = handout.review.next_review_due
        if due < today:
            yield _finding(
                project, "warning", _handout_file(handout_id), "review.next_review_due",
                f"review was due on {due.isoformat()}; "
                "ask a clinician to review this handout and update review:",
            )


def check_safety_lists(project: Project, today: dt.date) -> Iterator[Finding]:
    """A treatment handout must say when to call the clinic and when to get emergency care."""
    for handout_id, handout in sorted(project.handouts.items()):
        if not handout.is_treatment:
            continue
        file = _handout_file(handout_id)
        if not handout.call_clinic_if:
            yield _finding(
                project, "error", file, "call_clinic_if",
                "a treatment handout must list when to call the clinic (call_clinic_if)",
            )
        if not handout.emergency_if:
            yield _finding(
                project, "error", file, "emergency_if",
                "a treatment handout must list the emergency warning signs (emergency_if)",
            )


def check_private_subjects(project: Project, today: dt.date) -> Iterator[Finding]:
    """Subjects, previews and calendar entries must not name a treatment, condition or medicine."""
    pattern = _private_pattern(project.clinic.email.privacy_words)
    for campaign_id, campaign in sorted(project.campaigns.items()):
        file = f"campaigns/{campaign_id}.yaml"
        # step.label is printed on the handout, never shown on a lock screen: not checked.
        for index, step in enumerate(campaign.steps):
            shown = {"subject": step.subject, "preheader": step.preheader}
            if step.calendar is not None:
                shown["calendar.summary"] = step.calendar.summary
                shown["calendar.description"] = step.calendar.description
            for key, text in shown.items():
                named = _named(pattern, text)
                if named:
                    yield _finding(
                        project, "error", file, f"steps[{index}].{key}",
                        f"names {_quoted_list(named)}; {_LOCK_SCREEN}",
                    )


def check_lookahead(project: Project, today: dt.date) -> Iterator[Finding]:
    """The delivery lookahead must be one the provider accepts (it holds messages so long)."""
    hours = project.clinic.delivery.lookahead_hours
    longest = int(LONGEST_HOLD.total_seconds() // 3600)
    if not 1 <= hours <= longest:
        yield _finding(
            project, "error", "clinic.yaml", "delivery.lookahead_hours",
            f"expected 1 to {longest} ({SENDGRID.provider} schedules at most {longest} hours "
            f"ahead); got {hours}",
        )


def check_minimal_privacy(project: Project, today: dt.date) -> Iterator[Finding]:
    """Every part of a minimal email, and all that goes with it, names nothing private."""
    from aftercare.check.privacy import check_minimal_emails  # it builds on this module

    return check_minimal_emails(project)


RULES: tuple[Rule, ...] = (
    check_lookahead,
    check_reading_grade,
    check_sentences,
    check_smog,
    check_email_wording,
    check_review_due,
    check_safety_lists,
    check_private_subjects,
    check_minimal_privacy,
)


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class ReadingScore:
    """How hard one handout reads: its hardest section and sentence, and its SMOG grade."""

    file: str
    section_grade: float
    sentence_grade: float
    longest_sentence: int       # words
    smog: float

    def __str__(self) -> str:
        return (
            f"{self.file}: highest section grade {self.section_grade:.1f}, highest sentence "
            f"grade {self.sentence_grade:.1f}, longest sentence {self.longest_sentence} words, "
            f"SMOG {self.smog:.1f}"
        )


def reading_scores(project: Project) -> list[ReadingScore]:
    """Every handout's reading scores, by file name; what `pipeline check --scores` prints."""
    scores = []
    for handout_id, handout in sorted(project.handouts.items()):
        sentences = [s for _, u in _sentence_units(handout) for s in split_sentences(u)]
        scores.append(ReadingScore(
            file=_handout_file(handout_id),
            section_grade=max(grade(units) for _, units in _reading_units(handout) if units),
            sentence_grade=max((grade([s]) for s in sentences), default=0.0),
            longest_sentence=max((measure([s]).words for s in sentences), default=0),
            smog=handout_smog(handout),
        ))
    return scores


def handout_smog(handout: Handout) -> float:
    """The SMOG grade of everything a reader reads in the handout, headings aside."""
    return smog([unit for _, unit in _sentence_units(handout)])


# ---------------------------------------------------------------- helpers


def _above_maximum(score: float, maximum: int) -> str:
    return f"reading grade {score:.1f} is above the clinic's maximum of {maximum}; {_EASIER}"


def _sentence_problems(sentence: str) -> Iterator[str]:
    words = measure([sentence]).words
    if words > MAX_SENTENCE_WORDS:
        yield (
            f"sentence of {words} words is longer than {MAX_SENTENCE_WORDS}; "
            f"split it: {_start(sentence)}"
        )
    # Compare what we show, as for sections.
    score = round(grade([sentence]), 1)
    if score > MAX_SENTENCE_GRADE:
        yield (
            f"sentence reading grade {score:.1f} is above {MAX_SENTENCE_GRADE} on its own; "
            f"use shorter words: {_start(sentence)}"
        )


def _start(sentence: str, width: int = 48) -> str:
    """The sentence quoted, cut at a word boundary when longer than ``width`` characters."""
    if len(sentence) <= width:
        return f'"{sentence}"'
    cut = sentence[: width + 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f'"{cut}..."'


def _sentence_units(handout: Handout) -> Iterator[tuple[str, str]]:
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


def _reading_units(handout: Handout) -> Iterator[tuple[str, list[str]]]:
    yield "summary", [handout.summary]
    for index, section in enumerate(handout.sections):
        yield f"sections[{index}]", section_text(section)
    # Each list is read as one unit; an empty list scores 0 and is the safety rule's business.
    yield "call_clinic_if", list(handout.call_clinic_if)
    yield "emergency_if", list(handout.emergency_if)


@functools.lru_cache(maxsize=8)
def _private_pattern(extra: tuple[str, ...]) -> re.Pattern[str]:
    terms = {" ".join(w.casefold().split()) for w in (*PRIVATE_WORDS, *extra) if w.strip()}
    # Longest first, so "anti-wrinkle" is reported as itself rather than as "wrinkle".
    alternatives = "|".join(_term_pattern(t) for t in sorted(terms, key=lambda t: (-len(t), t)))
    suffix = r"(?:['’]s|s['’]?|es)?"
    # A hyphen or quote is a word boundary: "Botox-free" and "'migraine'" are still named.
    return re.compile(rf"(?<!\w)(?:{alternatives}){suffix}(?!\w)", re.IGNORECASE)


def _term_pattern(term: str) -> str:
    # Any run of spaces between words; straight or curly apostrophe, or none ("crows feet").
    words = [re.escape(w) for w in term.split(" ")]
    return r"\s+".join(words).replace("'", "['’]?")


def _named(pattern: re.Pattern[str], text: str) -> list[str]:
    found: dict[str, str] = {}
    for match in pattern.finditer(text):
        found.setdefault(match.group(0).casefold(), match.group(0))
    return list(found.values())


def _quoted_list(items: Sequence[str]) -> str:
    quoted = [f"'{item}'" for item in items]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _handout_file(handout_id: str) -> str:
    return f"handouts/{handout_id}.yaml"


def _finding(project: Project, severity: Severity, file: str, path: str, message: str) -> Finding:
    return Finding(severity, Problem(file, project.line_of(file, path), path, message))


def _order(finding: Finding) -> tuple[str, int, str, str, str]:
    p = finding.problem
    return (p.file, p.line or 0, p.path, finding.severity, p.message)
