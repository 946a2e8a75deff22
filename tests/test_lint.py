"""House rules over loaded content: each rule's exact message, file and line on a tiny project."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from aftercare.content import load_project
from aftercare.errors import Problem
from aftercare.lint import Finding, has_errors, lint
from tests.conftest import FIXTURES, ROOT, edit_file

LINT = FIXTURES / "lint"
HANDOUT = "handouts/care.yaml"
TODAY = dt.date(2026, 6, 1)
LOCK_SCREEN = (
    "subjects and previews show on lock screens, "
    "so they must not name a treatment, condition or medicine"
)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    target = tmp_path / "clinic"
    shutil.copytree(LINT, target)
    return target


def _lint(root: Path, today: dt.date = TODAY) -> list[str]:
    return [str(f) for f in lint(load_project(root), today)]


def test_clean_fixture_has_no_findings() -> None:
    # The general handout (about.yaml) has no warning-sign lists and needs none; the step
    # labels name an injection, but labels are printed on the handout, not shown on a lock screen.
    assert _lint(LINT) == []


# ---------------------------------------------------------------- reading grade


def test_hard_section_is_a_warning_at_its_line(project_dir: Path) -> None:
    # 8 words, 24 syllables, 1 sentence: 0.39 × 8 + 11.8 × 24/8 − 15.59 = 22.93
    edit_file(
        project_dir, HANDOUT, "Do not rub the area today. Wash it gently.",
        "Immediately contact our information desk regarding unexpected complications.",
    )
    assert _lint(project_dir) == [
        "warning: handouts/care.yaml:6: sections[0]: reading grade 22.9 is above the clinic's "
        "maximum of 8; use shorter sentences and everyday words",
    ]


def test_summary_and_warning_sign_lists_are_each_scored(project_dir: Path) -> None:
    hard = "Immediately contact our information desk regarding unexpected complications."
    edit_file(project_dir, HANDOUT, "summary: What to do after your visit.", f"summary: {hard}")
    edit_file(project_dir, HANDOUT, "- Your eyelid droops", f"- {hard}")
    # A list is scored as one unit: two easy items pull a hard one down, here not far enough.
    # 8 + 2 + 2 = 12 words in 3 sentences, 24 + 2 + 2 = 28 syllables:
    # 0.39 × 12/3 + 11.8 × 28/12 − 15.59 = 1.56 + 27.533 − 15.59 = 13.503
    edit_file(
        project_dir, HANDOUT, "emergency_if:\n  - You find it hard to breathe",
        f"emergency_if:\n  - {hard}\n  - Call us\n  - Stay calm",
    )
    rest = "is above the clinic's maximum of 8; use shorter sentences and everyday words"
    assert _lint(project_dir) == [
        f"warning: handouts/care.yaml:4: summary: reading grade 22.9 {rest}",
        f"warning: handouts/care.yaml:23: call_clinic_if: reading grade 22.9 {rest}",
        f"warning: handouts/care.yaml:25: emergency_if: reading grade 13.5 {rest}",
    ]


def test_grade_that_rounds_to_the_maximum_is_not_above_it(project_dir: Path) -> None:
    # 22 words, 28 syllables, 1 sentence: 0.39 × 22 + 11.8 × 28/22 − 15.59 = 8.008, shown as
    # 8.0; "8.0 is above 8" would read as a bug, so the rounded grade is compared.
    text = (
        "Call the doctor if you are worried or if the area is not normal "
        "and the swelling does not settle this week."
    )
    edit_file(project_dir, HANDOUT, "What to do after your visit.", text)
    assert _lint(project_dir) == []
    edit_file(project_dir, "clinic.yaml", "max_reading_grade: 8", "max_reading_grade: 7")
    assert _lint(project_dir) == [
        "warning: handouts/care.yaml:4: summary: reading grade 8.0 is above the clinic's "
        "maximum of 7; use shorter sentences and everyday words",
    ]


# ---------------------------------------------------------------- review dates


def test_overdue_review_is_a_warning_naming_the_date(project_dir: Path) -> None:
    assert _lint(project_dir, today=dt.date(2027, 1, 1)) == []  # due today is not overdue
    assert _lint(project_dir, today=dt.date(2027, 1, 2)) == [
        "warning: handouts/about.yaml:13: review.next_review_due: review was due on 2027-01-01; "
        "ask a clinician to review this handout and update review:",
        "warning: handouts/care.yaml:29: review.next_review_due: review was due on 2027-01-01; "
        "ask a clinician to review this handout and update review:",
    ]


# ---------------------------------------------------------------- safety lists


def test_treatment_handout_without_emergency_signs_is_an_error(project_dir: Path) -> None:
    edit_file(project_dir, HANDOUT, "emergency_if:\n  - You find it hard to breathe\n", "")
    # The key is absent, so there is no line to name.
    assert _lint(project_dir) == [
        "error: handouts/care.yaml: emergency_if: a treatment handout must list the emergency "
        "warning signs (emergency_if)",
    ]


def test_treatment_handout_with_empty_call_list_is_an_error(project_dir: Path) -> None:
    edit_file(project_dir, HANDOUT, "call_clinic_if:\n  - Your eyelid droops", "call_clinic_if: []")
    assert _lint(project_dir) == [
        "error: handouts/care.yaml:22: call_clinic_if: a treatment handout must list when to "
        "call the clinic (call_clinic_if)",
    ]


def test_migraine_handout_is_a_treatment_handout(project_dir: Path) -> None:
    edit_file(project_dir, "handouts/about.yaml", "indication: general", "indication: migraine")
    assert _lint(project_dir) == [
        "error: handouts/about.yaml: call_clinic_if: a treatment handout must list when to "
        "call the clinic (call_clinic_if)",
        "error: handouts/about.yaml: emergency_if: a treatment handout must list the emergency "
        "warning signs (emergency_if)",
    ]


# ---------------------------------------------------------------- private subjects

PRIVACY_CASES = [
    pytest.param(
        "subject: Looking after yourself today", "subject: Your migraine diary",
        "steps[0].subject", 11, "'migraine'", id="subject",
    ),
    pytest.param(
        "preheader: A few tips", "preheader: Tips after BOTOX® today",
        "steps[0].preheader", 12, "'BOTOX'", id="preheader-any-case",
    ),
    pytest.param(
        "summary: Check-in with Lint Clinic", "summary: Injections check-in",
        "steps[1].calendar.summary", 25, "'Injections'", id="calendar-summary-plural",
    ),
    pytest.param(
        "description: Call us if anything feels wrong.",
        "description: Look at your crow’s feet and frown  lines.",
        "steps[1].calendar.description", 26, "'crow’s feet' and 'frown  lines'",
        id="calendar-description-phrases",
    ),
    pytest.param(
        "subject: How are you doing?", "subject: Your filler's first weeks",
        "steps[1].subject", 20, "'filler's'", id="possessive",
    ),
    pytest.param(
        "preheader: A quick check-in", "preheader: Your anti-wrinkle check-in",
        "steps[1].preheader", 21, "'anti-wrinkle'", id="hyphenated-term",
    ),
    pytest.param(
        "preheader: A quick check-in", "preheader: Botox-free? Neurotoxins, toxins, Botox",
        "steps[1].preheader", 21, "'Botox', 'Neurotoxins' and 'toxins'", id="each-word-once",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "line", "named"), PRIVACY_CASES)
def test_lock_screen_text_must_not_name_a_treatment(
    project_dir: Path, old: str, new: str, path: str, line: int, named: str
) -> None:
    edit_file(project_dir, "campaigns/care.yaml", old, new)
    assert _lint(project_dir) == [
        f"error: campaigns/care.yaml:{line}: {path}: names {named}; {LOCK_SCREEN}",
    ]


def test_private_words_match_whole_words_only(project_dir: Path) -> None:
    edit_file(
        project_dir, "campaigns/care.yaml", "subject: Looking after yourself today",
        "subject: Toxic fillets, jabber and botoxy cosmetology",
    )
    assert _lint(project_dir) == []


def test_clinic_privacy_words_are_added_to_the_list(project_dir: Path) -> None:
    campaign = "campaigns/care.yaml"
    edit_file(project_dir, "clinic.yaml", "privacy_words: []",
              "privacy_words: [Lip flip, juvederm]")
    edit_file(project_dir, campaign, "preheader: A few tips", "preheader: Your lip  flips")
    edit_file(project_dir, campaign, "subject: How are you doing?", "subject: Juvederm")
    assert _lint(project_dir) == [
        f"error: campaigns/care.yaml:12: steps[0].preheader: names 'lip  flips'; {LOCK_SCREEN}",
        f"error: campaigns/care.yaml:20: steps[1].subject: names 'Juvederm'; {LOCK_SCREEN}",
    ]


def test_step_labels_are_not_checked(project_dir: Path) -> None:
    edit_file(project_dir, "campaigns/care.yaml", "label: a check-in",
              "label: your migraine check-in")
    assert _lint(project_dir) == []


# ---------------------------------------------------------------- the result


def test_findings_are_sorted_by_file_and_line(project_dir: Path) -> None:
    edit_file(project_dir, "campaigns/care.yaml", "subject: How are you doing?", "subject: Botox")
    edit_file(project_dir, "campaigns/care.yaml", "preheader: A few tips", "preheader: Botox")
    findings = lint(load_project(project_dir), dt.date(2027, 1, 2))
    assert [(f.severity, f.problem.file, f.problem.line) for f in findings] == [
        ("error", "campaigns/care.yaml", 12),
        ("error", "campaigns/care.yaml", 20),
        ("warning", "handouts/about.yaml", 13),
        ("warning", "handouts/care.yaml", 29),
    ]


ERROR = Finding("error", Problem("handouts/x.yaml", 3, "emergency_if", "missing"))
WARNING = Finding("warning", Problem("handouts/x.yaml", 9, "sections[0]", "hard"))


@pytest.mark.parametrize(
    ("findings", "strict", "expected"),
    [
        ([], False, False),
        ([], True, False),
        ([WARNING], False, False),
        ([WARNING], True, True),
        ([ERROR], False, True),
        ([WARNING, ERROR], False, True),
    ],
)
def test_has_errors_counts_warnings_only_when_strict(
    findings: list[Finding], strict: bool, expected: bool
) -> None:
    assert has_errors(findings, strict=strict) is expected


def test_finding_shows_its_severity_then_the_problem() -> None:
    assert str(WARNING) == "warning: handouts/x.yaml:9: sections[0]: hard"


def test_real_content_passes_lint_without_errors() -> None:
    findings = lint(load_project(ROOT), TODAY)
    assert not has_errors(findings, strict=False), "\n".join(map(str, findings))
