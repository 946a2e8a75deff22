"""Signs and verifies the URL-safe tokens of unsubscribe and care page links, and loads or
creates the secret key."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aftercare.errors import PipelineError
from aftercare.files import write_atomically

ENV_KEY = "AFTERCARE_SECRET_KEY"
MIN_KEY_LENGTH = 32

# Domain separation: if the same secret ever signs something else (a staff session, say),
# a signature made for that purpose can never pass as an unsubscribe token, or the reverse.
_PURPOSE = b"aftercare-unsubscribe-v1\x00"


def sign(public_id: str, key: bytes) -> str:
    """A token ``<id>.<signature>`` (both base64url, no padding) for a message's public id."""
    payload = _encode(public_id.encode("utf-8"))
    return f"{payload}.{_encode(_mac(payload, key))}"


def verify(token: str, key: bytes) -> str | None:
    """The public id a token was signed for, or None when it is malformed, altered or forged."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        return None
    given = _decode(signature)
    raw_id = _decode(payload)
    if given is None or raw_id is None:
        return None
    if not hmac.compare_digest(given, _mac(payload, key)):
        return None
    try:
        return raw_id.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------- care page links

# A care page token is base32 in lower case without padding (letters and digits only, so no
# part of it can be read as a word, and mail clients never break it at a hyphen) of:
#   kind (1 byte) | issued (4 bytes: Unix seconds, big-endian) | public id | MAC (20 bytes)
# Kind 1 carries a 32-hex-digit public id as its 16 bytes (every stored message's); kind 2
# carries any other id as UTF-8 (previews). The MAC is HMAC-SHA256 under the clinic's secret
# over a purpose of its own and everything before it, cut to 160 bits.
_CARE_PURPOSE = b"aftercare-care-page-v1\x00"
_HEX_ID, _TEXT_ID = 1, 2
_CARE_MAC = 20
_CARE_HEAD = 5  # kind and issued
_MAX_CARE_TOKEN = 200  # characters; anything longer is refused before decoding
_HEX32 = re.compile(r"[0-9a-f]{32}")
_NO_ID = "0" * 32  # looked up for a malformed token, so that it costs what any other does


@dataclass(frozen=True)
class CareLink:
    """What a care page token says: whose message, since when, and whether we signed it."""

    public_id: str
    issued: dt.datetime  # aware UTC: when the message was meant to reach the patient
    genuine: bool  # signed with this key, for a care page, and unaltered


def sign_care(public_id: str, issued: dt.datetime, key: bytes) -> str:
    """The care page token for a message's public id, issued at the message's send time."""
    seconds = int(issued.timestamp())
    if not 0 <= seconds < 2**32:
        raise ValueError(f"issued must be between 1970 and 2106; got {issued.isoformat()}")
    if _HEX32.fullmatch(public_id):
        kind, raw_id = _HEX_ID, bytes.fromhex(public_id)
    else:
        kind, raw_id = _TEXT_ID, public_id.encode("utf-8")
    body = bytes([kind]) + seconds.to_bytes(4, "big") + raw_id
    return _base32(body + _care_mac(body, key))


def read_care(token: str, key: bytes) -> CareLink:
    """What ``token`` says. Every token costs one MAC, valid or not; one that is malformed,
    altered, forged or signed with another key is not ``genuine``."""
    raw = _unbase32(token) if len(token) <= _MAX_CARE_TOKEN else None
    body, given = (raw[:-_CARE_MAC], raw[-_CARE_MAC:]) if raw else (b"", b"")
    link = _parse_care_body(body)
    expected = _care_mac(body, key)
    if link is None:
        return CareLink(_NO_ID, dt.datetime.fromtimestamp(0, dt.UTC), False)
    genuine = hmac.compare_digest(given, expected)
    return CareLink(link[0], link[1], genuine)


def _parse_care_body(body: bytes) -> tuple[str, dt.datetime] | None:
    if len(body) <= _CARE_HEAD or body[0] not in (_HEX_ID, _TEXT_ID):
        return None
    issued = dt.datetime.fromtimestamp(int.from_bytes(body[1:_CARE_HEAD], "big"), dt.UTC)
    raw_id = body[_CARE_HEAD:]
    if body[0] == _HEX_ID:
        return (raw_id.hex(), issued) if len(raw_id) == 16 else None
    try:
        return raw_id.decode("utf-8"), issued
    except UnicodeDecodeError:
        return None


def _care_mac(body: bytes, key: bytes) -> bytes:
    return hmac.new(key, _CARE_PURPOSE + body, hashlib.sha256).digest()[:_CARE_MAC]


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _unbase32(text: str) -> bytes | None:
    """Strict: only the canonical lower-case spelling of some bytes decodes."""
    if not text.isascii() or not text.isalnum() or text != text.lower():
        return None
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return raw if _base32(raw) == text else None


# ---------------------------------------------------------------- the secret key


def load_secret_key(env: Mapping[str, str], key_file: Path) -> bytes:
    """The key from AFTERCARE_SECRET_KEY, else from ``key_file``, which is created when missing."""
    if ENV_KEY in env:
        value = env[ENV_KEY]
        if len(value) < MIN_KEY_LENGTH:
            raise PipelineError(
                f"{ENV_KEY}: expected at least {MIN_KEY_LENGTH} characters; got {len(value)}"
            )
        return value.encode("utf-8")
    try:
        return _read_key_file(key_file)
    except FileNotFoundError:
        pass
    _create_key_file(key_file)
    return _read_key_file(key_file)


def _read_key_file(key_file: Path) -> bytes:
    with key_file.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        key = handle.read()
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PipelineError(
            f"{key_file}: expected a file only its owner can read (mode 600); "
            f"got mode {stat.S_IMODE(mode):03o}. Fix it with: chmod 600 {key_file}"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise PipelineError(
            f"{key_file}: expected a key of at least {MIN_KEY_LENGTH} bytes; got {len(key)}"
        )
    return key


def _create_key_file(key_file: Path) -> None:
    """Write a new random key, owner-only, never over a key another process wrote meanwhile."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(key_file, secrets.token_bytes(MIN_KEY_LENGTH), private=True, replace=False)


def _mac(payload: str, key: bytes) -> bytes:
    return hmac.new(key, _PURPOSE + payload.encode("ascii"), hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """Strict base64url: only the canonical spelling of some bytes decodes."""
    if not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _encode(raw) == text else None
