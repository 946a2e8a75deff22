"""Error pages: anyone who is not logged in (a patient following a link) gets a public page with
the clinic's number and no staff links; staff get theirs."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

STAFF_PATHS = ("/checkout", "/login", "/patients", "/outbox", "/logout")


def links(html: str) -> list[str]:
    return re.findall(r'(?:href|action)="([^"]*)"', html)


@pytest.mark.parametrize(("method", "path", "code", "title"), [
    ("GET", "/no-such-page", 404, "Page not found"),
    ("GET", "/sources/no-such-topic", 404, "Page not found"),
    ("GET", "/assets/fonts/nothing.ttf", 404, "Page not found"),
    ("GET", "/webhooks/sendgrid", 405, "Something went wrong"),
    ("PUT", "/unsubscribe", 405, "Something went wrong"),
])
def test_a_public_error_page_shows_no_staff_links(
    client: FlaskClient, method: str, path: str, code: int, title: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == code
    page = response.text
    assert f"<h1>{title}</h1>" in page
    assert "please call us at <span class=\"nowrap\">(617) 555-0142</span>" in page
    assert not [link for link in links(page) if link.startswith(STAFF_PATHS) or link == "/"]
    assert "Staff" not in page and "Log out" not in page


def test_staff_still_get_the_staff_page_with_its_links(logged_in: FlaskClient) -> None:
    for path in ("/no-such-page", "/checkout/expired-id"):
        page = logged_in.get(path).text
        assert "kept for 15 minutes only" in page
        assert "/checkout" in links(page)
