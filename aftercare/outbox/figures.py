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

        For every site, each query reads its index on the time it counts by; for some sites,
        it starts from those sites' enrolments (CROSS JOIN keeps SQLite to that order), so one
        site's figures cost in proportion to that site, not to the installation.
        """
        if len(past) < 2 or len(ahead) < 2:
            raise ValueError("a span needs the start and the end of at least one day")
        back = [stamp(moment, "past") for moment in past]
        forth = [stamp(moment, "ahead") for moment in ahead]
        at, since = stamp(now, "now"), stamp(held_since, "held_since")
        span: list[object] = [back[0], back[-1]]
        families: tuple[tuple[str | None, str, list[str], list[list[object]]], ...] = (
            (SCHEDULED, _SCHEDULED, back, [[*_PLANNED, *span]]),
            (SENT, _SENT, back, [span]),
            (VIEWED, _VIEWED, back, [span]),
            (None, _PROVIDER, back, [[*_PROVIDER_FAMILIES, *span]]),
            (UNSUBSCRIBED, _UNSUBSCRIBES, back, [[*_PROVIDER_UNSUBSCRIBES, *span],
                                                  [Trail.UNSUBSCRIBED.value, *span]]),
            (FORECAST, _FORECAST, forth, [[forth[-1]], [since, at, forth[-1]]]),
        )
        found: list[Tally] = []
        for family, source, bounds, branches in families:
            scoped = _scoped(source, sites, planner_hint=self._db.engine.name == "sqlite")
            found += self._counted(family, scoped, bounds,
                                   [arg for args in branches
                                    for arg in [*([] if sites is None else sites), *args]])
        return found

    def _counted(
        self, family: str | None, source: str, bounds: list[str], args: list[object]
    ) -> list[Tally]:
        """One family's counts: ``source`` yields message ids with the time counted by as
        ``at`` (and for the provider's events each event's ``family``)."""
        day, day_args = _day_of("x.at", bounds)
        kind = ", x.family" if family is None else ""
        rows = self._db.all(
            f"SELECT e.site, e.campaign, m.step_key{kind}, {day} AS day_index, count(*) AS n"
            f" FROM ({source}) AS x JOIN messages AS m ON m.id = x.message_id"
            " JOIN enrollments AS e ON e.id = m.enrollment_id"
            f" GROUP BY e.site, e.campaign, m.step_key{kind}, day_index",
            [*day_args, *args],
        )
        return [Tally(r["site"], r["campaign"], r["step_key"],
                      _PROVIDER_FAMILIES[r["family"]] if family is None else family,
                      int(r["day_index"]), int(r["n"])) for r in rows]


# Which messages each family counts (their ids as ``message_id``), and the time each counts by
# (``at``). ``{from_m}``/``{where_m}`` (a message ``m``) and ``{from_pe}``, ``{where_pe}``,
# ``{from_ev}``, ``{where_ev}`` (a provider event ``pe``, a trail entry ``ev``) are where the
# sites asked for come in; each branch of a source takes the sites' values before its own.
_SCHEDULED = """
    SELECT m.id AS message_id, m.due_at AS at FROM {from_m}messages AS m
    WHERE {where_m}m.state{k} IN (?, ?, ?, ?, ?) AND m.due_at{k} >= ? AND m.due_at{k} < ?
"""
_SENT = """
    SELECT m.id AS message_id, m.sent_at AS at FROM {from_m}messages AS m
    WHERE {where_m}m.state{k} = 'sent' AND m.sent_at{k} >= ? AND m.sent_at{k} < ?
"""
_VIEWED = """
    SELECT m.id AS message_id, m.viewed_at AS at FROM {from_m}messages AS m
    WHERE {where_m}m.viewed_at{k} >= ? AND m.viewed_at{k} < ?
"""
# A message's first event of each counted kind within the span.
_PROVIDER = """
    SELECT pe.message_id, pe.kind AS family, min(pe.occurred_at) AS at
    FROM {from_pe}provider_events AS pe
    WHERE {where_pe}pe.kind{k} IN (?, ?, ?, ?) AND pe.occurred_at{k} >= ?
      AND pe.occurred_at{k} < ? AND pe.message_id IS NOT NULL
    GROUP BY pe.message_id, pe.kind
"""
# The provider's unsubscribe events and our own unsubscribe link (a trail entry naming the
# message whose link was followed): once per message, on the day of the first.
_UNSUBSCRIBES = """
    SELECT u.message_id, min(u.at) AS at FROM (
        SELECT pe.message_id, pe.occurred_at AS at FROM {from_pe}provider_events AS pe
        WHERE {where_pe}pe.kind{k} IN (?, ?) AND pe.occurred_at{k} >= ?
          AND pe.occurred_at{k} < ? AND pe.message_id IS NOT NULL
        UNION ALL
        SELECT ev.message_id, ev.at FROM {from_ev}events AS ev
        WHERE {where_ev}ev.kind{k} = ? AND ev.at{k} >= ? AND ev.at{k} < ?
          AND ev.message_id IS NOT NULL
    ) AS u GROUP BY u.message_id
"""
# Waiting to be sent (by its due time; one overdue counts on the first day), or handed to a
# provider that holds it until a later send time (by that time).
_FORECAST = """
    SELECT m.id AS message_id, m.due_at AS at FROM {from_m}messages AS m
    WHERE {where_m}m.state{k} = 'scheduled' AND m.due_at{k} < ?
    UNION ALL
    SELECT m.id AS message_id, m.send_at AS at FROM {from_m}messages AS m
    WHERE {where_m}m.state{k} = 'sent' AND m.sent_at{k} >= ? AND m.send_at > ?
      AND m.send_at < ?
"""


def _scoped(source: str, sites: Sequence[str] | None, *, planner_hint: bool) -> str:
    """``source`` for every site, or starting from the enrolments of ``sites`` (SQLite is
    told so through ``planner_hint``; PostgreSQL's statistics find that order themselves)."""
    if sites is None:
        return source.format(from_m="", where_m="", from_pe="", where_pe="", from_ev="",
                             where_ev="", k="")
    marks = ", ".join("?" for _ in sites) or "NULL"
    enrolments = "enrollments AS se CROSS JOIN "
    chosen = f"se.site IN ({marks}) AND "
    via_message = "messages AS sm CROSS JOIN "
    return source.format(
        from_m=enrolments, where_m=f"{chosen}m.enrollment_id = se.id AND ",
        from_pe=enrolments + via_message,
        where_pe=f"{chosen}sm.enrollment_id = se.id AND pe.message_id = sm.id AND ",
        from_ev=enrolments + via_message,
        where_ev=f"{chosen}sm.enrollment_id = se.id AND ev.message_id = sm.id AND ",
        # Compared as expressions, the states, kinds and times do not lead the engine to their
        # indexes: each row is found from its site's enrolment, in the order the joins say.
        k=" || ''" if planner_hint else "",
    )


def _day_of(column: str, bounds: Sequence[str]) -> tuple[str, list[object]]:
    """SQL giving the place of ``column``'s day among the days ``bounds`` mark (fixed-width UTC
    text compares in time order), halving the days at each test; the query itself keeps to
    the span."""

    def place(first: int, last: int) -> tuple[str, list[object]]:  # days first..last
        if first == last:
            return str(first), []
        middle = (first + last + 1) // 2  # the first day of the later half
        early, early_args = place(first, middle - 1)
        late, late_args = place(middle, last)
        return (f"CASE WHEN {column} < ? THEN {early} ELSE {late} END",
                [bounds[middle], *early_args, *late_args])

    return place(0, len(bounds) - 2)
