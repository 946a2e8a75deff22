"""The API and sites: an enrolment belongs to the site its body names, else to its key's site;
the site's zone times it, and a key of another site may neither see nor change it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask.testing import FlaskClient

from tests.web.api.conftest import add_key, call, enrolment


def test_a_site_keys_enrolment_is_its_sites_and_timed_in_its_zone(
    client: FlaskClient, db_path: Path, database: sqlite3.Connection
) -> None:
    portland = add_key(db_path, "portland-desk", site="portland")
    response = call(client, "POST", "/enrolments", portland, json=enrolment())
    assert response.status_code == 201, response.text
    body = response.json
    assert body is not None
    assert (body["site"], body["timezone"]) == ("portland", "America/Los_Angeles")
    # Day 0 at 18:00 in Portland; the later steps at the site's own 09:30.
    assert [(m["step"], m["due_at"]) for m in body["messages"]] == [
        ("day-0", "2026-11-24T02:00:00Z"), ("week-2", "2026-12-07T17:30:00Z"),
        ("month-3", "2027-02-23T17:30:00Z")]
    assert [tuple(r) for r in database.execute("SELECT site FROM enrollments")] == [
        ("portland",)]
    path = f"/enrolments/{body['id']}"
    assert call(client, "GET", path, portland).status_code == 200
    assert call(client, "GET", path, add_key(db_path, "every-site")).status_code == 200
    scottsdale = add_key(db_path, "scottsdale-desk", site="scottsdale")
    for method, where in (("GET", path), ("POST", f"{path}/cancel")):
        refused = call(client, method, where, scottsdale)
        assert refused.status_code == 403
        assert refused.json is not None and refused.json["detail"] == (
            "this key acts for site 'scottsdale' only; the request is for site 'portland'")


def test_a_key_for_every_site_may_name_one(client: FlaskClient, db_path: Path) -> None:
    response = call(client, "POST", "/enrolments", add_key(db_path, "booking"),
                    json=enrolment(site="scottsdale"))
    assert response.status_code == 201
    assert response.json is not None
    assert (response.json["site"], response.json["timezone"]) == ("scottsdale", "America/Phoenix")


def test_a_site_keys_rebooking_stops_only_its_sites_reminders(
    client: FlaskClient, db_path: Path, database: sqlite3.Connection
) -> None:
    portland = add_key(db_path, "portland-desk", site="portland")
    every = add_key(db_path, "booking")
    # The same patient (P-1042), treated at the organisation's own site and then at Portland.
    assert call(client, "POST", "/enrolments", every,
                json=enrolment(treated_on="2026-11-20")).status_code == 201
    assert call(client, "POST", "/enrolments", portland, json=enrolment()).status_code == 201
    scottsdale = add_key(db_path, "scottsdale-desk", site="scottsdale")
    unknown = call(client, "POST", "/patients/P-1042/rebooked", scottsdale,
                   json={"appointment_on": "2026-12-01"})
    assert unknown.status_code == 404
    response = call(client, "POST", "/patients/P-1042/rebooked", portland,
                    json={"appointment_on": "2026-12-01"})
    assert response.status_code == 200, response.text
    assert response.json is not None
    assert [e["site"] for e in response.json["enrolments"]] == ["portland"]
    assert response.json["stopped"]["cancelled"] == 1
    reminders = database.execute(
        "SELECT e.site, m.state FROM messages AS m JOIN enrollments AS e"
        " ON e.id = m.enrollment_id WHERE m.step_key = 'month-3' ORDER BY e.site").fetchall()
    assert [tuple(r) for r in reminders] == [("main", "scheduled"), ("portland", "cancelled")]
