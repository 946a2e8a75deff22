"""The issue's "done when", through the real `pipeline serve`: a booking system with a key
enrols a patient, repeats the call safely, cancels, reschedules and marks a rebooking that
stops the reminder; every exchange is checked against the document the server serves."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openapi_core.testing import MockRequest, MockResponse

from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from tests.test_pipeline_api import PIPELINE, pipeline
from tests.web.api.conftest import Contract


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "AFTERCARE_DB": str(tmp_path / "aftercare.db"),
           "AFTERCARE_OUTBOX_DIR": str(tmp_path / "outbox"),
           "AFTERCARE_SECRET_KEY": "k" * 40, "PYTHONUNBUFFERED": "1"}
    env.pop("SENDGRID_API_KEY", None)
    return env


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    server = subprocess.Popen([*PIPELINE, "serve", "--port", "0"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        started = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert started, f"the server did not start: {line!r}"
        yield started[0]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert "Traceback" not in err


@pytest.fixture
def served_contract(served: str) -> Iterator[Contract]:
    """The check, made from the document the running server serves."""
    with urllib.request.urlopen(f"{served}/api/v1/openapi.json", timeout=10) as answer:
        made = Contract(json.loads(answer.read()))
    yield made
    assert made.failures == []


class BookingSystem:
    """A client of the API, as a booking system would be; checks each exchange."""

    def __init__(self, base: str, key: str, contract: Contract) -> None:
        self.base, self.key, self.contract = base, key, contract

    def send(self, method: str, path: str, body: object = None,
             idempotency_key: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        data = None if body is None else json.dumps(body).encode()
        sent = urllib.request.Request(f"{self.base}/api/v1{path}", data=data, method=method,
                                      headers=headers)
        try:
            with urllib.request.urlopen(sent, timeout=30) as answer:
                status, got, answer_headers = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as refused:
            with refused:
                status, got, answer_headers = refused.code, refused.read(), refused.headers
        self.contract.judge(
            MockRequest(self.base, method, f"/api/v1{path}", headers=headers, data=data),
            MockResponse(got, status, dict(answer_headers.items()),
                         answer_headers.get_content_type()),
            method, path)
        return status, json.loads(got)


def test_a_booking_system_enrols_repeats_cancels_reschedules_and_rebooks(
    env: dict[str, str], served: str, served_contract: Contract
) -> None:
    key = pipeline(env, "apikey", "add", "booking").stdout.splitlines()[0]
    system = BookingSystem(served, key, served_contract)
    today = dt.datetime.now(ZoneInfo("America/New_York")).date()  # the clinic's today
    visit = {
        "treatment": "cosmetic", "treated_on": (today - dt.timedelta(days=1)).isoformat(),
        "patient": {"first_name": "Ann", "email": "ann@example.com", "external_id": "C-88"},
        "consents": {"aftercare": True, "reminders": True, "recorded_by": "desk-2",
                     "wording_version": CONSENT_WORDING_VERSION},
    }
    status, created = system.send("POST", "/enrolments", visit, "appt-5521")
    assert status == 201 and [m["step"] for m in created["messages"]] == [
        "day-0", "week-2", "month-3"]
    assert system.send("POST", "/enrolments", visit, "appt-5521") == (201, created)
    status, second = system.send("POST", "/enrolments", {**visit, "treatment": "migraine"},
                                 "appt-5522")
    assert status == 201
    status, cancelled = system.send("POST", f"/enrolments/{second['id']}/cancel")
    assert status == 200 and cancelled["stopped"]["cancelled"] >= 2
    status, moved = system.send("POST", f"/enrolments/{created['id']}/reschedule",
                                {"treated_on": today.isoformat()})
    assert status == 200 and moved["treated_on"] == today.isoformat()
    status, rebooked = system.send("POST", "/patients/C-88/rebooked", {
        "appointment_on": (today + dt.timedelta(days=90)).isoformat()})
    assert status == 200 and rebooked["stopped"]["cancelled"] == 1
    status, shown = system.send("GET", f"/enrolments/{created['id']}")
    assert [(m["step"], m["status"]) for m in shown["messages"]] == [
        ("day-0", "scheduled"), ("week-2", "scheduled"), ("month-3", "cancelled")]
    pipeline(env, "apikey", "revoke", "booking")
    assert system.send("GET", f"/enrolments/{created['id']}")[0] == 401
    outbox = pipeline(env, "outbox", "--json")
    assert sorted({row["state"] for row in json.loads(outbox.stdout)}) == [
        "cancelled", "scheduled"]
    assert len(served_contract.exchanges) == 8  # every call above, checked
