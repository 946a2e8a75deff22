"""Staff accounts: `pipeline staff add`, scrypt hashes, login and logout, lockout, the audit log."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import pipeline
from aftercare.web import auth
from tests.conftest import ROOT
from tests.web.conftest import PASSWORD, USER, Clock, add_staff, log_in, token

REFUSED = "The username or password is not right."


def events(db: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
    rows = db.execute("SELECT kind, actor, detail FROM events ORDER BY id").fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def test_login_and_logout_are_written_to_the_audit_log(
    client: FlaskClient, staff: str, database: sqlite3.Connection
) -> None:
    response = log_in(client, staff, PASSWORD)
    assert (response.status_code, response.headers["Location"]) == (303, "/checkout")
    page = client.get("/checkout").text
    assert f'<span class="user-name">{USER}</span>' in page
    response = client.post("/logout", data={"csrf_token": token(client)})
    assert (response.status_code, response.headers["Location"]) == (303, "/login?ended=logout")
    assert "You have logged out." in client.get(response.headers["Location"]).text
    assert client.get("/checkout").headers["Location"] == "/login"
    assert events(database) == [
        ("staff-login", "staff:frontdesk", None), ("staff-logout", "staff:frontdesk", None),
    ]


def test_usernames_are_matched_without_regard_to_case(client: FlaskClient, staff: str) -> None:
    assert log_in(client, "FrontDesk", PASSWORD).status_code == 303


@pytest.mark.parametrize(("username", "password"), [
    (USER, "wrong password!"), ("nobody", PASSWORD), ("", ""),
])
def test_a_failed_login_says_the_same_whatever_was_wrong(
    client: FlaskClient, staff: str, username: str, password: str
) -> None:
    response = log_in(client, username, password)
    assert response.status_code == 401
    assert REFUSED in response.text
    assert f'value="{username}"' in response.text  # the username is kept, never the password
    assert password not in response.text or not password


def test_a_success_resets_the_count_of_failures(
    client: FlaskClient, staff: str, clock: Clock, database: sqlite3.Connection
) -> None:
    for failures in range(4):
        clock.advance(seconds=auth.wait_before(failures).total_seconds())
        assert log_in(client, staff, "not the password").status_code == 401
    clock.advance(seconds=auth.wait_before(4).total_seconds())
    assert log_in(client, staff, PASSWORD).status_code == 303
    assert database.execute("SELECT count(*) FROM login_failures WHERE account <> ''"
                            ).fetchone()[0] == 0


def test_a_failed_login_for_no_account_records_nothing_typed(
    client: FlaskClient, staff: str, database: sqlite3.Connection
) -> None:
    log_in(client, "ann@example.com", "anything at all")
    assert events(database) == [("staff-login-failed", "anonymous", None)]


def test_passwords_are_stored_as_salted_scrypt_hashes(
    db_path: Path, database: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real cost, not the tests' cheap one
    assert auth.HASH_METHOD == "scrypt"
    add_staff(db_path, "nurse", PASSWORD)
    add_staff(db_path, "manager", PASSWORD)
    hashes = [row[0] for row in database.execute("SELECT password_hash FROM staff")]
    assert all(h.startswith("scrypt:32768:8:1$") for h in hashes)  # 32 MiB of memory each
    assert hashes[0] != hashes[1]  # a random salt each
    assert PASSWORD.encode() not in db_path.read_bytes()


def run_staff_add(monkeypatch: pytest.MonkeyPatch, username: str, stdin: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return pipeline.main(["--project", str(ROOT), "staff", "add", username])


@pytest.fixture
def cli_env(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AFTERCARE_DB", str(db_path))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    return db_path


def test_staff_add_reads_the_password_from_standard_input(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    client: FlaskClient,
) -> None:
    assert run_staff_add(monkeypatch, "reception", "a long passphrase\n") == 0
    assert capsys.readouterr().out.startswith("added staff account 'reception'")
    assert log_in(client, "reception", "a long passphrase").status_code == 303


@pytest.mark.parametrize(("username", "stdin", "message"), [
    ("reception", "too short\n", "error: password: expected at least 12 characters; got 9"),
    ("reception", "x" * 1025 + "\n", "error: password: expected at most 1024 characters"),
    ("bad name", "a long passphrase\n", "error: USERNAME: expected 1 to 64 letters"),
    ("frontdesk", "a long passphrase\n", "error: USERNAME: an account called 'frontdesk' "
                                         "already exists"),
])
def test_staff_add_refuses_bad_input(
    cli_env: Path, staff: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], username: str, stdin: str, message: str,
) -> None:
    assert run_staff_add(monkeypatch, username, stdin) == 1
    assert capsys.readouterr().err.startswith(message)


def test_staff_add_refuses_the_username_as_password(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_staff_add(monkeypatch, "receptionist1", "receptionist1\n") == 1
    assert capsys.readouterr().err.strip() == (
        "error: password: expected a password that is not the username")


def test_each_staff_command_writes_the_audit_log(
    cli_env: Path, staff: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], database: sqlite3.Connection,
) -> None:
    def run(*args: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return pipeline.main(["--project", str(ROOT), "staff", *args])

    from aftercare.cli.table import os_user

    actor = f"cli:{os_user()}"
    assert run("add", "nurse", stdin="a long passphrase\n") == 0
    assert run("list") == 0
    assert run("reset-password", "nurse", stdin="another passphrase\n") == 0
    assert run("unlock", "nurse") == 0
    assert run("unlock", "no-such-person") == 0
    assert run("remove", "nurse") == 0
    assert run("add", "Nurse", stdin="a long passphrase\n") == 1
    assert run("remove", "nurse") == 1
    assert run("reset-password") == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: USERNAME: an account called 'Nurse' was removed; choose another name, so that "
        "the audit log never mixes two people up",
        "error: USERNAME: no account called 'nurse' (it was removed)",
        "error: staff reset-password: USERNAME is required",
    ]
    assert [e for e in events(database) if e[1] == actor] == [
        ("staff-added", actor, "account nurse"),
        ("staff-listed", actor, None),
        ("staff-password-reset", actor, "account nurse; 0 sessions ended"),
        ("staff-unlocked", actor, "account nurse, every client; 0 failure counts cleared"),
        ("staff-unlocked", actor, "an unknown account, every client; 0 failure counts cleared"),
        ("staff-removed", actor, "account nurse; 0 sessions ended"),
    ]


def test_a_failed_login_is_logged_under_the_accounts_own_spelling(
    client: FlaskClient, staff: str, database: sqlite3.Connection
) -> None:
    log_in(client, "FRONTDESK", "not the password")
    assert events(database) == [("staff-login-failed", "staff:frontdesk", None)]
