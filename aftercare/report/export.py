"""The figures as data: a CSV file (one row per site, step and day; no patient named, every
cell safe to open in a spreadsheet) and JSON for scripts (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Final

from aftercare.outbox.figures import FORECAST
from aftercare.report.figures import FAMILIES, MEANINGS, SiteFigures

HEADER: Final = ("site", "time_zone", "day", "period", "campaign", "step", *FAMILIES, FORECAST)
# A spreadsheet runs a cell starting with one of these as a formula (tab and carriage return
# can start one too once a cell is trimmed).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text, with a leading apostrophe when a spreadsheet would run it."""
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def to_csv(reports: Sequence[SiteFigures]) -> str:
    """Each site's counts per step and day: "past" rows for the span (the forecast's cell
    empty), "forecast" rows for the next days (the other cells empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for report in reports:
        zone = report.span.zone
        for step in report.steps:
            lead = (report.site, zone)
            for n, day in enumerate(report.span.days):
                writer.writerow([safe_cell(v) for v in (
                    *lead, day.isoformat(), "past", step.campaign, step.step,
                    *(step.daily[f][n] for f in FAMILIES), "")])
            for n, day in enumerate(report.span.ahead):
                writer.writerow([safe_cell(v) for v in (
                    *lead, day.isoformat(), "forecast", step.campaign, step.step,
                    *("" for _ in FAMILIES), step.forecast[n])])
    return out.getvalue()


def to_json(reports: Sequence[SiteFigures]) -> dict[str, object]:
    """Every site's figures: totals per step, and each family per day."""
    return {
        "meanings": dict(MEANINGS),
        "sites": [{
            "site": r.site,
            "time_zone": r.span.zone,
            "days": [d.isoformat() for d in r.span.days],
            "forecast_days": [d.isoformat() for d in r.span.ahead],
            "totals": {f: r.total(f) for f in (*FAMILIES, FORECAST)},
            "steps": [{
                "campaign": s.campaign,
                "step": s.step,
                "totals": {f: s.total(f) for f in (*FAMILIES, FORECAST)},
                "daily": {f: list(s.daily[f]) for f in FAMILIES},
                "forecast": list(s.forecast),
            } for s in r.steps],
        } for r in reports],
    }
