"""A short-lived in-memory store under random ids: keeps personal data out of URLs and off disk,
with a quota per staff member, so that one desk's work never pushes out another's."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

T = TypeVar("T")

# What one staff member keeps at most (checkout confirmations with their PDF, searches); their
# own oldest goes first when they make more within the time to live. A checkout every minute
# and a search every 20 seconds for 15 minutes fit.
MAX_PER_OWNER: Final = 100


@dataclass(frozen=True)
class _Entry:
    expires: dt.datetime
    value: object


class ScratchCache:
    """Values visible only to the staff member who stored them, for ``ttl``; then forgotten."""

    def __init__(self, ttl: dt.timedelta, now: Callable[[], dt.datetime],
                 per_owner: int = MAX_PER_OWNER) -> None:
        self.ttl = ttl
        self._now = now
        self._per_owner = per_owner
        self._owners: dict[str, OrderedDict[str, _Entry]] = {}
        self._lock = threading.Lock()

    def put(self, owner: str, value: object) -> str:
        """Store ``value`` and return its new random id (128 bits, URL-safe)."""
        key = secrets.token_urlsafe(16)
        now = self._now()
        with self._lock:
            self._forget_expired(now)
            own = self._owners.setdefault(owner, OrderedDict())
            while len(own) >= self._per_owner:
                own.popitem(last=False)
            own[key] = _Entry(now + self.ttl, value)
        return key

    def get(self, key: str, owner: str, kind: type[T]) -> T | None:
        """The value under ``key`` if it is ``owner``'s, of type ``kind`` and not expired."""
        with self._lock:
            self._forget_expired(self._now())
            own = self._owners.get(owner)
            entry = None if own is None else own.get(key)
        if entry is None or not isinstance(entry.value, kind):
            return None
        return entry.value

    def __len__(self) -> int:
        with self._lock:
            return sum(len(own) for own in self._owners.values())

    def _forget_expired(self, now: dt.datetime) -> None:
        for owner, own in list(self._owners.items()):
            # Entries are in the order they were stored, so the expired ones come first.
            while own and next(iter(own.values())).expires <= now:
                own.popitem(last=False)
            if not own:
                del self._owners[owner]
