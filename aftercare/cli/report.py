"""The report command: per-site delivery figures per step over the last days, and a forecast."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from aftercare.cli.table import Settings, arg, command, open_outbox
from aftercare.errors import InputError
from aftercare.outbox.figures import FORECAST
from aftercare.report.figures import COUNTING, DEFAULT_DAYS, FAMILIES, LABELS, MEANINGS, SiteFigures

_MEANINGS = "; ".join(f"{LABELS[f].lower()}: {MEANINGS[f]}" for f in (*FAMILIES, FORECAST))
_COLUMNS = (*FAMILIES, FORECAST)


@command("report", "delivery figures per site and step: the last days and the next 7",
         arg("--site", metavar="S", action="append",
             help="a site to report on (repeatable; default: every site)"),
         arg("--days", type=int, default=DEFAULT_DAYS, metavar="N",
             help=f"how many days back, today included (default {DEFAULT_DAYS})"),
         arg("--json", action="store_true", help="print the figures as JSON"),
         epilog=f"{COUNTING} What each figure counts: {_MEANINGS}.")
def run_report(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.content.load import load_project
    from aftercare.report.export import to_json
    from aftercare.report.gather import all_sites, gather

    project = load_project(settings.root)
    with open_outbox(settings) as outbox:
        known = all_sites(project, outbox)
        sites = None if args.site is None else list(dict.fromkeys(args.site))
        unknown = [site for site in sites or [] if site not in known]
        if unknown:
            raise InputError("site", f"expected one of {', '.join(known)}; got {unknown[0]!r}")
        reports = gather(project, outbox, sites, settings.now(), args.days)
    if args.json:
        print(json.dumps(to_json(reports), indent=2))
    else:
        print("\n\n".join(_table(report) for report in reports))
    sites_word = "site" if len(reports) == 1 else "sites"
    return f"figures for {len(reports)} {sites_word} over {args.days} days"


def _table(report: SiteFigures) -> str:
    days, ahead = report.span.days, report.span.ahead
    heading = (f"Site {report.site}: {days[0].isoformat()} to {days[-1].isoformat()} "
               f"({len(days)} days, today included) and the next {len(ahead)} days; "
               f"days in {report.span.zone}")
    rows: list[Sequence[str]] = [("step", *(LABELS[c] for c in _COLUMNS))]
    rows += [(f"{s.campaign}/{s.step}", *(str(s.total(c)) for c in _COLUMNS))
             for s in report.steps]
    rows.append(("every step", *(str(report.total(c)) for c in _COLUMNS)))
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[0]) if n == 0 else cell.rjust(widths[n])
                       for n, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join([heading, *lines])
