"""Gathering the figures: which sites there are, each site's time zone, and one round of the
outbox's counting queries per time zone for the sites asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aftercare.content.model import Project
from aftercare.delivery.providers import LONGEST_HOLD
from aftercare.enrol.rules import known_sites
from aftercare.errors import InputError
from aftercare.outbox.figures import Tally
from aftercare.outbox.store import Outbox
from aftercare.report.figures import DEFAULT_DAYS, SiteFigures, SpanError, assemble, span


def site_zone(project: Project, site: str) -> str:
    """The time zone a site's days are counted in: the site's own (sites/<id>.yaml), else the
    organisation's (clinic.yaml)."""
    return str(project.at_site(site).clinic.timezone)


def all_sites(project: Project, outbox: Outbox) -> list[str]:
    """The sites the project names and those the outbox holds enrolments for, in order."""
    return sorted({*known_sites(project), *outbox.figures.sites()})


def steps_of(project: Project) -> list[tuple[str, str]]:
    """Every campaign step, in the project's order: the rows of a figures table."""
    return [(campaign.id, step.key) for campaign in project.campaigns.values()
            for step in campaign.steps]


def gather(
    project: Project, outbox: Outbox, sites: Sequence[str] | None, now: dt.datetime,
    days: int = DEFAULT_DAYS,
) -> list[SiteFigures]:
    """The figures of ``sites`` (None: every site) over the last ``days`` days and the next 7,
    each site in its own time zone; the outbox is asked once per figure family for all the
    sites sharing a zone (for every site at once when they all do)."""
    every = sites is None
    sites = all_sites(project, outbox) if sites is None else list(sites)
    try:
        spans = {site: span(now, site_zone(project, site), days) for site in sites}
    except SpanError as exc:
        raise InputError("days", str(exc)) from exc
    by_zone: dict[str, list[str]] = {}
    for site in sites:
        by_zone.setdefault(spans[site].zone, []).append(site)
    tallies: list[Tally] = []
    for group in by_zone.values():
        window = spans[group[0]]
        chosen = None if every and len(group) == len(sites) else group
        tallies += outbox.figures.tally(chosen, window.starts(window.days),
                                        window.starts(window.ahead), now, now - LONGEST_HOLD)
    of_site: dict[str, list[Tally]] = {site: [] for site in sites}
    for tally in tallies:  # a site enrolled since the list was read waits for the next report
        if tally.site in of_site:
            of_site[tally.site].append(_current_step(project, tally))
    steps = steps_of(project)
    return [assemble(site, spans[site], steps, of_site[site]) for site in sites]


def _current_step(project: Project, tally: Tally) -> Tally:
    """A message stored under a step's former key counts under its current key."""
    campaign = project.campaigns.get(tally.campaign)
    step = None if campaign is None else campaign.step(tally.step_key)
    if step is None or step.key == tally.step_key:
        return tally
    return Tally(tally.site, tally.campaign, step.key, tally.family, tally.day, tally.count)
