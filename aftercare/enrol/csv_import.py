"""Reads a CSV file of patients to enrol: every row checked, every bad row listed, all or none."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aftercare.content.model import Project
from aftercare.enrol.enrolment import plan_for
from aftercare.enrol.rules import FIELDS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from aftercare.enrol.service import Consents, check_enrolment
from aftercare.errors import ContentError, Problem
from aftercare.outbox.records import Enrollment, EnrollResult
from aftercare.outbox.store import Outbox

_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SAVE_AS = 'save it as "CSV UTF-8 without BOM"'


@dataclass(frozen=True)
class ImportReport:
    """What one import did: rows read, enrolments created, and those already in the outbox."""

    rows: int  # distinct enrolments in the file
    created: int
    existing: int  # already enrolled (same email, campaign and treatment date): nothing added
    duplicate_rows: int  # repeated rows inside the file, collapsed into one
    results: tuple[EnrollResult, ...]


@dataclass(frozen=True)
class CsvRow:
    """One checked row: the line it starts on and its enrolment."""

    line: int
    enrollment: Enrollment


def import_file(
    outbox: Outbox, project: Project, path: Path, now: dt.datetime, recorded_by: str
) -> ImportReport:
    """Check a whole CSV file, then store all its enrolments in one transaction, or none."""
    rows, duplicates = read_rows(path, project, now, recorded_by)
    refused = "this address unsubscribed or bounced; remove the row"
    suppressed = [
        Problem(path.name, row.line, "email", refused)
        for row in rows
        if outbox.is_suppressed(row.enrollment.email)
    ]
    if suppressed:
        raise ContentError(suppressed)
    items = [(row.enrollment, plan_for(project, row.enrollment, now)) for row in rows]
    results = outbox.enroll_many(items, now)
    created = sum(1 for result in results if result.created)
    return ImportReport(len(rows), created, len(results) - created, duplicates, tuple(results))


def read_rows(
    path: Path, project: Project, now: dt.datetime, recorded_by: str
) -> tuple[list[CsvRow], int]:
    """Every enrolment of a CSV file with its line, and how many repeated rows were collapsed;
    or a ContentError listing every bad line. Nothing is stored."""
    name = path.name
    text = _decode(path, name)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[Problem] = []
    rows: list[CsvRow] = []
    first_line: dict[tuple[str, str, dt.date], CsvRow] = {}
    duplicates = 0
    try:
        header = next(reader, None)
        if header is None:
            raise _file_error(name, 1, f"expected a header line ({_COLUMNS}); got an empty file")
        columns = _check_header(header, name)
        line = reader.line_num + 1
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(value.strip() for value in record):
                continue  # blank lines, often left at the end by spreadsheets
            if len(record) != len(columns):
                count = f"expected {len(columns)} values, one per column; got {len(record)}"
                problems.append(Problem(name, start, "", count))
                continue
            fields = dict(zip(columns, record, strict=True))
            try:
                # A listed patient agreed to aftercare emails; the reminder consent is a column.
                consents = Consents(aftercare=True, reminders=None, recorded_by=recorded_by)
                enrollment = check_enrolment(fields, consents, project, now, row=start,
                                             source=name)
            except ContentError as exc:
                problems.extend(exc.problems)
                continue
            row = CsvRow(start, enrollment)
            key = (enrollment.email.lower(), enrollment.campaign, enrollment.treated_on)
            earlier = first_line.get(key)
            if earlier is None:
                first_line[key] = row
                rows.append(row)
            elif earlier.enrollment == enrollment:
                duplicates += 1
            else:
                differing = ", ".join(_differences(earlier.enrollment, enrollment))
                problems.append(Problem(name, start, "", (
                    "expected one row per patient, campaign and treatment date; this row "
                    f"repeats line {earlier.line} with different values ({differing}); keep one"
                )))
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, "", f"expected CSV text; {exc}"))
    if problems:
        raise ContentError(problems)
    if not rows:
        raise _file_error(name, None, "expected at least one patient row; got none")
    return rows, duplicates


_COLUMNS = f"{', '.join(REQUIRED_COLUMNS)} (required); {', '.join(OPTIONAL_COLUMNS)} (optional)"


def _check_header(header: Sequence[str], name: str) -> list[str]:
    columns = [column.strip().lower() for column in header]
    problems: list[str] = []
    if len(columns) == 1 and ";" in columns[0]:
        problems.append("columns are separated by ';'; separate them with commas")
    else:
        unknown = [c for c in columns if c and c not in FIELDS]
        unnamed = [str(i) for i, c in enumerate(columns, start=1) if not c]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if unknown:
            problems.append("unknown " + _plural("column", unknown))
        if unnamed:
            # Spreadsheets often leave an empty column at the end of every line.
            problems.append(f"no name for column {', '.join(unnamed)}; delete it or name it")
        if missing:
            problems.append("missing " + _plural("column", missing))
        if repeated:
            problems.append("repeated " + _plural("column", repeated))
    if problems:
        raise _file_error(name, 1, f"expected the columns {_COLUMNS}; got {'; '.join(problems)}")
    return columns


def _plural(noun: str, names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names)
    return f"{noun} {shown}" if len(names) == 1 else f"{noun}s {shown}"


def _differences(first: Enrollment, second: Enrollment) -> list[str]:
    """The CSV columns in which two enrolments differ."""
    columns = {"patient_ref": "patient_id"}
    return [
        columns.get(f.name, f.name)
        for f in dataclasses.fields(first)
        if getattr(first, f.name) != getattr(second, f.name)
    ]


def _decode(path: Path, name: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _file_error(name, None, f"cannot read file: {exc.strerror}") from exc
    if data.startswith(_UTF8_BOM):
        raise _file_error(name, 1, (
            "expected UTF-8 text without a byte-order mark (BOM); got a file that starts "
            f"with one: {_SAVE_AS}"
        ))
    if data.startswith(_UTF16_BOMS):
        raise _file_error(name, 1, f"expected UTF-8 text; got UTF-16: {_SAVE_AS}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(name, data.count(b"\n", 0, exc.start) + 1, (
            "expected UTF-8 text; got bytes in another encoding (perhaps Latin-1 or "
            f"Windows-1252) first on this line: {_SAVE_AS}"
        )) from exc


def _file_error(name: str, line: int | None, message: str) -> ContentError:
    return ContentError([Problem(name, line, "", message)])
