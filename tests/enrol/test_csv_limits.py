"""CSV import limits: a size and a row limit from clinic.yaml, bad rows listed up to a cap, a
file checked and stored in bounded memory (measured on the real command), still all or none."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aftercare.content.model import ImportLimits, Project
from aftercare.enrol import csv_import
from aftercare.enrol.csv_import import MAX_LISTED, check_file, import_file
from aftercare.errors import ContentError
from aftercare.outbox.store import Outbox
from tests.conftest import ROOT
from tests.enrol.conftest import NOW
from tests.measure import measure

HEADER = "email,first_name,campaign,treated_on,patient_id,timezone,marketing_consent,language\n"
PEAK_MB = 200.0  # the limit for a 20 MB file (before: about 12 times the file)


def row(i: int, day: str = "2026-03-02", campaign: str = "botox-cosmetic") -> str:
    """About 220 bytes: long but valid values, so that 20 MB stays under 100,000 rows."""
    return (f"patient.number.{i:07d}.with.a.long.address@mail.example-clinic-domain.com,"
            f"Bartholomew-Maximilian {i:07d} Fitzgerald,{campaign},{day},"
            f"MRN-{i:07d}-{'0' * 40},America/New_York,false,en\n")


def limited(project: Project, **limits: int) -> Project:
    clinic = dataclasses.replace(project.clinic, csv_import=ImportLimits(**limits))
    return dataclasses.replace(project, clinic=clinic)


def problems(path: Path, project: Project) -> list[str]:
    with pytest.raises(ContentError) as caught:
        check_file(path, project, NOW, "import:test")
    return [str(p) for p in caught.value.problems]


def test_a_20_mb_file_with_one_bad_row_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    day = (dt.datetime.now(ZoneInfo("America/New_York")).date() - dt.timedelta(days=3))
    path = tmp_path / "big.csv"
    size, count = len(HEADER), 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        while size < 20 * 1024 * 1024 - 300:
            text = row(count, day.isoformat(), "botox-migraine")
            if count == 47_000:
                text = text.replace("@", "#", 1)
            out.write(text)
            size, count = size + len(text), count + 1
    assert 19.9 * 1024 * 1024 < path.stat().st_size <= 20 * 1024 * 1024
    db = tmp_path / "var" / "aftercare.db"
    env = {**os.environ, "AFTERCARE_DB": str(db), "AFTERCARE_SECRET_KEY": "k" * 40}
    run = measure([sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT), "import",
                   str(path)], env=env)
    assert run.returncode == 1
    assert run.stderr.startswith("big.csv:47002: email: expected an email address like "
                                 "name@example.com; got 'patient.number.0047000.with.a.long")
    assert len(run.stderr.splitlines()) == 1
    assert run.peak_mb < PEAK_MB, f"{run.peak_mb:.0f} MB for a {size / 1024 / 1024:.0f} MB file"
    with Outbox.open(db) as outbox:
        assert outbox.messages() == []


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(HEADER + row(0) * 5000, encoding="utf-8")  # 1.1 MB
    assert problems(path, limited(project, max_megabytes=1)) == [
        "huge.csv: expected a file of at most 1 MB (csv_import.max_megabytes in clinic.yaml); "
        "got 1.1 MB: split the file"]


def test_a_file_over_the_row_limit_is_refused_and_nothing_is_written(
    project: Project, outbox: Outbox, tmp_path: Path
) -> None:
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "\n" + "".join(row(i) for i in range(6)), encoding="utf-8")
    small = limited(project, max_rows=5)
    with pytest.raises(ContentError) as caught:
        import_file(outbox, small, path, NOW, "import:many.csv")
    assert [str(p) for p in caught.value.problems] == [
        "many.csv:8: expected at most 5 patient rows (csv_import.max_rows in clinic.yaml); "
        "got more: split the file"]
    assert outbox.messages() == []
    assert import_file(outbox, limited(project, max_rows=6), path, NOW, "import").created == 6


def test_bad_rows_are_listed_up_to_a_cap_then_counted(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "".join(row(i, "2026-13-01") for i in range(MAX_LISTED + 50)),
                    encoding="utf-8")
    found = problems(path, project)
    assert len(found) == MAX_LISTED + 1
    assert found[0] == ("bad.csv: 150 rows have problems; the first 100 are listed: fix them "
                        "and import again to see the rest")
    assert found[1].startswith("bad.csv:2: treated_on: expected a real calendar date")
    assert found[-1].startswith("bad.csv:101: treated_on:")


def test_a_file_changed_between_checking_and_storing_stores_nothing(
    project: Project, outbox: Outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "moving.csv"
    path.write_text(HEADER + row(1) + row(2), encoding="utf-8")

    def check_then_change(*args: object, **kwargs: object) -> csv_import.CheckedFile:
        checked = check_file(*args, **kwargs)  # type: ignore[arg-type]
        with path.open("a", encoding="utf-8") as out:
            out.write(row(3))  # someone saves the spreadsheet again meanwhile
        return checked

    monkeypatch.setattr(csv_import, "check_file", check_then_change)
    with pytest.raises(ContentError) as caught:
        import_file(outbox, project, path, NOW, "import:moving.csv")
    assert str(caught.value) == ("moving.csv: the file changed while it was being imported; "
                                 "nothing was written: import it again")
    assert outbox.messages() == []


def test_utf_8_is_read_across_chunks_and_a_late_bad_byte_names_its_line(
    project: Project, tmp_path: Path
) -> None:
    chunk, bom = 1 << 16, 3  # the check reads 3 bytes (a possible BOM), then 64 KiB at a time
    prefix = (HEADER + "".join(row(i) for i in range(400))).encode()  # lines 1 to 401
    line = "zoe@example.com,Zoë,botox-cosmetic,2026-03-02,,,,en\n".encode()
    at = len(prefix) + line.index("ë".encode())
    # Blank lines move the two bytes of 'ë' so that a read ends between them.
    blank = (chunk - 1 - (at - bom)) % chunk
    path = tmp_path / "wide.csv"
    path.write_bytes(prefix + b"\n" * blank + line)
    assert (at + blank - bom) % chunk == chunk - 1
    assert len(check_file(path, project, NOW, "import:test").lines) == 401
    path.write_bytes(prefix + b"\n" * blank + line.replace("ë".encode(), b"\xeb"))
    assert problems(path, project) == [
        f"wide.csv:{402 + blank}: expected UTF-8 text; got bytes in another encoding (perhaps "
        'Latin-1 or Windows-1252) first on this line: save it as "CSV UTF-8 without BOM"']
