"""A local SendGrid look-alike for tests: checks every request, injects faults, models delivery."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aftercare.delivery.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER

API_KEY = "SG.fake-key-for-local-tests.0123456789"
CUTOFF = 600  # seconds: SendGrid refuses to cancel a batch this close to its send time
MAX_AHEAD = 72 * 3600
Fault = Literal["429", "500", "503", "slow", "drop", "block"]
# Faults after which SendGrid may have the message: the request reached it whole.
REACHED: frozenset[Fault | None] = frozenset({None, "slow", "drop", "block"})
_PUBLIC_ID = re.compile(r"[0-9a-f]{32}")
_TOP_LEVEL = {
    "personalizations", "from", "reply_to", "subject", "content", "categories", "custom_args",
    "send_at", "batch_id", "attachments", "headers", "asm", "mail_settings",
}


@dataclass
class MailRequest:
    """One POST /v3/mail/send as the server saw it."""

    seq: int
    public_id: str | None
    body: dict[str, Any]
    fault: Fault | None
    at: dt.datetime  # the server's simulated time

    @property
    def reached(self) -> bool:
        """SendGrid got the whole request, so it may send the message (202, or no answer)."""
        return self.fault in REACHED


@dataclass
class Batch:
    batch_id: str
    public_id: str | None = None
    send_at: int | None = None
    cancelled_at: dt.datetime | None = None


@dataclass
class FakeSendGrid:
    """Answers /v3/mail/send, /v3/mail/batch and /v3/user/scheduled_sends like SendGrid.

    ``fault_for(public_id, attempt)`` picks a fault for a message's Nth request (0 first).
    Every check that fails is appended to ``problems``; a test asserts it stays empty.
    """

    server: HTTPServer
    sender: str
    reply_to: str
    step_keys: Collection[str]
    forbidden: Collection[str]  # strings no request may contain (campaign ids)
    fault_for: Callable[[str, int], Fault | None] = lambda public_id, attempt: None
    now: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    slow_seconds: float = 1.5
    block_at: int | None = None  # this mail/send request (0 first) waits for ``release``
    cancel_status: int | None = None  # answer every cancellation with this error status
    requests: list[MailRequest] = field(default_factory=list)
    by_message: dict[str | None, list[MailRequest]] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    cancels: list[tuple[str, dt.datetime]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blocked: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.expect_request("/v3/mail/send", method="POST").respond_with_handler(
            self._mail_send
        )
        self.server.expect_request("/v3/mail/batch", method="POST").respond_with_handler(
            self._new_batch
        )
        self.server.expect_request(
            "/v3/user/scheduled_sends", method="POST"
        ).respond_with_handler(self._scheduled_sends)
        self.server.expect_request(
            re.compile(r"/v3/user/scheduled_sends/[^/]+"), method="GET"
        ).respond_with_handler(self._batch_status)

    @property
    def host(self) -> str:
        return self.server.url_for("/").rstrip("/")

    # ---------------------------------------------------------------- what happened

    def reached(self, public_id: str) -> list[MailRequest]:
        """The requests for a message that SendGrid got whole (at most one, if all is well)."""
        return [r for r in self.attempts(public_id) if r.reached]

    def attempts(self, public_id: str) -> list[MailRequest]:
        return list(self.by_message.get(public_id, []))

    def delivers(self, public_id: str) -> int:
        """How many times SendGrid would deliver the message: reached, and not cancelled."""
        count = 0
        for request in self.reached(public_id):
            batch = self.batches.get(request.body.get("batch_id", ""))
            if batch is None or batch.cancelled_at is None:
                count += 1
        return count

    def cancelled_batches(self) -> set[str]:
        return {b.batch_id for b in self.batches.values() if b.cancelled_at is not None}

    # ---------------------------------------------------------------- handlers

    def _authorised(self, request: Request) -> bool:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.problems.append(f"{request.path}: missing or wrong API key")
            return False
        return True

    def _mail_send(self, request: Request) -> Response:
        raw = request.get_data()
        try:
            body = json.loads(raw)
        except ValueError:
            self.problems.append("mail/send: body is not JSON")
            return _errors(400, "invalid JSON")
        if not self._authorised(request):
            return _errors(401, "authorization required")
        public_id = _public_id(body)
        with self._lock:
            seq, earlier = len(self.requests), self.by_message.setdefault(public_id, [])
            fault = self.fault_for(public_id, len(earlier)) if public_id else None
            fault = "block" if seq == self.block_at else fault
            now = self.now
            self.requests.append(MailRequest(seq, public_id, body, fault, now))
            earlier.append(self.requests[-1])
            self.problems.extend(self._check(body, now, raw))
        if fault == "429":
            reset = int(now.timestamp()) + 20
            return _errors(429, "too many requests", {"X-RateLimit-Reset": str(reset)})
        if fault in ("500", "503"):
            return _errors(int(fault), "internal error")
        if fault == "drop":
            # Read whole, then the connection goes: the client cannot know the outcome.
            request.environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            return Response("", status=202)
        if fault == "slow":
            threading.Event().wait(self.slow_seconds)
        if fault == "block":
            self.blocked.set()
            self.release.wait(60)
        return Response("", status=202, headers={"X-Message-Id": f"msg{seq:06d}"})

    def _new_batch(self, request: Request) -> Response:
        if not self._authorised(request):
            return _errors(401, "authorization required")
        with self._lock:
            batch_id = f"batch-{len(self.batches):06d}"
            self.batches[batch_id] = Batch(batch_id)
        return Response(json.dumps({"batch_id": batch_id}), status=201,
                        content_type="application/json")

    def _scheduled_sends(self, request: Request) -> Response:
        if not self._authorised(request):
            return _errors(401, "authorization required")
        body = json.loads(request.get_data())
        with self._lock:
            batch = self.batches.get(body.get("batch_id", ""))
            if body.get("status") != "cancel" or batch is None:
                self.problems.append(f"scheduled_sends: unexpected body {body}")
                return _errors(400, "invalid batch")
            if self.cancel_status is not None:
                return _errors(self.cancel_status, "cancellation failed")
            if batch.cancelled_at is not None:
                return _errors(400, "batch already has a status")
            if batch.send_at is not None and batch.send_at - self.now.timestamp() <= CUTOFF:
                self.problems.append(f"{batch.batch_id}: cancelled inside the 10-minute cut-off")
            batch.cancelled_at = self.now
            self.cancels.append((batch.batch_id, self.now))
        return Response(json.dumps(body), status=201, content_type="application/json")

    def _batch_status(self, request: Request) -> Response:
        if not self._authorised(request):
            return _errors(401, "authorization required")
        batch = self.batches.get(request.path.rsplit("/", 1)[1])
        if batch is None or batch.cancelled_at is None:
            return _errors(404, "no status for this batch")
        body = [{"batch_id": batch.batch_id, "status": "cancel"}]
        return Response(json.dumps(body), status=200, content_type="application/json")

    def _check(self, body: dict[str, Any], now: dt.datetime, raw: bytes) -> list[str]:
        """Everything SendGrid and our privacy rules require of one Mail Send body."""
        public_id = _public_id(body)
        where = f"mail/send {public_id}"
        problems = [f"{where}: unexpected key {key}" for key in sorted(set(body) - _TOP_LEVEL)]
        personalizations = body.get("personalizations")
        if not (isinstance(personalizations, list) and len(personalizations) == 1
                and len(personalizations[0].get("to", [])) == 1
                and set(personalizations[0]) == {"to"}):
            problems.append(f"{where}: expected one personalization with one recipient")
        if body.get("from", {}).get("email") != self.sender:
            problems.append(f"{where}: from is not the verified sender")
        if body.get("reply_to") != {"email": self.reply_to}:
            problems.append(f"{where}: reply_to is not the clinic's desk")
        if not isinstance(body.get("subject"), str) or not body["subject"]:
            problems.append(f"{where}: no subject")
        content = body.get("content", [])
        if [c.get("type") for c in content] != ["text/plain", "text/html"] or not all(
            isinstance(c.get("value"), str) and c["value"] for c in content
        ):
            problems.append(f"{where}: content must be text/plain then text/html, not empty")
        categories = body.get("categories")
        # A minimal email carries no step key: its category says only "aftercare".
        if not (isinstance(categories, list) and categories[:1] == ["aftercare"]
                and (len(categories) == 1
                     or (len(categories) == 2 and categories[1] in self.step_keys))):
            problems.append(f"{where}: categories {categories!r}")
        if body.get("custom_args") != {"message_id": public_id} or public_id is None:
            problems.append(f"{where}: custom_args must hold only our message id")
        headers = body.get("headers", {})
        if not (str(headers.get("List-Unsubscribe", "")).startswith("<https://")
                and headers.get("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"):
            problems.append(f"{where}: no one-click List-Unsubscribe headers")
        text = raw.decode("utf-8") + "".join(
            base64.b64decode(a["content"]).decode("utf-8") for a in body.get("attachments", [])
        )
        problems += [f"{where}: contains {word!r}" for word in self.forbidden if word in text]
        problems += self._check_timing(body, now, where)
        return problems

    def _check_timing(self, body: dict[str, Any], now: dt.datetime, where: str) -> list[str]:
        problems: list[str] = []
        send_at, batch_id = body.get("send_at"), body.get("batch_id")
        if send_at is None:
            if batch_id is not None:
                problems.append(f"{where}: batch without send_at")
            return problems
        if type(send_at) is not int:
            return [f"{where}: send_at {send_at!r} is not an integer"]
        ahead = send_at - now.timestamp()
        if not 0 < ahead <= MAX_AHEAD:
            problems.append(f"{where}: send_at {ahead:.0f} s ahead")
        if batch_id is not None:
            batch = self.batches.get(batch_id)
            if batch is None or batch.public_id is not None:
                problems.append(f"{where}: batch {batch_id} unknown or already used")
            else:
                batch.public_id, batch.send_at = _public_id(body), send_at
            if ahead <= CUTOFF:
                problems.append(f"{where}: a batch inside the cut-off cannot be cancelled anyway")
        return problems


def _public_id(body: Any) -> str | None:
    try:
        value = body["custom_args"]["message_id"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) and _PUBLIC_ID.fullmatch(value) else None


def _errors(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"errors": [{"field": None, "message": message}]})
    return Response(body, status=status, headers=headers, content_type="application/json")


@contextmanager
def threaded_server() -> Iterator[HTTPServer]:
    """A threaded local server (slow answers must not hold up the others), without its logs."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)  # one line per request otherwise
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        yield server
        server.check_handler_errors()
    finally:
        server.clear()
        if server.is_running():
            server.stop()
        werkzeug.setLevel(level)


class WebhookSigner:
    """Signs Event Webhook posts as SendGrid does, with a key pair generated for the test."""

    def __init__(self) -> None:
        self._private = ec.generate_private_key(ec.SECP256R1())
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode("ascii")
        self._count = 0

    def event(
        self, kind: str, email: str, message_id: str | None, at: dt.datetime, **extra: object
    ) -> dict[str, object]:
        """One event as SendGrid posts it: our custom arg comes back as a top-level key."""
        self._count += 1
        item: dict[str, object] = {
            "email": email, "event": kind, "sg_event_id": f"ev{self._count:08d}",
            "sg_message_id": f"msg.filter{self._count:04d}", "timestamp": int(at.timestamp()),
            "category": ["aftercare"], **extra,
        }
        if message_id is not None:
            item["message_id"] = message_id
        return item

    def post(
        self, events: list[dict[str, object]], at: dt.datetime
    ) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers of one signed post (the body ends in CRLF, as SendGrid's)."""
        body = json.dumps(events, separators=(",", ":")).encode() + b"\r\n"
        timestamp = str(int(at.timestamp()))
        signature = self._private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: timestamp,
        }
        return body, headers
