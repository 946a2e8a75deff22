"""Per-site figures counted from a real SQLite outbox seeded through the outbox's operations."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.content.model import Project
from aftercare.errors import InputError
from aftercare.outbox.database import Connection
from aftercare.outbox.figures import Tally
from aftercare.outbox.sqlite import SQLiteEngine
from aftercare.outbox.store import Outbox
from aftercare.report.figures import FAMILIES, FORECAST, SiteFigures, span
from aftercare.report.gather import all_sites, gather
from tests.conftest import ROOT
from tests.postgres import OutboxDatabase
from tests.report.seed import COSMETIC, FIRST_DAY, MAIN, NORTH, NOW, at, patient, plan, seed

COLUMNS = (*FAMILIES, FORECAST)


class TracedEngine(SQLiteEngine):
    """The SQLite engine, keeping every statement it runs (with its values filled in)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.statements: list[str] = []

    def connect(self) -> Connection:
        connection = super().connect()
        assert isinstance(connection, sqlite3.Connection)
        connection.set_trace_callback(self.statements.append)
        return connection


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "var" / "aftercare.db"
    seed(db)
    return db


@pytest.fixture
def outbox(path: Path) -> Iterator[Outbox]:
    with Outbox.open(path) as box:
        yield box


def totals(report: SiteFigures) -> dict[tuple[str, str], dict[str, int]]:
    return {(s.campaign, s.step): {c: s.total(c) for c in COLUMNS} for s in report.steps}


def on_days(report: SiteFigures, family: str) -> dict[str, int]:
    days = report.span.ahead if family == FORECAST else report.span.days
    return {days[n].isoformat(): count for n, count in enumerate(report.per_day(family)) if count}


def test_each_site_and_step_has_the_exact_figures_of_the_seeded_outbox(
    project: Project, outbox: Outbox
) -> None:
    # The project's sites (main and the two samples) and those the outbox holds (north).
    assert all_sites(project, outbox) == ["main", "north", "portland", "scottsdale"]
    main, north, portland, scottsdale = gather(project, outbox, None, NOW)  # all at once
    assert [r.site for r in gather(project, outbox, ["north", "main"], NOW)] == [
        "north", "main"]
    zero = dict.fromkeys(COLUMNS, 0)
    steps = [(c.id, s.key) for c in project.campaigns.values() for s in c.steps]
    assert [(s.campaign, s.step) for s in main.steps] == steps  # every step, in order
    assert totals(main) == {key: MAIN.get(key, zero) for key in steps}
    assert totals(north) == {key: NORTH.get(key, zero) for key in steps}
    assert (main.total("sent"), north.total("sent")) == (4, 2)
    assert totals(portland) == totals(scottsdale) == dict.fromkeys(steps, zero)


def test_postgresql_counts_the_same_figures_as_sqlite(
    project: Project, outbox: Outbox, postgresql: OutboxDatabase
) -> None:
    seed(postgresql.location)
    with Outbox.open(postgresql.location) as on_postgresql:
        for sites, days in ((None, 30), (["north"], 7)):
            there = gather(project, on_postgresql, sites, NOW, days)
            here = gather(project, outbox, sites, NOW, days)
            assert [totals(r) for r in there] == [totals(r) for r in here]
            assert [[(s.daily, s.forecast) for s in r.steps] for r in there] == [
                [(s.daily, s.forecast) for s in r.steps] for r in here]
            assert sum(r.total(c) for r in here for c in COLUMNS) > 0  # something counted


def test_days_are_new_york_days_across_the_end_of_daylight_saving_time(
    project: Project, outbox: Outbox
) -> None:
    (main,) = gather(project, outbox, ["main"], NOW)
    assert (main.span.zone, main.span.days[0], main.span.days[-1]) == (
        "America/New_York", FIRST_DAY, dt.date(2026, 11, 23))
    assert len(main.span.days) == 30
    # 04:00 UTC on 25 October is New York's first moment of the day (still summer time);
    # 04:30 UTC on 21 November is 23:30 on the 20th there (winter time).
    assert on_days(main, "delivered") == {"2026-10-25": 1, "2026-10-31": 1, "2026-11-20": 1}
    assert on_days(main, "viewed") == {"2026-11-21": 1}
    assert on_days(main, "unsubscribed") == {"2026-11-02": 1}  # the link, not SendGrid's
    assert on_days(main, "scheduled") == {"2026-10-31": 1, "2026-11-10": 1, "2026-11-20": 1,
                                          "2026-11-22": 1, "2026-11-23": 1}
    assert on_days(main, "sent") == {"2026-10-31": 1, "2026-11-20": 1, "2026-11-22": 1,
                                     "2026-11-23": 1}
    # Today: Eve's waiting day-0; tomorrow: Fay's, held by the provider; Thursday: Ada's week-2.
    assert on_days(main, FORECAST) == {"2026-11-23": 1, "2026-11-24": 1, "2026-11-26": 1}
    assert main.span.ahead == tuple(dt.date(2026, 11, 23) + dt.timedelta(days=n)
                                    for n in range(7))


def test_a_shorter_span_counts_only_its_own_days(project: Project, outbox: Outbox) -> None:
    (main,) = gather(project, outbox, ["main"], NOW, days=3)
    assert main.span.days == (dt.date(2026, 11, 21), dt.date(2026, 11, 22),
                              dt.date(2026, 11, 23))
    assert {c: main.total(c) for c in COLUMNS} == {
        "scheduled": 2, "sent": 2, "delivered": 0, "bounced": 1, "dropped": 0,
        "spam_reports": 0, "unsubscribed": 0, "viewed": 1, "forecast": 3}


def test_the_same_counts_in_another_time_zone_fall_on_that_zones_days(
    outbox: Outbox
) -> None:
    london = span(NOW, "Europe/London", 30)
    tallies = outbox.figures.tally(["main"], london.starts(london.days),
                                   london.starts(london.ahead), NOW, NOW - dt.timedelta(days=3))
    delivered = {london.days[t.day].isoformat() for t in tallies if t.family == "delivered"}
    # Ada's delivery at 04:30 UTC on 21 November is the 21st in London; Dora's at 04:00 UTC on
    # 25 October is 05:00 there, the same day.
    assert delivered == {"2026-10-25", "2026-10-31", "2026-11-21"}


def test_one_site_is_counted_without_the_others(outbox: Outbox) -> None:
    window = span(NOW, "America/New_York", 30)
    tallies = outbox.figures.tally(["north"], window.starts(window.days),
                                   window.starts(window.ahead), NOW, NOW - dt.timedelta(days=3))
    assert {t.site for t in tallies} == {"north"}
    assert sorted((t.family, t.count) for t in tallies) == [
        ("delivered", 1), ("dropped", 1), ("scheduled", 1), ("scheduled", 1), ("sent", 1),
        ("sent", 1), ("spam_reports", 1)]
    assert outbox.figures.tally([], window.starts(window.days), window.starts(window.ahead),
                                NOW, NOW) == []


def test_a_message_kept_under_a_steps_former_key_counts_under_its_key_now(
    project: Project, outbox: Outbox
) -> None:
    outbox.enroll(patient("Kit"), plan(("day-1", at(11, 23, 16))), NOW)  # day-0's former key
    (main,) = gather(project, outbox, ["main"], NOW)
    assert totals(main)[(COSMETIC, "day-0")]["scheduled"] == 6
    assert (COSMETIC, "day-1") not in totals(main)


def test_a_campaign_since_removed_still_shows_after_the_known_steps(
    project: Project, outbox: Outbox
) -> None:
    outbox.enroll(patient("Lou", campaign="peel-light"), plan(("day-3", at(11, 22, 16))), NOW)
    (main,) = gather(project, outbox, ["main"], NOW)
    assert (main.steps[-1].campaign, main.steps[-1].step) == ("peel-light", "day-3")
    assert main.steps[-1].total("scheduled") == 1


@pytest.mark.parametrize("days", [0, -1, 367])
def test_a_span_out_of_range_is_refused_naming_days(
    project: Project, outbox: Outbox, days: int
) -> None:
    with pytest.raises(InputError) as caught:
        gather(project, outbox, ["main"], NOW, days=days)
    assert str(caught.value) == f"days: expected a number of days from 1 to 366; got {days}"


def test_every_family_is_one_indexed_query_per_time_zone_whatever_the_sites_and_days(
    project: Project, path: Path
) -> None:
    engine = TracedEngine(path)
    with Outbox(engine) as box:
        # Sites sharing a time zone are counted together: main and north (New York), then
        # portland (Los Angeles) and scottsdale (Phoenix) each on their own.
        for sites, days, zones in ((["main"], 30, 1), (["main", "north"], 90, 1),
                                   (None, 7, 3)):
            engine.statements.clear()
            gather(project, box, sites, NOW, days)
            queries = [q for q in engine.statements if q.startswith("SELECT e.site")]
            assert len(queries) == 6 * zones, queries
            with sqlite3.connect(path) as db:
                for query in queries:
                    steps = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {query}")]
                    scans = [s for s in steps if s.startswith("SCAN ")
                             and s.split()[1] not in ("x", "u")]
                    assert not scans, (query, steps)


def test_the_unsubscribe_link_names_its_message_in_the_trail(outbox: Outbox) -> None:
    (cato,) = [m for m in outbox.messages(email="cato@example.com") if m.step_key == "day-0"]
    entries = [e for e in outbox.events(enrollment_id=None) if e.kind == "unsubscribed"]
    assert [(e.message_id, e.actor, e.detail) for e in entries] == [
        (cato.message_id, "patient", "unsubscribed via link")]


def test_tallies_of_other_sites_are_left_out_of_a_sites_figures() -> None:
    from aftercare.report.figures import assemble

    window = span(NOW, "America/New_York", 2)
    tallies = [Tally("main", "c", "s", "sent", 1, 3), Tally("north", "c", "s", "sent", 0, 5)]
    report = assemble("main", window, [("c", "s")], tallies)
    assert report.per_day("sent") == (0, 3)
