"""Limits how often one client address may call the public pages: in memory, for one window."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

# Addresses remembered at once; past this the least recently seen are forgotten first.
MAX_CLIENTS: Final = 10_000


class ClientLimit:
    """At most ``limit`` requests in any ``window`` from one address. Addresses are kept only in
    memory and only while they have requests within the window: never stored, never logged."""

    def __init__(self, limit: int, window: dt.timedelta, now: Callable[[], dt.datetime]) -> None:
        if limit < 1 or window <= dt.timedelta(0):
            raise ValueError(f"expected a limit of 1 or more in a positive window; got {limit} "
                             f"in {window}")
        self.limit = limit
        self.window = window
        self._now = now
        self._seen: OrderedDict[str, deque[dt.datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, address: str) -> int:
        """Count one request from ``address``; 0 if it may go on, else the seconds (1 or more)
        until it may try again. A refused request is not counted."""
        now = self._now()
        start = now - self.window
        with self._lock:
            # Least recently seen first: forget those with nothing left in the window.
            while self._seen and next(iter(self._seen.values()))[-1] <= start:
                self._seen.popitem(last=False)
            times = self._seen.pop(address, None) or deque()
            while times and times[0] <= start:
                times.popleft()
            if len(times) >= self.limit:
                self._seen[address] = times
                return max(1, math.ceil((times[0] - start).total_seconds()))
            times.append(now)
            self._seen[address] = times  # now the most recently seen
            while len(self._seen) > MAX_CLIENTS:
                self._seen.popitem(last=False)
        return 0

    def __len__(self) -> int:
        """How many addresses are remembered (those with requests in the window, at most)."""
        with self._lock:
            return len(self._seen)
