"""Idempotency-Key: the same key and body get the first answer, another body is a 409, and
requests sent at once with one key (a real server, a real SQLite file) make one enrolment."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import urllib.request
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.outbox.records import StoredAnswer
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.web.api.idempotency import KEEP_FOR, STALE_AFTER, fingerprint
from tests.web.api.conftest import Contract, api_app, call, enrolment, running
from tests.web.conftest import NOW, Clock, count

KEY_HEADER = "Idempotency-Key"


def test_the_same_key_and_body_get_the_first_answer_again(
    client: FlaskClient, key: str, database: sqlite3.Connection
) -> None:
    headers = {KEY_HEADER: "visit-8841-completed"}
    first = call(client, "POST", "/enrolments", key, json=enrolment(), headers=headers)
    # The same JSON written another way is the same body.
    reordered = json.dumps(dict(reversed(list(enrolment().items())))).encode()
    again = call(client, "POST", "/enrolments", key, data=reordered,
                 headers={**headers, "Content-Type": "application/json"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data == first.data
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(database, "enrollments") == 1
    # The kept answer names its enrolment, so forgetting a patient can find it.
    (kept,) = database.execute("SELECT enrollment_id, status FROM idempotency_keys").fetchall()
    assert tuple(kept) == (database.execute("SELECT id FROM enrollments").fetchone()[0], 201)
    # Without the header a repeat is still safe: the enrolment exists, so it is a 200.
    plain = call(client, "POST", "/enrolments", key, json=enrolment())
    assert plain.status_code == 200 and count(database, "enrollments") == 1


def test_the_same_key_with_another_body_or_route_is_a_409(
    client: FlaskClient, key: str, database: sqlite3.Connection
) -> None:
    headers = {KEY_HEADER: '"c0ffee"'}  # a structured-field string, as the draft standard has it
    created = call(client, "POST", "/enrolments", key, json=enrolment(), headers=headers)
    assert created.status_code == 201
    other = call(client, "POST", "/enrolments", key, headers={KEY_HEADER: "c0ffee"},
                 json=enrolment(treated_on="2026-11-22"))
    assert other.status_code == 409 and other.json is not None
    assert other.json["type"] == "tag:aftercare-pipeline,2026:problem:idempotency-key-reused"
    elsewhere = call(client, "POST", "/unsubscribe", key, headers=headers,
                     json={"email": "ann@example.com"})
    assert elsewhere.status_code == 409
    assert count(database, "enrollments") == 1 and count(database, "suppressions") == 0


def test_a_refusal_is_kept_and_a_malformed_key_is_a_400(
    client: FlaskClient, key: str
) -> None:
    headers = {KEY_HEADER: "k-422"}
    bad = enrolment(treated_on="2026-11-24")
    first = call(client, "POST", "/enrolments", key, json=bad, headers=headers)
    again = call(client, "POST", "/enrolments", key, json=bad, headers=headers)
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.data == first.data and again.headers["Idempotent-Replayed"] == "true"
    assert again.mimetype == "application/problem+json"
    malformed = call(client, "POST", "/enrolments", key, json=enrolment(),
                     headers={KEY_HEADER: "two words"})
    assert malformed.status_code == 400


def test_every_post_endpoint_takes_a_key(client: FlaskClient, key: str,
                                          database: sqlite3.Connection) -> None:
    created = call(client, "POST", "/enrolments", key, json=enrolment()).json
    assert created is not None
    for n, (path, body) in enumerate([
        (f"/enrolments/{created['id']}/reschedule", {"treated_on": "2026-11-21"}),
        (f"/enrolments/{created['id']}/cancel", {}),
        ("/patients/P-1042/rebooked", {"appointment_on": "2027-01-04"}),
        ("/unsubscribe", {"email": "ann@example.com"}),
    ]):
        headers = {KEY_HEADER: f"step-{n}"}
        first = call(client, "POST", path, key, json=body, headers=headers)
        again = call(client, "POST", path, key, json=body, headers=headers)
        assert first.status_code == again.status_code == 200, (path, first.text)
        assert again.data == first.data and again.headers["Idempotent-Replayed"] == "true"
    trail = database.execute("SELECT count(*) FROM events WHERE kind = 'rescheduled' AND "
                             "message_id IS NULL").fetchone()[0]
    assert trail == 1  # the repeated reschedule did nothing the second time


def test_requests_sent_at_once_with_one_key_make_one_enrolment(
    app: Flask, key: str, database: sqlite3.Connection
) -> None:
    body = json.dumps(enrolment()).encode()
    answers: list[tuple[int, bytes]] = []
    barrier = threading.Barrier(6)

    def post(base: str) -> None:
        sent = urllib.request.Request(f"{base}/api/v1/enrolments", data=body, method="POST",
                                      headers={"Authorization": f"Bearer {key}",
                                               "Content-Type": "application/json",
                                               KEY_HEADER: "visit-1"})
        barrier.wait()
        with urllib.request.urlopen(sent, timeout=30) as answer:
            answers.append((answer.status, answer.read()))

    with running(app) as base:
        threads = [threading.Thread(target=post, args=(base,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 6
    assert {status for status, _ in answers} == {201}
    assert len({text for _, text in answers}) == 1  # one answer, given six times
    assert count(database, "enrollments") == 1 and count(database, "messages") == 3


def reserve_as_if_answering(db_path: Path, name: str, path: str, body: object) -> int:
    """Reserve ``name`` as a first request with this body would, still being answered."""
    with Outbox.open(db_path) as outbox:
        (record,) = outbox.api_keys.all()
        sent = fingerprint("POST", f"/api/v1{path}", json.dumps(body).encode())
        assert outbox.idempotency.reserve(record.id, name, sent, NOW, STALE_AFTER,
                                          KEEP_FOR).outcome == "mine"
    return record.id


def test_a_request_waits_for_the_first_answer_to_its_key_and_gets_it(
    client: FlaskClient, key: str, db_path: Path, database: sqlite3.Connection
) -> None:
    key_id = reserve_as_if_answering(db_path, "busy", "/enrolments", enrolment())
    # The first request's answer: an enrolment (of another patient, to tell them apart).
    made = call(client, "POST", "/enrolments", key,
                json=enrolment(patient={"first_name": "Bo", "email": "bo@example.com"}))
    answer = StoredAnswer(201, made.headers["Location"], made.get_data(as_text=True))

    def finish() -> None:  # the first request answers while the second one waits
        with Outbox.open(db_path) as outbox:
            outbox.idempotency.finish(key_id, "busy", answer, None)

    timer = threading.Timer(0.3, finish)
    timer.start()
    try:
        waited = call(client, "POST", "/enrolments", key, json=enrolment(),
                      headers={KEY_HEADER: "busy"})
    finally:
        timer.join()
    assert (waited.status_code, waited.data) == (201, made.data)
    assert waited.headers["Location"] == answer.location
    assert count(database, "enrollments") == 1  # Ann was not enrolled a second time


def test_a_request_whose_first_is_still_unanswered_gets_a_409_after_waiting(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer,
    contract: Contract, key: str, database: sqlite3.Connection,
) -> None:
    app = api_app(project, db_path, clock, renderer, contract,
                  api_idempotency_wait=dt.timedelta(seconds=0.2))
    body = {"email": "ann@example.com"}
    reserve_as_if_answering(db_path, "stuck", "/unsubscribe", body)
    busy = call(app.test_client(), "POST", "/unsubscribe", key, json=body,
                headers={KEY_HEADER: "stuck"})
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "2"
    assert busy.json is not None and busy.json["type"].endswith("idempotency-key-in-progress")
    assert count(database, "suppressions") == 0
    # A minute later the first request is taken for dead, and this one answers.
    clock.advance(seconds=STALE_AFTER.total_seconds() + 1)
    taken = call(app.test_client(), "POST", "/unsubscribe", key, json=body,
                 headers={KEY_HEADER: "stuck"})
    assert taken.status_code == 200 and count(database, "suppressions") == 1
    assert contract.failures == []
