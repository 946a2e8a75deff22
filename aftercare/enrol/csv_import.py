"""Reads a CSV file of patients to enrol: every row checked, bad rows listed, all or none, in
memory that does not grow with the file (it is read twice: once to check, once to store)."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aftercare.content.model import ImportLimits, Project
from aftercare.enrol.enrolment import plan_for
from aftercare.enrol.rules import FIELDS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from aftercare.enrol.service import Consents, check_enrolment
from aftercare.errors import ContentError, Problem
from aftercare.outbox.records import Enrollment
from aftercare.outbox.store import Outbox, Plan

MB: Final = 1024 * 1024
MAX_LISTED: Final = 100  # bad rows listed one by one; beyond this, only counted
_CHUNK: Final = 1 << 16
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SAVE_AS = 'save it as "CSV UTF-8 without BOM"'
_REFUSED = "this address unsubscribed or bounced; remove the row"


@dataclass(frozen=True)
class ImportReport:
    """What one import did: rows read, enrolments created, and those already in the outbox."""

    rows: int  # distinct enrolments in the file
    created: int
    existing: int  # already enrolled (same email, campaign and treatment date): nothing added
    duplicate_rows: int  # repeated rows inside the file, collapsed into one


@dataclass(frozen=True)
class CsvRow:
    """One checked row: the line it starts on and its enrolment."""

    line: int
    enrollment: Enrollment


@dataclass(frozen=True)
class CheckedFile:
    """What checking a file keeps for storing it: the lines to enrol (a repeated row's first),
    how many repeats were collapsed, and a digest of the bytes checked."""

    lines: frozenset[int]
    duplicates: int
    digest: bytes


def import_file(
    outbox: Outbox, project: Project, path: Path, now: dt.datetime, recorded_by: str
) -> ImportReport:
    """Check a whole CSV file, then store all its enrolments in one transaction, or none."""
    checked = check_file(path, project, now, recorded_by, outbox.is_suppressed)
    created, existing = outbox.enroll_each(_planned(path, project, now, recorded_by, checked), now)
    return ImportReport(len(checked.lines), created, existing, checked.duplicates)


def check_file(
    path: Path, project: Project, now: dt.datetime, recorded_by: str,
    suppressed: Callable[[str], bool] = lambda _: False,
) -> CheckedFile:
    """Check every row without storing anything; a ContentError lists the bad rows (the first
    ``MAX_LISTED``, then how many more), or says why the file as a whole was refused."""
    name, limits = path.name, project.clinic.csv_import
    _check_size(path, name, limits)
    _check_encoding(path, name)
    listed: list[Problem] = []
    bad_rows = duplicates = 0
    keep: set[int] = set()
    first: dict[bytes, tuple[int, bytes]] = {}  # a row's key -> its first line, its fingerprint
    digest = hashlib.sha256()
    rows = _read(path, project, now, recorded_by, digest)
    for count, (line, result) in enumerate(rows, start=1):
        if count > limits.max_rows:
            listed.append(Problem(name, line, "", (
                f"expected at most {limits.max_rows:,} patient rows (csv_import.max_rows in "
                "clinic.yaml); got more: split the file")))
            break
        problems = result if isinstance(result, list) else []
        if isinstance(result, Enrollment):
            if suppressed(result.email):
                problems.append(Problem(name, line, "email", _REFUSED))
            key, fingerprint = _key(result), _fingerprint(result)
            earlier = first.setdefault(key, (line, fingerprint))
            if earlier[0] == line:
                keep.add(line)
            elif earlier[1] == fingerprint:
                duplicates += 1
            else:
                differing = ", ".join(_differences(earlier[1], fingerprint))
                problems.append(Problem(name, line, "", (
                    "expected one row per patient, campaign and treatment date; this row "
                    f"repeats line {earlier[0]} with different values ({differing}); keep one")))
        if problems:
            bad_rows += 1
            if bad_rows <= MAX_LISTED:
                listed.extend(problems)
    if bad_rows > MAX_LISTED:
        listed.append(Problem(name, None, "", (
            f"{bad_rows:,} rows have problems; the first {MAX_LISTED} are listed: fix them and "
            "import again to see the rest")))
    if listed:
        raise ContentError(listed)
    if not keep:
        raise _file_error(name, None, "expected at least one patient row; got none")
    return CheckedFile(frozenset(keep), duplicates, digest.digest())


def read_rows(
    path: Path, project: Project, now: dt.datetime, recorded_by: str
) -> tuple[list[CsvRow], int]:
    """Every enrolment of a good file with its line, and how many repeated rows were collapsed
    (all in memory: for small files and tests); or the ContentError of ``check_file``."""
    checked = check_file(path, project, now, recorded_by)
    rows = [CsvRow(line, result) for line, result in _read(path, project, now, recorded_by)
            if line in checked.lines and isinstance(result, Enrollment)]
    return rows, checked.duplicates


def _planned(
    path: Path, project: Project, now: dt.datetime, recorded_by: str, checked: CheckedFile
) -> Iterator[tuple[Enrollment, Plan, str]]:
    """The checked file read again, each kept row with its plan; if the file changed since it
    was checked, a ContentError (raised inside the transaction, so nothing is stored)."""
    digest = hashlib.sha256()
    for line, result in _read(path, project, now, recorded_by, digest):
        if line in checked.lines and isinstance(result, Enrollment):
            yield result, plan_for(project, result, now), f"{path.name}:{line}: email"
    if digest.digest() != checked.digest:
        raise _file_error(path.name, None, "the file changed while it was being imported; "
                          "nothing was written: import it again")


def _read(
    path: Path, project: Project, now: dt.datetime, recorded_by: str,
    digest: hashlib._Hash | None = None,
) -> Iterator[tuple[int, Enrollment | list[Problem]]]:
    """Each row that is not blank: the line it starts on, and its enrolment or its problems.

    A wrong header raises; a line the CSV reader cannot read is the last row's problem.
    """
    name = path.name
    # A listed patient agreed to aftercare emails; the reminder consent is a column.
    consents = Consents(aftercare=True, reminders=None, recorded_by=recorded_by)
    with path.open("rb") as raw:
        source = _Digesting(raw, digest) if digest is not None else raw
        text = io.TextIOWrapper(io.BufferedReader(source), encoding="utf-8", newline="")
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise _file_error(name, 1, f"expected a header line ({_COLUMNS}); got an empty "
                                  "file")
            columns = _check_header(header, name)
            line = reader.line_num + 1
            for record in reader:
                start, line = line, reader.line_num + 1
                if not any(value.strip() for value in record):
                    continue  # blank lines, often left at the end by spreadsheets
                if len(record) != len(columns):
                    count = f"expected {len(columns)} values, one per column; got {len(record)}"
                    yield start, [Problem(name, start, "", count)]
                    continue
                fields = dict(zip(columns, record, strict=True))
                try:
                    yield start, check_enrolment(fields, consents, project, now, row=start,
                                                 source=name)
                except ContentError as exc:
                    yield start, list(exc.problems)
        except csv.Error as exc:
            yield reader.line_num, [Problem(name, reader.line_num, "", f"expected CSV text; {exc}")]


class _Digesting(io.RawIOBase):
    """A binary file that adds every byte read to a digest."""

    def __init__(self, raw: io.BufferedReader, digest: hashlib._Hash) -> None:
        self._raw = raw
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)
        self._digest.update(buffer[:count])
        return count


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


# ---------------------------------------------------------------- repeated rows, by digest

_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Enrollment))
_COLUMN_OF: Final = {"patient_ref": "patient_id"}


def _key(enrollment: Enrollment) -> bytes:
    """The row's identity: one enrolment per patient, campaign and treatment date."""
    who = f"{enrollment.email.lower()}\0{enrollment.campaign}\0{enrollment.treated_on}"
    return hashlib.blake2b(who.encode("utf-8"), digest_size=16).digest()


def _fingerprint(enrollment: Enrollment) -> bytes:
    """8 bytes per field, so two rows can be compared field by field without keeping either."""
    return b"".join(hashlib.blake2b(repr(getattr(enrollment, name)).encode("utf-8"),
                                    digest_size=8).digest() for name in _FIELDS)


def _differences(first: bytes, second: bytes) -> list[str]:
    """The CSV columns in which two fingerprinted rows differ."""
    return [_COLUMN_OF.get(name, name) for i, name in enumerate(_FIELDS)
            if first[8 * i: 8 * i + 8] != second[8 * i: 8 * i + 8]]


# ---------------------------------------------------------------- the file as a whole


def _check_size(path: Path, name: str, limits: ImportLimits) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _file_error(name, None, f"cannot read file: {exc.strerror}") from exc
    if size > limits.max_megabytes * MB:
        raise _file_error(name, None, (
            f"expected a file of at most {limits.max_megabytes} MB (csv_import.max_megabytes in "
            f"clinic.yaml); got {math.ceil(size * 10 / MB) / 10} MB: split the file"))


def _check_encoding(path: Path, name: str) -> None:
    """UTF-8 without a byte-order mark, read in chunks; the error names the first bad line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    try:
        with path.open("rb") as handle:
            start = handle.read(len(_UTF8_BOM))
            if start.startswith(_UTF8_BOM):
                raise _file_error(name, 1, (
                    "expected UTF-8 text without a byte-order mark (BOM); got a file that starts "
                    f"with one: {_SAVE_AS}"))
            if start.startswith(_UTF16_BOMS):
                raise _file_error(name, 1, f"expected UTF-8 text; got UTF-16: {_SAVE_AS}")
            chunk = start
            while chunk:
                pending = len(decoder.getstate()[0])  # bytes of a character cut at the chunk's end
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    where = max(exc.start - pending, 0)
                    raise _not_utf8(name, lines + chunk.count(b"\n", 0, where) + 1) from exc
                lines += chunk.count(b"\n")
                chunk = handle.read(_CHUNK)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:  # the file ends inside a character
                raise _not_utf8(name, lines + 1) from exc
    except OSError as exc:
        raise _file_error(name, None, f"cannot read file: {exc.strerror}") from exc


def _not_utf8(name: str, line: int) -> ContentError:
    return _file_error(name, line, (
        "expected UTF-8 text; got bytes in another encoding (perhaps Latin-1 or "
        f"Windows-1252) first on this line: {_SAVE_AS}"))


def _file_error(name: str, line: int | None, message: str) -> ContentError:
    return ContentError([Problem(name, line, "", message)])
