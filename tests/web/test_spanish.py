"""The staff page and the patients' pages in Spanish: the checkout's language menu, a Spanish
handout (alone or with the English sheet), the patient's language on the lookup page, and the
unsubscribe and sources pages in the patient's language."""

from __future__ import annotations

import io
import re
import sqlite3

from flask.testing import FlaskClient
from pypdf import PdfReader

from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from aftercare.render.tokens import sign
from tests.web.conftest import SECRET, check_out, token
from tests.web.test_checkout import visible


def _pdf_pages(data: bytes) -> list[str]:
    return ["".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def _handout(client: FlaskClient, location: str) -> tuple[str, bytes]:
    confirmation = client.get(location).text
    link = re.search(r'href="(/checkout/[^"]+/handout\.pdf)"', confirmation)
    assert link, confirmation
    return confirmation, client.get(link[1]).data


def test_the_checkout_offers_the_languages_the_content_has(logged_in: FlaskClient) -> None:
    page = logged_in.get("/checkout").text
    assert '<label for="f-language">Language of the handout and emails</label>' in page
    assert '<option value="en" selected>English</option>' in page
    assert '<option value="es">Español</option>' in page
    assert '<label for="f-also_print">Also print the handout in</label>' in page
    assert '<option value="">No other language</option>' in page


def test_a_spanish_checkout_gives_a_spanish_handout_and_spanish_emails(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    response = check_out(logged_in, language="es", consent_marketing="yes")
    assert response.status_code == 303
    confirmation, pdf = _handout(logged_in, response.headers["Location"])
    assert "Después de su tratamiento para las líneas de expresión (Español)" in visible(
        confirmation)
    pages = _pdf_pages(pdf)
    assert len(pages) == 2
    assert PdfReader(io.BytesIO(pdf)).trailer["/Root"]["/Lang"] == "es-US"
    assert "AnnQuillfeather" in pages[0] and "Busqueatencióndeemergenciaahora" in pages[0]
    assert "lun23denov:consejosporcorreoparalosprimerosdías" in pages[0]
    language = database.execute("SELECT language FROM patients").fetchone()[0]
    assert language == "es"


def test_both_languages_print_one_sheet_each(logged_in: FlaskClient) -> None:
    response = check_out(logged_in, language="es", also_print="en", action="print")
    assert response.status_code == 303
    confirmation, pdf = _handout(logged_in, response.headers["Location"])
    assert "(Español and English)" in visible(confirmation)
    pages = _pdf_pages(pdf)
    assert len(pages) == 4
    assert "Busqueatencióndeemergenciaahora" in pages[0]
    assert "Getemergencycarenow" in pages[2]


def test_a_second_language_must_differ_from_the_first(logged_in: FlaskClient) -> None:
    response = check_out(logged_in, language="es", also_print="es")
    assert response.status_code == 400
    assert "Choose a second language for the handout, or none." in response.text


def test_the_diary_of_a_spanish_migraine_checkout_is_spanish(logged_in: FlaskClient) -> None:
    response = check_out(logged_in, treatment="botox-migraine", language="es")
    confirmation = logged_in.get(response.headers["Location"]).text
    link = re.search(r'href="(/checkout/[^"]+/diary\.pdf)"', confirmation)
    assert link
    (page,) = _pdf_pages(logged_in.get(link[1]).data)
    assert "Midiariodedolordecabeza" in page and "lun23denov" in page


def test_the_patient_page_shows_each_patients_language(logged_in: FlaskClient) -> None:
    check_out(logged_in, language="es", email="ana@example.com", first_name="Ana")
    check_out(logged_in, email="ben@example.com", first_name="Ben")
    for query, shown in (("ana@example.com", '<span lang="es">Español</span>'),
                         ("ben@example.com", '<span lang="en">English</span>')):
        found = logged_in.post("/patients", data={"query": query,
                                                  "csrf_token": token(logged_in, "/patients")})
        page = logged_in.get(found.headers["Location"]).text
        assert f'<p class="language">Language: {shown}</p>' in page


def test_the_unsubscribe_pages_are_in_the_patients_language(
    logged_in: FlaskClient, database: sqlite3.Connection, client: FlaskClient
) -> None:
    check_out(logged_in, language="es")
    public_id = database.execute("SELECT public_id FROM messages LIMIT 1").fetchone()[0]
    link = f"/unsubscribe?l=es&t={sign(public_id, SECRET)}"
    page = client.get(link).text
    assert '<html lang="es">' in page
    assert "¿Dejar de recibir correos de cuidados?" in page
    assert "Cancelar la suscripción" in page
    assert "de lunes a viernes, de 9 a. m. a 5 p. m." in page  # the clinic's Spanish hours
    done = client.post(link).text
    assert "Su suscripción está cancelada" in done and "Ya no le enviamos correos a" in done
    refused = client.get("/unsubscribe?l=es&t=cut-by-the-mail-program")
    assert refused.status_code == 400
    assert "Este enlace no funciona" in refused.text and '<html lang="es">' in refused.text
    assert "This link does not work" in client.get("/unsubscribe?t=x").text


def test_the_sources_page_of_a_spanish_handout_is_spanish(client: FlaskClient) -> None:
    page = client.get("/sources/es/aftercare-migraine").text
    assert '<html lang="es">' in page
    assert "Fuentes de “Después de su tratamiento para la migraña crónica”" in page
    assert ("Traducción preliminar, aún sin revisar, del texto en inglés revisado el 29 de "
            "noviembre de 2026 por Dr. Rana Patel, medical director.") in visible(page)
    assert "Próxima revisión: 29 de noviembre de 2027." in visible(page)
    english = client.get("/sources/aftercare-migraine").text
    assert "Reviewed on 29 November 2026 by Dr. Rana Patel, medical director." in visible(english)
    for missing in ("/sources/fr/aftercare-migraine", "/sources/en/aftercare-migraine",
                    "/sources/es/no-such-topic"):
        assert client.get(missing).status_code == 404


def test_the_consents_are_shown_in_spanish_too_and_a_spanish_consent_is_its_own_version(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    page = logged_in.get("/checkout").text
    assert ('<p class="consent-translation"><span class="consent-language">Español:</span> '
            '<span lang="es">Acepto que la clínica me envíe por correo consejos para cuidarme '
            'después de mi tratamiento, a la dirección de correo que di.</span></p>') in page
    assert "Esto es opcional, y puedo dejar de recibir estos recordatorios" in page
    check_out(logged_in, language="es", email="ana@example.com", first_name="Ana")
    check_out(logged_in, email="ben@example.com", first_name="Ben")
    versions = dict(database.execute(
        "SELECT p.email, e.consent_wording_version FROM enrollments AS e "
        "JOIN patients AS p ON p.id = e.patient_id").fetchall())
    assert versions["ben@example.com"] == CONSENT_WORDING_VERSION
    assert versions["ana@example.com"] != CONSENT_WORDING_VERSION
