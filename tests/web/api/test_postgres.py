"""The booking-system API on a PostgreSQL outbox: requests sent at once with one key make one
enrolment, enrolments are found by their opaque ids, forgetting a patient deletes the answers
kept about them (gone from every row version the server keeps), and retention deletes the
answers kept over a day."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

import pipeline
from aftercare.content.model import Project
from aftercare.delivery import Backend, backend_from_env
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.web import WebConfig, create_app
from aftercare.web.api.keys import hash_key, new_key
from tests.conftest import ROOT
from tests.postgres import OutboxDatabase
from tests.web.api.conftest import Contract, call, enrolment
from tests.web.conftest import NOW, SECRET, Clock

KEY_HEADER = "Idempotency-Key"


@pytest.fixture
def app(project: Project, postgresql: OutboxDatabase, clock: Clock, renderer: HandoutRenderer,
        contract: Contract, tmp_path: Path) -> Flask:
    def backend() -> Backend:
        return backend_from_env({"AFTERCARE_OUTBOX_DIR": str(tmp_path / "outbox")}, tmp_path)

    config = WebConfig(db=postgresql.location, secret_key=SECRET)
    made = create_app(project, config, now=clock, backend=backend, renderer=renderer)
    made.testing = True
    return contract.attach(made)


@pytest.fixture
def key(postgresql: OutboxDatabase) -> str:
    token = new_key()
    with Outbox.open(postgresql.location) as outbox:
        outbox.api_keys.add("booking", hash_key(token), None, NOW, "cli:admin")
    return token


@pytest.fixture
def cli(postgresql: OutboxDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line on the app's database, with the app's secret key."""
    monkeypatch.setenv("AFTERCARE_DB", str(postgresql.location))
    monkeypatch.setenv("AFTERCARE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", SECRET.decode())
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setattr(pipeline, "_now", lambda: NOW)
    yield


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def kept(postgresql: OutboxDatabase) -> dict[str, str]:
    with postgresql.raw() as db:
        rows = db.execute("SELECT idempotency_key, body FROM idempotency_keys").fetchall()
    return {str(name): str(body) for name, body in rows}


def test_requests_sent_at_once_with_one_key_make_one_enrolment(
    app: Flask, key: str, postgresql: OutboxDatabase
) -> None:
    # Six threads call the app at once, each with a client (and so a database connection) of
    # its own, as a threaded server's requests do.
    answers: list[tuple[int, bytes]] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        client = app.test_client()
        barrier.wait()
        answer = call(client, "POST", "/enrolments", key, json=enrolment(),
                      headers={KEY_HEADER: "visit-1"})
        answers.append((answer.status_code, answer.data))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6
    assert {status for status, _ in answers} == {201}
    assert len({text for _, text in answers}) == 1  # one answer, given six times
    assert postgresql.count("enrollments") == 1 and postgresql.count("messages") == 3
    assert postgresql.count("idempotency_keys") == 1


def test_an_enrolment_is_found_by_its_opaque_id_never_by_its_row_number(
    client: FlaskClient, key: str, postgresql: OutboxDatabase
) -> None:
    made = call(client, "POST", "/enrolments", key, json=enrolment())
    assert made.status_code == 201 and made.json is not None
    public_id = made.json["id"]
    with postgresql.raw() as db:
        row_id, stored = db.execute("SELECT id, public_id FROM enrollments").fetchone()
    assert stored == public_id and len(public_id) == 32
    shown = call(client, "GET", f"/enrolments/{public_id}", key)
    assert shown.status_code == 200 and shown.json is not None
    assert {name: value for name, value in made.json.items()
            if name not in ("changes", "created")} == shown.json  # what creating adds
    assert call(client, "GET", f"/enrolments/{row_id}", key).status_code == 404


def test_forgetting_a_patient_deletes_the_answers_about_them_from_what_the_server_keeps(
    client: FlaskClient, key: str, cli: None, postgresql: OutboxDatabase,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ann = call(client, "POST", "/enrolments", key, json=enrolment(),
               headers={KEY_HEADER: "visit-1"}).json
    bo_body = enrolment(patient={"first_name": "Bo", "email": "bo@example.com",
                                 "external_id": "P-7"})
    bo = call(client, "POST", "/enrolments", key, json=bo_body,
              headers={KEY_HEADER: "visit-2"}).json
    assert ann is not None and bo is not None
    assert "P-1042" in kept(postgresql)["visit-1"]
    assert b"P-1042" in postgresql.stored()

    assert run("forget", "ann@example.com") == 0
    assert capsys.readouterr().out.startswith("erased the patient's name, address and patient id")
    assert sorted(kept(postgresql)) == ["visit-2"]
    stored = postgresql.stored()
    assert b"P-1042" not in stored and b"ann@example.com" not in stored
    assert call(client, "GET", f"/enrolments/{ann['id']}", key).status_code == 404
    rebooked = call(client, "POST", "/patients/P-1042/rebooked", key,
                    json={"appointment_on": "2027-01-04"})
    assert rebooked.status_code == 404
    again = call(client, "POST", "/enrolments", key, json=bo_body, headers={KEY_HEADER: "visit-2"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == bo


def test_retention_deletes_the_answers_kept_over_a_day(
    client: FlaskClient, key: str, cli: None, postgresql: OutboxDatabase,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    typed = enrolment(patient={"first_name": "Ann", "email": "ann.example.com"})
    refused = call(client, "POST", "/enrolments", key, json=typed, headers={KEY_HEADER: "v-9"})
    assert refused.status_code == 422
    assert "ann.example.com" in kept(postgresql)["v-9"]  # a refusal quotes what was typed
    monkeypatch.setattr(pipeline, "_now", lambda: NOW + dt.timedelta(hours=24, seconds=1))
    assert run("retention") == 0
    assert capsys.readouterr().out == (
        "erased 0 patients with no email for 24 months; deleted 1 API answers kept over a day\n")
    assert kept(postgresql) == {}
    assert b"ann.example.com" not in postgresql.stored()
