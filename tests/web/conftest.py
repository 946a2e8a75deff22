"""Shared setup for the staff app: one PDF renderer, a settable clock, an app on a temporary db."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from aftercare.content.load import load_project
from aftercare.content.model import Project
from aftercare.delivery import Backend, backend_from_env
from aftercare.outbox.sqlite import connect
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.web import WebConfig, auth, create_app
from aftercare.web.auth import StaffAccounts
from tests.conftest import ROOT

# 15:00 UTC is 10:00 in the clinic (America/New_York), on Monday 23 November 2026.
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
SECRET = b"s" * 40
USER = "frontdesk"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The app's only clock; tests move it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at 1/32 of its real cost, so the many logins here stay fast; the parameters are
    stored in each hash, so checking follows suit. test_auth checks the real setting."""
    monkeypatch.setattr(auth, "HASH_METHOD", "scrypt:1024:8:1")


@pytest.fixture(scope="session")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="session")
def renderer(project: Project) -> HandoutRenderer:
    """One renderer for every test: building it loads WeasyPrint, the fonts and the CSS."""
    return HandoutRenderer(project)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "aftercare.db"


def make_app(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer, **config: object
) -> Flask:
    outbox_dir = db_path.parent / "outbox"

    def backend() -> Backend:
        return backend_from_env({"AFTERCARE_OUTBOX_DIR": str(outbox_dir)}, db_path.parent)

    settings = WebConfig(db=db_path, secret_key=SECRET, **config)  # type: ignore[arg-type]
    app = create_app(project, settings, now=clock, backend=backend, renderer=renderer)
    app.testing = True
    return app


@pytest.fixture
def app(project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer) -> Flask:
    return make_app(project, db_path, clock, renderer)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def staff(db_path: Path) -> str:
    """A staff account, created as `pipeline staff add` creates it."""
    add_staff(db_path, USER, PASSWORD)
    return USER


@pytest.fixture
def logged_in(client: FlaskClient, staff: str) -> FlaskClient:
    response = log_in(client, staff, PASSWORD)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def database(db_path: Path) -> Iterator[sqlite3.Connection]:
    db = connect(db_path)
    yield db
    db.close()


def add_staff(db_path: Path, username: str, password: str) -> None:
    with Outbox.open(db_path) as outbox:
        StaffAccounts(outbox, SECRET).add(username, password, NOW)


def token(client: FlaskClient, path: str = "/checkout") -> str:
    """The CSRF token from a page's form, as a browser would send it back."""
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match[1]


def log_in(client: FlaskClient, username: str, password: str) -> TestResponse:
    return client.post("/login", data={
        "username": username, "password": password, "csrf_token": token(client, "/login"),
    })


def count(db: sqlite3.Connection, table: str) -> int:
    value: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return value


def checkout_form(**changes: str) -> dict[str, str]:
    form = {
        "treatment": "botox-cosmetic", "first_name": "Ann", "last_name": "Quillfeather",
        "email": "ann@example.com", "treated_on": "2026-11-23", "areas": "frown lines",
        "provider": "Dr Rivera", "language": "en", "consent_aftercare": "yes",
        "action": "enrol",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value != "<unset>"}


def check_out(client: FlaskClient, **changes: str) -> TestResponse:
    return client.post("/checkout", data={**checkout_form(**changes), "csrf_token": token(client)})
