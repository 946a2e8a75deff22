"""The request log: one line per request, with the route's pattern and who asked, and nothing a
patient or a staff member typed, no id from a path, no token, no query string."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from aftercare.render.tokens import sign
from tests.web.conftest import PASSWORD, SECRET, USER, check_out, log_in, token
from tests.web.test_patients import search
from tests.web.test_public import bounce, signed

pytest_plugins = ["tests.web.test_public"]  # its fixtures: public_id, webhook
LINE = re.compile(r"(GET|POST|HEAD|PUT) (\S+) (\d{3}) (\d+ms) (public|staff#\d+)")


def request_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, str]]:
    lines = []
    for record in caplog.records:
        if record.name == "aftercare.requests":
            match = LINE.fullmatch(record.getMessage())
            assert match, record.getMessage()
            lines.append((match[1], match[2], match[3], match[5]))
    return lines


def test_a_run_of_requests_with_personal_data_leaves_none_in_the_log(
    client: FlaskClient, staff: str, public_id: str, webhook: FlaskClient, db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unsubscribe_token = sign(public_id, SECRET)
    typed = {"first_name": "Zenobia", "last_name": "Quillfeather", "email": "zenobia@example.org",
             "areas": "crow's feet", "provider": "Dr Okonkwo", "lot": "LOTQX7Z"}
    with caplog.at_level(logging.DEBUG, logger="aftercare"):
        log_in(client, USER, "a wrong password!")
        log_in(client, staff, PASSWORD)
        confirmation = check_out(client, **typed).headers["Location"]
        client.get(confirmation)
        client.get(f"{confirmation}/handout.pdf")
        results = search(client, "zenobia@example.org")
        client.get(f"{results}?email=zenobia@example.org&name=Zenobia")
        client.get("/checkout?first_name=Zenobia")
        client.get(f"/unsubscribe?t={unsubscribe_token}")
        client.post(f"/unsubscribe?t={unsubscribe_token}", data={"List-Unsubscribe": "One-Click"})
        body = bounce(public_id)
        webhook.post("/webhooks/sendgrid", data=body, headers=signed(body))
        client.get("/no-such-page?email=zenobia@example.org")
        client.post("/logout", data={"csrf_token": token(client)})
    lines = request_lines(caplog)
    assert ("POST", "/login", "401", "public") in lines
    assert ("POST", "/checkout", "303", "staff#1") in lines
    assert ("GET", "/checkout/<key>", "200", "staff#1") in lines
    assert ("GET", "/checkout/<key>/handout.pdf", "200", "staff#1") in lines
    assert ("GET", "/patients/<key>", "200", "staff#1") in lines
    assert ("GET", "/unsubscribe", "200", "public") in lines
    assert ("POST", "/webhooks/sendgrid", "200", "public") in lines
    assert ("GET", "/no-such-page", "404", "public") not in lines
    assert ("GET", "(unmatched)", "404", "public") in lines
    assert ("POST", "/logout", "303", "staff#1") in lines
    logged = caplog.text
    keys = [confirmation.rsplit("/", 1)[1], results.rsplit("/", 1)[1]]
    for secret in [*typed.values(), "ann@example.com", "Zenobia", "a wrong password!", PASSWORD,
                   USER, unsubscribe_token, public_id, *keys, "?", "example"]:
        assert secret not in logged, secret


def test_each_request_is_one_line(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="aftercare.requests"):
        for path in ("/login", "/assets/staff.css", "/checkout"):
            client.get(path)
    assert request_lines(caplog) == [
        ("GET", "/login", "200", "public"),
        ("GET", "/assets/staff.css", "200", "public"),
        ("GET", "/checkout", "302", "public"),
    ]
