"""Patient lookup and its actions, and the outbox view, as staff see them."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from html import unescape
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.enrol.enrolment import enroll_one
from aftercare.enrol.rules import parse_enrollment
from aftercare.outbox.store import Outbox
from tests.web.conftest import ACTOR, ACTOR_ANYWHERE, NOW, Clock, token


def visible(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def enrol(db_path: Path, project: Project, email: str, first_name: str,
          treated_on: str = "2026-11-23", campaign: str = "botox-cosmetic") -> None:
    fields = {"email": email, "first_name": first_name, "campaign": campaign,
              "treated_on": treated_on}
    with Outbox.open(db_path) as outbox:
        enroll_one(outbox, project, parse_enrollment(fields, project, NOW, "cli:test"), NOW)


def search(client: FlaskClient, query: str) -> str:
    """Search, follow the redirect; return the results page's URL."""
    response = client.post("/patients", data={"query": query, "csrf_token": token(client)})
    assert response.status_code == 303, response.text
    location: str = response.headers["Location"]
    return location


def states(db_path: Path) -> list[str]:
    with Outbox.open(db_path) as outbox:
        return [m.state for m in outbox.messages()]


@pytest.fixture
def patients(db_path: Path, project: Project) -> None:
    enrol(db_path, project, "ann@example.com", "<b>Ann</b>")
    enrol(db_path, project, "ann.b@example.com", "<b>Ann</b>", "2026-11-22", "botox-migraine")
    enrol(db_path, project, "zoe@example.com", "Zoe")


def test_lookup_by_first_name_lists_every_enrolment_with_states_and_local_times(
    logged_in: FlaskClient, patients: None
) -> None:
    location = search(logged_in, "<B>ann</B>")
    assert re.fullmatch(r"/patients/[A-Za-z0-9_-]{22}", location)  # no name in the URL
    page = logged_in.get(location).text
    assert "&lt;b&gt;Ann&lt;/b&gt;" in page and "<b>Ann</b>" not in page
    text = visible(page)
    assert "2 patients" in text
    assert "ann@example.com" in text and "ann.b@example.com" in text and "zoe@" not in text
    assert ("Expression lines (botox-cosmetic) · treated on Mon 23 Nov 2026" in text)
    assert ("Chronic migraine (botox-migraine) · treated on Sun 22 Nov 2026" in text)
    assert ("the treatment day an email with tips for the first days "
            "Mon 23 Nov 2026, 18:00 EST Scheduled") in text
    assert "Cancel 2 unsent emails" in text


def test_lookup_by_email_ignores_case(logged_in: FlaskClient, patients: None) -> None:
    text = visible(logged_in.get(search(logged_in, "ZOE@example.com")).text)
    assert "1 patient" in text and "Zoe zoe@example.com" in text


def test_lookup_of_nobody_says_so(logged_in: FlaskClient, patients: None) -> None:
    text = visible(logged_in.get(search(logged_in, "nobody@example.com")).text)
    assert "No patient has that email address or first name." in text


def test_an_empty_search_is_refused_next_to_its_field(logged_in: FlaskClient) -> None:
    response = logged_in.post("/patients", data={"query": " ", "csrf_token": token(logged_in)})
    assert response.status_code == 400
    assert 'id="query-error"' in response.text and 'aria-describedby="query-hint query-error"' in (
        response.text)


def test_cancel_asks_first_then_cancels_and_records_who(
    logged_in: FlaskClient, patients: None, db_path: Path, database: sqlite3.Connection
) -> None:
    results = search(logged_in, "zoe@example.com")
    form = {"email": "zoe@example.com", "campaign": "botox-cosmetic",
            "csrf_token": token(logged_in, results)}
    confirm = logged_in.post(f"{results}/cancel", data=form)
    assert confirm.status_code == 200
    assert "Cancel the unsent emails for this treatment?" in confirm.text
    assert states(db_path).count("cancelled") == 2  # the 3 skipped reminders only; nothing yet
    done = logged_in.post(f"{results}/cancel", data={**form, "confirm": "yes"})
    assert (done.status_code, done.headers["Location"]) == (303, results)
    assert "Cancelled 2 unsent emails." in logged_in.get(results).text
    actors = database.execute("SELECT DISTINCT actor FROM events WHERE kind = 'cancelled'")
    assert [row[0] for row in actors] == [ACTOR]


def test_unsubscribe_from_the_lookup_page(
    logged_in: FlaskClient, patients: None, db_path: Path
) -> None:
    results = search(logged_in, "ann@example.com")
    form = {"email": "ann@example.com", "confirm": "yes", "csrf_token": token(logged_in, results)}
    logged_in.post(f"{results}/unsubscribe", data=form)
    page = visible(logged_in.get(results).text)
    assert "Unsubscribed: cancelled 2 unsent emails; this address cannot be enrolled again." in page
    assert "Unsubscribed: no more emails" in page
    with Outbox.open(db_path) as outbox:
        assert outbox.is_suppressed("ann@example.com")


def test_reschedule_retimes_the_emails(
    logged_in: FlaskClient, patients: None, db_path: Path
) -> None:
    results = search(logged_in, "zoe@example.com")
    form = {"email": "zoe@example.com", "campaign": "botox-cosmetic", "treated_on": "2026-11-22",
            "csrf_token": token(logged_in, results)}
    assert logged_in.post(f"{results}/reschedule", data=form).status_code == 303
    page = visible(logged_in.get(results).text)
    assert "Moved the treatment date to 2026-11-22: re-timed 2 unsent emails." in page
    assert "treated on Sun 22 Nov 2026" in page


def test_a_bad_reschedule_date_is_refused_next_to_its_field(
    logged_in: FlaskClient, patients: None, db_path: Path
) -> None:
    results = search(logged_in, "zoe@example.com")
    form = {"email": "zoe@example.com", "campaign": "botox-cosmetic", "treated_on": "2026-12-25",
            "csrf_token": token(logged_in, results)}
    response = logged_in.post(f"{results}/reschedule", data=form)
    assert response.status_code == 400
    page = response.text
    assert 'id="treated_on-1-botox-cosmetic-error"' in page
    assert 'value="2026-12-25"' in page and 'aria-invalid="true"' in page
    assert "Expected today (2026-11-23 at the clinic) or earlier" in unescape(page)
    assert states(db_path).count("scheduled") == 7  # nothing moved


def make_unknown(db_path: Path, clock: Clock) -> None:
    with Outbox.open(db_path) as outbox:
        claim = outbox.claim_due(NOW + dt.timedelta(days=1, hours=1), 1)[0]
        outbox.mark_unknown(claim.message_id, "SendGrid did not answer", clock())


@pytest.mark.parametrize(("outcome", "flash", "state"), [
    ("sent", "Marked as sent.", "sent"),
    ("requeue", "Put back in the queue: it will be sent again.", "scheduled"),
])
def test_an_unknown_message_can_be_marked_sent_or_sent_again(
    logged_in: FlaskClient, patients: None, db_path: Path, clock: Clock,
    database: sqlite3.Connection, outcome: str, flash: str, state: str,
) -> None:
    make_unknown(db_path, clock)  # the first due: the migraine day-0 email to ann.b@
    results = search(logged_in, "ann.b@example.com")
    page = logged_in.get(results).text
    assert "Unknown: check" in page and "SendGrid did not answer" in page
    message_id = re.search(r'name="message_id" value="(\d+)"', page)[1]  # type: ignore[index]
    form = {"message_id": message_id, "outcome": outcome, "csrf_token": token(logged_in, results)}
    assert logged_in.post(f"{results}/resolve", data=form).status_code == 303
    assert flash in logged_in.get(results).text
    row = database.execute("SELECT state FROM messages WHERE id = ?", (message_id,)).fetchone()
    assert row[0] == state
    # Resolving twice is refused with a message, not an error page.
    logged_in.post(f"{results}/resolve", data=form)
    assert "not &#39;unknown&#39;" in logged_in.get(results).text


def test_the_outbox_shows_counts_and_what_needs_attention(
    logged_in: FlaskClient, patients: None, db_path: Path, clock: Clock
) -> None:
    make_unknown(db_path, clock)
    page = logged_in.get("/outbox").text
    text = visible(page)
    assert "6 Scheduled" in text and "1 Unknown: check" in text and "2 Cancelled" in text
    assert "0 Sent" in text
    assert "Due in the next 7 days (2)" in text  # both day-0 emails of the cosmetic enrolments
    assert "Mon 23 Nov 2026, 18:00 EST Zoe zoe@example.com" in text
    assert "Failed (0)" in text and "Nothing here." in text
    assert "Unknown: check with the provider (1)" in text
    assert "&lt;b&gt;Ann&lt;/b&gt;" in page


def test_every_staff_action_is_in_the_audit_log_under_the_staff_member(
    logged_in: FlaskClient, patients: None, database: sqlite3.Connection
) -> None:
    results = search(logged_in, "zoe@example.com")
    csrf = token(logged_in, results)
    logged_in.post(f"{results}/reschedule", data={
        "email": "zoe@example.com", "campaign": "botox-cosmetic", "treated_on": "2026-11-22",
        "csrf_token": csrf})
    logged_in.post(f"{results}/unsubscribe", data={
        "email": "zoe@example.com", "confirm": "yes", "csrf_token": csrf})
    rows = database.execute(
        "SELECT kind FROM events WHERE actor IN (?, ?) ORDER BY id", (ACTOR, ACTOR_ANYWHERE)
    ).fetchall()
    assert list(dict.fromkeys(row[0] for row in rows)) == [
        "staff-login", "patient-lookup", "rescheduled", "unsubscribed", "cancelled"]
    details = " ".join(str(row[0]) for row in database.execute("SELECT detail FROM events"))
    assert "zoe" not in details.lower()  # no address or name in the trail's details
