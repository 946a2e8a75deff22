"""A database that cannot be written, met from outside: staff are told that nothing was saved
and what to do; a handout already made is still offered; patients see no staff page."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import aftercare.outbox.sqlite
import pipeline
from aftercare.content.model import Project
from aftercare.outbox.sqlite import SQLiteEngine
from aftercare.render.tokens import sign
from tests.conftest import ROOT
from tests.unwritable import unwritable
from tests.web.conftest import SECRET, check_out, token
from tests.web.test_checkout import pdf_text, visible
from tests.web.test_patients import enrol, search

pytest_plugins = ["tests.web.test_public"]  # its fixtures: public_id, webhook


def test_a_read_only_database_at_checkout_still_offers_the_handout_and_says_so(
    logged_in: FlaskClient, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with unwritable(db_path, monkeypatch), caplog.at_level(logging.WARNING, "aftercare.web"):
        response = check_out(logged_in)
        assert response.status_code == 303
        page = logged_in.get(response.headers["Location"])
        pdf = logged_in.get(f"{response.headers['Location']}/handout.pdf")
    text = visible(page.text)
    assert "Handout ready: patient not enrolled" in text
    assert "The patient was not enrolled: nothing was saved" in text
    assert "The database cannot be written: its file or disk is read-only" in text
    assert "check the patient out again with the same details" in text
    assert "Internal Server Error" not in text
    assert pdf.status_code == 200
    printed = pdf_text(pdf.data)
    assert "Ann Quillfeather" in printed
    assert "Mon 7 Dec" not in printed  # no email date: no email will come
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM patients").fetchone()[0] == 0
    assert "checkout not saved: the database is read-only" in caplog.text
    assert "ann@example.com" not in caplog.text and "Quillfeather" not in caplog.text


def test_a_read_only_database_on_a_patient_action_says_nothing_was_saved(
    logged_in: FlaskClient, db_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(db_path, project, "ann@example.com", "Ann")
    results = search(logged_in, "ann@example.com")
    key = results.rsplit("/", 1)[1]
    with unwritable(db_path, monkeypatch):
        response = logged_in.post(f"/patients/{key}/cancel", data={
            "email": "ann@example.com", "campaign": "botox-cosmetic", "confirm": "yes",
            "csrf_token": token(logged_in, results)})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    text = visible(response.text)
    assert "Nothing was saved" in text and "read-only" in text and "Tell the administrator" in text
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM messages WHERE state = 'scheduled'"
                          ).fetchone()[0] == 2


def test_a_locked_database_at_checkout_says_wait_and_try_again(
    logged_in: FlaskClient, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aftercare.outbox.sqlite, "BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        response = check_out(logged_in)
        page = visible(logged_in.get(response.headers["Location"]).text)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "The patient was not enrolled: nothing was saved" in page
    assert "The database is busy: another program is writing to it" in page
    assert "Wait a minute, then try again." in page


def test_a_patient_unsubscribing_meanwhile_gets_a_public_page_without_staff_links(
    client: FlaskClient, public_id: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with unwritable(db_path, monkeypatch):
        response = client.post(f"/unsubscribe?t={sign(public_id, SECRET)}",
                               data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 503
    assert "We could not record your request just now. Nothing was changed." in response.text
    assert "(617) 555-0142" in response.text
    assert "/checkout" not in response.text and "/login" not in response.text


def test_a_webhook_post_meanwhile_is_a_503_so_sendgrid_retries(
    webhook: FlaskClient, public_id: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.web.test_public import bounce, signed

    body = bounce(public_id)
    with unwritable(db_path, monkeypatch):
        response = webhook.post("/webhooks/sendgrid", data=body, headers=signed(body))
    assert (response.status_code, response.text) == (
        503, "database unavailable; nothing was recorded\n")


def test_sqlite_errors_are_named_for_staff(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "x.db")
    connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    connection.execute("CREATE TABLE t (x TEXT)")
    connection.execute("PRAGMA max_page_count = 2")  # a real SQLITE_FULL, without a full disk
    with pytest.raises(sqlite3.OperationalError) as full:
        connection.execute("INSERT INTO t VALUES (?)", ("x" * 10_000,))
    assert engine.storage_problem(full.value) == "full"
    assert engine.storage_problem(sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    assert engine.storage_problem(PermissionError(13, "denied")) == "read-only"
    connection.close()


def test_a_command_on_a_read_only_database_says_nothing_was_saved(
    db_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    enrol(db_path, project, "ann@example.com", "Ann")  # the database exists, up to date
    monkeypatch.setenv("AFTERCARE_DB", str(db_path))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    with unwritable(db_path, monkeypatch):
        code = pipeline.main(["--project", str(ROOT), "cancel", "--email", "ann@example.com"])
    assert code == 1
    assert capsys.readouterr().err == (
        "error: the database is read-only: it cannot be written (its file or disk is "
        "read-only, or belongs to another user); ask the administrator; nothing was saved "
        "(attempt to write a readonly database)\n")
