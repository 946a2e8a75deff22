"""API keys: made from 32 random bytes, shown once, stored as a SHA-256 hash; a rate per key.

A key carries 256 random bits, so a fast hash is enough (no salt or slow hash is needed to
resist guessing, unlike a password) and lets the server find the key by its hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Final

from aftercare.errors import InputError

PREFIX: Final = "aftercare_"  # lets secret scanners and people recognise a leaked key
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_BEARER = re.compile(r"bearer +([A-Za-z0-9._~+/-]+=*) *", re.IGNORECASE)  # RFC 6750 b64token


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_key_name(name: str) -> str:
    """The name, or InputError: 1 to 64 lower-case letters, digits, '.', '_' or '-'."""
    if not _NAME.fullmatch(name):
        raise InputError("name", "expected 1 to 64 lower-case letters, digits, '.', '_' or '-', "
                                 f"starting with a letter or digit; got {name[:70]!r}")
    return name


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    match = _BEARER.fullmatch(header or "")
    return None if match is None else match[1]


@dataclass
class _Bucket:
    tokens: float
    at: dt.datetime
    refused_since: dt.datetime | None = None  # the first refusal of the current run of them


@dataclass(frozen=True)
class Allowance:
    """Whether a call may go ahead; when not, in how many seconds one may, and whether this is
    the first refusal in a minute (so the trail records one refusal a minute, not a flood)."""

    allowed: bool
    retry_after: int = 0
    first_refusal: bool = False


@dataclass
class RateLimiter:
    """A token bucket per key: ``per_minute`` calls a minute, in bursts of up to that many.

    It counts the calls this server process answers (``pipeline serve`` is one process).
    """

    per_minute: int
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key_id: int, now: dt.datetime) -> Allowance:
        rate = self.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.setdefault(key_id, _Bucket(float(self.per_minute), now))
            elapsed = max((now - bucket.at).total_seconds(), 0.0)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + elapsed * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Allowance(True)
            wait = max(1, int((1.0 - bucket.tokens) / rate + 0.999))
            first = (bucket.refused_since is None
                     or now - bucket.refused_since >= dt.timedelta(minutes=1))
            if first:
                bucket.refused_since = now
            return Allowance(False, wait, first)
