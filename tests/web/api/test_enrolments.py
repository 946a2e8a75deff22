"""POST, GET, cancel and reschedule an enrolment through the API, with the desk's rule set, and
the desk and the API seeing each other's enrolments."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.enrol.rules import CONSENT_WORDING_VERSION, consent_wording_version
from aftercare.outbox.store import Outbox
from tests.web.api.conftest import DAY, Contract, call, enrolment
from tests.web.conftest import NOW, check_out, token
from tests.web.test_recheckout import visible

PLAN = [  # treated Monday 23 November 2026 in New York
    {"step": "day-0", "kind": "clinical", "status": "scheduled",
     "due_at": "2026-11-23T23:00:00Z", "due_local": "2026-11-23T18:00:00-05:00", "note": None},
    {"step": "week-2", "kind": "clinical", "status": "scheduled",
     "due_at": "2026-12-07T15:00:00Z", "due_local": "2026-12-07T10:00:00-05:00", "note": None},
    {"step": "month-3", "kind": "marketing", "status": "scheduled",
     "due_at": "2027-02-23T15:00:00Z", "due_local": "2027-02-23T10:00:00-05:00", "note": None},
]


def enrol(client: FlaskClient, key: str, **changes: object) -> dict[str, object]:
    response = call(client, "POST", "/enrolments", key, json=enrolment(**changes))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json  # type: ignore[assignment]
    return body


def test_an_enrolment_is_created_with_its_planned_messages_and_its_consents(
    client: FlaskClient, key: str, database: sqlite3.Connection
) -> None:
    response = call(client, "POST", "/enrolments", key, json=enrolment())
    assert response.status_code == 201
    body = response.json
    assert body is not None
    public_id = body.pop("id")
    assert response.headers["Location"] == f"/api/v1/enrolments/{public_id}"
    assert body == {
        "site": "main", "campaign": "botox-cosmetic", "treatment": "cosmetic",
        "treated_on": "2026-11-23", "timezone": "America/New_York", "language": "en",
        "external_patient_id": "P-1042",
        "consents": {"aftercare": True, "reminders": True, "recorded_by": "api:booking/maria",
                     "recorded_at": "2026-11-23T15:00:00Z",
                     "wording_version": CONSENT_WORDING_VERSION},
        "created_at": "2026-11-23T15:00:00Z", "messages": PLAN, "created": True, "changes": [],
    }
    # The opaque id is not the row id, and no name or address is ever given back.
    (row_id,) = database.execute("SELECT id FROM enrollments").fetchone()
    assert public_id != str(row_id) and len(public_id) == 32
    assert "Ann" not in response.text and "ann@example.com" not in response.text
    (trail,) = database.execute(
        "SELECT actor, detail FROM events WHERE kind = 'enrolled'").fetchall()
    assert tuple(trail) == ("api:booking/maria", "aftercare consent: yes; reminder consent: yes "
                            f"(wording {CONSENT_WORDING_VERSION})")
    fetched = call(client, "GET", f"/enrolments/{public_id}", key)
    assert fetched.status_code == 200
    assert fetched.json == {**{k: v for k, v in body.items() if k not in ("created", "changes")},
                            "id": public_id}


def test_the_treatment_names_the_campaign_and_the_one_site_may_be_named(
    client: FlaskClient, key: str
) -> None:
    body = enrol(client, key, campaign=None, treatment="migraine", site="main")
    assert (body["campaign"], body["treatment"], body["site"]) == (
        "botox-migraine", "migraine", "main")


def test_a_repeat_returns_the_same_enrolment_and_a_changed_consent_is_applied(
    client: FlaskClient, key: str
) -> None:
    first = enrol(client, key)
    again = call(client, "POST", "/enrolments", key, json=enrolment())
    assert again.status_code == 200 and again.json is not None
    assert (again.json["id"], again.json["created"], again.json["changes"]) == (
        first["id"], False, [])
    withdrawn = enrolment(consents={"aftercare": True, "reminders": False, "recorded_by": "jo",
                                    "wording_version": CONSENT_WORDING_VERSION})
    changed = call(client, "POST", "/enrolments", key, json=withdrawn)
    assert changed.status_code == 200 and changed.json is not None
    assert changed.json["changes"] == [
        "Reminder consent withdrawn: cancelled 1 reminder (month-3, Tue 23 Feb)"]
    assert changed.json["consents"]["reminders"] is False
    assert changed.json["consents"]["recorded_by"] == "api:booking/jo"
    assert changed.json["messages"][2]["status"] == "cancelled"
    assert changed.json["messages"][2]["note"] == "reminder consent withdrawn"


def test_every_invalid_field_is_reported_with_its_json_pointer(
    client: FlaskClient, key: str, contract: Contract
) -> None:
    body = {
        "campaign": 3, "colour": "blue",
        "patient": {"first_name": "", "email": "not-an-address", "external_id": "P 1",
                    "timezone": "Mars/Olympus", "language": "xx"},
        "treated_on": "2026-11-24",
        "consents": {"aftercare": False, "reminders": "yes", "recorded_by": "maria",
                     "wording_version": "old"},
    }
    response = call(client, "POST", "/enrolments", key, json=body)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.json is not None
    assert {k: response.json[k] for k in ("type", "title", "status", "detail")} == {
        "type": "tag:aftercare-pipeline,2026:problem:invalid-fields",
        "title": "Some fields are not valid", "status": 422,
        "detail": "11 fields to fix; nothing was changed"}
    expected = [
        ("/campaign", "expected a string; got a number"),
        ("/colour", "expected one of campaign, treatment, site, p"),
        ("/consents/aftercare", "required: enrol a patient only once they agr"),
        ("/consents/reminders", "expected true or false; got a string"),
        ("/consents/wording_version",
         f"expected {CONSENT_WORDING_VERSION!r}, the version of the consent"[:44]),
        ("/patient/email", "expected an email address like name@example."),
        ("/patient/external_id", "expected up to 64 letters, digits, '.', '_' "),
        ("/patient/first_name", "expected a first name; got nothing"),
        ("/patient/language", "expected one of en, es (the languages the content is "),
        ("/patient/timezone", "expected an IANA time zone such as America/N"),
        ("/treated_on", "expected today (2026-11-23 at the clinic) or "),
    ]
    found = [(e["pointer"], e["detail"][:40]) for e in response.json["errors"]]
    assert found == [(where, detail[:40]) for where, detail in expected]
    assert contract.exchanges[-1].request_errors  # the document refuses it too


def test_a_body_that_is_not_an_object_or_misses_members_is_a_422(
    client: FlaskClient, key: str
) -> None:
    response = call(client, "POST", "/enrolments", key, json=["not", "an", "object"])
    assert response.status_code == 422 and response.json is not None
    assert response.json["errors"] == [{"pointer": "", "detail": "expected a JSON object; got "
                                                                 "an array"}]
    response = call(client, "POST", "/enrolments", key, json={})
    assert response.json is not None
    assert [e["pointer"] for e in response.json["errors"]] == [
        "/campaign", "/consents", "/patient", "/treated_on"]


def test_a_spanish_enrolment_records_the_spanish_wording_and_refuses_the_english_one(
    client: FlaskClient, key: str, project: Project
) -> None:
    spanish = consent_wording_version(project, "es")
    assert spanish != CONSENT_WORDING_VERSION
    patient = {"first_name": "Ana", "email": "ana@example.com", "language": "es"}
    read_english = call(client, "POST", "/enrolments", key, json=enrolment(patient=patient))
    assert read_english.status_code == 422
    fields = {error["pointer"] for error in read_english.json["errors"]}  # type: ignore[index]
    assert fields == {"/consents/wording_version"}
    consents = {"aftercare": True, "reminders": False, "recorded_by": "maria",
                "wording_version": spanish}
    body = enrol(client, key, patient=patient, consents=consents)
    assert body["language"] == "es"
    assert body["consents"]["wording_version"] == spanish  # type: ignore[index]


def test_a_site_this_installation_does_not_have_and_a_mismatched_treatment_are_refused(
    client: FlaskClient, key: str
) -> None:
    response = call(client, "POST", "/enrolments", key,
                    json=enrolment(site="north", treatment="migraine"))
    assert response.status_code == 422 and response.json is not None
    assert response.json["errors"] == [
        {"pointer": "/site", "detail": "expected main (the sites of this installation); "
                                       "got 'north'"},
        {"pointer": "/treatment", "detail": "expected the treatment of campaign "
                                            "'botox-cosmetic', or only one of the two; got "
                                            "'migraine' (botox-migraine)"}]


def test_an_unsubscribed_address_is_refused_at_its_pointer(
    client: FlaskClient, key: str, db_path: Path
) -> None:
    with Outbox.open(db_path) as outbox:
        outbox.unsubscribe("ann@example.com", NOW, source="link", actor="patient")
    response = call(client, "POST", "/enrolments", key, json=enrolment())
    assert response.status_code == 422 and response.json is not None
    assert response.json["errors"] == [{"pointer": "/patient/email", "detail": (
        "this address has unsubscribed; it cannot be enrolled again")}]


def test_an_unknown_enrolment_is_a_404_and_ids_are_never_row_numbers(
    client: FlaskClient, key: str
) -> None:
    enrol(client, key)
    for public_id in ("0" * 32, "1", "../enrolments"):
        response = call(client, "GET", f"/enrolments/{public_id}", key)
        assert response.status_code == 404 and response.json is not None
        assert response.json["detail"] in ("no enrolment has this id",
                                           "no such resource in this API; see "
                                           "/api/v1/openapi.json")


def test_cancel_stops_the_unsent_messages_of_that_enrolment_only(
    client: FlaskClient, key: str
) -> None:
    first = enrol(client, key)
    other = enrol(client, key, campaign="botox-migraine")
    response = call(client, "POST", f"/enrolments/{first['id']}/cancel", key)
    assert response.status_code == 200 and response.json is not None
    assert response.json["stopped"] == {"cancelled": 3, "withdrawn_at_provider": 0,
                                        "still_delivered": 0}
    assert {m["status"] for m in response.json["messages"]} == {"cancelled"}
    assert response.json["messages"][0]["note"] == "cancelled by api:booking"
    again = call(client, "POST", f"/enrolments/{first['id']}/cancel", key, json={})
    assert again.json is not None and again.json["stopped"]["cancelled"] == 0
    kept = call(client, "GET", f"/enrolments/{other['id']}", key).json
    assert kept is not None and {m["status"] for m in kept["messages"]} == {"scheduled"}
    refused = call(client, "POST", f"/enrolments/{first['id']}/cancel", key,
                   json={"reason": "x"})
    assert refused.status_code == 422


def test_reschedule_re_times_by_the_same_date_rule_and_refuses_a_clash(
    client: FlaskClient, key: str
) -> None:
    first = enrol(client, key)
    enrol(client, key, treated_on=(NOW - DAY).date().isoformat())
    path = f"/enrolments/{first['id']}/reschedule"
    future = call(client, "POST", path, key, json={"treated_on": "2026-11-24"})
    assert future.status_code == 422 and future.json is not None
    assert future.json["errors"] == [{"pointer": "/treated_on", "detail": (
        "expected today (2026-11-23 at the clinic) or earlier: a treatment date cannot be in "
        "the future; got '2026-11-24'")}]
    clash = call(client, "POST", path, key, json={"treated_on": "2026-11-22"})
    assert clash.status_code == 409 and clash.json is not None
    assert clash.json["type"] == "tag:aftercare-pipeline,2026:problem:enrolment-conflict"
    assert clash.json["detail"] == ("this patient already has an enrollment in "
                                    "'botox-cosmetic' treated on 2026-11-22")
    moved = call(client, "POST", path, key, json={"treated_on": "2026-11-20"})
    assert moved.status_code == 200 and moved.json is not None
    assert (moved.json["treated_on"], moved.json["retimed"]) == ("2026-11-20", 2)
    assert [(m["step"], m["status"], m["due_at"]) for m in moved.json["messages"]] == [
        ("day-0", "cancelled", "2026-11-23T23:00:00Z"),
        ("week-2", "scheduled", "2026-12-04T15:00:00Z"),
        ("month-3", "scheduled", "2027-02-20T15:00:00Z"),
    ]
    assert moved.json["messages"][0]["note"].startswith("skipped: was due Fri 20 Nov 18:00")
    missing = call(client, "POST", path, key, json={})
    assert missing.status_code == 422


# ---------------------------------------------------------------- the desk and the API


def test_a_patient_enrolled_by_the_api_appears_at_the_desk(
    logged_in: FlaskClient, key: str
) -> None:
    enrol(logged_in, key, patient={"first_name": "Ann", "email": "Ann@Example.com"})
    found = logged_in.post("/patients", data={"query": "ann@example.com",
                                              "csrf_token": token(logged_in, "/patients")})
    page = visible(logged_in.get(found.headers["Location"]).text)
    assert "Ann" in page and "ann@example.com" in page
    assert "Tue 23 Feb 2027, 10:00 EST" in page  # the reminder the API planned


def test_a_patient_checked_out_at_the_desk_is_the_same_enrolment_for_the_api(
    logged_in: FlaskClient, key: str
) -> None:
    check_out(logged_in, consent_marketing="yes")
    response = call(logged_in, "POST", "/enrolments", key, json=enrolment())
    assert response.status_code == 200 and response.json is not None
    assert response.json["created"] is False
    assert response.json["consents"]["recorded_by"] == "staff:frontdesk"
    assert [m["status"] for m in response.json["messages"]] == ["scheduled"] * 3
    # The desk's patient now carries the booking system's id, so a rebooking reaches it.
    rebooked = call(logged_in, "POST", "/patients/P-1042/rebooked", key,
                    json={"appointment_on": "2027-02-01"})
    assert rebooked.status_code == 200 and rebooked.json is not None
    assert rebooked.json["enrolments"][0]["id"] == response.json["id"]
