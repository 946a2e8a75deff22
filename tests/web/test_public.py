"""The public endpoints: one-click unsubscribe (RFC 8058) and SendGrid's signed Event Webhook."""

from __future__ import annotations

import base64
import json
import sqlite3
from html import escape
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.tokens import sign
from tests.web.conftest import NOW, SECRET, Clock, make_app
from tests.web.test_patients import enrol

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@pytest.fixture
def public_id(db_path: Path, project: Project) -> str:
    """The public id of Ann's first email, as an unsubscribe link names it."""
    enrol(db_path, project, "ann@example.com", "Ann")
    with Outbox.open(db_path) as outbox:
        return outbox.messages()[0].public_id


def unsent(db_path: Path) -> int:
    with Outbox.open(db_path) as outbox:
        return sum(m.state == "scheduled" for m in outbox.messages())


def test_the_link_shows_a_confirmation_page_with_a_button(
    client: FlaskClient, public_id: str, db_path: Path
) -> None:
    token = sign(public_id, SECRET)
    response = client.get(f"/unsubscribe?t={token}")
    assert response.status_code == 200
    page = response.text
    assert '<html lang="en">' in page
    assert "Stop aftercare emails?" in page and "a••@example.com" in page
    assert f'<form method="post" action="/unsubscribe?t={token}">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert "csrf_token" not in page and "Set-Cookie" not in response.headers
    assert unsent(db_path) == 2  # a GET (a link scanner, say) changes nothing


def test_one_click_unsubscribes_at_once_without_login_or_redirect(
    client: FlaskClient, public_id: str, db_path: Path, database: sqlite3.Connection
) -> None:
    url = f"/unsubscribe?t={sign(public_id, SECRET)}"
    response = client.post(url, data=ONE_CLICK)
    assert response.status_code == 200
    assert "Location" not in response.headers and "Set-Cookie" not in response.headers
    assert "You are unsubscribed" in response.text
    assert unsent(db_path) == 0
    with Outbox.open(db_path) as outbox:
        assert outbox.is_suppressed("ann@example.com")
    sources = database.execute("SELECT source FROM suppressions").fetchall()
    assert [row[0] for row in sources] == ["link"]
    actors = database.execute("SELECT DISTINCT actor FROM events WHERE kind IN"
                              " ('unsubscribed', 'cancelled')").fetchall()
    assert [row[0] for row in actors] == ["patient"]
    # Again, and the page the link now shows: both say it is done.
    assert client.post(url, data=ONE_CLICK).status_code == 200
    assert "You are unsubscribed" in client.get(url).text


@pytest.mark.parametrize("kind", ["forged", "altered", "truncated", "missing", "garbage"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_token_is_refused_with_a_clear_page(
    client: FlaskClient, public_id: str, db_path: Path, kind: str, method: str
) -> None:
    good = sign(public_id, SECRET)
    signature = good.split(".")[1]
    other = sign(public_id[:-1] + ("0" if public_id[-1] != "0" else "1"), SECRET).split(".")[0]
    tokens = {
        "forged": sign(public_id, b"another key entirely, 32+ bytes!"),
        "altered": f"{other}.{signature}",
        "truncated": good[:-2],
        "missing": "",
        "garbage": "<script>alert(1)</script>",
    }
    response = client.open("/unsubscribe", method=method,
                           query_string={"t": tokens[kind]}, data=ONE_CLICK)
    assert response.status_code == 400
    assert "This link does not work" in response.text
    assert "Nothing was changed." in response.text
    assert "<script>" not in response.text
    assert unsent(db_path) == 2


# ---------------------------------------------------------------- webhook


def key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode("ascii")


PRIVATE, PUBLIC = key_pair()


def signed(body: bytes, private: ec.EllipticCurvePrivateKey = PRIVATE) -> dict[str, str]:
    timestamp = str(int(NOW.timestamp()))
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: timestamp}


def bounce(public_id: str) -> bytes:
    event = {"email": "ann@example.com", "event": "bounce", "message_id": public_id,
             "sg_event_id": "ZXZlbnQtMQ", "timestamp": int(NOW.timestamp()),
             "reason": "550 unknown user"}
    return json.dumps([event]).encode() + b"\r\n"


@pytest.fixture
def webhook(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer
) -> FlaskClient:
    return make_app(project, db_path, clock, renderer, webhook_public_key=PUBLIC).test_client()


def test_a_webhook_post_without_a_signature_is_refused(
    webhook: FlaskClient, public_id: str, db_path: Path
) -> None:
    response = webhook.post("/webhooks/sendgrid", data=bounce(public_id))
    assert (response.status_code, response.text) == (403, "signature refused\n")
    assert unsent(db_path) == 2


def test_a_webhook_post_with_a_wrong_signature_is_refused(
    webhook: FlaskClient, public_id: str, db_path: Path
) -> None:
    body = bounce(public_id)
    other, _ = key_pair()
    for headers in (signed(body, other), signed(body.replace(b"550", b"551")),
                    {**signed(body), SIGNATURE: "bm90IGEgc2lnbmF0dXJl"}):
        response = webhook.post("/webhooks/sendgrid", data=body, headers=headers)
        assert response.status_code == 403
    assert unsent(db_path) == 2


def test_a_signed_webhook_post_is_recorded_without_login_or_csrf(
    webhook: FlaskClient, public_id: str, db_path: Path
) -> None:
    body = bounce(public_id)
    response = webhook.post("/webhooks/sendgrid", data=body, headers=signed(body),
                            content_type="application/json")
    assert response.status_code == 200, response.text
    assert response.text.startswith("1 events:")
    assert "Set-Cookie" not in response.headers
    with Outbox.open(db_path) as outbox:
        assert outbox.is_suppressed("ann@example.com")
    assert unsent(db_path) == 0


def test_the_webhook_is_refused_while_no_key_is_configured(
    client: FlaskClient, public_id: str
) -> None:
    body = bounce(public_id)
    response = client.post("/webhooks/sendgrid", data=body, headers=signed(body))
    assert response.status_code == 403
    assert response.text == "webhook verification key not configured\n"


# ---------------------------------------------------------------- handout sources


def test_the_sources_a_checkout_sheet_points_to_are_listed_for_anyone(
    client: FlaskClient, project: Project
) -> None:
    handout = project.handouts["aftercare-cosmetic"]
    page = client.get("/sources/aftercare-cosmetic")
    assert page.status_code == 200
    assert f"<h1>Sources for “{handout.title}”</h1>" in page.text
    for source in handout.sources:
        assert source.title in page.text
        if source.url:
            assert f'<a href="{escape(source.url)}" rel="noopener noreferrer">' in page.text
    assert "Reviewed on 29 November 2026 by Dr. Rana Patel, medical director." in page.text
    assert client.get("/sources/no-such-topic").status_code == 404
    assert client.get("/sources/../clinic.yaml").status_code == 404
