"""The commands on a PostgreSQL outbox: AFTERCARE_DB=postgresql://... selects it, nothing else
changes for the person typing them."""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
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


def test_forget_and_retention_on_postgresql(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for email, name in (("zenobia@example.org", "Zenobia"), ("ben@example.org", "Ben")):
        assert run("enroll", "botox-cosmetic", "--email", email, "--first-name", name,
                   "--treated-on", "2026-11-23", "--aftercare-consent") == 0
    assert run("forget", "Zenobia@Example.org") == 0
    assert capsys.readouterr().out.endswith(
        "(1 enrolments; 2 unsent emails cancelled); the counts and the trail are kept\n")
    assert run("outbox", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    forgotten = [r for r in rows if r["email"].startswith("forgotten:")]
    assert [r["state"] for r in forgotten] == ["cancelled"] * 3
    assert "zenobia" not in json.dumps(rows).lower()
    # Ben's emails are still to come: retention leaves him.
    assert run("retention", "--dry-run") == 0
    assert capsys.readouterr().out == (
        "0 patients have had no email for 24 months; nothing erased (dry run)\n")


def test_backup_on_postgresql_is_a_consistent_dump_that_restores(
    url: str, postgres_server: PostgresServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run("enroll", "botox-cosmetic", "--email", "ana@example.com", "--first-name", "Ana",
               "--treated-on", "2026-11-23", "--aftercare-consent") == 0
    backup = tmp_path / "backups" / "outbox.dump"
    capsys.readouterr()
    # Another program is in the middle of a write: the dump holds only what was committed,
    # and the backup does not wait for it.
    with psycopg.connect(url, autocommit=True) as writer:
        writer.execute("BEGIN")
        writer.execute("INSERT INTO patients (email, first_name, language, created_at)"
                       " VALUES ('half@example.org', 'Half', 'en', '2026-11-23')")
        assert run("backup", str(backup)) == 0
        writer.execute("COMMIT")
    assert capsys.readouterr().out.startswith(f"backed up the outbox to {backup} (")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert [p.name for p in backup.parent.iterdir()] == ["outbox.dump"]  # one whole file
    # Restore as the README says: pg_restore into a new, empty database.
    restored = postgres_server.create_database()
    try:
        done = subprocess.run(["pg_restore", "--no-owner",
                               f"--dbname={postgres_server.url(restored)}", str(backup)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        monkeypatch.setenv("AFTERCARE_DB", postgres_server.url(restored))
        assert run("outbox", "--json") == 0
        rows = json.loads(capsys.readouterr().out)
        assert {r["email"] for r in rows} == {"ana@example.com"}
        assert len(rows) == 3
        with psycopg.connect(postgres_server.url(restored)) as copy:
            assert copy.execute("SELECT count(*) FROM patients").fetchone() == (1,)
    finally:
        postgres_server.drop_database(restored)
    with psycopg.connect(url) as source:
        assert source.execute("SELECT kind, detail FROM events ORDER BY id DESC LIMIT 1"
                              ).fetchone() == ("backed-up", "to outbox.dump")


def test_backup_of_an_outbox_in_a_schema_of_its_own_holds_that_schema(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE SCHEMA clinic")
        db.execute("CREATE TABLE public.other_program (x INTEGER)")
    monkeypatch.setenv("AFTERCARE_DB", f"{url}&options=-csearch_path%3Dclinic")
    backup = tmp_path / "clinic.dump"
    assert run("backup", str(backup)) == 0
    listing = subprocess.run(["pg_restore", "--list", str(backup)], capture_output=True,
                             text=True, check=True).stdout
    assert "TABLE DATA clinic patients" in listing and "TABLE DATA clinic events" in listing
    assert "other_program" not in listing


def test_backup_without_pg_dump_says_what_to_install_and_writes_nothing(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run("outbox") == 0  # the database exists
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    capsys.readouterr()
    assert run("backup", str(tmp_path / "backups" / "outbox.dump")) == 1
    assert capsys.readouterr().err == (
        "error: pg_dump is not installed (or not on the PATH): install PostgreSQL's client "
        "programs, of the server's version or newer (Debian: apt-get install "
        "postgresql-client), then run the backup again; nothing was written\n")
    assert not (tmp_path / "backups").exists()


def test_api_keys_on_postgresql_are_kept_as_hashes_listed_and_revoked(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("apikey", "add", "booking", "--site", "main") == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert key.startswith("aftercare_")
    assert run("apikey", "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["site"], row["revoked_at"]) == ("booking", "main", None)
    assert run("apikey", "revoke", "booking") == 0
    assert run("apikey", "revoke", "booking") == 0
    assert capsys.readouterr().out.endswith("key 'booking' was already revoked\n")
    with psycopg.connect(url) as db:
        stored = db.execute("SELECT key_hash, revoked_at IS NOT NULL FROM api_keys").fetchall()
        trail = db.execute("SELECT count(*) FROM events WHERE kind = 'api-key-revoked'"
                           ).fetchone()
    assert [(len(h), revoked) for h, revoked in stored] == [(64, True)] and key not in stored[0][0]
    assert trail == (1,)
