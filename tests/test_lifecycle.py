"""Patient data's lifecycle from the command line, on real SQLite files: forget, retention,
backup and restore."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline
from aftercare.outbox.store import Outbox
from tests.conftest import ROOT


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # 10:00 at the clinic

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(pipeline, "_now", clock)
    return clock


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var" / "aftercare.db"
    monkeypatch.setenv("AFTERCARE_DB", str(path))
    monkeypatch.setenv("AFTERCARE_OUTBOX_DIR", str(tmp_path / "var" / "outbox"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    return path


SENT_AT = ("2026-11-23T23:00:00Z", "2026-12-07T15:00:00Z", "2027-02-23T15:00:00Z")


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def enrol(email: str, name: str, day: str, patient_id: str) -> None:
    assert run("enroll", "botox-cosmetic", "--email", email, "--first-name", name,
               "--treated-on", day, "--patient-id", patient_id, "--aftercare-consent",
               "--reminder-consent") == 0


def stored(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


@pytest.fixture
def sent(db: Path, clock: Clock, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """Zenobia, treated on 23 November 2026, has had all three of her emails."""
    enrol("zenobia@example.org", "Zenobia", "2026-11-23", "MRN-4471")
    for moment in SENT_AT:  # 18:00 on the day, 10:00 two weeks and three months later
        assert run("send-due", "--now", moment) == 0
    capsys.readouterr()
    yield db


def test_forget_erases_the_patient_from_the_database_files(
    sent: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert b"zenobia@example.org" in stored(sent)
    assert run("forget", "zenobia@example.org") == 0
    assert capsys.readouterr().out == (
        "erased the patient's name, address and patient id (1 enrolments; 0 unsent emails "
        "cancelled); the counts and the trail are kept\n")
    data = stored(sent)
    for value in (b"zenobia", b"Zenobia", b"MRN-4471"):
        assert value not in data
    with sqlite3.connect(sent) as db:
        assert db.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall() == [
            ("sent", 3)]
        kinds = [row[0] for row in db.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("sent") == 3 and kinds[-1] == "patient-forgotten"
    assert run("forget", "zenobia@example.org") == 0
    assert capsys.readouterr().out == "this address was erased before; nothing is left to erase\n"
    assert run("forget", "nobody@example.org") == 1
    assert capsys.readouterr().err == (
        "error: EMAIL: no patient with this address in the outbox; nothing to erase\n")


def test_retention_erases_only_patients_quiet_for_24_months(
    sent: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Her last email went at 15:00 on 23 February 2027. Ben comes in two years later.
    clock.now = dt.datetime(2029, 2, 20, 15, 0, tzinfo=dt.UTC)
    enrol("ben@example.org", "Benedikt", "2029-02-20", "MRN-9001")
    capsys.readouterr()
    clock.now = dt.datetime(2029, 2, 23, 15, 0, tzinfo=dt.UTC)
    assert run("retention") == 0
    assert capsys.readouterr().out == "erased 0 patients with no email for 24 months\n"
    clock.now += dt.timedelta(seconds=1)
    assert run("retention", "--dry-run") == 0
    assert capsys.readouterr().out == (
        "1 patients have had no email for 24 months; nothing erased (dry run)\n")
    assert b"zenobia@example.org" in stored(sent)
    assert run("retention") == 0
    assert capsys.readouterr().out == "erased 1 patients with no email for 24 months\n"
    data = stored(sent)
    assert b"zenobia" not in data and b"MRN-4471" not in data
    assert b"ben@example.org" in data and b"Benedikt" in data


def test_a_backup_is_a_consistent_owner_only_copy_that_restores(
    sent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backup = tmp_path / "backups" / "outbox.db"
    # Another program is in the middle of a write: the copy holds only what was committed.
    # (The backup's own audit entry waits for that write to finish, as any writer would.)
    writer = sqlite3.connect(sent, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO patients (email, first_name, language, created_at)"
                   " VALUES ('half@example.org', 'Half', 'en', '2026-11-23')")
    finish = threading.Timer(1.0, lambda: writer.execute("COMMIT"))
    finish.start()
    try:
        assert run("backup", str(backup)) == 0
    finally:
        finish.join()
        writer.close()
    assert capsys.readouterr().out.startswith(f"backed up the outbox to {backup} (")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert sorted(p.name for p in backup.parent.iterdir()) == ["outbox.db"]  # one whole file
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        emails = [row[0] for row in copy.execute("SELECT email FROM patients")]
    assert emails == ["zenobia@example.org"]
    # Restore as the README says: stop everything, copy the file in place of the database.
    restored = tmp_path / "restored" / "aftercare.db"
    restored.parent.mkdir()
    shutil.copy(backup, restored)
    monkeypatch.setenv("AFTERCARE_DB", str(restored))
    assert run("outbox") == 0
    listing = capsys.readouterr().out
    assert listing.count("zenobia@example.org") == 3 and "half@example.org" not in listing
    with Outbox.open(sent) as outbox:
        assert outbox.events()[-1].kind == "backed-up"
        assert outbox.events()[-1].detail == "to outbox.db"


def test_backup_replaces_an_older_copy_and_refuses_the_database_itself(
    sent: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "outbox-backup.db"
    backup.write_bytes(b"yesterday's copy")
    assert run("backup", str(backup)) == 0
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    assert run("backup", str(sent)) == 1
    assert capsys.readouterr().err == (
        f"error: {sent}: that is the database itself; name another file\n")
