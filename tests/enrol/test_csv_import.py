"""CSV import: every row checked, every bad line listed, all rows stored or none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aftercare.content.model import (
    Project,
)
from aftercare.enrol.csv_import import import_file, read_rows
from aftercare.errors import ContentError
from aftercare.outbox.store import Outbox
from tests.enrol.conftest import CSV, NOW


def import_problems(path: Path, project: Project) -> list[str]:
    with pytest.raises(ContentError) as caught:
        read_rows(path, project, NOW, "import:test")
    return [str(p) for p in caught.value.problems]

# ---------------------------------------------------------------- CSV files


def test_a_good_file_is_read_with_columns_in_any_order_and_duplicates_collapsed(
    project: Project,
) -> None:
    rows, _ = read_rows(CSV / "patients.csv", project, NOW, "import:patients.csv")
    enrollments = [row.enrollment for row in rows]
    assert [(e.email, e.first_name, e.campaign, str(e.treated_on)) for e in enrollments] == [
        ("ann@example.com", "Ann", "botox-cosmetic", "2026-03-02"),
        ("ben@example.com", "Ben", "botox-migraine", "2026-02-27"),
        ("zoe@example.com", "Zoë", "botox-cosmetic", "2026-03-01"),
    ]
    assert [e.marketing_consent for e in enrollments] == [True, False, False]
    assert [e.patient_ref for e in enrollments] == ["P-001", None, "P.003"]
    assert {e.recorded_by for e in enrollments} == {"import:patients.csv"}


def test_wrong_header_names_the_unknown_and_missing_columns_at_line_1(project: Project) -> None:
    assert import_problems(CSV / "wrong-header.csv", project) == [
        "wrong-header.csv:1: expected the columns email, first_name, campaign, treated_on "
        "(required); patient_id, timezone, marketing_consent, language, site (optional); "
        "got unknown column 'phone'; missing column 'treated_on'"
    ]


def test_an_unnamed_column_is_named_by_position(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text(
        "email,first_name,campaign,treated_on,\nann@example.com,Ann,botox-cosmetic,2026-03-02,\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "trailing.csv:1: expected the columns email, first_name, campaign, treated_on "
        "(required); patient_id, timezone, marketing_consent, language, site (optional); "
        "got no name for column 5; delete it or name it"
    ]


def test_semicolon_separated_file_is_explained(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("email;first_name;campaign;treated_on\n", encoding="utf-8")
    assert import_problems(path, project) == [
        "semi.csv:1: expected the columns email, first_name, campaign, treated_on (required); "
        "patient_id, timezone, marketing_consent, language, site (optional); "
        "got columns are separated by ';'; separate them with commas"
    ]


def test_byte_order_mark_is_refused_with_how_to_save(project: Project) -> None:
    assert import_problems(CSV / "bom.csv", project) == [
        "bom.csv:1: expected UTF-8 text without a byte-order mark (BOM); got a file that starts "
        'with one: save it as "CSV UTF-8 without BOM"'
    ]


def test_latin_1_bytes_name_the_first_bad_line(project: Project) -> None:
    assert import_problems(CSV / "latin1.csv", project) == [
        "latin1.csv:3: expected UTF-8 text; got bytes in another encoding (perhaps Latin-1 or "
        'Windows-1252) first on this line: save it as "CSV UTF-8 without BOM"'
    ]


def test_utf_16_is_refused(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("email,first_name,campaign,treated_on\n", encoding="utf-16")
    assert import_problems(path, project) == [
        'wide.csv:1: expected UTF-8 text; got UTF-16: save it as "CSV UTF-8 without BOM"'
    ]


def test_every_bad_row_is_listed_by_line(project: Project) -> None:
    assert import_problems(CSV / "bad-rows.csv", project) == [
        "bad-rows.csv:3: email: expected an email address like name@example.com; "
        "got 'ben@example'",
        "bad-rows.csv:4: campaign: expected one of botox-cosmetic, botox-migraine; "
        "got 'botox-hair'",
        "bad-rows.csv:5: treated_on: expected a real calendar date "
        "(day is out of range for month); got '2026-02-30'",
        "bad-rows.csv:6: treated_on: expected today (2026-03-02 at the clinic) or earlier: "
        "a treatment date cannot be in the future; "
        "got '2026-03-09'",
        "bad-rows.csv:7: timezone: expected an IANA time zone such as America/New_York; "
        "got 'Mars/Olympus'",
    ]


def test_the_error_shows_every_line_and_says_nothing_was_written(project: Project) -> None:
    with pytest.raises(ContentError) as caught:
        read_rows(CSV / "bad-rows.csv", project, NOW, "import:test")
    shown = caught.value.show().splitlines()
    assert len(shown) == 6
    assert shown[-1] == "5 problems found; nothing was written."
    # Never a whole row: the good row's values, and the bad rows' other values, are not echoed.
    assert "ann@example.com" not in caught.value.show()
    assert "Fay" not in caught.value.show()


def test_a_row_with_the_wrong_number_of_values(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "email,first_name,campaign,treated_on\n"
        "ann@example.com,Ann,botox-cosmetic,2026-03-02,extra\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "ragged.csv:2: expected 4 values, one per column; got 5"
    ]


def test_a_quoted_line_break_keeps_later_line_numbers_right(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "multiline.csv"
    path.write_text(
        "email,first_name,campaign,treated_on\n"
        '"ann@example.com","Ann\nMarie",botox-cosmetic,2026-03-02\n'
        "bad,Ben,botox-cosmetic,2026-03-02\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "multiline.csv:2: first_name: expected a name without control characters "
        "(tabs, line breaks); got 'Ann\\nMarie'",
        "multiline.csv:4: email: expected an email address like name@example.com; got 'bad'",
    ]


def test_conflicting_duplicate_rows_are_refused(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "conflict.csv"
    path.write_text(
        "email,first_name,campaign,treated_on,marketing_consent\n"
        "ann@example.com,Ann,botox-cosmetic,2026-03-02,yes\n"
        "ann@example.com,Ann,botox-cosmetic,2026-03-02,no\n",
        encoding="utf-8",
    )
    assert import_problems(path, project) == [
        "conflict.csv:3: expected one row per patient, campaign and treatment date; this row "
        "repeats line 2 with different values (marketing_consent); keep one"
    ]


def test_empty_file_and_header_only_file(project: Project, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert import_problems(empty, project) == [
        "empty.csv:1: expected a header line (email, first_name, campaign, treated_on "
        "(required); patient_id, timezone, marketing_consent, language, site (optional)); "
        "got an empty file"
    ]
    header_only = tmp_path / "header.csv"
    header_only.write_text("email,first_name,campaign,treated_on\n", encoding="utf-8")
    assert import_problems(header_only, project) == [
        "header.csv: expected at least one patient row; got none"
    ]

# ---------------------------------------------------------------- into the outbox

def test_import_stores_every_row_and_reimport_adds_nothing(
    project: Project, outbox: Outbox, tmp_path: Path
) -> None:
    path = tmp_path / "patients.csv"
    shutil.copy(CSV / "patients.csv", path)
    report = import_file(outbox, project, path, NOW, "import:patients.csv")
    assert (report.rows, report.created, report.existing, report.duplicate_rows) == (
        3, 3, 0, 1
    )
    stored = outbox.messages()
    assert len(stored) == 9
    again = import_file(outbox, project, path, NOW, "import:patients.csv")
    assert (again.rows, again.created, again.existing) == (3, 0, 3)
    assert outbox.messages() == stored


def test_nothing_is_written_when_one_row_is_bad(project: Project, outbox: Outbox) -> None:
    with pytest.raises(ContentError) as caught:
        import_file(outbox, project, CSV / "one-bad-row.csv", NOW, "import:one-bad-row.csv")
    assert [str(p) for p in caught.value.problems] == [
        "one-bad-row.csv:4: treated_on: expected today (2026-03-02 at the clinic) or earlier: "
        "a treatment date cannot be in the future; "
        "got '2026-03-20'"
    ]
    assert outbox.messages() == []


def test_import_refuses_an_unsubscribed_address_and_writes_nothing(
    project: Project, outbox: Outbox
) -> None:
    outbox.unsubscribe("ben@example.com", NOW, source="test", actor="test")
    with pytest.raises(ContentError) as caught:
        import_file(outbox, project, CSV / "patients.csv", NOW, "import:patients.csv")
    assert [str(p) for p in caught.value.problems] == [
        "patients.csv:3: email: this address unsubscribed or bounced; remove the row"
    ]
    assert outbox.messages() == []
