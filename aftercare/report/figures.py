"""The per-site figures as typed tables: the span of days in the site's time zone, what each
figure means, and the counts the outbox returned laid out per step and per day (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

from aftercare.outbox.figures import (
    BOUNCED,
    DELIVERED,
    DROPPED,
    FORECAST,
    SCHEDULED,
    SENT,
    SPAM_REPORTS,
    UNSUBSCRIBED,
    VIEWED,
    Tally,
)

DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 366
FORECAST_DAYS: Final = 7
# The families counted back over the span, in the order tables show them.
FAMILIES: Final = (SCHEDULED, SENT, DELIVERED, BOUNCED, DROPPED, SPAM_REPORTS, UNSUBSCRIBED,
                   VIEWED)
LABELS: Final[Mapping[str, str]] = MappingProxyType({
    SCHEDULED: "Scheduled", SENT: "Sent", DELIVERED: "Delivered", BOUNCED: "Bounced",
    DROPPED: "Dropped", SPAM_REPORTS: "Spam reports", UNSUBSCRIBED: "Unsubscribed",
    VIEWED: "Viewed", FORECAST: "Next 7 days",
})
# What each figure counts, in staff's words: the page, the command's help and the export say so.
MEANINGS: Final[Mapping[str, str]] = MappingProxyType({
    SCHEDULED: "emails due to go out that day (by their planned time); cancelled ones are left "
               "out",
    SENT: "emails the email provider accepted from us that day (a provider that sends at a set "
          "time may hold one until then)",
    DELIVERED: "the provider reported it reached the patient's mail server",
    BOUNCED: "the patient's mail server refused it (for example, the address does not exist)",
    DROPPED: "the provider did not send it (for example, the address had bounced or complained "
             "before)",
    SPAM_REPORTS: "the patient marked it as spam; no more email goes to that address",
    UNSUBSCRIBED: "the patient used the email's unsubscribe link (ours or the provider's) and "
                  "gets no more email",
    VIEWED: "the patient opened the email's care page for the first time",
    FORECAST: "emails waiting to go out, or held by the provider until their send time, by the "
              "day they are due; today also counts any still waiting from before",
})
# How each message is counted: once per figure, on the day of its first such event.
COUNTING: Final = ("Each email counts at most once in each figure, on the day its event first "
                   "happened. Days are calendar days in the site's time zone.")


class SpanError(ValueError):
    """A span of days the figures cannot cover."""


@dataclass(frozen=True)
class Span:
    """The days counted back (oldest first, ending today) and the forecast's days (from today),
    as calendar days in one time zone."""

    zone: str
    days: tuple[dt.date, ...]
    ahead: tuple[dt.date, ...]

    def starts(self, days: Sequence[dt.date]) -> list[dt.datetime]:
        """The start of each day, and the end of the last, as aware instants."""
        zone = ZoneInfo(self.zone)
        edges = [*days, days[-1] + dt.timedelta(days=1)]
        return [dt.datetime.combine(day, dt.time(), tzinfo=zone) for day in edges]


def span(now: dt.datetime, zone: str, days: int = DEFAULT_DAYS) -> Span:
    """The last ``days`` days including today, and the next 7 from today, in ``zone``."""
    if not 1 <= days <= MAX_DAYS:
        raise SpanError(f"expected a number of days from 1 to {MAX_DAYS}; got {days}")
    today = now.astimezone(ZoneInfo(zone)).date()
    back = tuple(today - dt.timedelta(days=n) for n in range(days - 1, -1, -1))
    forth = tuple(today + dt.timedelta(days=n) for n in range(FORECAST_DAYS))
    return Span(zone, back, forth)


@dataclass(frozen=True)
class StepFigures:
    """One step of one campaign at one site: each family per day, and the forecast per day."""

    campaign: str
    step: str
    daily: Mapping[str, tuple[int, ...]]  # family -> one count per day of the span
    forecast: tuple[int, ...]  # one count per forecast day

    def total(self, family: str) -> int:
        return sum(self.forecast if family == FORECAST else self.daily[family])


@dataclass(frozen=True)
class SiteFigures:
    """One site's figures over one span."""

    site: str
    span: Span
    steps: tuple[StepFigures, ...]

    def total(self, family: str) -> int:
        return sum(step.total(family) for step in self.steps)

    def per_day(self, family: str) -> tuple[int, ...]:
        """Every step together, one count per day (of the forecast's days for FORECAST)."""
        length = len(self.span.ahead if family == FORECAST else self.span.days)
        rows = [s.forecast if family == FORECAST else s.daily[family] for s in self.steps]
        return tuple(sum(row[day] for row in rows) for day in range(length))


def assemble(
    site: str, window: Span, steps: Iterable[tuple[str, str]], tallies: Iterable[Tally]
) -> SiteFigures:
    """The site's figures from the outbox's tallies (of this site): ``steps`` are the known
    steps in the order shown (each listed even with nothing counted); a step only the outbox
    knows (a campaign since removed) follows them."""
    known = list(dict.fromkeys(steps))
    mine = [tally for tally in tallies if tally.site == site]
    extra = sorted({(t.campaign, t.step_key) for t in mine} - set(known))
    order = known + extra
    counts = {key: {family: [0] * len(window.days) for family in FAMILIES} for key in order}
    for key in order:
        counts[key][FORECAST] = [0] * len(window.ahead)
    for tally in mine:
        counts[(tally.campaign, tally.step_key)][tally.family][tally.day] += tally.count
    return SiteFigures(site, window, tuple(
        StepFigures(campaign, step,
                    MappingProxyType({f: tuple(counts[(campaign, step)][f]) for f in FAMILIES}),
                    tuple(counts[(campaign, step)][FORECAST]))
        for campaign, step in order))
