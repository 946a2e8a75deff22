"""The webhook under hostile posts: malformed signature headers and timestamps are a plain 403
(never a 500, never an error logged about the key), deep or misshapen bodies a 400, and a key
that does not parse stops `pipeline serve` from starting."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from aftercare.delivery.sendgrid_events import nesting_depth
from tests.conftest import ROOT
from tests.web.test_public import PRIVATE, SIGNATURE, TIMESTAMP, bounce, signed, unsent

pytest_plugins = ["tests.web.test_public"]  # its fixtures: webhook, public_id
URL = "/webhooks/sendgrid"


@pytest.mark.parametrize("timestamp", [
    "999999999999",  # 12 digits: a date about 33,000 years ahead
    "99999999999999999999", "abc", "", " 1", "1e9", "-5", "0",
])
def test_a_malformed_or_out_of_range_timestamp_is_a_403_and_logs_no_error(
    webhook: FlaskClient, public_id: str, db_path: Path, caplog: pytest.LogCaptureFixture,
    timestamp: str,
) -> None:
    body = bounce(public_id)
    headers = {SIGNATURE: signed(body)[SIGNATURE], TIMESTAMP: timestamp}
    with caplog.at_level(logging.DEBUG):
        response = webhook.post(URL, data=body, headers=headers)
    assert (response.status_code, response.text) == (403, "signature refused\n")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "key" not in caplog.text
    assert unsent(db_path) == 2


@pytest.mark.parametrize("signature", ["", "abc", "!!!!", "A" * 5000, "bm90IGEgc2ln"])
def test_a_malformed_signature_header_is_a_403(
    webhook: FlaskClient, public_id: str, caplog: pytest.LogCaptureFixture, signature: str
) -> None:
    body = bounce(public_id)
    with caplog.at_level(logging.DEBUG):
        response = webhook.post(URL, data=body, headers={**signed(body), SIGNATURE: signature})
    assert response.status_code == 403
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_signed_body_nested_100000_deep_is_a_400_not_a_recursion_error(
    webhook: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with caplog.at_level(logging.DEBUG):
        response = webhook.post(URL, data=body, headers=signed(body))
    assert (response.status_code, response.text) == (
        400, "webhook body: expected a JSON array of events; got lists or objects nested more "
             "than 16 deep\n")
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


@pytest.mark.parametrize(("body", "message"), [
    (b'{"event": "bounce"}', "webhook body: expected a JSON array of events, received an object"),
    (b'"text"', "webhook body: expected a JSON array of events, received a string"),
    (b"[1, 2]", "webhook body[0]: expected an object, received a number"),
    (b"[{]", "webhook body: expected a JSON array of events; invalid JSON at line 1, column 3: "
             "Expecting property name enclosed in double quotes"),
])
def test_a_signed_body_that_is_not_an_array_of_events_is_a_400(
    webhook: FlaskClient, body: bytes, message: str
) -> None:
    response = webhook.post(URL, data=body, headers=signed(body))
    assert (response.status_code, response.text) == (400, message + "\n")


def test_brackets_inside_strings_do_not_count_towards_the_depth() -> None:
    assert nesting_depth(b'[{"reason": "[[[[[[[[[[[[[[[[[[[[[[ \\" [[[["}]') == 2
    assert nesting_depth(b'[{"category": ["aftercare", "day-0"], "pool": {"id": 1}}]') == 3
    assert nesting_depth(b"") == 0


def test_serve_refuses_to_start_with_a_webhook_key_that_does_not_parse(tmp_path: Path) -> None:
    env = {**os.environ, "AFTERCARE_DB": str(tmp_path / "aftercare.db"),
           "AFTERCARE_SECRET_KEY": "k" * 40, "SENDGRID_WEBHOOK_PUBLIC_KEY": "not-a-key"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT), "serve", "--port",
         "0"], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "error: SENDGRID_WEBHOOK_PUBLIC_KEY: the SendGrid webhook verification key does not "
        "parse (SendGrid webhook public key is not a valid base64 public key); copy it again "
        "from SendGrid (Settings, Mail Settings, Event Webhook: the verification key), or "
        "remove it (the webhook then answers 403); the staff page was not started\n")


def test_a_good_key_signs_as_before(webhook: FlaskClient, public_id: str) -> None:
    body = bounce(public_id)
    assert webhook.post(URL, data=body, headers=signed(body, PRIVATE)).status_code == 200
    assert base64.b64decode(signed(body)[SIGNATURE])  # the helper signs real signatures
