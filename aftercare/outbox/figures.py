"""Counting for the per-site figures: one query per figure family, each read through an index on
the time it counts by and grouped by site, step and day, so the work follows the span of days
asked for and never runs a query per step or per day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aftercare.outbox.database import Database
from aftercare.outbox.rows import stamp
from aftercare.outbox.vocabulary import DeliveryEvent, State, Trail

# The figure families, as the outbox counts them (aftercare.report.figures says what each means).
SCHEDULED: Final = "scheduled"
SENT: Final = "sent"
DELIVERED: Final = "delivered"
BOUNCED: Final = "bounced"
DROPPED: Final = "dropped"
SPAM_REPORTS: Final = "spam_reports"
UNSUBSCRIBED: Final = "unsubscribed"
VIEWED: Final = "viewed"
FORECAST: Final = "forecast"
# Provider events counted as they are, once per message (its first such event).
_PROVIDER_FAMILIES: Final = {
    DeliveryEvent.DELIVERED.value: DELIVERED, DeliveryEvent.BOUNCED.value: BOUNCED,
    DeliveryEvent.DROPPED.value: DROPPED, DeliveryEvent.COMPLAINED.value: SPAM_REPORTS,
}
_PROVIDER_UNSUBSCRIBES: Final = (DeliveryEvent.UNSUBSCRIBED.value,
                                 DeliveryEvent.UNSUBSCRIBED_FROM_GROUP.value)
# A message counts as scheduled for its day unless it was cancelled (withdrawn, skipped by its
# plan, or stopped by an unsubscribe). Listing the states lets the (state, due_at) index serve.
_PLANNED: Final = tuple(s.value for s in State if s is not State.CANCELLED)


@dataclass(frozen=True)
class Tally:
    """How many messages of one site and step one figure family counted on one day."""

    site: str
    campaign: str
    step_key: str
    family: str
    day: int  # the day's place in the span (0: the first day)
    count: int


class FigureQueries:
    """The counting queries; each is one statement, whatever the number of sites and steps."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def sites(self) -> list[str]:
        """The sites that have enrolments, in order (read from the enrolments' site index)."""
        return [row["site"] for row in
                self._db.all("SELECT DISTINCT site FROM enrollments ORDER BY site")]

    def tally(
        self, sites: Sequence[str] | None, past: Sequence[dt.datetime],
        ahead: Sequence[dt.datetime], now: dt.datetime, held_since: dt.datetime,
    ) -> list[Tally]:
        """Every family's counts for ``sites`` (None: every site).

        ``past`` and ``ahead`` are the starts of successive days and the end of the last one
        (aware times): the span counted back, and the forecast's days (its first day also
        takes messages still waiting from before it). ``held_since``: the earliest hand-over
        a provider may still hold for a later send time.
        """
        if len(past) < 2 or len(ahead) < 2:
            raise ValueError("a span needs the start and the end of at least one day")
        back = [stamp(moment, "past") for moment in past]
        forth = [stamp(moment, "ahead") for moment in ahead]
        at, since = stamp(now, "now"), stamp(held_since, "held_since")
        sites_where, site_args = _sites(sites)
        span: list[object] = [back[0], back[-1]]
        found: list[Tally] = []
        for counted, column, where, args in (
            (SCHEDULED, "m.due_at", _SCHEDULED, [*_PLANNED, *span]),
            (SENT, "m.sent_at", _SENT, span),
            (VIEWED, "m.viewed_at", _VIEWED, span),
        ):
            found += self._counted(counted, column, back, "messages AS m", [],
                                   where + sites_where, [*args, *site_args])
        sourced: tuple[tuple[str | None, str, list[object], list[str]], ...] = (
            (None, _PROVIDER, [*_PROVIDER_FAMILIES, *span], back),
            (UNSUBSCRIBED, _UNSUBSCRIBES, [*_PROVIDER_UNSUBSCRIBES, *span,
                                           Trail.UNSUBSCRIBED.value, *span], back),
            (FORECAST, _FORECAST, [forth[-1], since, at, forth[-1]], forth),
        )
        for family, source, args, bounds in sourced:
            found += self._counted(
                family, "x.at", bounds,
                f"({source}) AS x JOIN messages AS m ON m.id = x.message_id", args,
                "1 = 1" + sites_where, site_args)
        return found

    def _counted(
        self, family: str | None, column: str, bounds: list[str], source: str,
        source_args: list[object], where: str, where_args: list[object],
    ) -> list[Tally]:
        """One family's counts: ``source`` names messages ``m`` (and for the provider's events
        a subquery ``x`` with each event's ``family``); ``column`` is the time counted by."""
        day, day_args = _day_of(column, bounds)
        kind = ", x.family" if family is None else ""
        rows = self._db.all(
            f"SELECT e.site, e.campaign, m.step_key{kind}, {day} AS day_index, count(*) AS n"
            f" FROM {source} JOIN enrollments AS e ON e.id = m.enrollment_id WHERE {where}"
            f" GROUP BY e.site, e.campaign, m.step_key{kind}, day_index",
            [*day_args, *source_args, *where_args],
        )
        return [Tally(r["site"], r["campaign"], r["step_key"],
                      _PROVIDER_FAMILIES[r["family"]] if family is None else family,
                      int(r["day_index"]), int(r["n"])) for r in rows]


# Which messages each family counts, and by which time (``m``: messages; ``x``: a subquery of
# message ids with that time as ``at``, and for the provider's events their ``family``).
_SCHEDULED = "m.state IN (?, ?, ?, ?, ?) AND m.due_at >= ? AND m.due_at < ?"
_SENT = "m.state = 'sent' AND m.sent_at >= ? AND m.sent_at < ?"
_VIEWED = "m.viewed_at >= ? AND m.viewed_at < ?"
# A message's first event of each counted kind within the span.
_PROVIDER = """
    SELECT message_id, kind AS family, min(occurred_at) AS at FROM provider_events
    WHERE kind IN (?, ?, ?, ?) AND occurred_at >= ? AND occurred_at < ? AND message_id IS NOT NULL
    GROUP BY message_id, kind
"""
# The provider's unsubscribe events and our own unsubscribe link (a trail entry naming the
# message whose link was followed): once per message, on the day of the first.
_UNSUBSCRIBES = """
    SELECT u.message_id, min(u.at) AS at FROM (
        SELECT message_id, occurred_at AS at FROM provider_events
        WHERE kind IN (?, ?) AND occurred_at >= ? AND occurred_at < ? AND message_id IS NOT NULL
        UNION ALL
        SELECT message_id, at FROM events
        WHERE kind = ? AND at >= ? AND at < ? AND message_id IS NOT NULL
    ) AS u GROUP BY u.message_id
"""
# Waiting to be sent (by its due time; one overdue counts on the first day), or handed to a
# provider that holds it until a later send time (by that time).
_FORECAST = """
    SELECT id AS message_id, due_at AS at FROM messages WHERE state = 'scheduled' AND due_at < ?
    UNION ALL
    SELECT id AS message_id, send_at AS at FROM messages
    WHERE state = 'sent' AND sent_at >= ? AND send_at > ? AND send_at < ?
"""


def _day_of(column: str, bounds: Sequence[str]) -> tuple[str, list[object]]:
    """SQL giving the place of ``column``'s day among the days ``bounds`` mark (fixed-width UTC
    text compares in time order); the query itself keeps to the span."""
    inner = list(bounds[1:-1])
    if not inner:
        return "0", []
    whens = " ".join(f"WHEN {column} < ? THEN {place}" for place in range(len(inner)))
    return f"CASE {whens} ELSE {len(inner)} END", [*inner]


def _sites(sites: Sequence[str] | None) -> tuple[str, list[object]]:
    if sites is None:
        return "", []
    marks = ", ".join("?" for _ in sites) or "NULL"
    return f" AND e.site IN ({marks})", list(sites)
