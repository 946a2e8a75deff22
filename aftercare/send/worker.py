"""`pipeline worker`: send-due in a loop, a jittered pause between runs, stopping cleanly.

Several workers may share one outbox (processes on one SQLite file; machines on one
PostgreSQL database): each run claims messages one at a time in short transactions, so no
message is claimed twice. Asked to stop (SIGTERM, Ctrl+C), a worker claims nothing more,
waits for the requests in flight and records them, then returns; a claim whose worker died
instead is left to the lease rule (it becomes 'unknown', never resent).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Final

import psycopg

from aftercare.content.model import Project
from aftercare.delivery import Backend
from aftercare.errors import PipelineError
from aftercare.outbox.store import Outbox
from aftercare.send.dispatch import DispatchReport, Renderer, send_due

logger = logging.getLogger("aftercare.worker")

JITTER: Final = 0.25  # each pause is the interval times 0.75 to 1.25, so workers drift apart
MAX_BACKOFF: Final = 60.0  # seconds between tries while the database cannot be reached
_NAP: Final = 0.2  # a pause is slept in slices this long, so a stop is noticed quickly
# A run that fails with one of these is tried again later: a database that is locked,
# restarting or unreachable (the drivers' operational errors), or an error of our own.
_RETRIED: Final = (PipelineError, OSError, sqlite3.OperationalError, psycopg.OperationalError)


@dataclass
class StopFlag:
    """Set from a signal handler: only a flag is written there, nothing that takes a lock."""

    requested: bool = False
    signals: int = 0

    def __call__(self) -> bool:
        return self.requested


@dataclass
class WorkerTotals:
    """What the worker's runs did in all."""

    runs: int = 0
    failures: int = 0  # runs that could not reach the outbox (a database error)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, report: DispatchReport) -> None:
        self.runs += 1
        for name in ("sent", "failed", "unknown", "retried", "cancelled", "too_late",
                     "released", "withdrawn"):
            self.counts[name] = self.counts.get(name, 0) + getattr(report, name)

    def summary(self) -> str:
        done = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.counts.items() if n)
        runs = f"{self.runs} run" + ("" if self.runs == 1 else "s")
        return (f"stopped after {runs}" + (f": {done}" if done else ": nothing was due")
                + (f"; {self.failures} runs could not reach the outbox" if self.failures else ""))


def work(
    open_outbox: Callable[[], AbstractContextManager[Outbox]],
    project: Project,
    renderer: Renderer,
    backend: Backend,
    now: Callable[[], dt.datetime],
    *,
    interval: float,
    limit: int,
    stop: Callable[[], bool],
    report: Callable[[DispatchReport], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> WorkerTotals:
    """Run send-due until ``stop()``; a run that used its whole ``limit`` is followed at once
    by the next, otherwise the worker pauses about ``interval`` seconds. A run that cannot
    reach the database is logged (its error class only) and tried again later."""
    if interval <= 0:
        raise ValueError(f"interval must be positive; got {interval}")
    pick = rng or random.Random()
    totals, backoff = WorkerTotals(), interval
    while not stop():
        try:
            with open_outbox() as outbox:
                result = send_due(outbox, project, renderer, backend, now(), limit, stop=stop)
        except _RETRIED as exc:
            # Only the class (and our own messages, which hold no personal data): a driver's
            # message can quote a row.
            totals.failures += 1
            shown = str(exc) if isinstance(exc, PipelineError) else type(exc).__name__
            logger.error("send-due could not run (%s); trying again in %.0f s", shown, backoff)
            _pause(backoff, stop, sleep)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        backoff = interval
        totals.add(result)
        report(result)
        if len(result.claimed) >= limit and not result.rate_limited:
            continue  # more is due than one run takes
        _pause(interval * pick.uniform(1 - JITTER, 1 + JITTER), stop, sleep)
    return totals


@contextmanager
def stopping_on_signals(flag: StopFlag, said: Callable[[str], None]) -> Iterator[StopFlag]:
    """SIGTERM or SIGINT sets ``flag`` (the worker finishes what is in flight); a second one
    ends the process at once, the way the signal would have. ``said`` tells the person."""

    def handle(signum: int, frame: FrameType | None) -> None:
        flag.signals += 1
        if flag.requested:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        flag.requested = True
        said("stopping: claiming nothing more, finishing the messages in flight"
             " (a second signal stops at once)")

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pause(seconds: float, stop: Callable[[], bool], sleep: Callable[[float], None]) -> None:
    left = seconds
    while left > 0 and not stop():
        nap = min(_NAP, left)
        sleep(nap)
        left -= nap
