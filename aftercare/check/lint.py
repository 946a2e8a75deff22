"""Checks loaded content against house rules: reading level, safety, reviews, private subjects,
private minimal emails, and translations that keep up with their sources."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from aftercare.check.findings import Finding, Severity, has_errors
from aftercare.check.minimal import check_minimal_emails
from aftercare.check.privacy import PRIVATE_WORDS, check_private_subjects
from aftercare.check.reading import (
    check_email_wording,
    check_reading_grade,
    check_sentences,
    check_smog,
    reading_scores,
)
from aftercare.check.translations import TRANSLATION_RULES
from aftercare.content.model import Project
from aftercare.delivery.providers import LONGEST_HOLD, SENDGRID
from aftercare.errors import Problem

__all__ = ["PRIVATE_WORDS", "RULES", "Finding", "has_errors", "lint", "reading_scores"]

Rule = Callable[[Project, dt.date], Iterator[Finding]]


def lint(project: Project, today: dt.date) -> list[Finding]:
    """Run every rule over the project; findings come sorted by file, line and key path."""
    findings = [finding for rule in RULES for finding in rule(project, today)]
    return sorted(findings, key=_order)


# ---------------------------------------------------------------- rules


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
    """Every part of a minimal email, in every language, and all that goes with it, names
    nothing private."""
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
    *TRANSLATION_RULES,
)


# ---------------------------------------------------------------- helpers


def _handout_file(handout_id: str) -> str:
    return f"handouts/{handout_id}.yaml"


def _finding(project: Project, severity: Severity, file: str, path: str, message: str) -> Finding:
    return Finding(severity, Problem(file, project.line_of(file, path), path, message))


def _order(finding: Finding) -> tuple[str, int, str, str, str]:
    p = finding.problem
    return (p.file, p.line or 0, p.path, finding.severity, p.message)
