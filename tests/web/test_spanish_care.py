"""The care page and the public pages in the patient's language: a Spanish migraine patient's
links name Spanish before the token and open Spanish pages (the content, the reminder, the
handout, the expired, busy and "not valid" pages), and a public error page is in Spanish where
the address says so, English otherwise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader

from aftercare.content.model import Project
from aftercare.outbox.store import Outbox
from aftercare.render.care_links import CARE_PATH
from aftercare.render.emails import EmailRenderer, Recipient
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.tokens import read_care, sign
from tests.render.test_minimal import Blocks
from tests.unwritable import unwritable
from tests.web.conftest import PASSWORD, SECRET, Clock, check_out, log_in, make_app
from tests.web.test_care import DUE, HEADERS, READ_AT, Sent, _altered, send_every_step
from tests.web.test_checkout import pdf_text, visible
from tests.web.test_error_pages import STAFF_PATHS, links

pytest_plugins = ["tests.web.test_care"]  # its fixture: lookups


@pytest.fixture
def sent(app: Flask, staff: str, project: Project, db_path: Path, clock: Clock) -> Sent:
    """A Spanish-speaking migraine patient checked out at the desk; every email sent."""
    desk = app.test_client()
    assert log_in(desk, staff, PASSWORD).status_code == 303
    response = check_out(desk, treatment="botox-migraine", first_name="Lucía",
                         last_name="Peña", email="lucia@example.com", language="es",
                         areas="sien izquierda", consent_marketing="yes")
    assert response.status_code == 303
    sent = send_every_step(project, db_path)
    with Outbox.open(db_path) as outbox:
        assert [m.language for m in outbox.messages()] == ["es"] * 3
    clock.now = READ_AT
    return sent


def test_a_spanish_emails_link_opens_its_aftercare_in_spanish(
    client: FlaskClient, sent: Sent
) -> None:
    assert all(sent.link(step).startswith(f"{CARE_PATH}es/") for step in DUE)
    response = client.get(sent.link("day-0"))
    assert response.status_code == 200
    assert '<html lang="es">' in response.text
    assert "<title>Sus notas de cuidados · Juniper Lane Clinic</title>" in response.text
    page = visible(response.text)
    assert "Sus primeros días" in page and "Las primeras 24 horas" in page
    assert "Busque atención de emergencia ahora" in page
    assert "El enlace funciona hasta el 23 de marzo de 2027." in page
    assert "de lunes a viernes, de 9 a. m. a 5 p. m." in page  # the clinic's hours, in Spanish
    for english in ("Your aftercare notes", "The first 24 hours", "Get emergency care now",
                    "Keep these notes", "The link works until", "Monday to Friday"):
        assert english not in page
    assert "Peña" not in response.text and "Lucía" not in page  # no name on the page
    english = client.get("/login").headers
    assert response.headers["Content-Security-Policy"] == english["Content-Security-Policy"]
    assert (response.headers["Cache-Control"], response.headers["X-Robots-Tag"]) == (
        "no-store", "noindex")


def test_the_spanish_page_shows_exactly_what_the_full_spanish_email_would_have(
    client: FlaskClient, sent: Sent, project: Project
) -> None:
    campaign = project.campaigns["botox-migraine"]
    renderer = EmailRenderer(project, SECRET)
    for step in campaign.steps:
        link = read_care(sent.link(step.key).rsplit("/", 1)[1], SECRET)
        recipient = dataclasses.replace(
            _recipient(sent, step.key), local_due=link.issued.astimezone(
                project.clinic.timezone.zone))
        full = renderer.render(campaign, step, recipient, "full")
        email_blocks = Blocks(full.html, region=("td", "content"))
        page_blocks = Blocks(client.get(sent.link(step.key)).text, region=("article", "care"))
        shown = [b for b in email_blocks.items if b[1] != "signoff" and b[2] != "Hola, Lucía:"]
        assert page_blocks.items == shown, step.key
        assert page_blocks.links == email_blocks.links


def _recipient(sent: Sent, step: str) -> Recipient:
    return Recipient(first_name="Lucía", email=sent.emls[step]["To"].addresses[0].addr_spec,
                     language="es", treated_on=dt.date(2026, 11, 23), local_due=None,
                     public_id=sent.public_ids[step])


def test_the_spanish_reminder_and_handout(client: FlaskClient, sent: Sent) -> None:
    page = client.get(sent.link("week-10")).text
    assert "Guardar el recordatorio en su calendario" in page
    assert f'href="{sent.link("week-10")}/reminder.ics"' in page
    assert f'href="{sent.link("week-10")}/handout.pdf"' in page
    calendar = client.get(sent.link("week-10") + "/reminder.ics")
    assert calendar.headers["Content-Disposition"] == (
        'attachment; filename="proxima-visita.ics"')
    (attached,) = sent.emls["week-10"].iter_attachments()
    assert calendar.data == attached.get_content().encode()
    assert "SUMMARY:Próxima visita en Juniper Lane Clinic" in calendar.text
    handout = client.get(sent.link("week-10") + "/handout.pdf")
    assert handout.status_code == 200
    assert PdfReader(io.BytesIO(handout.data)).trailer["/Root"]["/Lang"] == "es-US"
    text = pdf_text(handout.data)
    assert "Lucía" in text and "Busque atención de emergencia ahora" in " ".join(text.split())
    assert "Peña" not in text and "sien izquierda" not in text


def test_a_spanish_link_that_does_not_open_gets_the_spanish_page_after_the_same_work(
    client: FlaskClient, sent: Sent, lookups: list[str]
) -> None:
    good = sent.link("day-0").rsplit("/", 1)[1]
    english = client.get(f"{CARE_PATH}{_altered(good)}")
    answers = []
    for token in (_altered(good), good[:-4], "not-a-token", sign(sent.public_ids["day-0"],
                                                                SECRET)):
        lookups.clear()
        response = client.get(f"{CARE_PATH}es/{token}")
        assert len(lookups) == 1  # one MAC, one lookup, whatever the token
        answers.append((response.status_code, response.data,
                        [(h, response.headers.get(h)) for h in HEADERS]))
    assert all(answer == answers[0] for answer in answers)
    status, body, headers = answers[0]
    assert status == 404 == english.status_code
    assert [(h, english.headers.get(h)) for h in HEADERS] == headers
    page = visible(body.decode())
    assert '<html lang="es">' in body.decode()
    assert "Este enlace no funciona" in page and "Este enlace no es válido." in page
    assert "(617) 555-0142" in page and "llame ahora al 911" in page
    assert "This link does not work" in visible(english.text)
    # Only a further language is ever named before a token: another name opens nothing.
    for named in ("en", "xx"):
        lookups.clear()
        refused = client.get(f"{CARE_PATH}{named}/{good}")
        assert refused.status_code == 404 and len(lookups) == 1
        assert refused.data == english.data
    assert client.get(f"{CARE_PATH}es/{good}").status_code == 200


def test_a_spanish_link_past_its_days_says_so_in_spanish(
    client: FlaskClient, sent: Sent, clock: Clock
) -> None:
    clock.now = dt.datetime(2027, 3, 24, 4, 0, tzinfo=dt.UTC)
    response = client.get(sent.link("day-0"))
    assert response.status_code == 410 and '<html lang="es">' in response.text
    page = visible(response.text)
    assert "Este enlace ya venció" in page
    assert "el enlace de nuestro correo funciona 120 días" in page
    assert "Llámenos al (617) 555-0142" in page and "Con gusto repasamos sus cuidados" in page


def test_too_many_requests_on_a_spanish_link_are_told_in_spanish(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer, sent: Sent
) -> None:
    client = make_app(project, db_path, clock, renderer,
                      care_requests_per_minute=1).test_client()
    assert client.get(sent.link("day-0")).status_code == 200
    refused = client.get(sent.link("week-2"))
    assert refused.status_code == 429 and '<html lang="es">' in refused.text
    assert "Vuelva a intentarlo en un minuto, por favor." in visible(refused.text)


# ------------------------------------------------------------------ public error pages


@pytest.mark.parametrize(("path", "lang", "title"), [
    ("/sources/es/no-such-topic", "es", "No encontramos esta página"),
    ("/sources/no-such-topic", "en", "Page not found"),
    ("/sources/xx/aftercare-cosmetic", "en", "Page not found"),
])
def test_a_public_404_is_in_the_language_its_address_names(
    client: FlaskClient, path: str, lang: str, title: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert f'<html lang="{lang}">' in response.text and f"<h1>{title}</h1>" in response.text
    assert not [link for link in links(response.text)
                if link.startswith(STAFF_PATHS) or link == "/"]


def test_a_spanish_patient_unsubscribing_meanwhile_gets_the_spanish_public_page(
    client: FlaskClient, sent: Sent, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sign(sent.public_ids["week-2"], SECRET)
    with unwritable(db_path, monkeypatch):
        response = client.post(f"/unsubscribe?l=es&t={token}",
                               data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 503 and '<html lang="es">' in response.text
    page = visible(response.text)
    assert "No pudimos guardar su solicitud en este momento. No se cambió nada." in page
    assert "(617) 555-0142" in page and "/checkout" not in response.text
