"""A rebooking stops the reminders of the patient's earlier enrolments and keeps clinical emails,
says why in the trail, and withdraws a reminder SendGrid holds; and unsubscribing by API."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer
from aftercare.render.handouts import HandoutRenderer
from aftercare.send.dispatch import send_due
from aftercare.web import WebConfig, create_app
from tests.delivery.fake_sendgrid import API_KEY, FakeSendGrid, threaded_server
from tests.web.api.conftest import Contract, call, enrolment
from tests.web.conftest import SECRET, Clock

WHY = "not needed: the patient booked their next visit for 2027-01-05"


def statuses(body: dict[str, object]) -> list[tuple[str, str]]:
    messages = body["messages"]
    assert isinstance(messages, list)
    return [(m["step"], m["status"]) for m in messages]


def test_a_rebooking_cancels_only_the_reminders_of_earlier_enrolments(
    client: FlaskClient, key: str, database: sqlite3.Connection
) -> None:
    cosmetic = call(client, "POST", "/enrolments", key,
                    json=enrolment(treated_on="2026-11-20")).json
    migraine = call(client, "POST", "/enrolments", key,
                    json=enrolment(campaign="botox-migraine", treated_on="2026-11-20")).json
    today = call(client, "POST", "/enrolments", key, json=enrolment(  # same patient, new address
        patient={"first_name": "Ann", "email": "ann.l@example.com", "external_id": "P-1042"})).json
    other = call(client, "POST", "/enrolments", key, json=enrolment(
        patient={"first_name": "Bo", "email": "bo@example.com", "external_id": "P-7"})).json
    assert cosmetic and migraine and today and other
    # Booked again today, at checkout: today's enrolment is not an earlier one.
    response = call(client, "POST", "/patients/P-1042/rebooked", key,
                    json={"appointment_on": "2026-11-23"})
    assert response.status_code == 200 and response.json is not None
    body = response.json
    assert (body["external_patient_id"], body["appointment_on"], body["stopped"]) == (
        "P-1042", "2026-11-23", {"cancelled": 1, "withdrawn_at_provider": 0,
                                 "still_delivered": 0})
    assert [e["id"] for e in body["enrolments"]] == [cosmetic["id"], migraine["id"]]
    shown = {e["id"]: e for e in body["enrolments"]}
    assert statuses(shown[cosmetic["id"]])[1:] == [("week-2", "scheduled"),
                                                   ("month-3", "cancelled")]
    assert shown[cosmetic["id"]]["messages"][2]["note"] == (
        "not needed: the patient booked their next visit for 2026-11-23")
    # The migraine campaign's booking reminder is clinical: it is kept.
    assert statuses(shown[migraine["id"]])[1:] == [("week-2", "scheduled"),
                                                   ("week-10", "scheduled")]
    for untouched in (today, other):
        again = call(client, "GET", f"/enrolments/{untouched['id']}", key).json
        assert again is not None and statuses(again)[2] == ("month-3", "scheduled")
    # Booked for January: every enrolment of the patient, under either address, is earlier.
    later = call(client, "POST", "/patients/P-1042/rebooked", key,
                 json={"appointment_on": "2027-01-05"}).json
    assert later is not None and later["stopped"]["cancelled"] == 1
    assert [e["id"] for e in later["enrolments"]] == [cosmetic["id"], migraine["id"],
                                                      today["id"]]
    trail = database.execute(
        "SELECT actor, detail FROM events WHERE kind = 'cancelled' ORDER BY id").fetchall()
    assert [tuple(row) for row in trail] == [
        ("api:booking", "not needed: the patient booked their next visit for 2026-11-23"),
        ("api:booking", WHY)]
    mine = call(client, "GET", f"/enrolments/{other['id']}", key).json
    assert mine is not None and statuses(mine)[2] == ("month-3", "scheduled")


def test_a_rebooking_names_a_known_patient_and_a_date_from_today(
    client: FlaskClient, key: str
) -> None:
    call(client, "POST", "/enrolments", key, json=enrolment())
    unknown = call(client, "POST", "/patients/P-9/rebooked", key,
                   json={"appointment_on": "2027-01-05"})
    assert unknown.status_code == 404 and unknown.json is not None
    assert unknown.json["detail"] == "no patient has this external id"
    assert call(client, "POST", "/patients/not%20an%20id/rebooked", key,
                json={"appointment_on": "2027-01-05"}).status_code == 404
    for typed, detail in (
        ("2026-11-22", "expected a date from today (2026-11-23 at the clinic) to 730 days "
                       "ahead; got '2026-11-22'"),
        ("2028-11-23", "expected a date from today (2026-11-23 at the clinic) to 730 days "
                       "ahead; got '2028-11-23'"),
        ("05/01/2027", "expected a date (YYYY-MM-DD); got '05/01/2027'"),
    ):
        refused = call(client, "POST", "/patients/P-1042/rebooked", key,
                       json={"appointment_on": typed})
        assert refused.status_code == 422 and refused.json is not None
        assert refused.json["errors"] == [{"pointer": "/appointment_on", "detail": detail}]


def test_unsubscribe_stops_every_email_and_refuses_later_enrolments(
    client: FlaskClient, key: str, database: sqlite3.Connection
) -> None:
    call(client, "POST", "/enrolments", key, json=enrolment())
    bad = call(client, "POST", "/unsubscribe", key, json={"email": "nope", "name": "Ann"})
    assert bad.status_code == 422 and bad.json is not None
    assert [e["pointer"] for e in bad.json["errors"]] == ["/email", "/name"]
    done = call(client, "POST", "/unsubscribe", key, json={"email": "ANN@example.com"})
    assert done.status_code == 200
    assert done.json == {"stopped": {"cancelled": 3, "withdrawn_at_provider": 0,
                                     "still_delivered": 0}}
    (row,) = database.execute("SELECT reason, source FROM suppressions").fetchall()
    assert tuple(row) == ("unsubscribed", "api:booking")
    again = call(client, "POST", "/enrolments", key, json=enrolment(campaign="botox-migraine"))
    assert again.status_code == 422


# ---------------------------------------------------------------- with SendGrid


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with threaded_server() as server:
        fake = FakeSendGrid(server, sender="care@juniperlane.example",
                            reply_to="frontdesk@juniperlane.example",
                            step_keys={"day-0", "week-2", "month-3"},
                            forbidden=("botox-cosmetic",))
        yield fake
    assert fake.problems == []


def test_a_rebooking_withdraws_the_reminder_sendgrid_holds(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer,
    sendgrid: FakeSendGrid, contract: Contract, key: str,
) -> None:
    backend = SendGridBackend(API_KEY, host=sendgrid.host, timeout=5.0,
                              clock=lambda: sendgrid.now)
    app = contract.attach(create_app(project, WebConfig(db=db_path, secret_key=SECRET),
                                     now=clock, backend=lambda: backend, renderer=renderer))
    client = app.test_client()
    assert call(client, "POST", "/enrolments", key, json=enrolment()).status_code == 201
    emails = EmailRenderer(project, b"k" * 32)
    with Outbox.open(db_path) as outbox:  # cron hands each email over within the lookahead
        for due in (dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC),
                    dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC),
                    dt.datetime(2027, 2, 23, 15, 0, tzinfo=dt.UTC)):
            sendgrid.now = due - dt.timedelta(minutes=90)
            send_due(outbox, project, emails, backend, sendgrid.now, 10, pause=lambda s: None)
    reminder_at = int(dt.datetime(2027, 2, 23, 15, 0, tzinfo=dt.UTC).timestamp())
    (held,) = [r for r in sendgrid.requests if r.body.get("send_at") == reminder_at]
    clock.now = sendgrid.now = dt.datetime(2027, 2, 23, 13, 45, tzinfo=dt.UTC)
    response = call(client, "POST", "/patients/P-1042/rebooked", key,
                    json={"appointment_on": "2027-03-01"})
    assert response.status_code == 200 and response.json is not None
    assert response.json["stopped"] == {"cancelled": 0, "withdrawn_at_provider": 1,
                                        "still_delivered": 0}
    assert sendgrid.cancels == [(held.body["batch_id"], clock.now)]
    assert sendgrid.delivers(held.public_id or "") == 0
    (enrolled,) = response.json["enrolments"]
    assert statuses(enrolled) == [("day-0", "sent"), ("week-2", "sent"), ("month-3", "cancelled")]
    assert enrolled["messages"][2]["note"] == (
        "not needed: the patient booked their next visit for 2027-03-01: cancelled at the "
        "provider before its send time (2027-02-23 15:00 UTC)")
    assert contract.failures == []
