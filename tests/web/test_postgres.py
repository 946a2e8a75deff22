"""The staff pages on a PostgreSQL outbox: sessions kept in it end at logout, throttling counts
there lock out only the guessing client, and a database that refuses writes says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.delivery import Backend, backend_from_env
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.web import WebConfig, auth, create_app
from aftercare.web.auth import StaffAccounts
from tests.outbox.test_storage_problems import read_only
from tests.postgres import OutboxDatabase
from tests.web.conftest import NOW, PASSWORD, SECRET, USER, Clock, log_in, token
from tests.web.test_checkout import visible
from tests.web.test_patients import enrol, search
from tests.web.test_sessions import cookie, replay
from tests.web.test_throttle import ATTACKER, DESK, desk, fail_until_locked, try_login


@pytest.fixture
def app(project: Project, postgresql: OutboxDatabase, clock: Clock, renderer: HandoutRenderer,
        tmp_path: Path) -> Flask:
    def backend() -> Backend:
        return backend_from_env({"AFTERCARE_OUTBOX_DIR": str(tmp_path / "outbox")}, tmp_path)

    config = WebConfig(db=postgresql.location, secret_key=SECRET)
    made = create_app(project, config, now=clock, backend=backend, renderer=renderer)
    made.testing = True
    with Outbox.open(postgresql.location) as outbox:
        StaffAccounts(outbox, SECRET).add(USER, PASSWORD, NOW)
    return made


@pytest.fixture
def logged_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, USER, PASSWORD).status_code == 303
    return client


def test_a_cookie_copied_before_logout_opens_nothing_after_it(
    app: Flask, logged_in: FlaskClient, postgresql: OutboxDatabase
) -> None:
    copied = cookie(logged_in)
    assert replay(app, copied).get("/outbox").status_code == 200
    assert postgresql.count("staff_sessions") == 1
    assert logged_in.post("/logout", data={"csrf_token": token(logged_in)}).status_code == 303
    refused = replay(app, copied).get("/outbox")
    assert (refused.status_code, refused.headers["Location"]) == (302, "/login")
    assert postgresql.count("staff_sessions") == 0


def test_a_failed_login_storm_locks_out_only_the_client_that_sends_it(
    app: Flask, clock: Clock, postgresql: OutboxDatabase
) -> None:
    attacker = desk(app, ATTACKER)
    assert fail_until_locked(attacker, clock, USER) == [401] * auth.LOCK_AT
    assert try_login(attacker, USER, PASSWORD).status_code == 429
    real_user = desk(app, DESK)
    assert try_login(real_user, USER, PASSWORD).status_code == 303
    with postgresql.raw() as db:
        counts = db.execute("SELECT client, failures FROM login_failures WHERE account <> ''"
                            ).fetchall()
    assert [tuple(row) for row in counts] == [(ATTACKER, auth.LOCK_AT)]


def test_a_read_only_database_on_a_patient_action_says_nothing_was_saved(
    logged_in: FlaskClient, project: Project, postgresql: OutboxDatabase
) -> None:
    enrol(postgresql.location, project, "ann@example.com", "Ann")  # type: ignore[arg-type]
    results = search(logged_in, "ann@example.com")
    key = results.rsplit("/", 1)[1]
    form = token(logged_in, results)
    with read_only(postgresql):
        response = logged_in.post(f"/patients/{key}/cancel", data={
            "email": "ann@example.com", "campaign": "botox-cosmetic", "confirm": "yes",
            "csrf_token": form})
    assert response.status_code == 503
    text = visible(response.text)
    assert "Nothing was saved" in text and "read-only" in text
    with postgresql.raw() as db:
        assert db.execute("SELECT count(*) FROM messages WHERE state = 'scheduled'"
                          ).fetchone()[0] == 2
