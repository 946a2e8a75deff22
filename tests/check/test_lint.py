"""House rules over loaded content: each rule's exact message, file and line on a tiny project."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from aftercare.check.lint import Finding, has_errors, lint
from aftercare.content.load import load_project
from aftercare.errors import Problem
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
        # The one sentence is as hard on its own.
        "warning: handouts/care.yaml:9: sections[0].paragraphs[0]: sentence reading grade 22.9 "
        'is above 9 on its own; use shorter words: "Immediately contact our information desk..."',
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
    alone = (
        'is above 9 on its own; use shorter words: "Immediately contact our information desk..."'
    )
    assert _lint(project_dir) == [
        f"warning: handouts/care.yaml:4: summary: reading grade 22.9 {rest}",
        f"warning: handouts/care.yaml:4: summary: sentence reading grade 22.9 {alone}",
        f"warning: handouts/care.yaml:23: call_clinic_if: reading grade 22.9 {rest}",
        f"warning: handouts/care.yaml:23: call_clinic_if[0]: sentence reading grade 22.9 {alone}",
        f"warning: handouts/care.yaml:25: emergency_if: reading grade 13.5 {rest}",
        # Each item is also read on its own: the easy ones pass, the hard one does not.
        f"warning: handouts/care.yaml:25: emergency_if[0]: sentence reading grade 22.9 {alone}",
    ]


def test_grade_that_rounds_to_the_maximum_is_not_above_it(project_dir: Path) -> None:
    # 22 words, 28 syllables, 1 sentence: 0.39 × 22 + 11.8 × 28/22 − 15.59 = 8.008, shown as
    # 8.0; "8.0 is above 8" would read as a bug, so the rounded grade is compared.
    text = (
        "Call the doctor if you are worried or if the area is not normal "
        "and the swelling does not settle this week."
    )
    edit_file(project_dir, HANDOUT, "What to do after your visit.", text)
    # Its length is a finding of its own, whatever the maximum grade.
    too_long = (
        "warning: handouts/care.yaml:4: summary: sentence of 22 words is longer than 20; "
        'split it: "Call the doctor if you are worried or if the..."'
    )
    assert _lint(project_dir) == [too_long]
    edit_file(project_dir, "clinic.yaml", "max_reading_grade: 8", "max_reading_grade: 7")
    assert _lint(project_dir) == [
        "warning: handouts/care.yaml:4: summary: reading grade 8.0 is above the clinic's "
        "maximum of 7; use shorter sentences and everyday words",
        too_long,
    ]


# ---------------------------------------------------------------- each sentence on its own

HARD = "Immediately contact our information desk regarding unexpected complications."
SHORTER = "use shorter sentences and everyday words"


def test_long_sentence_is_found_on_its_own_line_inside_a_folded_paragraph(
    project_dir: Path,
) -> None:
    # 26 words, 29 syllables: 0.39 × 26 + 11.8 × 29/26 − 15.59 = 7.71, easy enough alone,
    # and the section (32 words, 2 sentences, 37 syllables) reads 0.39 × 16 + 11.8 × 37/32
    # − 15.59 = 4.30: only the length is wrong. YAML folds it onto line 11.
    edit_file(
        project_dir, HANDOUT, "      - Do not rub the area today. Wash it gently.",
        "      - >-\n"
        "        Do not rub the area today.\n"
        "        Wash it gently with a soft cloth and warm water, and then pat it dry\n"
        "        with a clean towel, and do not press hard on it.",
    )
    assert _lint(project_dir) == [
        "warning: handouts/care.yaml:11: sections[0].paragraphs[0]: sentence of 26 words is "
        'longer than 20; split it: "Wash it gently with a soft cloth and warm water..."',
    ]


def test_hard_list_item_is_a_warning_as_well_as_its_section(project_dir: Path) -> None:
    # The bullet alone: 22.93 (see above). The section's bullets together: 8 + 6 = 14 words
    # in 2 sentences, 24 + 6 = 30 syllables (a 1 mild 1 ache 1 for 1 a 1 day 1):
    # 0.39 × 7 + 11.8 × 30/14 − 15.59 = 2.73 + 25.286 − 15.59 = 12.43
    edit_file(project_dir, HANDOUT, "- A small red spot", f"- {HARD}")
    assert _lint(project_dir) == [
        f"warning: handouts/care.yaml:10: sections[1]: reading grade 12.4 is above the "
        f"clinic's maximum of 8; {SHORTER}",
        "warning: handouts/care.yaml:13: sections[1].bullets[0]: sentence reading grade 22.9 "
        'is above 9 on its own; use shorter words: "Immediately contact our information desk..."',
    ]


def test_sentence_both_long_and_hard_gets_both_findings(project_dir: Path) -> None:
    # HARD's 8 words three times, joined by "and": 26 words, 3 × 24 + 2 = 74 syllables in
    # one sentence: 0.39 × 26 + 11.8 × 74/26 − 15.59 = 10.14 + 33.585 − 15.59 = 28.13
    long_and_hard = " and ".join([HARD.rstrip(".")] * 3) + "."
    edit_file(project_dir, HANDOUT, "summary: What to do after your visit.",
              f"summary: {long_and_hard}")
    start = '"Immediately contact our information desk..."'
    assert _lint(project_dir) == [
        # 3 × 5 words of three or more syllables in 9 sentences: 1.0430 × √(15 × 30/9) + 3.1291
        # = 10.50, and the whole handout reads too hard as well.
        "warning: handouts/care.yaml: SMOG grade 10.5 is above 10 (the clinic's maximum of 8 "
        "plus 2, as SMOG reads about 2 grades higher); use fewer words of three or more "
        "syllables",
        f"warning: handouts/care.yaml:4: summary: reading grade 28.1 is above the clinic's "
        f"maximum of 8; {SHORTER}",
        f"warning: handouts/care.yaml:4: summary: sentence of 26 words is longer than 20; "
        f"split it: {start}",
        "warning: handouts/care.yaml:4: summary: sentence reading grade 28.1 is above 9 on its "
        f"own; use shorter words: {start}",
    ]


@pytest.mark.parametrize(
    "item",
    [
        "Call (555) 010-0100 from 9 am to 5 pm, or see https://clinic.example/help",
        "Open 9 a.m. to 5 p.m., Monday to Friday. Email desk@clinic.example any time.",
        "See www.fda.gov/medwatch or call 1-800-FDA-1088",
        "A small red spot (1 to 2 mm) that fades",
    ],
    ids=["phone-time-url", "dotted-times-email", "bare-address", "no-full-stop"],
)
def test_phone_numbers_times_addresses_and_list_items_are_read_as_written(
    project_dir: Path, item: str
) -> None:
    # None of these is long or hard: numbers and addresses are not words, "a.m." ends no
    # sentence, and an item without a full stop is one sentence.
    edit_file(project_dir, HANDOUT, "- A small red spot", f"- {item}")
    assert _lint(project_dir) == []


# ---------------------------------------------------------------- SMOG per handout


def test_smog_above_the_maximum_plus_allowance_is_a_warning(project_dir: Path) -> None:
    # care.yaml has no word of three or more syllables: SMOG 3.13. This paragraph of 2
    # sentences (for the 2 it replaces; 9 in all) has 6 such words (ev-er-y, med-i-cine,
    # clin-i-cian, re-ac-tion, hos-pi-tal, im-me-di-ate-ly):
    # 1.0430 × √(6 × 30/9) + 3.1291 = 1.0430 × 4.472 + 3.1291 = 7.79, above 5 (3 plus 2).
    edit_file(
        project_dir, HANDOUT, "Do not rub the area today. Wash it gently.",
        "Take every medicine your clinician gave you. "
        "If you have a reaction, go to a hospital immediately.",
    )
    edit_file(project_dir, "clinic.yaml", "max_reading_grade: 8", "max_reading_grade: 3")
    smog = [f for f in _lint(project_dir) if "SMOG" in f]
    assert smog == [
        "warning: handouts/care.yaml: SMOG grade 7.8 is above 5 (the clinic's maximum of 3 "
        "plus 2, as SMOG reads about 2 grades higher); use fewer words of three or more "
        "syllables",
    ]
    edit_file(project_dir, "clinic.yaml", "max_reading_grade: 3", "max_reading_grade: 6")
    assert [f for f in _lint(project_dir) if "SMOG" in f] == []


# ---------------------------------------------------------------- the email templates' own words


def test_long_template_sentence_names_the_template_and_line(project_dir: Path) -> None:
    # Both steps render day-1; its sentence is reported once.
    edit_file(
        project_dir, "templates/email/day-1.txt", "Here are a few tips.",
        "Here are a few tips for the next few days, so you know what to do and what to "
        "expect and who to call.",
    )
    assert _lint(project_dir) == [
        "warning: templates/email/day-1.txt:3: sentence of 24 words is longer than 20; "
        'split it: "Here are a few tips for the next few days, so..."',
    ]


def test_hard_sentence_around_a_variable_is_traced_to_the_layout(project_dir: Path) -> None:
    # "Immediately telephone (555) 010-0100 regarding unexpected complications.": 5 words,
    # 5 + 3 + 3 + 4 + 4 = 19 syllables: 0.39 × 5 + 11.8 × 19/5 − 15.59 = 31.2. With the
    # layout's other own sentence, "Hello Sample," (2 words, 4 syllables), the layout reads
    # 0.39 × 7/2 + 11.8 × 23/7 − 15.59 = 1.365 + 38.771 − 15.59 = 24.55.
    edit_file(
        project_dir, "templates/email/_layout.txt",
        "Call us on {{ clinic.phone }} if you are worried.",
        "Immediately telephone {{ clinic.phone }} regarding unexpected complications.",
    )
    assert _lint(project_dir) == [
        "warning: templates/email/_layout.txt: own wording: reading grade 24.5 is above the "
        f"clinic's maximum of 8; {SHORTER}",
        "warning: templates/email/_layout.txt:8: sentence reading grade 31.2 is above 9 on its "
        'own; use shorter words: "Immediately telephone (555) 010-0100 regarding..."',
    ]


def test_text_quoted_from_a_handout_is_graded_in_the_handout_only(project_dir: Path) -> None:
    # day-1 prints the "today" section: its hard sentence is the handout's, not the template's.
    edit_file(project_dir, HANDOUT, "Do not rub the area today. Wash it gently.", HARD)
    assert _lint(project_dir) == [
        f"warning: handouts/care.yaml:6: sections[0]: reading grade 22.9 is above the "
        f"clinic's maximum of 8; {SHORTER}",
        "warning: handouts/care.yaml:9: sections[0].paragraphs[0]: sentence reading grade 22.9 "
        'is above 9 on its own; use shorter words: "Immediately contact our information desk..."',
    ]


def test_template_that_cannot_render_is_an_error_per_step(project_dir: Path) -> None:
    edit_file(project_dir, "templates/email/day-1.txt", "Here are a few tips.", "{{ tips }}")
    findings = lint(load_project(project_dir), TODAY)
    assert [str(f) for f in findings] == [
        f"error: templates/email/day-1.txt: cannot render campaigns/care.yaml step {step} "
        "for the sample patient: 'tips' is undefined"
        for step in ("day-1", "week-2")
    ]
    assert has_errors(findings, strict=False)


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


TOPICS = (
    "what-is-botox", "choosing-a-clinician", "safety-and-side-effects", "the-procedure",
    "results-and-maintenance", "lines-and-sagging-skin", "chronic-migraine",
)


def test_topic_handouts_meet_grade_6_sentence_by_sentence() -> None:
    # The AMA's grade 6 for every section, and with it the sentence rules and SMOG 8.
    project = load_project(ROOT)
    at_6 = dataclasses.replace(
        project, clinic=dataclasses.replace(project.clinic, max_reading_grade=6)
    )
    files = {f"handouts/{topic}.yaml" for topic in TOPICS}
    findings = [str(f) for f in lint(at_6, TODAY) if f.problem.file in files]
    assert findings == []
