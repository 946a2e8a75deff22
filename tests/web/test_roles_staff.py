"""Managing staff by role and site: the staff page (a manager sees, adds and acts on the staff
of their own sites only, and never on an administrator), `pipeline staff add --role --site`,
and the rules both follow."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest
from flask import Flask

import pipeline
from aftercare.content.model import Project
from aftercare.errors import InputError
from aftercare.web.roles import StaffMember, check_account, command_line
from tests.conftest import ROOT
from tests.web.conftest import PASSWORD, log_in, token
from tests.web.roles_world import A, B, add_people, signed_in, without_keys

NEW_PASSWORD = "another long passphrase"


@pytest.fixture
def world(app: Flask, db_path: Path, project: Project) -> Flask:
    add_people(db_path, project)
    return app


def ids(database: sqlite3.Connection) -> dict[str, int]:
    return {row[0]: row[1] for row in database.execute("SELECT username, id FROM staff")}


def listed(page: str) -> list[str]:
    """The usernames in the accounts table, in order."""
    return re.findall(r"<tr>\s*<td>([^<]+)</td>", page)


@pytest.mark.parametrize(("username", "sees"), [
    ("manager_a", ["desk_a", "manager_a"]),
    ("manager_b", ["desk_b", "manager_b"]),
    ("manager_ab", ["desk_a", "desk_b", "manager_a", "manager_ab", "manager_b"]),
    ("admin", ["admin", "desk_a", "desk_b", "manager_a", "manager_ab", "manager_b"]),
])
def test_the_staff_page_lists_the_staff_of_the_managers_sites(
    world: Flask, username: str, sees: list[str]
) -> None:
    page = signed_in(world, username).get("/staff")
    assert page.status_code == 200
    assert listed(page.text) == sees
    # Only an administrator may make an administrator.
    assert ('<option value="administrator"' in page.text) == (username == "admin")


def test_a_front_desk_gets_no_staff_page(world: Flask, database: sqlite3.Connection) -> None:
    desk = signed_in(world, "desk_a")
    missing = desk.get("/no-such-page")
    target = ids(database)["desk_a"]
    csrf = token(desk)
    answers = [desk.get("/staff"),
               desk.post("/staff", data={"username": "x1", "password": NEW_PASSWORD,
                                         "role": "front_desk", "site": A, "csrf_token": csrf}),
               desk.post(f"/staff/{target}/password",
                         data={"password": NEW_PASSWORD, "csrf_token": csrf}),
               desk.post(f"/staff/{target}/remove", data={"confirm": "yes", "csrf_token": csrf})]
    assert [(r.status_code, r.text) for r in answers] == [(404, missing.text)] * 4
    assert "x1" not in ids(database)


def test_a_manager_adds_staff_at_their_sites_only(
    world: Flask, database: sqlite3.Connection
) -> None:
    manager = signed_in(world, "manager_a")

    def add(username: str, role: str, *sites: str) -> tuple[int, str]:
        form = {"username": username, "password": NEW_PASSWORD, "role": role,
                "csrf_token": token(manager, "/staff")}
        response = manager.post("/staff", data={**form, "site": list(sites)})
        return response.status_code, response.text

    refusals = {
        ("boss", "administrator"): "Manager accounts may add only front desk and manager "
                                   "accounts at their own sites.",
        ("desk_n", "front_desk", B): "Manager accounts may add only front desk and manager "
                                     "accounts at their own sites.",
        ("desk_x", "front_desk", "north"): "Expected one of main, portland, scottsdale; got "
                                            "&#39;north&#39;.",
        ("nosite", "front_desk"): "A front_desk account needs at least one site.",
        ("desk_a", "front_desk", A): "An account called &#39;desk_a&#39; already exists.",
    }
    for (username, role, *sites), message in refusals.items():
        status, page = add(username, role, *sites)
        assert status == 400 and message in page, page
    assert set(ids(database)) == {"admin", "desk_a", "desk_b", "manager_a", "manager_ab",
                                  "manager_b"}
    status, _ = add("desk_a2", "front_desk", A)
    assert status == 303
    assert "Added desk_a2 (front desk at main)." in manager.get("/staff").text
    row = database.execute("SELECT s.role, ss.site FROM staff s JOIN staff_sites ss"
                           " ON ss.staff_id = s.id WHERE s.username = 'desk_a2'").fetchall()
    assert [tuple(r) for r in row] == [("front_desk", A)]
    audit = database.execute("SELECT actor, detail FROM events WHERE kind = 'staff-added'")
    assert [tuple(r) for r in audit] == [
        ("staff:manager_a (manager at main)", "account desk_a2 as front_desk at main")]
    newcomer = world.test_client()
    assert log_in(newcomer, "desk_a2", NEW_PASSWORD).status_code == 303
    assert newcomer.get("/checkout").status_code == 200


def test_a_manager_acts_only_on_staff_of_their_sites(
    world: Flask, database: sqlite3.Connection
) -> None:
    manager = signed_in(world, "manager_a")
    staff = ids(database)

    def act(target: int, action: str) -> tuple[int, str]:
        form = {"password": NEW_PASSWORD, "confirm": "yes", "csrf_token": token(manager, "/staff")}
        response = manager.post(f"/staff/{target}/{action}", data=form)
        return response.status_code, without_keys(response.text)

    for action in ("password", "remove"):
        missing = act(999_999, action)
        assert missing[0] == 404
        # Site B's staff, a manager of both sites and the administrator: as if no such account.
        for other in ("desk_b", "manager_ab", "admin"):
            assert act(staff[other], action) == missing, (other, action)
    hashes = dict(database.execute("SELECT username, password_hash FROM staff").fetchall())
    assert database.execute("SELECT count(*) FROM staff WHERE disabled = 1").fetchone()[0] == 0
    # Their own site's front desk: a new password (which logs them out), then removal.
    desk = signed_in(world, "desk_a")
    assert act(staff["desk_a"], "password")[0] == 303
    assert desk.get("/checkout").headers["Location"] == "/login"
    assert log_in(world.test_client(), "desk_a", PASSWORD).status_code == 401
    assert log_in(world.test_client(), "desk_a", NEW_PASSWORD).status_code == 303
    after = dict(database.execute("SELECT username, password_hash FROM staff").fetchall())
    assert [name for name in hashes if hashes[name] != after[name]] == ["desk_a"]


def test_removing_asks_first_and_then_the_account_cannot_log_in(
    world: Flask, database: sqlite3.Connection
) -> None:
    manager = signed_in(world, "manager_b")
    target = ids(database)["desk_b"]
    ask = manager.post(f"/staff/{target}/remove", data={"csrf_token": token(manager, "/staff")})
    assert ask.status_code == 200 and "Remove desk_b?" in ask.text
    assert manager.post(f"/staff/{target}/remove", data={
        "confirm": "yes", "csrf_token": token(manager, "/staff")}).status_code == 303
    assert log_in(world.test_client(), "desk_b", PASSWORD).status_code == 401
    assert "desk_b" not in listed(manager.get("/staff").text)
    audit = database.execute("SELECT actor, detail FROM events WHERE kind = 'staff-removed'")
    assert [tuple(r) for r in audit] == [
        ("staff:manager_b (manager at portland)", "account desk_b; 0 sessions ended")]


# ---------------------------------------------------------------- the rules


MANAGER_A = StaffMember(1, "m", "manager", frozenset({A}))


@pytest.mark.parametrize(("who", "role", "sites", "may"), [
    (MANAGER_A, "front_desk", (A,), True),
    (MANAGER_A, "manager", (A,), True),
    (MANAGER_A, "front_desk", (A, B), False),  # works at a site of someone else's too
    (MANAGER_A, "front_desk", (B,), False),
    (MANAGER_A, "administrator", None, False),
    (MANAGER_A, "front_desk", None, False),  # no sites stored: every site
    (MANAGER_A, "janitor", (A,), False),
    (StaffMember(2, "d", "front_desk", frozenset({A})), "front_desk", (A,), False),
    (StaffMember(3, "x", "administrator", None), "administrator", None, True),
    (StaffMember(4, "u", "owner", None), "front_desk", (A,), False),  # a role nobody knows
])
def test_who_manages_whom(
    who: StaffMember, role: str, sites: tuple[str, ...] | None, may: bool
) -> None:
    assert who.may_manage(role, sites) is may


def test_what_each_role_may_do_where() -> None:
    desk = StaffMember(1, "d", "front_desk", frozenset({A}))
    assert desk.may("checkout", A) and desk.may("lookup", A) and desk.may("lookup")
    assert not desk.may("checkout", B) and not desk.may("outbox") and not desk.may("staff")
    assert MANAGER_A.may("outbox", A) and MANAGER_A.may("resolve", A)
    assert MANAGER_A.may("figures", A) and not MANAGER_A.may("figures", B)
    admin = command_line("ops")
    assert all(admin.may(action, "anywhere") for action in ("checkout", "lookup", "outbox",
                                                             "resolve", "staff", "figures"))
    assert admin.actor() == "staff:ops (administrator at every site)"


@pytest.mark.parametrize(("role", "sites", "message"), [
    ("administrator", (A,), "site: an administrator works at every site; name no site"),
    ("manager", (), "site: a manager account needs at least one site"),
    ("front_desk", ("elsewhere",), "site: expected one of main, portland; got 'elsewhere'"),
    ("clerk", (A,), "role: expected one of front_desk, manager, administrator; got 'clerk'"),
])
def test_a_new_accounts_role_and_sites_are_checked(
    role: str, sites: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InputError) as caught:
        check_account(command_line("ops"), role, sites, (A, B))
    assert str(caught.value) == message
    assert check_account(command_line("ops"), "front_desk", (B, A, B), (A, B)) == (
        "front_desk", (A, B))


# ---------------------------------------------------------------- the command line


def staff_cli(monkeypatch: pytest.MonkeyPatch, db_path: Path, *args: str, stdin: str = "") -> int:
    monkeypatch.setenv("AFTERCARE_DB", str(db_path))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "s" * 40)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return pipeline.main(["--project", str(ROOT), "staff", *args])


def test_staff_add_with_a_role_and_sites(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, capsys: pytest.CaptureFixture[str],
    database: sqlite3.Connection,
) -> None:
    password = PASSWORD + "\n"
    assert staff_cli(monkeypatch, db_path, "add", "desk", "--role", "front_desk", "--site", A,
                     stdin=password) == 0
    assert capsys.readouterr().out == (
        "added staff account 'desk': front_desk at main; start the staff page with "
        "`pipeline serve`\n")
    # Without --role: an administrator of every site, as before, and it says so.
    assert staff_cli(monkeypatch, db_path, "add", "boss", stdin=password) == 0
    assert capsys.readouterr().out.startswith(
        "added staff account 'boss': administrator at every site;")
    assert staff_cli(monkeypatch, db_path, "list") == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [line[1:4] for line in lines[1:3]] == [
        ["boss", "administrator", "every"], ["desk", "front_desk", "main"]]
    refused = [
        (("add", "m1", "--role", "manager"), "error: --site: a manager account needs at least "
                                             "one site"),
        (("add", "a1", "--role", "administrator", "--site", A),
         "error: --site: an administrator works at every site; name no site"),
        (("add", "d1", "--role", "front_desk", "--site", "north"),
         "error: --site: expected one of main, portland, scottsdale; got 'north'"),
        (("remove", "desk", "--site", A), "error: staff remove: --role and --site go with add "
                                          "only"),
    ]
    for args, message in refused:
        assert staff_cli(monkeypatch, db_path, *args, stdin=password) != 0
        assert capsys.readouterr().err.startswith(message), args
    names = [row[0] for row in database.execute("SELECT username FROM staff ORDER BY id")]
    assert names == ["desk", "boss"]
