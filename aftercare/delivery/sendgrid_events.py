"""SendGrid's Event Webhook: verifying a post, and reading its events into the outbox's own
delivery vocabulary (SendGrid's event names stay here); touches no database."""

from __future__ import annotations

import binascii
import datetime as dt
import itertools
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook

from aftercare.dates import require_aware
from aftercare.delivery.providers import scrub_addresses
from aftercare.outbox.records import DeliveryReport
from aftercare.outbox.vocabulary import DeliveryEvent

# The trail's actor for what SendGrid's reports change.
ACTOR = "sendgrid"
# SendGrid's event names in our words. Others (open, click, account events) are ignored: the
# tool does not enable tracking, and which patient read which aftercare email is data we do
# not want.
EVENTS: Mapping[str, DeliveryEvent] = MappingProxyType({
    "processed": DeliveryEvent.PROCESSED,
    "deferred": DeliveryEvent.DEFERRED,
    "delivered": DeliveryEvent.DELIVERED,
    "bounce": DeliveryEvent.BOUNCED,
    "dropped": DeliveryEvent.DROPPED,
    "spamreport": DeliveryEvent.COMPLAINED,
    "unsubscribe": DeliveryEvent.UNSUBSCRIBED,
    "group_unsubscribe": DeliveryEvent.UNSUBSCRIBED_FROM_GROUP,
    "group_resubscribe": DeliveryEvent.RESUBSCRIBED_TO_GROUP,
})

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_MAX_AGE = dt.timedelta(minutes=10)
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)  # how far in the future a timestamp may be
MAX_REASON = 200
# SendGrid's events nest 3 deep (the array, an event, its category list); a body deeper than this
# is refused before it is parsed, so no post can exhaust the parser's recursion.
MAX_DEPTH = 16

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Each opening bracket adds one level and each closing one removes it.
_STEP = [1 if byte in b"[{" else -1 for byte in range(256)]


def load_public_key(public_key: str) -> ec.EllipticCurvePublicKey:
    """Check the verification key from SendGrid's settings (base64 DER, as shown there)."""
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(public_key.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("SendGrid webhook public key is not a valid base64 public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("SendGrid webhook public key is not an elliptic-curve (ECDSA) key")
    return key


def verify_signature(
    public_key: str | ec.EllipticCurvePublicKey,
    raw_body: bytes,
    signature: str,
    timestamp: str,
    now: dt.datetime,
    max_age: dt.timedelta = DEFAULT_MAX_AGE,
) -> bool:
    """True only for a fresh post signed by SendGrid; a malformed key raises ValueError.

    Everything the post itself carries (signature, timestamp, body) only ever makes it False.
    """
    require_aware(now, "now")
    key = load_public_key(public_key) if isinstance(public_key, str) else public_key
    if not _TIMESTAMP.fullmatch(timestamp):
        return False
    # Compared as whole seconds: a timestamp far out of range is simply not fresh (building a
    # datetime from it would fail).
    age = int(now.timestamp()) - int(timestamp)
    if age > max_age.total_seconds() or -age > MAX_CLOCK_SKEW.total_seconds():
        return False  # a replayed or forged-in-advance post
    try:
        # Signed bytes are timestamp + the body exactly as received: decode, never re-serialise.
        payload = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        return bool(EventWebhook().verify_signature(payload, signature, timestamp, key))
    except (binascii.Error, ValueError):  # signature not base64, or not a DER signature
        return False


def parse_events(raw_body: bytes) -> list[DeliveryReport]:
    """The events of one post we keep, in order, in our words; ValueError names the first
    malformed item."""
    if nesting_depth(raw_body) > MAX_DEPTH:
        raise ValueError(f"webhook body: expected a JSON array of events; got lists or objects "
                         f"nested more than {MAX_DEPTH} deep")
    try:
        data = json.loads(raw_body)
    except (UnicodeDecodeError, ValueError) as exc:
        problem = _json_error(exc)
        raise ValueError(f"webhook body: expected a JSON array of events; {problem}") from None
    if not isinstance(data, list):
        raise ValueError(f"webhook body: expected a JSON array of events, received {_kind(data)}")
    events: list[DeliveryReport] = []
    for index, item in enumerate(data):
        where = f"webhook body[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object, received {_kind(item)}")
        event = EVENTS.get(_text(item, "event", where))
        if event is None:
            continue
        events.append(
            DeliveryReport(
                event_id=_text(item, "sg_event_id", where),
                event=event,
                message_id=_optional_text(item, "message_id", where),
                email=_text(item, "email", where),
                timestamp=_timestamp(item, where),
                reason=_reason(item, where),
            )
        )
    return events


def nesting_depth(raw_body: bytes) -> int:
    """How deep the JSON's arrays and objects nest, counted without parsing (strings skipped)."""
    brackets = _JSON_STRING.sub(b"", raw_body).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        received = "nothing" if value is None else _kind(value)
        raise ValueError(f"{where}.{key}: expected a non-empty string, received {received}")
    return value


def _optional_text(item: dict[str, Any], key: str, where: str) -> str | None:
    return _text(item, key, where) if item.get(key) is not None else None


def _timestamp(item: dict[str, Any], where: str) -> dt.datetime:
    value = item.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        received = "nothing" if value is None else _kind(value)
        raise ValueError(f"{where}.timestamp: expected a Unix time in seconds, received {received}")
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        message = f"{where}.timestamp: expected a Unix time in seconds, received one out of range"
        raise ValueError(message) from None


def _reason(item: dict[str, Any], where: str) -> str | None:
    value = item.get("reason")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}.reason: expected a string, received {_kind(value)}")
    # Bounce texts often quote the address ("550 <ann@example.com> unknown"); keep it out.
    text = " ".join(scrub_addresses(value).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return "the body is not UTF-8 text"
