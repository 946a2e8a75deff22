"""`pipeline apikey`, and the issue's "done when": a booking system with a key enrols a patient
through `pipeline serve`, repeats the call safely, cancels, reschedules and marks a rebooking."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from tests.conftest import ROOT

PIPELINE = [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT)]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "AFTERCARE_DB": str(tmp_path / "aftercare.db"),
           "AFTERCARE_OUTBOX_DIR": str(tmp_path / "outbox"),
           "AFTERCARE_SECRET_KEY": "k" * 40, "PYTHONUNBUFFERED": "1"}
    env.pop("SENDGRID_API_KEY", None)
    return env


def pipeline(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIPELINE, *argv], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_apikey_add_shows_the_key_once_and_list_and_revoke_never_show_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    added = pipeline(env, "apikey", "add", "booking", "--site", "main")
    assert added.returncode == 0, added.stderr
    key, summary = added.stdout.splitlines()
    assert re.fullmatch(r"aftercare_[A-Za-z0-9_-]{43}", key)
    assert summary == ("added API key 'booking' for site main; it is shown only this once: "
                       "send it as `Authorization: Bearer <key>`")
    listed = pipeline(env, "apikey", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["site"], row["revoked_at"]) == ("booking", "main", None)
    assert listed.stderr == "1 API key\n"
    assert key not in (tmp_path / "aftercare.db").read_bytes().decode("latin-1")
    again = pipeline(env, "apikey", "add", "booking")
    assert again.returncode == 1 and "a key called 'booking' already exists" in again.stderr
    north = pipeline(env, "apikey", "add", "north", "--site", "north")
    assert north.returncode == 1
    assert north.stderr == ("error: --site: expected main (the sites of this installation); "
                            "got 'north'\n")
    bad = pipeline(env, "apikey", "add", "Booking System")
    assert bad.returncode == 1 and bad.stderr.startswith("error: NAME: expected 1 to 64")
    revoked = pipeline(env, "apikey", "revoke", "booking")
    assert revoked.stdout == "revoked key 'booking': calls with it are refused from now on\n"
    assert pipeline(env, "apikey", "revoke", "booking").stdout == (
        "key 'booking' was already revoked\n")
    text = pipeline(env, "apikey", "list").stdout
    assert text.startswith("booking  site=main  created ") and " revoked " in text
    assert pipeline(env, "apikey", "revoke", "nobody").returncode == 1


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    server = subprocess.Popen([*PIPELINE, "serve", "--port", "0"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        started = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline())
        assert started, server.stderr.read() if server.stderr else "no output"
        yield started[0]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert "Traceback" not in err


def send(base: str, key: str, method: str, path: str, body: object = None,
         idempotency_key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + "/api/v1" + path, data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.loads(refused.read())


def test_a_booking_system_enrols_repeats_cancels_reschedules_and_rebooks(
    env: dict[str, str], served: str
) -> None:
    key = pipeline(env, "apikey", "add", "booking").stdout.splitlines()[0]
    today = dt.datetime.now(ZoneInfo("America/New_York")).date()  # the clinic's today
    visit = {
        "treatment": "cosmetic", "treated_on": (today - dt.timedelta(days=1)).isoformat(),
        "patient": {"first_name": "Ann", "email": "ann@example.com", "external_id": "C-88"},
        "consents": {"aftercare": True, "reminders": True, "recorded_by": "desk-2",
                     "wording_version": CONSENT_WORDING_VERSION},
    }
    status, created = send(served, key, "POST", "/enrolments", visit, "appt-5521")
    assert status == 201 and [m["step"] for m in created["messages"]] == [
        "day-0", "week-2", "month-3"]
    assert send(served, key, "POST", "/enrolments", visit, "appt-5521") == (201, created)
    migraine = {**visit, "treatment": "migraine"}
    status, second = send(served, key, "POST", "/enrolments", migraine, "appt-5522")
    assert status == 201
    status, cancelled = send(served, key, "POST", f"/enrolments/{second['id']}/cancel")
    assert status == 200 and cancelled["stopped"]["cancelled"] >= 2
    status, moved = send(served, key, "POST", f"/enrolments/{created['id']}/reschedule",
                         {"treated_on": today.isoformat()})
    assert status == 200 and moved["treated_on"] == today.isoformat()
    status, rebooked = send(served, key, "POST", "/patients/C-88/rebooked",
                            {"appointment_on": (today + dt.timedelta(days=90)).isoformat()})
    assert status == 200 and rebooked["stopped"]["cancelled"] == 1
    status, shown = send(served, key, "GET", f"/enrolments/{created['id']}")
    assert [(m["step"], m["status"]) for m in shown["messages"]] == [
        ("day-0", "scheduled"), ("week-2", "scheduled"), ("month-3", "cancelled")]
    pipeline(env, "apikey", "revoke", "booking")
    assert send(served, key, "GET", f"/enrolments/{created['id']}")[0] == 401
    outbox = pipeline(env, "outbox", "--json")
    assert sorted({row["state"] for row in json.loads(outbox.stdout)}) == [
        "cancelled", "scheduled"]
