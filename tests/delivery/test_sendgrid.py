"""The SendGrid backend, driven through the real library against a local HTTP server."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aftercare.delivery import Backend, Outcome, OutgoingEmail, ProviderError, scheduling
from aftercare.delivery.sendgrid import SendGridBackend, SendGridError
from tests.delivery import samples
from tests.delivery.samples import ICS, PUBLIC_ID, TO

API_KEY = "SG.test-key-must-never-leak.0123456789"
NOW = dt.datetime(2026, 3, 3, 14, 0, tzinfo=dt.UTC)
def outgoing(
    send_at: dt.datetime = NOW, ics: bytes | None = None, to_name: str = "Zoë"
) -> OutgoingEmail:
    return samples.outgoing(send_at=send_at, campaign="botox-migraine", step_key="day-1",
                            ics=ics, to_name=to_name)


def backend(host: str, **kwargs: Any) -> SendGridBackend:
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("rand", lambda: 1.0)
    return SendGridBackend(API_KEY, host=host, **kwargs)


def host_of(httpserver: HTTPServer) -> str:
    return httpserver.url_for("/")  # ends in "/": the backend must cope


def sent_json(httpserver: HTTPServer) -> dict[str, Any]:
    assert len(httpserver.log) == 1
    request, _ = httpserver.log[0]
    body = json.loads(request.get_data())
    assert isinstance(body, dict)
    return body


def assert_no_key(sg: SendGridBackend, outcome: Outcome) -> None:
    assert API_KEY not in repr(sg) and API_KEY not in str(sg)
    assert API_KEY not in outcome.detail and API_KEY not in repr(outcome)
    assert TO not in outcome.detail


def accept(httpserver: HTTPServer, status: int = 202) -> None:
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data(
        "", status=status, headers={"X-Message-Id": "W1yPrWqXQ6SaJ8l9Zk2u0A"}
    )


def test_payload_field_by_field(httpserver: HTTPServer) -> None:
    accept(httpserver)
    sg = backend(host_of(httpserver))
    send_at = NOW + dt.timedelta(hours=2, minutes=7)
    outcome = sg.send(outgoing(send_at=send_at, ics=ICS, to_name="Zoë; Ann,"), batch_id="b-1")

    assert outcome == Outcome("sent", "W1yPrWqXQ6SaJ8l9Zk2u0A", "accepted by SendGrid (202)")
    request, _ = httpserver.log[0]
    assert request.path == "/v3/mail/send"  # no "//v3" from the trailing slash
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    body = sent_json(httpserver)
    assert body["personalizations"] == [{"to": [{"email": TO, "name": "Zoë Ann"}]}]
    assert body["from"] == {"email": "care@clinic.example", "name": "Juniper Lane Clinic"}
    assert body["reply_to"] == {"email": "desk@clinic.example"}
    assert body["subject"] == "How are you doing?"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == "Hello Zoë\n"
    assert body["content"][1]["value"].startswith("<!doctype html>")
    assert body["send_at"] == int(send_at.timestamp())
    assert type(body["send_at"]) is int
    assert body["batch_id"] == "b-1"
    assert body["custom_args"] == {"message_id": PUBLIC_ID}
    assert body["categories"] == ["aftercare", "day-1"]
    assert "botox-migraine" not in json.dumps(body)
    assert body["headers"] == {
        "List-Unsubscribe": "<https://care.clinic.example/unsubscribe?t=abc.def>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert "asm" not in body
    assert body["attachments"] == [
        {
            "content": base64.b64encode(ICS).decode("ascii"),
            "type": "text/calendar; method=PUBLISH",
            "filename": "check-in.ics",
            "disposition": "attachment",
        }
    ]
    assert base64.b64decode(body["attachments"][0]["content"]) == ICS
    assert "mail_settings" not in body
    assert_no_key(sg, outcome)


def test_due_message_has_no_send_at_or_attachment(httpserver: HTTPServer) -> None:
    accept(httpserver)
    backend(host_of(httpserver)).send(outgoing(send_at=NOW - dt.timedelta(minutes=1)))
    body = sent_json(httpserver)
    assert "send_at" not in body
    assert "attachments" not in body
    assert "batch_id" not in body


def test_options_sandbox_and_group_never_put_the_campaign_in_categories(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data("", status=200)
    sg = backend(host_of(httpserver), sandbox=True, unsubscribe_group_id=42)
    outcome = sg.send(outgoing())
    assert outcome.status == "sent"
    assert outcome.provider_id == "sandbox"
    body = sent_json(httpserver)
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["asm"] == {"group_id": 42}
    assert "headers" not in body
    # The campaign id names a condition: it never reaches SendGrid.
    assert body["categories"] == ["aftercare", "day-1"]


def test_send_at_beyond_72_hours_is_refused_before_any_request(httpserver: HTTPServer) -> None:
    sg = backend(host_of(httpserver))
    with pytest.raises(ValueError, match="more than 72 hours ahead"):
        sg.send(outgoing(send_at=NOW + dt.timedelta(hours=72, seconds=1)))
    assert httpserver.log == []
    accept(httpserver)
    assert sg.send(outgoing(send_at=NOW + dt.timedelta(hours=72))).status == "sent"


def test_bad_request_fails_with_messages_but_without_the_address(httpserver: HTTPServer) -> None:
    errors = {
        "errors": [
            {"message": f"Invalid email address {TO}", "field": "personalizations.0.to"},
            {"message": "The from address does not match a verified Sender Identity.",
             "field": "from", "help": "https://sendgrid.com/docs"},
        ],
        "id": "abc",
    }
    httpserver.expect_request("/v3/mail/send").respond_with_json(errors, status=400)
    sg = backend(host_of(httpserver))
    outcome = sg.send(outgoing())
    assert outcome.status == "failed"
    assert outcome.retry_at is None
    assert outcome.detail == (
        "refused by SendGrid (400): Invalid email address <address> (personalizations.0.to); "
        "The from address does not match a verified Sender Identity. (from)"
    )
    assert_no_key(sg, outcome)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, '{"errors":[{"field":null,"message":"The provided authorization grant is invalid"}'
              ']}'),
        (413, "<html>too large</html>"),
        (403, ""),
        (451, '{"errors": "not a list"}'),
    ],
)
def test_other_client_errors_fail(httpserver: HTTPServer, status: int, body: str) -> None:
    httpserver.expect_request("/v3/mail/send").respond_with_data(body, status=status)
    sg = backend(host_of(httpserver))
    outcome = sg.send(outgoing())
    assert outcome.status == "failed"
    assert outcome.detail.startswith(f"refused by SendGrid ({status}): ")
    if status == 401:
        assert outcome.detail.endswith("The provided authorization grant is invalid")
    else:
        assert outcome.detail.endswith("no error details")
    assert_no_key(sg, outcome)


def test_rate_limit_retries_at_reset_time(httpserver: HTTPServer) -> None:
    reset = int((NOW + dt.timedelta(seconds=37)).timestamp())
    httpserver.expect_request("/v3/mail/send").respond_with_json(
        {"errors": [{"field": None, "message": "too many requests"}]},
        status=429,
        headers={"X-RateLimit-Reset": str(reset)},
    )
    outcome = backend(host_of(httpserver)).send(outgoing())
    assert outcome.status == "retry"
    assert outcome.retry_at == dt.datetime.fromtimestamp(reset, dt.UTC)
    assert "too many requests" in outcome.detail
    assert outcome.rate_limited  # every request waits, not just this one


def test_rate_limit_without_reset_waits_a_minute(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=429)
    outcome = backend(host_of(httpserver)).send(outgoing())
    assert outcome.status == "retry"
    assert outcome.retry_at == NOW + dt.timedelta(seconds=60)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_retry_with_bounded_backoff(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=status)
    base, cap = dt.timedelta(seconds=30), dt.timedelta(minutes=10)
    for attempt, rand, expected in [
        (0, 1.0, base),
        (2, 1.0, base * 4),
        (2, 0.0, base * 2),  # jitter takes it down to half
        (30, 1.0, cap),  # never beyond the cap
    ]:
        sg = backend(host_of(httpserver), backoff_base=base, backoff_cap=cap, rand=lambda r=rand: r)
        outcome = sg.send(outgoing(), attempt=attempt)
        assert outcome.status == "retry" and not outcome.rate_limited
        assert outcome.detail.startswith(f"SendGrid error ({status})")
        assert outcome.retry_at == NOW + expected


def test_timeout_is_unknown(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.6)
        return Response("", status=202)

    httpserver.expect_request("/v3/mail/send").respond_with_handler(slow)
    sg = backend(host_of(httpserver), timeout=0.2)
    outcome = sg.send(outgoing())
    assert outcome.status == "unknown"
    assert outcome.retry_at is None
    assert "TimeoutError" in outcome.detail
    assert_no_key(sg, outcome)


@pytest.fixture
def hang_up_server() -> Iterator[str]:
    """A server that reads the whole request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += connection.recv(65536)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        thread.join(timeout=5)
        listener.close()


def test_connection_closed_after_request_is_unknown(hang_up_server: str) -> None:
    sg = backend(hang_up_server, timeout=3)
    outcome = sg.send(outgoing())
    assert outcome.status == "unknown"
    assert outcome.detail.startswith("no response from SendGrid (RemoteDisconnected)")


def test_refused_connection_retries() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    sg = backend(f"http://127.0.0.1:{port}", backoff_base=dt.timedelta(seconds=10))
    outcome = sg.send(outgoing(), attempt=1)
    assert outcome.status == "retry"
    assert outcome.detail == "not sent: connection failed (ConnectionRefusedError)"
    assert outcome.retry_at == NOW + dt.timedelta(seconds=20)


def test_api_key_is_not_exposed() -> None:
    sg: Backend = SendGridBackend(API_KEY, host="https://api.sendgrid.com/")
    assert isinstance(sg, SendGridBackend) and sg.name == "sendgrid"
    assert sg.can_schedule and scheduling(sg) is sg
    assert sg.host == "https://api.sendgrid.com"
    assert API_KEY not in repr(sg) and API_KEY not in str(sg)
    assert API_KEY not in repr(vars(sg).keys())
    with pytest.raises(ValueError, match="empty"):
        SendGridBackend("", host="https://api.sendgrid.com")


def test_new_batch_and_cancel(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/v3/mail/batch", method="POST").respond_with_json(
        {"batch_id": "YOUR_BATCH_ID"}, status=201
    )
    httpserver.expect_oneshot_request(
        "/v3/user/scheduled_sends", method="POST",
        json={"batch_id": "YOUR_BATCH_ID", "status": "cancel"},
    ).respond_with_json({"batch_id": "YOUR_BATCH_ID", "status": "cancel"}, status=201)
    httpserver.expect_oneshot_request("/v3/user/scheduled_sends", method="POST").respond_with_json(
        {"errors": [{"field": None, "message": "batch already has a status"}]}, status=400
    )
    httpserver.expect_oneshot_request(
        "/v3/user/scheduled_sends/YOUR_BATCH_ID", method="GET"
    ).respond_with_json([{"batch_id": "YOUR_BATCH_ID", "status": "cancel"}])
    httpserver.expect_oneshot_request("/v3/user/scheduled_sends", method="POST").respond_with_json(
        {"errors": [{"field": None, "message": "authorization required"}]}, status=401
    )
    sg = backend(host_of(httpserver))
    assert sg.new_batch() == "YOUR_BATCH_ID"
    assert sg.cancel_batch("YOUR_BATCH_ID") == "cancelled"
    assert sg.cancel_batch("YOUR_BATCH_ID") == "already"
    with pytest.raises(SendGridError, match="authorization required") as info:
        sg.cancel_batch("YOUR_BATCH_ID")
    assert info.value.status == 401
    assert isinstance(info.value, ProviderError)  # what dispatch and withdrawal catch
    assert API_KEY not in str(info.value)
    assert all(r.headers["Authorization"] == f"Bearer {API_KEY}" for r, _ in httpserver.log)


@pytest.mark.parametrize("statuses", [[], [{"batch_id": "B2", "status": "pause"}], None])
def test_a_refused_cancel_is_only_already_done_if_the_batch_says_so(
    httpserver: HTTPServer, statuses: list[dict[str, str]] | None
) -> None:
    # 400 also means "more than 10 batches cancelled at once": the message would go out.
    httpserver.expect_request("/v3/user/scheduled_sends", method="POST").respond_with_json(
        {"errors": [{"field": None, "message": "limit reached"}]}, status=400
    )
    status = httpserver.expect_request("/v3/user/scheduled_sends/B2", method="GET")
    if statuses is None:
        status.respond_with_data("", status=404)
    else:
        status.respond_with_json(statuses)
    with pytest.raises(SendGridError, match="limit reached") as info:
        backend(host_of(httpserver)).cancel_batch("B2")
    assert info.value.status == 400


def test_new_batch_without_id_raises(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v3/mail/batch", method="POST").respond_with_json({}, status=201)
    with pytest.raises(SendGridError, match="no batch_id"):
        backend(host_of(httpserver)).new_batch()
