"""The figures page: one site's delivery figures per step and per day, a chart with its data
table, what each figure means, and the CSV export; for managers of the site and
administrators (``may_see_figures``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from flask import Blueprint, Response, abort, render_template, request
from markupsafe import Markup

from aftercare.content.model import Project
from aftercare.enrol.rules import known_sites
from aftercare.outbox.figures import FORECAST
from aftercare.report.chart import chart, describe
from aftercare.report.export import to_csv
from aftercare.report.figures import (
    COUNTING,
    DEFAULT_DAYS,
    FAMILIES,
    LABELS,
    MAX_DAYS,
    MEANINGS,
    SiteFigures,
)
from aftercare.report.gather import all_sites, gather
from aftercare.web import security, state
from aftercare.web.roles import current_staff, require

figures = Blueprint("figures", __name__)
security.guard(figures)

DAY_CHOICES = (7, 30, 90)
_FILE_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def may_see_figures(site: str) -> bool:
    """Whether the signed-in staff member may see ``site``'s figures: the one access decision of
    these pages (a manager of that site, or an administrator)."""
    return current_staff().may("figures", site)


@figures.get("/figures")
def page() -> str:
    report, sites = _report()
    project = state.current().project
    titles = {c.id: c.title for c in project.campaigns.values()}
    return render_template(
        "figures.html", report=report,
        site_options=[(site, _site_name(project, site)) for site in sites],
        day_options=[(str(n), f"{n} days") for n in _day_choices(report)],
        families=FAMILIES, forecast=FORECAST, labels=LABELS, counting=COUNTING, titles=titles,
        explained=[(LABELS[f], f"{MEANINGS[f][0].upper()}{MEANINGS[f][1:]}.")
                   for f in (*FAMILIES, FORECAST)],
        chart=Markup(chart(report)),  # every text in it is escaped
        description=describe(report),
        daily=[(day, [report.per_day(f)[n] for f in FAMILIES])
               for n, day in enumerate(report.span.days)],
        ahead=list(zip(report.span.ahead, report.per_day(FORECAST), strict=True)),
    )


@figures.get("/figures.csv")
def export() -> Response:
    report, _ = _report()
    name = _FILE_SAFE.sub("-", report.site).strip("-") or "site"
    response = Response(to_csv([report]), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="figures-{name}-{len(report.span.days)}-days-'
        f'{report.span.days[-1].isoformat()}.csv"')
    return response


def _report() -> tuple[SiteFigures, list[str]]:
    """The figures the query asks for (``site``, ``days``), and the sites to choose from."""
    require("figures")  # a front desk: answered as an address that does not exist
    app, box = state.current(), state.outbox()
    known = all_sites(app.project, box)
    sites = [site for site in known if may_see_figures(site)]
    wanted = request.args.get("site") or (sites[0] if sites else "")
    if wanted not in sites:  # another site's figures: the same answer as no such site
        require("figures", wanted)
        abort(404)
    days = _days(request.args.get("days"))
    (report,) = gather(app.project, box, [wanted], app.now(), days)
    return report, sites


def _site_name(project: Project, site: str) -> str:
    """A site as staff know it: its name; a site with no settings left, by its id."""
    return project.at_site(site).clinic.name if site in known_sites(project) else site


def _days(typed: str | None) -> int:
    if typed is None or typed == "":
        return DEFAULT_DAYS
    if not typed.isdigit() or not 1 <= int(typed) <= MAX_DAYS:
        abort(400)
    return int(typed)


def _day_choices(report: SiteFigures) -> Sequence[int]:
    return sorted({*DAY_CHOICES, len(report.span.days)})
