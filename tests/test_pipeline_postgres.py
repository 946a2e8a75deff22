"""The commands on a PostgreSQL outbox: AFTERCARE_DB=postgresql://... selects it, nothing else
changes for the person typing them."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline
from aftercare.cli.table import Settings
from tests.conftest import ROOT
from tests.postgres import PostgresServer

FIXED_NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)  # Mon 15:00 in New York


@pytest.fixture
def url(postgres_server: PostgresServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = postgres_server.create_database()
    location = postgres_server.url(name)
    monkeypatch.setenv("AFTERCARE_DB", location)
    monkeypatch.setenv("AFTERCARE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setattr(pipeline, "_now", lambda: FIXED_NOW)
    try:
        yield location
    finally:
        postgres_server.drop_database(name)


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def test_a_postgresql_url_is_kept_as_it_is_and_a_path_is_the_projects() -> None:
    url = "postgresql://aftercare@db.example/aftercare?sslmode=require"
    assert Settings.from_env(ROOT, {"AFTERCARE_DB": url}, lambda: FIXED_NOW).db == url
    assert Settings.from_env(ROOT, {"AFTERCARE_DB": "var/x.db"}, lambda: FIXED_NOW).db == (
        ROOT / "var" / "x.db")
    assert Settings.from_env(ROOT, {}, lambda: FIXED_NOW).db == ROOT / "var" / "aftercare.db"


def test_enrol_send_and_unsubscribe_on_postgresql(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = set((ROOT / "var").glob("*.db")) if (ROOT / "var").exists() else set()
    enrol = ("enroll", "botox-cosmetic", "--email", "ana@example.com", "--first-name", "Ana",
             "--treated-on", "2026-11-23", "--aftercare-consent", "--marketing-consent")
    assert run(*enrol) == 0
    assert run(*enrol) == 0
    assert "already enrolled" in capsys.readouterr().out
    assert run("send-due", "--now", "2026-11-23T23:00Z") == 0  # day-0, 18:00 in New York
    assert capsys.readouterr().out.startswith("1 due: 1 sent")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert run("unsubscribe", "ANA@Example.com") == 0  # the address in other capitals
    assert "cancelled 2 unsent messages" in capsys.readouterr().out
    assert run("outbox", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["state"] for r in rows) == ["cancelled", "cancelled", "sent"]
    assert run(*enrol) == 1
    assert "this address has unsubscribed" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert run("staff", "add", "FrontDesk") == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert run("staff", "add", "frontdesk") == 1  # names compare without regard to case
    assert "an account called 'frontdesk' already exists" in capsys.readouterr().err
    after = set((ROOT / "var").glob("*.db")) if (ROOT / "var").exists() else set()
    assert after == before  # no SQLite file was made on the way
