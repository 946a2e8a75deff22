"""The email templates' own sentences: what is left out, how text is cut, where it is traced to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aftercare.check.wording import OwnSentence, own_sentences
from aftercare.content.load import load_project
from tests.conftest import FIXTURES, edit_file

LAYOUT = "templates/email/_layout.txt"
DAY_1 = "templates/email/day-1.txt"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    target = tmp_path / "clinic"
    shutil.copytree(FIXTURES / "lint", target)
    return target


def _own(root: Path) -> list[OwnSentence]:
    sentences, problems = own_sentences(load_project(root))
    assert problems == []
    return sentences


def test_quoted_handout_text_and_clinic_lines_are_left_out(project_dir: Path) -> None:
    # The day-1 step prints the handout's "Today" section (its heading and paragraph) and the
    # clinic's name (also in capitals), address and website: none of that is the template's.
    # Both steps render the layout; each sentence is listed once, where it was written.
    assert _own(project_dir) == [
        OwnSentence(LAYOUT, 5, "Hello Sample,"),
        OwnSentence(DAY_1, 3, "Here are a few tips."),
        OwnSentence(LAYOUT, 8, "Call us on (555) 010-0100 if you are worried."),
    ]


def test_headings_titles_items_and_introductions_are_each_read_alone(project_dir: Path) -> None:
    (project_dir / "templates/email/_macros.txt").write_text(
        '{% macro button(url, label) %}\n'
        '{{ label }}:\n'
        '{{ url }}\n'
        '{% endmacro %}\n',
        encoding="utf-8",
    )
    edit_file(
        project_dir, DAY_1, "{% block content %}\nHere are a few tips.\n",
        '{% import "_macros.txt" as m %}\n'
        "{% block content %}\n"
        "A quick check\n"
        "-------------\n"
        "WHEN TO CALL\n"
        "Call us if you see any of these:\n"
        "  - An eyelid that droops\n"
        "  - Eyes that feel dry or\n"
        "    sore\n"
        "\n"
        '{{ m.button(clinic.booking_url, "Book a visit") }}\n',
    )
    # Lines 4 to 10 of day-1.txt have no full stop: read as one text, they would be one long
    # sentence. The button's label is written in day-1.txt (line 12); the colon is the macro's.
    assert _own(project_dir) == [
        OwnSentence(LAYOUT, 5, "Hello Sample,"),
        OwnSentence(DAY_1, 4, "A quick check"),
        OwnSentence(DAY_1, 6, "WHEN TO CALL"),
        OwnSentence(DAY_1, 7, "Call us if you see any of these:"),
        OwnSentence(DAY_1, 8, "An eyelid that droops"),
        OwnSentence(DAY_1, 9, "Eyes that feel dry or sore"),
        OwnSentence(DAY_1, 12, "Book a visit:"),
        OwnSentence(LAYOUT, 8, "Call us on (555) 010-0100 if you are worried."),
    ]


def test_sentence_starting_with_a_variable_goes_to_the_steps_template(project_dir: Path) -> None:
    # "Care" is the campaign's title: no literal text of any template starts the sentence.
    edit_file(project_dir, DAY_1, "Here are a few tips.", "{{ campaign.title }} tips are here.")
    assert OwnSentence(DAY_1, None, "Care tips are here.") in _own(project_dir)


def test_a_template_that_fails_is_a_problem_and_the_rest_is_still_read(project_dir: Path) -> None:
    edit_file(project_dir, "campaigns/care.yaml", "    template: day-1\n    grace: 7 days",
              "    template: broken\n    grace: 7 days")
    (project_dir / "templates/email/broken.txt").write_text("{{ nope }}\n", encoding="utf-8")
    (project_dir / "templates/email/broken.html").write_text("x\n", encoding="utf-8")
    sentences, problems = own_sentences(load_project(project_dir))
    assert [str(p) for p in problems] == [
        "templates/email/broken.txt: cannot render campaigns/care.yaml step week-2 for the "
        "sample patient: 'nope' is undefined",
    ]
    assert [s.text for s in sentences] == [
        "Hello Sample,", "Here are a few tips.", "Call us on (555) 010-0100 if you are worried.",
    ]
