"""A repeat checkout with other consents, and the shared treatment-date rule, on the staff page."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer
from aftercare.render.handouts import HandoutRenderer
from aftercare.send.dispatch import send_due
from aftercare.web import WebConfig, create_app
from tests.delivery.fake_sendgrid import API_KEY, FakeSendGrid, threaded_server
from tests.web.conftest import ACTOR, PASSWORD, SECRET, USER, Clock, add_staff, check_out, log_in


def visible(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def states(db_path: Path) -> dict[str, str]:
    with Outbox.open(db_path) as outbox:
        return {m.step_key: m.state for m in outbox.messages()}


def test_checking_out_again_without_reminder_consent_cancels_the_reminder_and_says_so(
    logged_in: FlaskClient, database: sqlite3.Connection, db_path: Path
) -> None:
    check_out(logged_in, consent_marketing="yes")
    assert states(db_path)["month-3"] == "scheduled"
    page = visible(logged_in.get(check_out(logged_in).headers["Location"]).text)
    assert ("Already enrolled for this treatment date. The consent has changed: Reminder "
            "consent withdrawn: cancelled 1 reminder (month-3, Tue 23 Feb)") in page
    assert "Tue 23 Feb 2027, 10:00 EST Not sent reminder consent withdrawn" in page
    assert states(db_path) == {"day-0": "scheduled", "week-2": "scheduled",
                               "month-3": "cancelled"}
    (event,) = database.execute(
        "SELECT at, actor, detail FROM events WHERE kind = 'consent-changed'").fetchall()
    assert tuple(event) == (
        "2026-11-23T15:00:00.000000+00:00", ACTOR,
        f"reminder consent: yes -> no; aftercare consent: yes (wording {CONSENT_WORDING_VERSION})")
    row = database.execute("SELECT marketing_consent, consent_recorded_by FROM enrollments")
    assert tuple(row.fetchone()) == (0, ACTOR)

    page = visible(logged_in.get(
        check_out(logged_in, consent_marketing="yes").headers["Location"]).text)
    assert ("The consent has changed: Reminder consent given: scheduled 1 reminder "
            "(month-3, Tue 23 Feb)") in page
    assert states(db_path)["month-3"] == "scheduled"
    page = visible(logged_in.get(
        check_out(logged_in, consent_marketing="yes").headers["Location"]).text)
    assert "Already enrolled for this treatment date: nothing changed." in page


@pytest.mark.parametrize(("treated_on", "accepted"), [
    ("2026-11-23", True), ("2026-11-24", False), ("2025-11-23", True), ("2025-11-22", False),
])
def test_the_form_takes_the_same_treatment_dates_as_enroll_and_import(
    client: FlaskClient, staff: str, clock: Clock, treated_on: str, accepted: bool
) -> None:
    clock.advance(hours=13)  # 04:00 UTC on the 24th: still the 23rd at the clinic
    log_in(client, staff, PASSWORD)
    response = check_out(client, treated_on=treated_on, action="print")
    assert response.status_code == (303 if accepted else 400)
    if not accepted:
        assert 'id="treated_on-error"' in response.text


# ------------------------------------------------------------------ with SendGrid


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with threaded_server() as server:
        fake = FakeSendGrid(server, sender="care@juniperlane.example",
                            reply_to="frontdesk@juniperlane.example",
                            step_keys={"day-0", "week-2", "month-3"},
                            forbidden=("botox-cosmetic",))
        yield fake
    assert fake.problems == []


def test_a_reminder_sendgrid_holds_is_withdrawn_there_when_consent_is_withdrawn(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer,
    sendgrid: FakeSendGrid,
) -> None:
    backend = SendGridBackend(API_KEY, host=sendgrid.host, timeout=5.0,
                              clock=lambda: sendgrid.now)

    app = create_app(project, WebConfig(db=db_path, secret_key=SECRET), now=clock,
                     backend=lambda: backend, renderer=renderer)
    app.testing = True
    client = app.test_client()
    add_staff(db_path, USER, PASSWORD)
    assert log_in(client, USER, PASSWORD).status_code == 303
    check_out(client, consent_marketing="yes")
    # Cron hands each message to SendGrid within the lookahead; the reminder is due
    # Tue 23 Feb 2027 at 10:00 in New York (15:00 UTC) and is held there until then.
    emails = EmailRenderer(project, b"k" * 32)
    with Outbox.open(db_path) as outbox:
        for due in (dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC),
                    dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC),
                    dt.datetime(2027, 2, 23, 15, 0, tzinfo=dt.UTC)):
            sendgrid.now = due - dt.timedelta(minutes=90)
            send_due(outbox, project, emails, backend, sendgrid.now, 10, pause=lambda s: None)
    reminder_at = int(dt.datetime(2027, 2, 23, 15, 0, tzinfo=dt.UTC).timestamp())
    (held,) = [r for r in sendgrid.requests if r.body.get("send_at") == reminder_at]
    clock.now = sendgrid.now = dt.datetime(2027, 2, 23, 13, 45, tzinfo=dt.UTC)
    assert log_in(client, USER, PASSWORD).status_code == 303  # months later: a new session
    page = visible(client.get(check_out(client).headers["Location"]).text)
    assert ("Reminder consent withdrawn: no reminder was scheduled; 1 reminder already handed "
            "to the provider (month-3, Tue 23 Feb): withdrawing it there") in page
    assert "Withdrew 1 from SendGrid." in page
    assert sendgrid.cancels == [(held.body["batch_id"], clock.now)]
    assert sendgrid.delivers(held.public_id or "") == 0
    assert states(db_path) == {"day-0": "sent", "week-2": "sent", "month-3": "cancelled"}
