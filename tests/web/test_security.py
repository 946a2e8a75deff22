"""Every staff route needs a login, every staff form its CSRF token; headers and cookies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.render.handouts import HandoutRenderer
from tests.web.conftest import Clock, checkout_form, count, make_app, token

# Reachable without logging in: the login page, the patients' unsubscribe page, SendGrid's
# webhook, the list of a handout's sources (printed on the checkout sheet: content, no patient
# data), the care page with its reminder and handout (opened by a signed token only:
# tests/web/test_care.py), and the stylesheet, logo and fonts those pages use. Adding a route to
# this list must be a decision: every other route is checked below to refuse anonymous requests.
PUBLIC = {
    "staff.login", "staff.login_post", "public.sendgrid_webhook", "public.unsubscribe_page",
    "public.unsubscribe", "public.sources", "public.stylesheet", "public.logo", "public.font",
    "care.page", "care.calendar", "care.handout",
    "api.openapi",  # the API's description: no data
}
# The booking-system API's routes need an API key instead of a login (checked below too).
API = "api"
METHODS = ("GET", "POST")


def staff_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL) for every route not in PUBLIC, arguments filled with samples."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.endpoint.startswith(f"{API}."):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "sample")
        routes += [(rule.endpoint, method, path) for method in METHODS if method in rule.methods]
    return routes


def test_only_the_listed_routes_are_public(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints >= PUBLIC
    assert all(e.split(".")[0] in ("staff", "patients", API) for e in endpoints - PUBLIC)
    assert len(staff_routes(app)) >= 14  # the checks below did find the staff routes


def test_every_staff_route_sends_an_anonymous_request_to_the_login_page(
    app: Flask, client: FlaskClient
) -> None:
    refused = []
    for endpoint, method, path in staff_routes(app):
        response = client.open(path, method=method, data={"csrf_token": "x"})
        if response.status_code != 302 or response.headers.get("Location") != "/login":
            refused.append(f"{method} {path} ({endpoint}): {response.status_code}")
    assert refused == []


def test_every_staff_post_needs_its_csrf_token(app: Flask, logged_in: FlaskClient) -> None:
    accepted = []
    for endpoint, method, path in staff_routes(app):
        if method != "POST":
            continue
        for data in ({}, {"csrf_token": "forged"}):
            response = logged_in.post(path, data=data)
            if response.status_code != 400 or "Nothing was saved" not in response.text:
                accepted.append(f"POST {path} ({endpoint}) {data}: {response.status_code}")
    assert accepted == []


def test_a_checkout_without_its_token_is_refused_and_writes_nothing(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    response = logged_in.post("/checkout", data=checkout_form())
    assert response.status_code == 400
    assert "This form was not accepted" in response.text
    assert "Go back, reload the page, and send the form again." in response.text
    assert count(database, "patients") == 0


def test_the_login_form_needs_its_token_too(client: FlaskClient, staff: str) -> None:
    response = client.post("/login", data={"username": staff, "password": "x" * 12})
    assert response.status_code == 400
    assert "This form was not accepted" in response.text


def test_a_token_from_before_logging_in_is_not_accepted_after(
    client: FlaskClient, staff: str
) -> None:
    from tests.web.conftest import PASSWORD

    old = token(client, "/login")
    client.post("/login", data={"username": staff, "password": PASSWORD, "csrf_token": old})
    response = client.post("/checkout", data={**checkout_form(), "csrf_token": old})
    assert response.status_code == 400


def test_security_headers_on_pages_pdfs_and_public_endpoints(logged_in: FlaskClient) -> None:
    for path in ("/checkout", "/login", "/unsubscribe?t=x", "/assets/staff.css"):
        headers = logged_in.get(path).headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
    assert logged_in.get("/checkout").headers["Cache-Control"] == "no-store"
    assert "object-src 'none'" in logged_in.get("/checkout").headers["Content-Security-Policy"]


def test_pages_use_no_inline_script_or_style(logged_in: FlaskClient) -> None:
    for path in ("/checkout", "/patients", "/outbox", "/login"):
        page = logged_in.get(path).text
        assert "<script" not in page and "<style" not in page and " style=" not in page


def test_the_session_cookie_is_http_only_and_same_site(client: FlaskClient) -> None:
    cookie = client.get("/login").headers["Set-Cookie"]
    assert cookie.startswith("aftercare=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_secure_cookies_when_configured(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer
) -> None:
    app = make_app(project, db_path, clock, renderer, secure_cookies=True)
    cookie = app.test_client().get("/login", base_url="https://localhost").headers["Set-Cookie"]
    assert cookie.startswith("__Host-aftercare=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie


def test_a_disabled_account_is_logged_out_at_once(
    logged_in: FlaskClient, database: sqlite3.Connection
) -> None:
    database.execute("UPDATE staff SET disabled = 1")
    assert logged_in.get("/checkout").headers["Location"] == "/login"


@pytest.mark.parametrize("path", ["/checkout/sample", "/checkout/sample/handout.pdf",
                                  "/patients/sample"])
def test_unknown_or_expired_ids_get_a_404_page(logged_in: FlaskClient, path: str) -> None:
    response = logged_in.get(path)
    assert response.status_code == 404
    assert "kept for 15 minutes only" in response.text


def test_the_stylesheet_carries_the_clinic_colours_with_enough_contrast(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer
) -> None:
    from dataclasses import replace

    from aftercare.content.values import Colour

    css = make_app(project, db_path, clock, renderer).test_client().get("/assets/staff.css").text
    assert "--primary: #1d5c63;" in css and "--text: #1f2933;" in css
    # A pale brand colour would put white text on a pale button: the text colour stands in.
    pale = replace(project.clinic, brand=replace(project.clinic.brand, primary=Colour("#ffd54a")))
    light = make_app(replace(project, clinic=pale), db_path, clock, renderer)
    assert "--primary: #1f2933;" in light.test_client().get("/assets/staff.css").text
