"""Login throttling: a storm of wrong passwords slows, then locks out, the client that sends it,
never the account for everyone; the administrator reads it in the audit log and can lift it."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import pipeline
from aftercare.web import auth
from tests.conftest import ROOT
from tests.web.conftest import PASSWORD, USER, Clock, add_staff, token

ATTACKER, DESK = "203.0.113.7", "192.0.2.10"


def desk(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def try_login(client: FlaskClient, username: str, password: str) -> TestResponse:
    return client.post("/login", data={
        "username": username, "password": password, "csrf_token": token(client, "/login")})


def fail_until_locked(client: FlaskClient, clock: Clock, username: str) -> list[int]:
    """Wrong passwords, each sent as soon as the client may, until the lockout; the statuses."""
    statuses = []
    for failures in range(auth.LOCK_AT):
        clock.advance(seconds=auth.wait_before(failures).total_seconds())
        statuses.append(try_login(client, username, "wrong password").status_code)
    return statuses


def audit(db_path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT kind, actor, detail FROM events ORDER BY id").fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def test_a_failed_login_storm_from_one_address_never_stops_the_real_user_at_another(
    app: Flask, staff: str, clock: Clock, db_path: Path
) -> None:
    attacker = desk(app, ATTACKER)
    assert fail_until_locked(attacker, clock, USER) == [401] * auth.LOCK_AT
    refused = try_login(attacker, USER, PASSWORD)  # even the right password: not checked
    assert refused.status_code == 429
    assert "cannot log in to this account for now. Try again in 15 minutes" in refused.text
    real_user = desk(app, DESK)
    assert try_login(real_user, USER, PASSWORD).status_code == 303
    assert real_user.get("/checkout").status_code == 200
    clock.advance(minutes=15, seconds=1)  # time lifts the lockout
    assert try_login(attacker, USER, PASSWORD).status_code == 303


def test_wrong_passwords_are_slowed_exponentially_for_that_client_only(
    app: Flask, staff: str, clock: Clock
) -> None:
    attacker, real_user = desk(app, ATTACKER), desk(app, DESK)
    for _ in range(auth.FREE_TRIES):
        assert try_login(attacker, USER, "wrong password").status_code == 401
    too_soon = try_login(attacker, USER, "wrong password")
    assert too_soon.status_code == 429
    assert "Wait 1 seconds, then try again." in too_soon.text
    assert try_login(real_user, USER, PASSWORD).status_code == 303
    clock.advance(seconds=1)
    assert try_login(attacker, USER, "wrong password").status_code == 401
    clock.advance(seconds=1)
    assert try_login(attacker, USER, "wrong password").status_code == 429  # now 2 seconds
    assert [auth.wait_before(n).total_seconds() for n in range(2, 10)] == [
        0, 1, 2, 4, 8, 16, 32, 64]


def test_many_names_from_one_address_lock_that_address_out_of_every_account(
    app: Flask, staff: str, clock: Clock, db_path: Path
) -> None:
    attacker = desk(app, ATTACKER)
    for i in range(auth.CLIENT_LOCK_AT):
        clock.advance(seconds=1)
        assert try_login(attacker, f"guess{i}", "wrong password").status_code == 401
    assert try_login(attacker, USER, PASSWORD).status_code == 429
    assert try_login(desk(app, DESK), USER, PASSWORD).status_code == 303
    locks = [entry for entry in audit(db_path) if entry[0] == "staff-client-locked"]
    assert locks == [("staff-client-locked", "anonymous", f"client {ATTACKER} locked out for 15 "
                      "minutes of every account after 50 failed logins")]


def test_unknown_names_are_slowed_like_real_ones_so_the_delay_tells_nothing(
    app: Flask, staff: str
) -> None:
    for name in (USER, "nobody-here"):
        client = desk(app, f"198.51.100.{len(name)}")
        statuses = [try_login(client, name, "wrong password").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429], name


def test_the_audit_log_tells_the_administrator_without_passwords_or_typed_names(
    app: Flask, staff: str, clock: Clock, db_path: Path
) -> None:
    attacker = desk(app, ATTACKER)
    fail_until_locked(attacker, clock, USER)
    try_login(attacker, "ann@example.com", "hunter2-secret")
    entries = audit(db_path)
    assert entries.count(("staff-login-failed", "staff:frontdesk", None)) == auth.LOCK_AT
    assert ("staff-locked", "staff:frontdesk", f"client {ATTACKER} locked out for 15 minutes "
            "of this account after 10 failed logins") in entries
    assert entries[-1] == ("staff-login-failed", "anonymous", None)
    text = repr(entries) + Path(db_path).read_bytes().decode("latin-1")
    for secret in ("wrong password", "hunter2-secret", "ann@example.com"):
        assert secret not in text


def staff_cli(monkeypatch: pytest.MonkeyPatch, db_path: Path, *args: str) -> int:
    monkeypatch.setenv("AFTERCARE_DB", str(db_path))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "s" * 40)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return pipeline.main(["--project", str(ROOT), "staff", *args])


def test_staff_unlock_lifts_a_lockout_at_once_and_list_shows_it(
    app: Flask, staff: str, clock: Clock, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_staff(db_path, "nurse", PASSWORD)
    attacker = desk(app, ATTACKER)
    fail_until_locked(attacker, clock, USER)
    assert try_login(desk(app, DESK), "nurse", PASSWORD).status_code == 303
    monkeypatch.setattr("pipeline._now", lambda: clock.now)
    assert staff_cli(monkeypatch, db_path, "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "ID  USERNAME   ROLE   LAST LOGIN            LOCKED",
        f"1   frontdesk  staff  never                 yes: {ATTACKER}",
        "2   nurse      staff  2026-11-23 15:02 UTC  no",
        "2 staff accounts",
    ]
    assert staff_cli(monkeypatch, db_path, "unlock", USER) == 0
    assert capsys.readouterr().out == (
        "unlocked 'frontdesk' for every client: 2 failure counts cleared\n")
    assert try_login(attacker, USER, PASSWORD).status_code == 303
    kinds = [entry[:2] for entry in audit(db_path)[-2:]]
    assert kinds == [("staff-unlocked", "cli:" + _user()), ("staff-login", "staff:frontdesk")]


def _user() -> str:
    from aftercare.cli.table import os_user

    return os_user()


def test_old_counts_are_swept_away_by_the_next_login(
    app: Flask, staff: str, clock: Clock, db_path: Path
) -> None:
    for i in range(3):
        try_login(desk(app, f"198.51.100.{i}"), f"guess{i}", "wrong password")
    clock.advance(hours=1, seconds=1)
    try_login(desk(app, "198.51.100.9"), "guess", "wrong password")
    assert try_login(desk(app, DESK), USER, PASSWORD).status_code == 303
    with sqlite3.connect(db_path) as db:
        clients = {row[0] for row in db.execute("SELECT client FROM login_failures")}
    assert clients == {"198.51.100.9"}  # the recent one stays
