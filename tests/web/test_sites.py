"""The site at the desk and on the patient's pages: the checkout's site decides the handout's
numbers, the enrolment's site and zone; the care and unsubscribe pages show the patient's site."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import sqlite3
from email.message import EmailMessage
from pathlib import Path

from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.delivery.files import FileBackend
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer
from aftercare.render.tokens import sign
from aftercare.send.dispatch import send_due
from tests.conftest import ROOT
from tests.web.conftest import SECRET, check_out
from tests.web.test_checkout import pdf_text, visible

SCOTTSDALE = ("(480) 555-0163", "(480) 555-0164")
ORGANISATION = ("(617) 555-0142", "(617) 555-0199")
# Monday 23 November 2026 at 18:00 in Scottsdale (UTC-7 all year): the first email.
EVENING = dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.UTC)


def _handout(client: FlaskClient, response_location: str) -> str:
    return pdf_text(client.get(f"{response_location}/handout.pdf").data)


def _stored(database: sqlite3.Connection) -> list[tuple[str, str]]:
    return [tuple(row) for row in database.execute("SELECT site, timezone FROM enrollments")]


def test_the_checkout_offers_each_site_by_name(logged_in: FlaskClient) -> None:
    page = logged_in.get("/checkout").text
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]+)</option>',
                         page.split('id="f-site"')[1].split("</select>")[0])
    # No site is chosen for staff who work at several: a wrong one would print wrong numbers.
    assert options == [("", "Choose the site"), ("main", "Juniper Lane Clinic"),
                       ("portland", "Juniper Lane Portland"),
                       ("scottsdale", "Juniper Lane Scottsdale")]


def test_a_checkout_at_a_site_prints_its_numbers_and_enrols_in_its_zone(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    response = check_out(logged_in, site="scottsdale")
    assert response.status_code == 303, response.text
    location = response.headers["Location"]
    text = " ".join(_handout(logged_in, location).split())
    assert "Juniper Lane Scottsdale" in text
    assert all(number in text for number in SCOTTSDALE)
    assert not [number for number in ORGANISATION if number in text]
    assert _stored(database) == [("scottsdale", "America/Phoenix")]
    # The confirmation lists the emails in the site's zone.
    assert "Mon 23 Nov 2026, 18:00 MST" in visible(logged_in.get(location).text)


def test_without_a_site_the_checkout_is_the_organisations_own(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    response = check_out(logged_in)
    assert response.status_code == 303
    assert all(n in _handout(logged_in, response.headers["Location"]) for n in ORGANISATION)
    assert _stored(database) == [("main", "America/New_York")]


def test_a_site_not_in_the_list_is_refused_and_nothing_is_stored(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    response = check_out(logged_in, site="mars")
    assert response.status_code == 400
    assert "Choose the site from the list." in visible(response.text)
    assert _stored(database) == []


def _sent_emails(project: Project, db_path: Path) -> dict[str, EmailMessage]:
    """The Scottsdale patient's first email, sent when due, by step key."""
    folder = db_path.parent / "outbox"
    with Outbox.open(db_path) as outbox:
        report = send_due(outbox, project, EmailRenderer(project, SECRET), FileBackend(folder),
                          EVENING, 10)
        assert report.sent == 1
        sent = {m.step_key: m.public_id for m in outbox.messages() if m.state == "sent"}
    return {key: email.message_from_bytes((folder / f"{pid}.eml").read_bytes(),
                                          policy=email.policy.default)
            for key, pid in sent.items()}


def test_the_care_page_and_its_handout_are_the_patients_sites(
    logged_in: FlaskClient, client: FlaskClient, project: Project, db_path: Path
) -> None:
    assert check_out(logged_in, treatment="botox-migraine", site="scottsdale").status_code == 303
    message = _sent_emails(project, db_path)["day-0"]
    assert str(message["From"]) == "Juniper Lane Scottsdale <scottsdale@juniperlane.example>"
    body = message.get_body(("plain",))
    assert body is not None
    link = re.search(r"https://care\.juniperlane\.example(/care/\S+)", body.get_content())
    assert link, "no care link"
    page = client.get(link[1])
    assert page.status_code == 200
    shown = visible(page.text)
    assert "Juniper Lane Scottsdale · (480) 555-0163 · Monday to Friday, 8 am to 4 pm" in shown
    assert "(617) 555-0142" not in shown
    assert '<img src="/assets/logo/scottsdale.svg"' in page.text
    logo = client.get("/assets/logo/scottsdale.svg")
    assert logo.mimetype == "image/svg+xml"
    assert logo.data == (ROOT / "templates" / "assets" / "logo-scottsdale.svg").read_bytes()
    assert client.get("/assets/logo/portland.svg").status_code == 404  # the organisation's
    handout = " ".join(pdf_text(client.get(link[1] + "/handout.pdf").data).split())
    assert all(number in handout for number in SCOTTSDALE)
    assert "(617) 555-0142" not in handout


def test_the_unsubscribe_page_names_the_patients_site(
    logged_in: FlaskClient, client: FlaskClient, db_path: Path
) -> None:
    assert check_out(logged_in, site="scottsdale").status_code == 303
    with Outbox.open(db_path) as outbox:
        public_id = outbox.messages()[0].public_id
    page = visible(client.get(f"/unsubscribe?t={sign(public_id, SECRET)}").text)
    assert "Juniper Lane Scottsdale · (480) 555-0163" in page
    assert "Juniper Lane Clinic" not in page
