"""The checkout form: enrol and print, print only, refusals next to their field, escaping."""

from __future__ import annotations

import io
import re
import sqlite3
from html import unescape
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader

from aftercare.content.model import Project
from aftercare.enrol.rules import CONSENT_WORDING
from aftercare.outbox.store import Outbox
from tests.web.conftest import ACTOR, PASSWORD, Clock, add_staff, check_out, count, log_in, token


def pdf_text(data: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def visible(html: str) -> str:
    """The page's text as a reader sees it: tags removed, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def outbox_rows(database: sqlite3.Connection) -> tuple[int, int, int]:
    return count(database, "patients"), count(database, "enrollments"), count(database, "messages")


def test_the_form_shows_every_field_labelled_and_the_consent_wording(
    client: FlaskClient, staff: str, clock: Clock
) -> None:
    clock.advance(hours=13)  # 04:00 UTC on the 24th is still the 23rd in New York
    log_in(client, staff, PASSWORD)
    page = client.get("/checkout").text
    for name in ("treatment", "treated_on", "areas", "provider", "product", "units", "lot",
                 "first_name", "last_name", "email", "language", "consent_aftercare",
                 "consent_marketing"):
        assert f'<label for="f-{name}">' in page
        assert f'id="f-{name}" name="{name}"' in page
    assert 'value="2026-11-23"' in page
    assert '<option value="botox-cosmetic">Expression lines (botox-cosmetic)</option>' in page
    assert '<option value="botox-migraine">Chronic migraine (botox-migraine)</option>' in page
    assert CONSENT_WORDING["aftercare"] in page
    assert CONSENT_WORDING["marketing"] in page
    assert 'name="consent_aftercare" type="checkbox" value="yes" aria' in page  # not pre-ticked


def test_checkout_enrols_the_patient_and_gives_their_handout(
    logged_in: FlaskClient, database: sqlite3.Connection, db_path: Path
) -> None:
    response = check_out(logged_in, consent_marketing="yes")
    assert response.status_code == 303
    confirmation = logged_in.get(response.headers["Location"])
    page = visible(confirmation.text)
    assert "Checkout complete" in page
    assert "The handout for Ann Quillfeather is ready to print." in page
    assert ("the treatment day an email with tips for the first days "
            "Mon 23 Nov 2026, 18:00 EST Will be sent") in page
    assert "2 weeks after treatment results check-in Mon 7 Dec 2026, 10:00 EST Will be sent" in page
    assert "Tue 23 Feb 2027, 10:00 EST Will be sent" in page  # the reminder: consent given
    link = re.search(r'href="(/checkout/[^"]+/handout\.pdf)" target="_blank"', confirmation.text)
    assert link, confirmation.text

    pdf = logged_in.get(link[1])
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"] == (
        'inline; filename="aftercare-cosmetic-2026-11-23.pdf"')
    text = pdf_text(pdf.data)
    assert "Ann Quillfeather" in text
    assert "Mon 23 Nov 2026" in text and "Mon 7 Dec" in text
    assert "Dr Rivera" in text and "frown lines" in text

    assert outbox_rows(database) == (1, 1, 3)
    patient = database.execute("SELECT email, first_name, language FROM patients").fetchone()
    assert tuple(patient) == ("ann@example.com", "Ann", "en")
    enrollment = database.execute(
        "SELECT campaign, treated_on, marketing_consent, consent_recorded_by FROM enrollments"
    ).fetchone()
    assert tuple(enrollment) == ("botox-cosmetic", "2026-11-23", 1, ACTOR)
    kinds = database.execute("SELECT kind, actor, detail FROM events WHERE kind IN"
                             " ('enrolled', 'handout-printed') ORDER BY id").fetchall()
    assert [tuple(k) for k in kinds] == [
        ("enrolled", ACTOR, kinds[0][2]),
        ("handout-printed", ACTOR, "handout aftercare-cosmetic"),
    ]


def test_the_last_name_is_never_written_to_the_database(
    logged_in: FlaskClient, db_path: Path
) -> None:
    assert check_out(logged_in, last_name="Quillfeather").status_code == 303
    assert check_out(logged_in, last_name="Quillfeather", action="print").status_code == 303
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    assert files  # the database, and its write-ahead log if one is left
    for path in files:
        assert b"Quillfeather" not in path.read_bytes(), path.name
    assert b"Ann" in b"".join(p.read_bytes() for p in files)  # the first name is stored


def _handout_text(client: FlaskClient, location: str) -> str:
    return "".join(pdf_text(client.get(f"{location}/handout.pdf").data).split())


def test_product_units_and_lot_are_printed_and_never_stored(
    logged_in: FlaskClient, db_path: Path
) -> None:
    typed = {"product": "Zyqprod <Cosmetic>", "units": "20 & 4", "lot": "LOTQX7Z"}
    for action in ("enrol", "print"):
        response = check_out(logged_in, action=action, **typed)
        assert response.status_code == 303
        text = pdf_text(logged_in.get(f"{response.headers['Location']}/handout.pdf").data)
        assert "Product: Zyqprod <Cosmetic>" in text
        assert "Units: 20 & 4" in text and "Lot: LOTQX7Z" in text
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    stored = b"".join(p.read_bytes() for p in files)
    assert b"ann@example.com" in stored  # the enrolment is there...
    for value in ("Zyqprod", "20 & 4", "LOTQX7Z"):  # ...and none of what was only printed
        assert value.encode() not in stored, value


def test_the_handout_lists_exactly_the_emails_the_patient_agreed_to(
    logged_in: FlaskClient, project: Project
) -> None:
    steps = project.campaigns["botox-cosmetic"].steps
    clinical = ["".join(s.label.split()) for s in steps if s.kind == "clinical"]
    reminders = ["".join(s.label.split()) for s in steps if s.kind == "marketing"]
    assert clinical and reminders
    with_reminders = _handout_text(
        logged_in, check_out(logged_in, consent_marketing="yes").headers["Location"])
    without = _handout_text(logged_in, check_out(
        logged_in, email="bo@example.com").headers["Location"])
    print_only = _handout_text(logged_in, check_out(
        logged_in, action="print", consent_aftercare="", email="").headers["Location"])
    for label in clinical:
        assert label in with_reminders and label in without and label not in print_only
    for label in reminders:
        assert label in with_reminders and label not in without and label not in print_only
    assert "Wedonotemailyouaboutthistreatment." in print_only
    assert "Wedonotemailyou" not in with_reminders + without
    # The next treatment is there whatever was agreed: Mon 15 Feb, 12 weeks on, an open day.
    for text in (with_reminders, without, print_only):
        assert "Mon15Feb:" in text


def test_a_migraine_checkout_offers_the_headache_diary(
    logged_in: FlaskClient, client: FlaskClient
) -> None:
    location = check_out(logged_in, treatment="botox-migraine").headers["Location"]
    page = logged_in.get(location).text
    assert f'href="{location}/diary.pdf"' in page
    assert "Open the headache diary to print (PDF, one page)" in visible(page)
    diary = logged_in.get(f"{location}/diary.pdf")
    assert diary.status_code == 200 and diary.mimetype == "application/pdf"
    assert diary.headers["Content-Disposition"] == (
        'inline; filename="headache-diary-2026-11-23.pdf"')
    reader = PdfReader(io.BytesIO(diary.data))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Name: Ann Quillfeather" in text and "Mon 23 Nov" in text
    assert len(PdfReader(io.BytesIO(logged_in.get(f"{location}/handout.pdf").data)).pages) == 2
    # Not for a cosmetic checkout, and never for someone else.
    cosmetic = check_out(logged_in).headers["Location"]
    assert "diary.pdf" not in logged_in.get(cosmetic).text
    assert logged_in.get(f"{cosmetic}/diary.pdf").status_code == 404
    anonymous = client.application.test_client().get(f"{location}/diary.pdf")
    assert anonymous.status_code == 302 and anonymous.headers["Location"] == "/login"


def test_printing_only_writes_nothing_to_the_outbox(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    response = check_out(logged_in, action="print", consent_aftercare="", email="")
    assert response.status_code == 303
    confirmation = logged_in.get(response.headers["Location"])
    page = visible(confirmation.text)
    assert "Handout ready" in page
    assert "The patient is not enrolled: no emails will be sent. Nothing about them was saved." in (
        page)
    pdf = logged_in.get(re.search(r'href="([^"]+\.pdf)"', confirmation.text)[1])  # type: ignore[index]
    assert "Ann Quillfeather" in pdf_text(pdf.data)
    assert outbox_rows(database) == (0, 0, 0)
    printed = database.execute("SELECT actor, detail, enrollment_id FROM events"
                               " WHERE kind = 'handout-printed'").fetchone()
    assert tuple(printed) == (ACTOR, "handout aftercare-cosmetic", None)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"email": "ann@example"}, "email", "Enter an email address like name@example.com."),
    ({"email": ""}, "email", "Enter the patient's email address."),
    ({"treatment": "botox-dental"}, "treatment", "Choose the treatment from the list."),
    ({"treated_on": "2026-11-24"}, "treated_on",
     "Expected today (2026-11-23 at the clinic) or earlier: a treatment date cannot be in the "
     "future."),
    ({"treated_on": "23/11/2026"}, "treated_on",
     "Enter the treatment date as year-month-day, like 2026-11-23."),
    ({"consent_aftercare": "<unset>"}, "consent_aftercare",
     "The patient must agree to aftercare emails to be enrolled."),
    ({"first_name": " "}, "first_name", "Enter the patient's first name."),
    ({"areas": "frown\u202elines"}, "areas", "Expected printable characters; got U+202E"),
    ({"last_name": "Quill\U0001F600"}, "last_name", "Expected letters the handout font has"),
    ({"first_name": "A" * 50, "last_name": "B" * 40}, "last_name",
     "Use at most 80 characters for the first and last name together (these have 91)."),
    ({"lot": "L" * 17}, "lot", "Expected at most 16 characters; got 17."),
    ({"units": "2\u200b0"}, "units", "Expected printable characters; got U+200B"),
    ({"product": "BOTOX \u2603"}, "product", "Expected letters the handout font has"),
])
def test_bad_input_is_refused_next_to_its_field_keeping_what_was_typed(
    logged_in: FlaskClient, database: sqlite3.Connection,
    changes: dict[str, str], field: str, message: str,
) -> None:
    response = check_out(logged_in, **changes)
    assert response.status_code == 400
    page = response.text
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    assert error, page
    assert message in visible(error[1])
    # The field points at its error, and the summary at the top links to the field.
    field_tag = re.search(rf'<(?:input|select) id="f-{field}"[^>]*>', page)
    assert field_tag and f"{field}-error" in field_tag[0] and 'aria-invalid="true"' in field_tag[0]
    summary = page.index('class="error-summary"')
    assert summary < page.index('class="checkout"') and f'href="#f-{field}"' in page[summary:]
    # What was typed is still there.
    for name, value in {"first_name": "Ann", "last_name": "Quillfeather", "provider": "Dr Rivera",
                        **changes}.items():
        if name in ("first_name", "last_name", "email", "areas", "provider", "treated_on",
                    "product", "units", "lot"):
            assert f'name="{name}" type=' in page and f'value="{value}"' in page, name
    assert outbox_rows(database) == (0, 0, 0)
    assert count(database, "events") == 1  # the login only


def test_several_problems_are_listed_together(logged_in: FlaskClient) -> None:
    page = check_out(logged_in, email="nope", treated_on="2027-01-01", consent_aftercare="").text
    assert "There are 3 problems: nothing was saved" in page


def test_a_name_with_markup_is_shown_literally(logged_in: FlaskClient) -> None:
    response = check_out(logged_in, first_name="<b>Ann</b>", last_name="<i>Q</i>")
    confirmation = logged_in.get(response.headers["Location"]).text
    assert "&lt;b&gt;Ann&lt;/b&gt; &lt;i&gt;Q&lt;/i&gt;" in confirmation
    assert "<b>Ann</b>" not in confirmation
    refused = check_out(logged_in, first_name="<b>Ann</b>", email="bad").text
    assert 'value="&lt;b&gt;Ann&lt;/b&gt;"' in refused and "<b>Ann" not in refused


def test_checking_out_the_same_visit_twice_changes_nothing(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    check_out(logged_in)
    again = logged_in.get(check_out(logged_in).headers["Location"]).text
    assert "Already enrolled for this treatment date: nothing changed." in again
    assert "Mon 23 Nov 2026, 18:00 EST" in again
    assert outbox_rows(database) == (1, 1, 3)


def test_an_unsubscribed_address_is_refused_next_to_the_email_field(
    logged_in: FlaskClient, db_path: Path, clock: Clock, database: sqlite3.Connection
) -> None:
    with Outbox.open(db_path) as outbox:
        outbox.unsubscribe("ann@example.com", clock(), source="link", actor="patient")
    response = check_out(logged_in)
    assert response.status_code == 400
    assert "This address has unsubscribed or bounced" in response.text
    assert outbox_rows(database) == (0, 0, 0)


def test_the_handout_is_only_for_the_staff_member_and_only_for_15_minutes(
    logged_in: FlaskClient, client: FlaskClient, db_path: Path, clock: Clock
) -> None:
    location = check_out(logged_in).headers["Location"]
    pdf_url = f"{location}/handout.pdf"
    assert logged_in.get(pdf_url).status_code == 200
    add_staff(db_path, "nurse", "another long password")
    other = client.application.test_client()
    log_in(other, "nurse", "another long password")
    assert other.get(pdf_url).status_code == 404
    assert other.get(location).status_code == 404
    clock.advance(minutes=15)
    assert logged_in.get(pdf_url).status_code == 404


def test_the_form_posts_no_personal_data_in_urls(logged_in: FlaskClient) -> None:
    page = logged_in.get("/checkout").text
    assert '<form method="post" action="/checkout"' in page
    location = check_out(logged_in).headers["Location"]
    assert re.fullmatch(r"/checkout/[A-Za-z0-9_-]{22}", location)
    assert token(logged_in)  # still logged in and working
