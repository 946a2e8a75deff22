"""Patient data's lifecycle meets the API: `pipeline forget` deletes the answers the API keeps
for repeated requests about the patient (they carry the external id), after which the API finds
the patient neither by enrolment id nor by external id; `pipeline retention` deletes every
answer kept over a day (a refusal may quote what was typed)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import pipeline
from tests.conftest import ROOT
from tests.web.api.conftest import call, enrolment
from tests.web.conftest import NOW, SECRET

KEY_HEADER = "Idempotency-Key"


@pytest.fixture
def cli(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line on the app's database, with the app's secret key."""
    monkeypatch.setenv("AFTERCARE_DB", str(db_path))
    monkeypatch.setenv("AFTERCARE_OUTBOX_DIR", str(db_path.parent / "outbox"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", SECRET.decode())
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setattr(pipeline, "_now", lambda: NOW)


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def kept(database: sqlite3.Connection) -> dict[str, str]:
    rows = database.execute("SELECT idempotency_key, body FROM idempotency_keys").fetchall()
    return {str(name): str(body) for name, body in rows}


def stored(db_path: Path) -> bytes:
    """The database's files as they are on disk (the write-ahead log included)."""
    return b"".join(p.read_bytes() for p in db_path.parent.iterdir()
                    if p.name.startswith(db_path.name))


def test_forgetting_a_patient_deletes_the_answers_about_them_and_the_api_finds_them_no_more(
    client: FlaskClient, key: str, cli: None, db_path: Path, database: sqlite3.Connection,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ann = call(client, "POST", "/enrolments", key, json=enrolment(),
               headers={KEY_HEADER: "visit-1"}).json
    rebooked = call(client, "POST", "/patients/P-1042/rebooked", key,
                    json={"appointment_on": "2027-01-04"}, headers={KEY_HEADER: "rebook-1"})
    bo_body = enrolment(patient={"first_name": "Bo", "email": "bo@example.com",
                                 "external_id": "P-7"})
    bo = call(client, "POST", "/enrolments", key, json=bo_body,
              headers={KEY_HEADER: "visit-2"}).json
    assert ann is not None and bo is not None and rebooked.status_code == 200
    answers = kept(database)
    assert sorted(answers) == ["rebook-1", "visit-1", "visit-2"]
    assert all("P-1042" in answers[name] for name in ("visit-1", "rebook-1"))  # why they go
    assert b"P-1042" in stored(db_path)

    assert run("forget", "ann@example.com") == 0
    assert capsys.readouterr().out.startswith("erased the patient's name, address and patient id")
    assert sorted(kept(database)) == ["visit-2"]
    assert b"P-1042" not in stored(db_path) and b"ann@example.com" not in stored(db_path)
    for method, path, body in (("GET", f"/enrolments/{ann['id']}", None),
                               ("POST", f"/enrolments/{ann['id']}/cancel", None),
                               ("POST", f"/enrolments/{ann['id']}/reschedule",
                                {"treated_on": "2026-11-22"}),
                               ("POST", "/patients/P-1042/rebooked",
                                {"appointment_on": "2027-01-04"})):
        gone = call(client, method, path, key, json=body)
        assert gone.status_code == 404, path
    # Another patient's enrolment and kept answer are untouched.
    assert call(client, "GET", f"/enrolments/{bo['id']}", key).status_code == 200
    again = call(client, "POST", "/enrolments", key, json=bo_body, headers={KEY_HEADER: "visit-2"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == bo


def test_retention_deletes_the_answers_kept_over_a_day(
    client: FlaskClient, key: str, cli: None, database: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    typed = enrolment(patient={"first_name": "Ann", "email": "ann.example.com"})
    refused = call(client, "POST", "/enrolments", key, json=typed, headers={KEY_HEADER: "v-9"})
    assert refused.status_code == 422
    assert "ann.example.com" in kept(database)["v-9"]  # a refusal quotes what was typed
    monkeypatch.setattr(pipeline, "_now", lambda: NOW + dt.timedelta(hours=23))
    assert run("retention") == 0
    assert capsys.readouterr().out == "erased 0 patients with no email for 24 months\n"
    assert list(kept(database)) == ["v-9"]  # still within its day: a repeat gets it again
    monkeypatch.setattr(pipeline, "_now", lambda: NOW + dt.timedelta(hours=24, seconds=1))
    assert run("retention") == 0
    assert capsys.readouterr().out == (
        "erased 0 patients with no email for 24 months; deleted 1 API answers kept over a day\n")
    assert kept(database) == {}
