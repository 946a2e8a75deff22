"""The API beside the staff pages' hardening: it neither makes nor keeps alive a staff session,
the request log names its key (never a patient or a path's ids), and a database that cannot be
written is a problem detail like every other refusal."""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aftercare.outbox.store import Outbox
from tests.unwritable import unwritable
from tests.web.api.conftest import add_key, call, enrolment
from tests.web.conftest import NOW, Clock

PROBLEM = "application/problem+json"
LINE = re.compile(r"(GET|POST) (\S+) (\d{3}) \d+ms (public|staff#\d+|api:[a-z0-9._-]+)")


def test_a_staff_cookie_sent_to_the_api_neither_refreshes_nor_ends_the_session(
    logged_in: FlaskClient, key: str, clock: Clock, database: sqlite3.Connection
) -> None:
    def last_seen() -> str:
        (row,) = database.execute("SELECT last_seen_at FROM staff_sessions").fetchall()
        return str(row[0])

    seen = last_seen()
    clock.advance(minutes=20)  # past the minute after which a staff page would refresh it
    answer = call(logged_in, "POST", "/enrolments", key, json=enrolment())
    assert answer.status_code == 201 and "Set-Cookie" not in answer.headers
    assert last_seen() == seen
    clock.advance(minutes=11)  # 31 minutes idle at the desk: the API calls did not count
    assert call(logged_in, "GET", "/openapi.json", None).headers.get("Set-Cookie") is None
    assert database.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 1
    page = logged_in.get("/checkout")
    assert (page.status_code, page.headers["Location"]) == (302, "/login?ended=idle")
    # An API call never creates a session either.
    assert database.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 0
    call(logged_in.application.test_client(), "GET", "/enrolments/" + "0" * 32, key)
    assert database.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 0


def test_the_request_log_names_the_key_and_the_route_pattern_only(
    client: FlaskClient, logged_in: FlaskClient, key: str, db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = add_key(db_path, "old-desk")
    with Outbox.open(db_path) as outbox:
        outbox.api_keys.revoke("old-desk", NOW, "cli:admin")
    with caplog.at_level(logging.DEBUG, logger="aftercare"):
        made = call(client, "POST", "/enrolments", key, json=enrolment(),
                    headers={"Idempotency-Key": "visit-5521"})
        assert made.json is not None
        call(client, "GET", f"/enrolments/{made.json['id']}", key)
        call(client, "POST", "/patients/P-1042/rebooked", key,
             json={"appointment_on": "2027-01-04"})
        call(client, "GET", "/openapi.json", None)
        call(client, "POST", "/unsubscribe", None, json={"email": "ann@example.com"})
        call(client, "POST", "/unsubscribe", "not-a-key", json={"email": "ann@example.com"})
        call(client, "GET", f"/enrolments/{made.json['id']}", old)
        call(logged_in, "GET", f"/enrolments/{made.json['id']}", None)  # a login is no key
        call(client, "GET", "/nowhere/P-1042", key)
    lines = []
    for record in caplog.records:
        if record.name == "aftercare.requests":
            match = LINE.fullmatch(record.getMessage())
            assert match, record.getMessage()
            lines.append(match.groups())
    assert lines == [
        ("POST", "/api/v1/enrolments", "201", "api:booking"),
        ("GET", "/api/v1/enrolments/<public_id>", "200", "api:booking"),
        ("POST", "/api/v1/patients/<external_id>/rebooked", "200", "api:booking"),
        ("GET", "/api/v1/openapi.json", "200", "public"),
        ("POST", "/api/v1/unsubscribe", "401", "public"),
        ("POST", "/api/v1/unsubscribe", "401", "public"),
        ("GET", "/api/v1/enrolments/<public_id>", "401", "api:old-desk"),
        ("GET", "/api/v1/enrolments/<public_id>", "401", "public"),
        ("GET", "(unmatched)", "404", "public"),
    ]
    for secret in ("P-1042", made.json["id"], "ann@example.com", "Ann", "visit-5521", key, old,
                   "not-a-key", "Bearer", "2027-01-04"):
        assert secret not in caplog.text, secret


def test_a_database_that_cannot_be_written_is_a_503_problem_with_nothing_changed(
    client: FlaskClient, key: str, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    database: sqlite3.Connection, caplog: pytest.LogCaptureFixture,
) -> None:
    with unwritable(db_path, monkeypatch), caplog.at_level(logging.WARNING, "aftercare"):
        answer = call(client, "POST", "/enrolments", key, json=enrolment())
    assert (answer.status_code, answer.mimetype) == (503, PROBLEM)
    assert answer.headers["Retry-After"] == "60"
    assert answer.json == {
        "type": "about:blank", "title": "Service Unavailable", "status": 503,
        "detail": "the database is read-only; nothing was changed; try again later"}
    assert database.execute("SELECT count(*) FROM patients").fetchone()[0] == 0
    assert "ann@example.com" not in caplog.text and "Ann" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_errors_under_the_api_are_problems_and_elsewhere_pages(
    app: Flask, client: FlaskClient
) -> None:
    under = client.get("/api/v2/enrolments")
    assert (under.status_code, under.mimetype) == (404, PROBLEM)
    assert under.json is not None and under.json["status"] == 404
    page = client.get("/nowhere")
    assert (page.status_code, page.mimetype) == (404, "text/html")
    assert "/api/v1/openapi.json" not in page.text and 'href="/outbox"' not in page.text
