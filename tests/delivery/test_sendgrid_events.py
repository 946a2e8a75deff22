"""SendGrid Event Webhook posts: signature checks with a generated key, and event parsing."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aftercare.delivery.sendgrid_events import parse_events, verify_signature
from aftercare.outbox.records import DeliveryReport
from aftercare.outbox.vocabulary import SUPPRESSING

NOW = dt.datetime(2026, 3, 3, 14, 0, tzinfo=dt.UTC)
TIMESTAMP = str(int(NOW.timestamp()))
# The shape SendGrid posts, ending in CRLF as in the library's own test: signed byte for byte.
BODY = (
    b'[{"email":"zoe@example.com","event":"delivered","message_id":"5f0c1e2d",'
    b'"sg_event_id":"ZGVsaXZlcmVk","sg_message_id":"W1yPrWqXQ6SaJ8l9Zk2u0A.filter0001",'
    b'"timestamp":1772546400,"response":"250 OK"}]\r\n'
)


def key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode("ascii")


def sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    signature = private.sign(timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


PRIVATE, PUBLIC = key_pair()
SIGNATURE = sign(PRIVATE, TIMESTAMP, BODY)


def test_correctly_signed_body_verifies() -> None:
    assert verify_signature(PUBLIC, BODY, SIGNATURE, TIMESTAMP, NOW)
    # Within the replay window, and within the allowed clock skew.
    assert verify_signature(PUBLIC, BODY, SIGNATURE, TIMESTAMP, NOW + dt.timedelta(minutes=10))
    assert verify_signature(PUBLIC, BODY, SIGNATURE, TIMESTAMP, NOW - dt.timedelta(minutes=5))


def test_non_ascii_body_is_verified_as_received() -> None:
    body = '[{"email":"zoë@example.com","event":"processed"}]'.encode()
    assert verify_signature(PUBLIC, body, sign(PRIVATE, TIMESTAMP, body), TIMESTAMP, NOW)


@pytest.mark.parametrize(
    ("body", "signature", "timestamp", "now"),
    [
        (BODY.replace(b"delivered", b"delivere "), SIGNATURE, TIMESTAMP, NOW),  # tampered body
        (BODY.rstrip(), SIGNATURE, TIMESTAMP, NOW),  # re-serialised / stripped body
        (BODY, SIGNATURE, str(int(TIMESTAMP) + 1), NOW),  # timestamp not the one signed
        (BODY, SIGNATURE, TIMESTAMP, NOW + dt.timedelta(minutes=10, seconds=1)),  # stale
        (BODY, SIGNATURE, TIMESTAMP, NOW - dt.timedelta(minutes=5, seconds=1)),  # future
        (BODY, SIGNATURE, "", NOW),
        (BODY, SIGNATURE, "1772546400.0", NOW),
        (BODY, SIGNATURE, "-1", NOW),
        (BODY, SIGNATURE, "١٧٧٢٥٤٦٤٠٠", NOW),  # non-ASCII digits
        (BODY, "not base64!!", TIMESTAMP, NOW),
        (BODY, "abc", TIMESTAMP, NOW),  # bad padding: binascii.Error inside the library
        (BODY, "", TIMESTAMP, NOW),
        (BODY, base64.b64encode(b"not a DER signature").decode(), TIMESTAMP, NOW),
        (b"\xff\xfe", SIGNATURE, TIMESTAMP, NOW),  # not UTF-8
    ],
)
def test_bad_posts_are_refused_without_raising(
    body: bytes, signature: str, timestamp: str, now: dt.datetime
) -> None:
    assert verify_signature(PUBLIC, body, signature, timestamp, now) is False


def test_wrong_key_is_refused() -> None:
    _, other = key_pair()
    assert verify_signature(other, BODY, SIGNATURE, TIMESTAMP, NOW) is False


def test_custom_max_age() -> None:
    later = NOW + dt.timedelta(minutes=2)
    assert not verify_signature(PUBLIC, BODY, SIGNATURE, TIMESTAMP, later, dt.timedelta(minutes=1))


def test_malformed_public_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="not a valid base64 public key"):
        verify_signature("not a key", BODY, SIGNATURE, TIMESTAMP, NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_signature(PUBLIC, BODY, SIGNATURE, TIMESTAMP, NOW.replace(tzinfo=None))


# Shapes from SendGrid's event documentation; addresses and ids made up.
SAMPLE = [
    {"email": "a@example.com", "timestamp": 1513299569, "smtp-id": "<14c5d75ce93.dfd@ismtpd>",
     "event": "processed", "category": ["aftercare", "day-1"], "sg_event_id": "ev-processed",
     "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
     "message_id": "pid-1"},
    {"email": "a@example.com", "timestamp": 1513299570, "event": "delivered",
     "response": "250 OK", "sg_event_id": "ev-delivered", "sg_message_id": "x.filter1",
     "message_id": "pid-1"},
    {"email": "b@example.com", "timestamp": 1513299571, "event": "bounce", "type": "bounce",
     "status": "5.1.1", "sg_event_id": "ev-bounce",
     "reason": "550 5.1.1 <b@example.com>: Recipient address rejected:\n User unknown " + "x" * 300,
     "message_id": "pid-2"},
    {"email": "c@example.com", "timestamp": 1513299572, "event": "dropped",
     "reason": "Bounced Address", "sg_event_id": "ev-dropped", "message_id": "pid-3"},
    {"email": "d@example.com", "timestamp": 1513299573, "event": "open",
     "useragent": "Mozilla/4.0", "ip": "255.255.255.255", "sg_event_id": "ev-open"},
    {"email": "d@example.com", "timestamp": 1513299574, "event": "unsubscribe",
     "sg_event_id": "ev-unsub"},
    {"email": "e@example.com", "timestamp": 1513299575, "event": "group_unsubscribe",
     "asm_group_id": 42, "sg_event_id": "ev-group-unsub", "message_id": "pid-5"},
]


def test_parse_events_handles_documented_shapes() -> None:
    events = parse_events(json.dumps(SAMPLE).encode() + b"\r\n")
    at = dt.datetime.fromtimestamp
    assert [e.event for e in events] == [
        "processed", "delivered", "bounce", "dropped", "unsubscribe", "group_unsubscribe",
    ]  # "open" is ignored: tracking is off and reading habits are data we do not keep
    assert events[0] == DeliveryReport(
        "ev-processed", "processed", "pid-1", "a@example.com", at(1513299569, dt.UTC), None
    )
    bounce = events[2]
    assert bounce.message_id == "pid-2"
    assert bounce.reason is not None
    assert bounce.reason.startswith("550 5.1.1 <address>: Recipient address rejected: User")
    assert "b@example.com" not in bounce.reason
    assert len(bounce.reason) == 200 and bounce.reason.endswith("…")
    assert events[3].reason == "Bounced Address"
    assert events[4].message_id is None  # an unsubscribe outside any message of ours
    assert events[5].timestamp == at(1513299575, dt.UTC)
    assert events[5].timestamp.tzinfo is dt.UTC
    assert {e.event for e in events} - {"processed", "delivered"} <= SUPPRESSING


def test_parse_events_accepts_an_empty_array() -> None:
    assert parse_events(b"[]") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "webhook body: expected a JSON array of events; invalid JSON at line 1, column 1"),
        (b'[{"event": "delivered",', "webhook body: expected a JSON array of events; invalid JSON"),
        (b"\xff", "webhook body: expected a JSON array of events; the body is not UTF-8 text"),
        (b'{"event": "delivered"}',
         "webhook body: expected a JSON array of events, received an object"),
        (b"[1]", r"webhook body\[0\]: expected an object, received a number"),
        (b'[{"email": "a@example.com"}]',
         r"webhook body\[0\].event: expected a non-empty string, received nothing"),
        (b'[{"event": "delivered", "sg_event_id": "e", "email": "a@example.com",'
         b' "timestamp": "1513299569"}]',
         r"webhook body\[0\].timestamp: expected a Unix time in seconds, received a string"),
        (b'[{"event": "bounce", "sg_event_id": "e", "email": "a@example.com",'
         b' "timestamp": true}]',
         r"webhook body\[0\].timestamp: expected a Unix time in seconds, received a boolean"),
        (b'[{"event": "bounce", "sg_event_id": "e", "email": "a@example.com",'
         b' "timestamp": 1, "message_id": 5}]',
         r"webhook body\[0\].message_id: expected a non-empty string, received a number"),
        (b'[{"event": "dropped", "sg_event_id": "e", "email": "a@example.com",'
         b' "timestamp": 1, "reason": ["x"]}]',
         r"webhook body\[0\].reason: expected a string, received an array"),
        (b'[{"event": "delivered", "email": "a@example.com", "timestamp": 1}]',
         r"webhook body\[0\].sg_event_id: expected a non-empty string, received nothing"),
    ],
)
def test_parse_events_rejects_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_events(body)
    assert "a@example.com" not in str(info.value)
