"""A short-lived in-memory store under random ids: keeps personal data out of URLs and off disk."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

T = TypeVar("T")

MAX_ITEMS: Final = 500


@dataclass(frozen=True)
class _Entry:
    owner: str
    expires: dt.datetime
    value: object


class ScratchCache:
    """Values visible only to the staff member who stored them, for ``ttl``; then forgotten."""

    def __init__(self, ttl: dt.timedelta, now: Callable[[], dt.datetime]) -> None:
        self.ttl = ttl
        self._now = now
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, owner: str, value: object) -> str:
        """Store ``value`` and return its new random id (128 bits, URL-safe)."""
        key = secrets.token_urlsafe(16)
        now = self._now()
        with self._lock:
            self._forget_expired(now)
            while len(self._items) >= MAX_ITEMS:
                self._items.popitem(last=False)
            self._items[key] = _Entry(owner, now + self.ttl, value)
        return key

    def get(self, key: str, owner: str, kind: type[T]) -> T | None:
        """The value under ``key`` if it is ``owner``'s, of type ``kind`` and not expired."""
        with self._lock:
            self._forget_expired(self._now())
            entry = self._items.get(key)
        if entry is None or entry.owner != owner or not isinstance(entry.value, kind):
            return None
        return entry.value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _forget_expired(self, now: dt.datetime) -> None:
        for key in [k for k, entry in self._items.items() if entry.expires <= now]:
            del self._items[key]
