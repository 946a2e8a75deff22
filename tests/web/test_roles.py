"""Roles and sites on the patient pages: each staff route, for a member it permits and for one
it refuses; a refusal is answered exactly as a missing record is."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.enrol.enrolment import enroll_one
from aftercare.enrol.rules import parse_enrollment
from aftercare.outbox.store import Outbox
from tests.web.conftest import NOW, token
from tests.web.roles_world import (
    A,
    B,
    add_people,
    search,
    signed_in,
    states,
    without_keys,
)
from tests.web.test_security import API, PUBLIC

# Every staff route, and the test below that checks it for a permitted and a refused member.
# A route added later fails the first test until it is added here with its own check.
COVERED = {
    "staff.home": "test_home_and_logout_are_every_members",
    "staff.logout": "test_home_and_logout_are_every_members",
    "staff.checkout": "test_roles_checkout::test_the_checkout_is_at_one_of_the_members_sites",
    "staff.checkout_post": "test_roles_checkout::test_a_checkout_at_a_site_not_theirs_is_refused",
    "staff.checked_out": "test_roles_checkout::test_a_receipt_is_its_members_only",
    "staff.handout_pdf": "test_roles_checkout::test_a_receipt_is_its_members_only",
    "staff.diary_pdf": "test_roles_checkout::test_a_receipt_is_its_members_only",
    "patients.search": "test_look_up_finds_only_patients_of_the_members_sites",
    "patients.search_post": "test_look_up_finds_only_patients_of_the_members_sites",
    "patients.results": "test_a_look_up_is_its_members_only",
    "patients.cancel": "test_acting_on_another_sites_patient_is_answered_as_for_nobody",
    "patients.unsubscribe": "test_acting_on_another_sites_patient_is_answered_as_for_nobody",
    "patients.reschedule": "test_acting_on_another_sites_patient_is_answered_as_for_nobody",
    "patients.resolve": "test_resolving_needs_a_manager_of_the_messages_site",
    "patients.outbox": "test_the_outbox_is_for_managers_and_shows_their_sites, "
                       "test_a_front_desk_gets_no_outbox",
    "figures.page": "test_figures_are_for_managers_of_the_site_and_administrators",
    "figures.export": "test_figures_are_for_managers_of_the_site_and_administrators",
    "team.accounts": "test_roles_staff::test_the_staff_page_lists_the_staff_of_the_managers_sites",
    "team.add": "test_roles_staff::test_a_manager_adds_staff_at_their_sites_only",
    "team.reset_password": "test_roles_staff::test_a_manager_acts_only_on_staff_of_their_sites",
    "team.remove": "test_roles_staff::test_a_manager_acts_only_on_staff_of_their_sites",
}
NOBODY = "nobody@example.com"


@pytest.fixture
def world(app: Flask, db_path: Path, project: Project) -> Flask:
    add_people(db_path, project)
    return app


def test_every_staff_route_is_checked_for_roles(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    staff_routes = {e for e in endpoints - PUBLIC if not e.startswith(f"{API}.")}
    assert staff_routes == set(COVERED)


def test_home_and_logout_are_every_members(world: Flask, database: sqlite3.Connection) -> None:
    desk = signed_in(world, "desk_a")
    assert desk.get("/").headers["Location"] == "/checkout"
    assert desk.post("/logout", data={"csrf_token": token(desk)}).status_code == 303
    actors = [row[0] for row in database.execute(
        "SELECT actor FROM events WHERE kind IN ('staff-login', 'staff-logout') ORDER BY id")]
    assert actors == ["staff:desk_a (front_desk at main)"] * 2
    signed_in(world, "manager_ab")
    last = database.execute("SELECT actor FROM events ORDER BY id DESC LIMIT 1").fetchone()
    assert last[0] == "staff:manager_ab (manager at main, portland)"


@pytest.mark.parametrize(("username", "finds"), [
    ("desk_a", {"ann@example.com"}),
    ("desk_b", {"bea@example.com"}),
    ("manager_ab", {"ann@example.com", "bea@example.com"}),
    ("admin", {"ann@example.com", "bea@example.com"}),
])
def test_look_up_finds_only_patients_of_the_members_sites(
    world: Flask, username: str, finds: set[str]
) -> None:
    client = signed_in(world, username)
    assert client.get("/patients").status_code == 200
    for email in ("ann@example.com", "bea@example.com"):
        page = client.get(search(client, email)).text
        if email in finds:
            assert "1 patient" in page and f"{email}</" in page
            continue
        # Refused: the very page a search for an address no site has gets.
        nobody = client.get(search(client, NOBODY)).text.replace(NOBODY, email)
        assert without_keys(page) == without_keys(nobody)
        assert "No patient has that email address or first name." in page
    by_name = client.get(search(client, "bea")).text
    assert ("bea@example.com</" in by_name) == ("bea@example.com" in finds)


def test_a_look_up_is_its_members_only(world: Flask) -> None:
    desk = signed_in(world, "desk_a")
    results = search(desk, "ann@example.com")
    assert desk.get(results).status_code == 200
    other = signed_in(world, "manager_ab")
    refused, missing = other.get(results), other.get("/patients/" + "x" * 22)
    assert refused.status_code == missing.status_code == 404
    assert refused.text == missing.text


ACTIONS = {
    "cancel": ({"campaign": "botox-cosmetic", "confirm": "yes"}, "cancelled"),
    "unsubscribe": ({"confirm": "yes"}, "unsubscribed"),
    "reschedule": ({"campaign": "botox-cosmetic", "treated_on": "2026-11-22"}, "rescheduled"),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_acting_on_another_sites_patient_is_answered_as_for_nobody(
    world: Flask, db_path: Path, database: sqlite3.Connection, action: str
) -> None:
    fields, kind = ACTIONS[action]
    desk = signed_in(world, "desk_a")
    results = search(desk, "bea@example.com")
    before = states(db_path)

    def post(client: FlaskClient, email: str) -> tuple[int, str]:
        form = {**fields, "email": email, "csrf_token": token(client, results)}
        response = client.post(f"{results}/{action}", data=form)
        return response.status_code, response.text

    assert post(desk, "bea@example.com") == post(desk, NOBODY)
    assert post(desk, "bea@example.com")[0] == 404
    assert states(db_path) == before
    # Without the confirmation step either: no question is asked about another site's patient.
    form = {"email": "bea@example.com", "campaign": "botox-cosmetic",
            "csrf_token": token(desk, results)}
    assert desk.post(f"{results}/{action}", data=form).status_code == 404
    # Site B's own front desk may.
    desk_b = signed_in(world, "desk_b")
    results = search(desk_b, "bea@example.com")
    assert post(desk_b, "bea@example.com")[0] == 303
    assert states(db_path) != before
    actors = {row[0] for row in database.execute("SELECT actor FROM events WHERE kind = ?",
                                                 (kind,))}
    assert actors == {"staff:desk_b (front_desk at portland)"}


def test_a_patient_of_both_sites_is_acted_on_only_where_the_member_works(
    world: Flask, db_path: Path, project: Project
) -> None:
    with Outbox.open(db_path) as outbox:
        for site, day in ((A, "2026-11-20"), (B, "2026-11-23")):
            fields = {"email": "cy@example.com", "first_name": "Cy",
                      "campaign": "botox-cosmetic", "treated_on": day}
            enrollment = parse_enrollment(fields, project, NOW, "cli:test")
            enroll_one(outbox, project, dataclasses.replace(enrollment, site=site), NOW)
    desk = signed_in(world, "desk_a")
    results = search(desk, "cy@example.com")
    page = desk.get(results).text
    assert "Fri 20 Nov 2026" in page and "Mon 23 Nov 2026" not in page
    # A reschedule moves site A's enrolment, though site B's is newer.
    form = {"email": "cy@example.com", "campaign": "botox-cosmetic", "treated_on": "2026-11-21",
            "csrf_token": token(desk, results)}
    assert desk.post(f"{results}/reschedule", data=form).status_code == 303
    cancel = {**form, "confirm": "yes"}
    assert desk.post(f"{results}/cancel", data=cancel).status_code == 303
    with Outbox.open(db_path) as outbox:
        by_site = {(m.site, str(m.treated_on), m.state.value)
                   for m in outbox.messages(email="cy@example.com")}
    assert (A, "2026-11-21", "cancelled") in by_site
    assert {s for site, day, s in by_site if site == B} == {"scheduled", "cancelled"}
    assert {day for site, day, _ in by_site if site == B} == {"2026-11-23"}


def _unknown(db_path: Path) -> dict[str, int]:
    """Every first-day email handed over with no answer: address -> its message id."""
    with Outbox.open(db_path) as outbox:
        claims = outbox.claim_due(NOW + dt.timedelta(days=1, hours=1), 10)
        for claim in claims:
            outbox.mark_unknown(claim.message_id, "SendGrid did not answer", NOW)
        return {str(m.email): m.message_id for m in outbox.messages(status="unknown")}


def test_resolving_needs_a_manager_of_the_messages_site(
    world: Flask, db_path: Path, database: sqlite3.Connection
) -> None:
    unknown = _unknown(db_path)
    assert set(unknown) == {"ann@example.com", "bea@example.com"}

    def resolve(username: str, email: str, message_id: int) -> tuple[int, str]:
        client = signed_in(world, username)
        results = search(client, email)
        form = {"message_id": str(message_id), "outcome": "sent",
                "csrf_token": token(client, results)}
        response = client.post(f"{results}/resolve", data=form)
        return response.status_code, without_keys(response.text)

    # A front desk may not, even at their own site, and sees no button for it.
    desk = signed_in(world, "desk_a")
    assert "Mark as sent" not in desk.get(search(desk, "ann@example.com")).text
    assert resolve("desk_a", "ann@example.com", unknown["ann@example.com"]) == \
        resolve("desk_a", "ann@example.com", 999_999)
    # A manager of site A may not settle site B's message: answered as for no message at all.
    assert resolve("manager_a", "ann@example.com", unknown["bea@example.com"]) == \
        resolve("manager_a", "ann@example.com", 999_999)
    assert resolve("manager_a", "ann@example.com", 999_999)[0] == 404
    assert database.execute("SELECT count(*) FROM messages WHERE state = 'unknown'"
                            ).fetchone()[0] == 2
    manager = signed_in(world, "manager_b")
    assert "Mark as sent" in manager.get(search(manager, "bea@example.com")).text
    assert resolve("manager_b", "bea@example.com", unknown["bea@example.com"])[0] == 303
    row = database.execute("SELECT m.state, e.actor FROM messages m JOIN events e"
                           " ON e.message_id = m.id WHERE m.id = ? ORDER BY e.id DESC",
                           (unknown["bea@example.com"],)).fetchone()
    assert tuple(row) == ("sent", "staff:manager_b (manager at portland)")


@pytest.mark.parametrize(("username", "shows"), [
    ("manager_a", {"Ann"}),
    ("manager_b", {"Bea"}),
    ("manager_ab", {"Ann", "Bea"}),
    ("admin", {"Ann", "Bea"}),
])
def test_the_outbox_is_for_managers_and_shows_their_sites(
    world: Flask, db_path: Path, username: str, shows: set[str]
) -> None:
    _unknown(db_path)
    page = signed_in(world, username).get("/outbox")
    assert page.status_code == 200
    for name in ("Ann", "Bea"):
        assert (f'class="link-button">{name}<' in page.text) == (name in shows)
    assert f'<span class="stat-count">{len(shows)}</span> <span class="stat-label">Unknown' \
        in page.text
    # Rows of several sites say whose they are.
    assert ('<th scope="col">Site</th>' in page.text) == (len(shows) > 1)
    if len(shows) > 1:
        assert f"<td>{A}</td>" in page.text and f"<td>{B}</td>" in page.text
    assert 'href="/outbox"' in page.text and 'href="/staff"' in page.text


@pytest.mark.parametrize("username", ["desk_a", "desk_b"])
def test_a_front_desk_gets_no_outbox(world: Flask, username: str) -> None:
    desk = signed_in(world, username)
    refused, missing = desk.get("/outbox"), desk.get("/no-such-page")
    assert (refused.status_code, refused.text) == (404, missing.text)
    page = desk.get("/patients").text
    assert 'href="/outbox"' not in page and 'href="/staff"' not in page


def test_figures_are_for_managers_of_the_site_and_administrators(world: Flask) -> None:
    for username in ("desk_a", "desk_b"):
        desk = signed_in(world, username)
        missing = desk.get("/no-such-page").text
        for path in ("/figures", "/figures.csv", f"/figures?site={A}"):
            answer = desk.get(path)
            assert (answer.status_code, answer.text) == (404, missing), (username, path)
        assert 'href="/figures"' not in desk.get("/patients").text
    manager = signed_in(world, "manager_a")
    missing = manager.get("/no-such-page").text
    page = manager.get("/figures")
    assert page.status_code == 200 and f'<option value="{A}"' in page.text
    assert f'<option value="{B}"' not in page.text and 'href="/figures"' in page.text
    assert manager.get(f"/figures.csv?site={A}").status_code == 200
    for path in (f"/figures?site={B}", f"/figures.csv?site={B}", "/figures?site=nowhere"):
        answer = manager.get(path)
        assert (answer.status_code, answer.text) == (404, missing), path
    both = signed_in(world, "manager_ab").get(f"/figures?site={B}")
    assert both.status_code == 200 and f'<option value="{A}"' in both.text
    admin = signed_in(world, "admin").get("/figures?site=scottsdale")
    assert admin.status_code == 200 and '<option value="scottsdale" selected>' in admin.text
