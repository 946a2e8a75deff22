"""Who may call the API: keys (missing, unknown, revoked, of another site), the rate per key,
the trail of every call under the key's name, and the HTTP refusals as problem details; the
staff pages keep their login and CSRF checks."""

from __future__ import annotations

import http.client
import sqlite3
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.web.api.bodies import MAX_BODY
from tests.web.api.conftest import Contract, add_key, api_app, call, enrolment, running
from tests.web.conftest import NOW, Clock, checkout_form

PROBLEM = "application/problem+json"


def api_trail(database: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = database.execute("SELECT actor, detail FROM events WHERE kind = 'api-call' "
                            "ORDER BY id").fetchall()
    return [tuple(row) for row in rows]


def test_a_call_without_a_key_or_with_an_unknown_one_is_a_401(client: FlaskClient) -> None:
    missing = call(client, "GET", "/enrolments/" + "0" * 32, None)
    assert missing.status_code == 401 and missing.mimetype == PROBLEM
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="aftercare"'
    assert missing.json == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                            "detail": "expected an API key: Authorization: Bearer <key>"}
    unknown = call(client, "GET", "/enrolments/" + "0" * 32, "aftercare_nope")
    assert unknown.status_code == 401
    assert unknown.headers["WWW-Authenticate"] == ('Bearer realm="aftercare", '
                                                   'error="invalid_token"')
    basic = client.get("/api/v1/enrolments/" + "0" * 32,
                       headers={"Authorization": "Basic Ym9va2luZzpzZWNyZXQ="})
    assert basic.status_code == 401


def test_a_revoked_key_is_refused_and_the_refusal_is_recorded_under_its_name(
    client: FlaskClient, key: str, db_path: Path, database: sqlite3.Connection
) -> None:
    assert call(client, "POST", "/enrolments", key, json=enrolment()).status_code == 201
    with Outbox.open(db_path) as outbox:
        outbox.api_keys.revoke("booking", NOW, "cli:admin")
    refused = call(client, "POST", "/enrolments", key, json=enrolment())
    assert refused.status_code == 401 and refused.json is not None
    assert refused.json["detail"] == "this API key was revoked"
    assert api_trail(database) == [
        ("api:booking", "POST /api/v1/enrolments -> 201"),
        ("api:booking", "POST /api/v1/enrolments -> 401 (key revoked)"),
    ]


def test_a_key_of_another_site_is_refused_with_a_403(
    client: FlaskClient, key: str, db_path: Path, database: sqlite3.Connection
) -> None:
    # A key scoped to a site this installation does not have yet, as sites/ will allow.
    north = add_key(db_path, "north-desk", site="north")
    created = call(client, "POST", "/enrolments", key, json=enrolment()).json
    assert created is not None
    main = add_key(db_path, "main-desk", site="main")
    for method, path, body in (
        ("POST", "/enrolments", enrolment()),
        ("GET", f"/enrolments/{created['id']}", None),
        ("POST", f"/enrolments/{created['id']}/cancel", None),
        ("POST", "/patients/P-1042/rebooked", {"appointment_on": "2027-01-05"}),
        ("POST", "/unsubscribe", {"email": "ann@example.com"}),
    ):
        response = call(client, method, path, north, json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json is not None and response.json["detail"] == (
            "this key acts for site 'north' only; the request is for site 'main'")
    assert call(client, "GET", f"/enrolments/{created['id']}", main).status_code == 200
    with Outbox.open(db_path) as outbox:
        assert [m.state for m in outbox.messages()] == ["scheduled"] * 3
    assert ("api:north-desk", "GET /api/v1/enrolments/<public_id> -> 403") in api_trail(database)


def test_the_trail_names_the_key_and_the_route_and_never_a_patient(
    client: FlaskClient, key: str, database: sqlite3.Connection
) -> None:
    created = call(client, "POST", "/enrolments", key, json=enrolment()).json
    assert created is not None
    call(client, "GET", f"/enrolments/{created['id']}", key)
    call(client, "POST", "/patients/P-1042/rebooked", key, json={"appointment_on": "2027-01-05"})
    call(client, "POST", "/unsubscribe", key, json={"email": "ann@example.com"})
    assert api_trail(database) == [
        ("api:booking", "POST /api/v1/enrolments -> 201"),
        ("api:booking", "GET /api/v1/enrolments/<public_id> -> 200"),
        ("api:booking", "POST /api/v1/patients/<external_id>/rebooked -> 200"),
        ("api:booking", "POST /api/v1/unsubscribe -> 200"),
    ]
    linked = database.execute("SELECT count(*) FROM events WHERE kind = 'api-call' AND "
                              "enrollment_id IS NOT NULL").fetchone()[0]
    assert linked == 2  # the POST names the enrolment it made, the GET the one it read
    details = " ".join(str(row[0]) for row in database.execute("SELECT detail FROM events"))
    for personal in ("Ann", "ann@example.com", "P-1042", created["id"]):
        assert personal not in details


def test_each_key_has_its_own_rate_and_a_flood_is_recorded_once(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer,
    contract: Contract, database: sqlite3.Connection,
) -> None:
    app = api_app(project, db_path, clock, renderer, contract, api_rate_per_minute=3)
    client = app.test_client()
    key, other = add_key(db_path, "booking"), add_key(db_path, "other")
    path = "/enrolments/" + "0" * 32
    assert [call(client, "GET", path, key).status_code for _ in range(3)] == [404] * 3
    refused = [call(client, "GET", path, key) for _ in range(3)]
    assert [r.status_code for r in refused] == [429] * 3
    assert refused[0].headers["Retry-After"] == "20"  # one call every 20 s comes back
    assert refused[0].json is not None and refused[0].json["detail"] == (
        "this key may make 3 calls a minute; try again in 20 seconds")
    assert call(client, "GET", path, other).status_code == 404  # another key is not held back
    clock.advance(seconds=20)
    assert call(client, "GET", path, key).status_code == 404
    assert [d for a, d in api_trail(database) if a == "api:booking"] == [
        "GET /api/v1/enrolments/<public_id> -> 404"] * 3 + [
        "GET /api/v1/enrolments/<public_id> -> 429 (rate limit reached; more refusals this "
        "minute are not recorded)",
        "GET /api/v1/enrolments/<public_id> -> 404"]
    assert contract.failures == []


def test_refusals_of_the_http_layer_are_problem_details(client: FlaskClient, key: str) -> None:
    text = call(client, "POST", "/enrolments", key, data=b"campaign=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert text.status_code == 415 and text.mimetype == PROBLEM and text.json is not None
    assert text.json["detail"] == ("expected a JSON body (Content-Type: application/json); "
                                   "got 'application/x-www-form-urlencoded'")
    broken = call(client, "POST", "/enrolments", key, data=b'{"campaign": ',
                  headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json is not None
    assert broken.json["detail"] == ("expected a JSON body in UTF-8; got expecting value at "
                                     "line 1, column 14")
    twice = call(client, "POST", "/enrolments", key, data=b'{"site": "main", "site": "x"}',
                 headers={"Content-Type": "application/json"})
    assert twice.status_code == 400
    deep = call(client, "POST", "/enrolments", key, data=b"[" * 5000 + b"]" * 5000,
                headers={"Content-Type": "application/json"})
    assert deep.status_code == 400
    large = call(client, "POST", "/enrolments", key, json={"pad": "x" * MAX_BODY})
    assert large.status_code == 413 and large.json is not None
    assert large.json["detail"] == f"expected a body of at most {MAX_BODY} bytes"
    nowhere = call(client, "GET", "/nowhere", key)
    assert nowhere.status_code == 404 and nowhere.mimetype == PROBLEM
    wrong = call(client, "DELETE", "/enrolments/" + "0" * 32, key)
    assert wrong.status_code == 405 and wrong.mimetype == PROBLEM
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_a_chunked_body_past_the_limit_is_refused_by_the_real_server(
    app: Flask, key: str
) -> None:
    with running(app) as base:
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        body = (b"x" * 4096 for _ in range(MAX_BODY // 4096 + 2))
        connection.request("POST", "/api/v1/enrolments", body=body, encode_chunked=True,
                           headers={"Authorization": f"Bearer {key}",
                                    "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 413
        assert response.getheader("Content-Type") == PROBLEM
        connection.close()


def test_the_api_uses_no_session_and_the_staff_pages_keep_login_and_csrf(
    client: FlaskClient, logged_in: FlaskClient, key: str
) -> None:
    stranger = client.application.test_client()
    answer = call(stranger, "POST", "/enrolments", key, json=enrolment())
    assert answer.status_code == 201 and "Set-Cookie" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"
    # A staff session is no API key, and an API key is no staff login.
    assert call(logged_in, "GET", "/openapi.json", None).status_code == 200
    assert call(logged_in, "POST", "/unsubscribe", None,
                json={"email": "a@example.com"}).status_code == 401
    page = stranger.get("/checkout", headers={"Authorization": f"Bearer {key}"})
    assert page.status_code == 302 and page.headers["Location"].endswith("/login")
    # A logged-in form post still needs its CSRF token, key or not.
    posted = logged_in.post("/checkout", data=checkout_form(),
                            headers={"Authorization": f"Bearer {key}"})
    assert posted.status_code == 400


def test_every_api_route_refuses_a_request_without_a_key(
    app: Flask, logged_in: FlaskClient
) -> None:
    routes = [(rule.rule.replace("<public_id>", "0" * 32).replace("<external_id>", "P-1"),
               method) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
              for method in ("GET", "POST") if method in rule.methods]
    assert len(routes) == 6
    for path, method in routes:  # a staff login is no key either
        response = logged_in.open(path, method=method, json={})
        assert (response.status_code, response.mimetype) == (401, "application/problem+json")

