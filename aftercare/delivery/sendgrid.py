"""The SendGrid backend: one outgoing email becomes one v3 Mail Send request and one outcome."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import logging
import random
import urllib.error
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from aftercare.delivery import Outcome, OutgoingEmail, ProviderError
from aftercare.delivery.providers import SENDGRID, scrub_addresses

DEFAULT_HOST = "https://api.sendgrid.com"
DEFAULT_TIMEOUT = 10.0  # seconds; the library's default is to wait forever
# SendGrid's 429 says when the limit resets; without that header we wait this long.
RATE_LIMIT_DELAY = dt.timedelta(seconds=60)
DEFAULT_BACKOFF_BASE = dt.timedelta(seconds=30)
DEFAULT_BACKOFF_CAP = dt.timedelta(hours=1)
# Opaque, condition-free category every message carries; the campaign id names a condition.
CATEGORY = "aftercare"
_MAX_DETAIL = 500

# The HTTP library logs every request's headers (the API key) and body (the patient's address)
# at DEBUG; keep those records out of any log, whatever level the application runs at.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


class SendGridError(ProviderError):
    """A SendGrid management call (batches) was refused; carries the status, never the key."""

    def __init__(self, action: str, status: int | None, detail: str) -> None:
        super().__init__(f"SendGrid {action}: {detail}")
        self.status = status


class SendGridBackend:
    """Delivers through SendGrid's v3 API; a refusal becomes an outcome, never an exception.

    Timeouts and connections lost after the request went out are ``unknown`` (SendGrid has no
    idempotency key, so a resend could deliver twice); refusals before it went out are ``retry``.
    """

    name = "sendgrid"
    can_schedule = True  # send_at up to 72 h ahead; cancellable by batch until 10 min before
    holding = SENDGRID

    def __init__(
        self,
        api_key: str,
        *,
        host: str = DEFAULT_HOST,
        timeout: float = DEFAULT_TIMEOUT,
        sandbox: bool = False,
        unsubscribe_group_id: int | None = None,
        backoff_base: dt.timedelta = DEFAULT_BACKOFF_BASE,
        backoff_cap: dt.timedelta = DEFAULT_BACKOFF_CAP,
        clock: Callable[[], dt.datetime] | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("SendGrid API key is empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive; got {timeout}")
        self.host = host.rstrip("/")  # the library joins host + "/v3/...": "//v3" would 404
        self.timeout = timeout
        self.sandbox = sandbox
        self.unsubscribe_group_id = unsubscribe_group_id
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._rand = rand or random.random
        # The key lives only inside the client's Authorization header, never on this object.
        self._client = SendGridAPIClient(api_key, host=self.host)
        self._client.client.timeout = timeout

    def __repr__(self) -> str:
        return f"SendGridBackend(host={self.host!r}, sandbox={self.sandbox})"

    __str__ = __repr__

    def send(
        self, email: OutgoingEmail, *, attempt: int = 0, batch_id: str | None = None
    ) -> Outcome:
        """Submit one message; ``attempt`` (0 for the first try) sets the back-off on 5xx."""
        now = self._clock()
        payload = self.build_payload(email, now, batch_id=batch_id)
        try:
            response = self._client.client.mail.send.post(request_body=payload)
        except HTTPError as exc:
            return self._refused(exc, email, now, attempt)
        except urllib.error.URLError as exc:
            # urllib wraps errors raised while connecting or writing the request: it never
            # reached SendGrid whole, so trying again cannot send twice.
            reason = type(exc.reason).__name__ if isinstance(exc.reason, BaseException) else "error"
            return self._backoff(f"not sent: connection failed ({reason})", now, attempt)
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            # Raised while waiting for the response: SendGrid may have accepted it.
            detail = f"no response from SendGrid ({type(exc).__name__}); may have been sent"
            return Outcome("unknown", None, detail)
        status = response.status_code
        message_id = _header(response.headers, "X-Message-Id")
        if status == 200 and self.sandbox:
            return Outcome("sent", "sandbox", "validated by SendGrid (sandbox mode)")
        return Outcome("sent", message_id, f"accepted by SendGrid ({status})")

    def build_payload(
        self, email: OutgoingEmail, now: dt.datetime, *, batch_id: str | None = None
    ) -> dict[str, Any]:
        """The Mail Send body as plain JSON; raises ValueError if ``send_at`` is beyond 72 h."""
        rendered = email.rendered
        recipient: dict[str, str] = {"email": email.to}
        name = _display_name(email.to_name)
        if name:
            recipient["name"] = name
        sender: dict[str, str] = {"email": email.from_address}
        if email.from_name:
            sender["name"] = email.from_name
        payload: dict[str, Any] = {
            "personalizations": [{"to": [recipient]}],
            "from": sender,
            "reply_to": {"email": email.reply_to},
            "subject": rendered.subject,
            # Plain text must come before HTML, or SendGrid refuses the request.
            "content": [
                {"type": "text/plain", "value": rendered.text},
                {"type": "text/html", "value": rendered.html},
            ],
            # Never the campaign: its id names a condition. A minimal email's step key could
            # hint at one (only one campaign has a week-10 step): it has none.
            "categories": [CATEGORY] if email.minimal else [CATEGORY, email.step_key],
            # Strings only, and nothing personal: SendGrid keeps these long after we leave.
            "custom_args": {"message_id": email.public_id},
        }
        if email.send_at > now:
            if email.send_at - now > SENDGRID.max_ahead:
                raise ValueError(
                    "send_at is more than 72 hours ahead; SendGrid cannot schedule it, so "
                    "submit the message later"
                )
            payload["send_at"] = int(email.send_at.timestamp())
        if batch_id is not None:
            payload["batch_id"] = batch_id
        if rendered.ics is not None:
            payload["attachments"] = [
                {
                    "content": base64.b64encode(rendered.ics).decode("ascii"),
                    "type": "text/calendar; method=PUBLISH",
                    "filename": rendered.ics_filename or "event.ics",
                    "disposition": "attachment",
                }
            ]
        if self.unsubscribe_group_id is not None:
            payload["asm"] = {"group_id": self.unsubscribe_group_id}
        else:
            payload["headers"] = {
                "List-Unsubscribe": f"<{rendered.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        if self.sandbox:
            payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return payload

    def new_batch(self) -> str:
        """A new batch id, to group scheduled messages so they can be cancelled together."""
        try:
            response = self._client.client.mail.batch.post()
        except HTTPError as exc:
            raise SendGridError("new batch", exc.status_code, _error_messages(exc.body)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise SendGridError("new batch", None, f"no response ({type(exc).__name__})") from None
        try:
            batch_id = json.loads(response.body)["batch_id"]
        except (ValueError, KeyError, TypeError):
            batch_id = None
        if not isinstance(batch_id, str) or not batch_id:
            raise SendGridError("new batch", response.status_code, "response has no batch_id")
        return batch_id

    def cancel_batch(self, batch_id: str) -> str:
        """Cancel every scheduled message of a batch: "cancelled", or "already" if it was."""
        body = {"batch_id": batch_id, "status": "cancel"}
        try:
            self._client.client.user.scheduled_sends.post(request_body=body)
        except HTTPError as exc:
            detail = _error_messages(exc.body)
            # SendGrid answers 400 both when the batch already has a status and when too many
            # batches are cancelled at once (10): only the batch's own status tells them apart.
            if exc.status_code == 400 and self._is_cancelled(batch_id):
                return "already"
            raise SendGridError("cancel batch", exc.status_code, detail) from None
        except (OSError, http.client.HTTPException) as exc:
            detail = f"no response ({type(exc).__name__})"
            raise SendGridError("cancel batch", None, detail) from None
        return "cancelled"

    def _is_cancelled(self, batch_id: str) -> bool:
        """Whether the batch already has the cancel status (False when SendGrid cannot say)."""
        try:
            response = self._client.client.user.scheduled_sends._(quote(batch_id, safe="")).get()
            data = json.loads(response.body)
        except (HTTPError, OSError, http.client.HTTPException, ValueError):
            return False
        return isinstance(data, list) and any(
            isinstance(item, dict) and item.get("status") == "cancel" for item in data
        )

    def _refused(
        self, exc: HTTPError, email: OutgoingEmail, now: dt.datetime, attempt: int
    ) -> Outcome:
        status = int(exc.status_code)
        messages = scrub_addresses(_error_messages(exc.body), email.to)
        if status == 429:
            reset = _rate_limit_reset(_header(exc.headers, "X-RateLimit-Reset"))
            retry_at = reset if reset is not None and reset > now else now + RATE_LIMIT_DELAY
            detail = f"rate limited by SendGrid (429): {messages}"
            return Outcome("retry", None, detail, retry_at, rate_limited=True)
        if status >= 500:
            return self._backoff(f"SendGrid error ({status}): {messages}", now, attempt)
        return Outcome("failed", None, f"refused by SendGrid ({status}): {messages}")

    def _backoff(self, detail: str, now: dt.datetime, attempt: int) -> Outcome:
        delay = min(self.backoff_base * 2 ** max(attempt, 0), self.backoff_cap)
        jitter = 0.5 + 0.5 * self._rand()  # spreads retries so they do not arrive together
        return Outcome("retry", None, _truncate(detail), now + delay * jitter)


def _display_name(first_name: str) -> str:
    # SendGrid refuses recipient names containing ";" or ",".
    return " ".join(first_name.replace(";", " ").replace(",", " ").split())


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    return str(value) if value else None


def _rate_limit_reset(value: str | None) -> dt.datetime | None:
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    try:
        return dt.datetime.fromtimestamp(int(value.strip()), dt.UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _error_messages(body: Any) -> str:
    """SendGrid's ``errors[].message`` joined; a body that is not that JSON gives a fixed text."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return "no error details"
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return "no error details"
    parts: list[str] = []
    for error in errors:
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            continue
        message, field = error["message"], error.get("field")
        parts.append(f"{message} ({field})" if isinstance(field, str) else message)
    return _truncate("; ".join(parts)) if parts else "no error details"


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
