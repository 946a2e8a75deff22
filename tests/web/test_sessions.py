"""Sessions kept on the server: a cookie copied before logout, a new password, a removed account
or an idle desk opens nothing; the cookie is a random id, replaced at login."""

from __future__ import annotations

import dataclasses
import io
import re
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

import pipeline
from aftercare.content.model import Project, StaffSettings
from aftercare.render.handouts import HandoutRenderer
from tests.conftest import ROOT
from tests.web.conftest import PASSWORD, USER, Clock, check_out, log_in, make_app, token

COOKIE = "aftercare"


def cookie(client: FlaskClient) -> str:
    found = client.get_cookie(COOKIE)
    assert found is not None
    return found.value


def replay(app: Flask, value: str) -> FlaskClient:
    """Another browser, given a copy of a session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, value)
    return thief


def test_a_cookie_copied_before_logout_opens_nothing_after_it(
    app: Flask, logged_in: FlaskClient, db_path: Path
) -> None:
    copied = cookie(logged_in)
    assert replay(app, copied).get("/outbox").status_code == 200  # a live copy works ...
    response = logged_in.post("/logout", data={"csrf_token": token(logged_in)})
    assert response.status_code == 303
    thief = replay(app, copied)
    for path in ("/checkout", "/outbox", "/patients"):
        refused = thief.get(path)
        assert (refused.status_code, refused.headers["Location"]) == (302, "/login"), path
    # ... and a form posted with the copy and a token read before logout changes nothing.
    posted = thief.post("/checkout", data={"csrf_token": "x", "first_name": "Ann"})
    assert posted.status_code == 302
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM patients").fetchone()[0] == 0


def test_the_cookie_is_a_random_id_that_login_replaces_and_the_database_keeps_its_hash(
    client: FlaskClient, staff: str, db_path: Path
) -> None:
    client.get("/login")
    before = cookie(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", before)
    assert log_in(client, staff, PASSWORD).status_code == 303
    after = cookie(client)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", after) and after != before
    assert USER not in after and "." not in after  # no name, no signed payload
    with sqlite3.connect(db_path) as db:
        (stored,) = db.execute("SELECT id_hash FROM staff_sessions").fetchall()
    assert stored[0] != after and len(stored[0]) == 64


def test_a_cookie_set_before_login_is_not_a_session_after_it(
    app: Flask, client: FlaskClient, staff: str
) -> None:
    client.get("/login")
    planted = cookie(client)  # what a fixation attack would plant
    assert log_in(client, staff, PASSWORD).status_code == 303
    assert replay(app, planted).get("/checkout").status_code == 302


@pytest.fixture
def short_idle(project: Project, db_path: Path, clock: Clock,
               renderer: HandoutRenderer) -> FlaskClient:
    """A clinic whose desks log out after 10 minutes unused."""
    clinic = dataclasses.replace(project.clinic, staff=StaffSettings(idle_timeout_minutes=10))
    app = make_app(dataclasses.replace(project, clinic=clinic), db_path, clock, renderer)
    return app.test_client()


def test_an_idle_session_ends_and_the_login_page_says_why(
    short_idle: FlaskClient, staff: str, clock: Clock
) -> None:
    assert log_in(short_idle, staff, PASSWORD).status_code == 303
    for _ in range(3):  # used every 9 minutes: still open after 27
        clock.advance(minutes=9)
        assert short_idle.get("/checkout").status_code == 200
    clock.advance(minutes=10, seconds=1)
    response = short_idle.get("/checkout")
    assert (response.status_code, response.headers["Location"]) == (302, "/login?ended=idle")
    assert "You were logged out because this page was not used for a while." in (
        short_idle.get(response.headers["Location"]).text)
    assert short_idle.get("/checkout").status_code == 302


def test_the_default_idle_timeout_is_30_minutes(
    logged_in: FlaskClient, clock: Clock
) -> None:
    clock.advance(minutes=29)
    assert logged_in.get("/checkout").status_code == 200
    clock.advance(minutes=30, seconds=1)
    assert logged_in.get("/checkout").status_code == 302


def test_a_session_ends_8_hours_after_login_however_busy(
    logged_in: FlaskClient, clock: Clock
) -> None:
    for _ in range(16):
        clock.advance(minutes=29, seconds=59)
        assert logged_in.get("/checkout").status_code == 200
    clock.advance(minutes=1)
    assert logged_in.get("/checkout").status_code == 302


def staff_command(monkeypatch: pytest.MonkeyPatch, db_path: Path, *args: str,
                  stdin: str = "") -> int:
    monkeypatch.setenv("AFTERCARE_DB", str(db_path))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "s" * 40)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return pipeline.main(["--project", str(ROOT), "staff", *args])


def test_a_new_password_ends_every_session_of_the_account(
    app: Flask, logged_in: FlaskClient, monkeypatch: pytest.MonkeyPatch, db_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other_desk = app.test_client()
    assert log_in(other_desk, USER, PASSWORD).status_code == 303
    assert staff_command(monkeypatch, db_path, "reset-password", USER,
                         stdin="a brand new passphrase\n") == 0
    assert capsys.readouterr().out == "new password set for 'frontdesk'; 2 sessions ended\n"
    assert logged_in.get("/checkout").status_code == 302
    assert other_desk.get("/checkout").status_code == 302
    assert log_in(other_desk, USER, PASSWORD).status_code == 401
    assert log_in(other_desk, USER, "a brand new passphrase").status_code == 303


def test_a_removed_account_is_logged_out_at_once_and_cannot_log_in(
    logged_in: FlaskClient, monkeypatch: pytest.MonkeyPatch, db_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_out(logged_in)
    assert staff_command(monkeypatch, db_path, "remove", USER) == 0
    assert capsys.readouterr().out == (
        "removed staff account 'frontdesk': it can no longer log in; 1 session ended\n")
    assert logged_in.get("/checkout").status_code == 302
    assert log_in(logged_in, USER, PASSWORD).status_code == 401
