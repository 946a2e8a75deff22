"""Checks loaded content against house rules: reading level, safety, reviews, private subjects."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from aftercare.content import Handout, Project
from aftercare.errors import Problem
from aftercare.readability import grade, section_text

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
                    f"reading grade {score:.1f} is above the clinic's maximum of {maximum}; "
                    "use shorter sentences and everyday words",
                )


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


RULES: tuple[Rule, ...] = (
    check_reading_grade,
    check_review_due,
    check_safety_lists,
    check_private_subjects,
)


# ---------------------------------------------------------------- helpers


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
