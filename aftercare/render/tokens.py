"""Signs and verifies the URL-safe unsubscribe tokens, and loads or creates the secret key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
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
