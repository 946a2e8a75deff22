"""The figures page and its CSV export, through the real app on a seeded two-site outbox."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from aftercare.outbox.store import Outbox
from aftercare.report.figures import FAMILIES, FORECAST
from aftercare.report.gather import steps_of
from tests.report.seed import MAIN, NORTH, at, patient, plan, seed
from tests.web.conftest import NOW

SVG = "{http://www.w3.org/2000/svg}"


class Tables(HTMLParser):
    """Every table of a page: its caption and its rows of cell texts."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(("", []))
        elif tag == "caption":
            self._caption = []
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" / ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._caption is not None:
            rows = self.tables[-1][1]
            self.tables[-1] = (" ".join("".join(self._caption).split()), rows)
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


@pytest.fixture
def seeded(db_path: Path) -> Path:
    seed(db_path)
    return db_path


def test_the_figures_page_needs_a_login(client: FlaskClient, seeded: Path) -> None:
    for path in ("/figures", "/figures.csv?site=main"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_each_step_of_the_chosen_site_shows_its_exact_figures(
    logged_in: FlaskClient, seeded: Path
) -> None:
    from aftercare.content.load import load_project
    from tests.conftest import ROOT

    project = load_project(ROOT)
    titles = {c.id: c.title for c in project.campaigns.values()}
    for site, expected in (("main", MAIN), ("north", NORTH)):
        page = logged_in.get(f"/figures?site={site}")
        assert page.status_code == 200
        text = page.text
        assert f"at site <strong>{site}</strong>" in text
        assert "Days are calendar days in <strong>America/New_York</strong>" in text
        caption, rows = Tables(text).tables[0]
        assert caption.startswith("Emails per step, the last 30 days")
        assert rows[0] == ["Step", "Scheduled", "Sent", "Delivered", "Bounced", "Dropped",
                           "Spam reports", "Unsubscribed", "Viewed", "Next 7 days"]
        shown = {tuple(row[0].rsplit(" / ", 1)): [int(n) for n in row[1:]] for row in rows[1:-1]}
        wanted = {(titles[c], s): [expected.get((c, s), {}).get(f, 0)
                                   for f in (*FAMILIES, FORECAST)]
                  for c, s in steps_of(project)}
        assert shown == wanted
        assert rows[-1][0] == "Every step"
        assert [int(n) for n in rows[-1][1:]] == [sum(v[n] for v in wanted.values())
                                                  for n in range(9)]


def test_the_chart_has_a_title_a_description_and_a_data_table_beside_it(
    logged_in: FlaskClient, seeded: Path
) -> None:
    text = logged_in.get("/figures?site=main").text
    svg_text = text[text.index("<svg"):text.index("</svg>") + len("</svg>")]
    svg = ET.fromstring(svg_text)
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "figures-chart-title"
    assert svg.get("aria-describedby") == "figures-chart-desc"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert title.text == ("Emails per day at site main: sent in the last 30 days, expected in "
                          "the next 7")
    assert desc.text == (
        "Bars, one per day, from Sun 25 Oct 2026 to Sun 29 Nov 2026, days in America/New_York. "
        "Sent in the last 30 days: 4, most on Mon 23 Nov 2026 (1). Expected in the next 7 "
        "days: 3. The tables below the chart give every day's figures.")
    bars = {r.findtext(f"{SVG}title"): float(r.get("height", "")) for r in svg.iter(f"{SVG}rect")
            if r.findtext(f"{SVG}title")}
    assert len(bars) == 37  # 30 days back and 7 ahead, each with its own title
    assert bars["Fri 20 Nov 2026: 1 sent"] > 0 and bars["Sat 21 Nov 2026: 0 sent"] == 0
    assert bars["Thu 26 Nov 2026: 1 expected"] == bars["Fri 20 Nov 2026: 1 sent"]
    tables = dict(Tables(text).tables)
    past = tables["The last 30 days, every step"]
    assert len(past) == 31 and past[1][0] == "Sun 25 Oct 2026"
    assert past[1][1:] == ["0", "0", "1", "0", "0", "0", "0", "0"]  # Dora's delivery
    by_day = {row[0]: row[1:] for row in past[1:]}
    assert by_day["Fri 20 Nov 2026"] == ["1", "1", "1", "0", "0", "0", "0", "0"]
    assert by_day["Sat 21 Nov 2026"] == ["0", "0", "0", "0", "0", "0", "0", "1"]
    ahead = tables["The next 7 days, every step"]
    assert [row for row in ahead[1:] if row[1] != "0"] == [
        ["Mon 23 Nov 2026", "1"], ["Tue 24 Nov 2026", "1"], ["Thu 26 Nov 2026", "1"]]
    assert "<dt>Delivered</dt><dd>The provider reported it reached the patient's mail server." \
        in text.replace("&#39;", "'")


def test_the_page_offers_every_site_and_a_span_of_days(
    logged_in: FlaskClient, seeded: Path
) -> None:
    text = logged_in.get("/figures?site=north&days=7").text
    assert '<option value="main">Juniper Lane Clinic</option>' in text
    assert '<option value="portland">Juniper Lane Portland</option>' in text
    assert '<option value="north" selected>north</option>' in text
    assert '<option value="7" selected>7 days</option>' in text
    assert "the last 7 days (Tue 17 Nov 2026 to Mon 23 Nov 2026, today included)" in text
    assert 'href="/figures.csv?site=north&amp;days=7"' in text
    default = logged_in.get("/figures").text  # the first site, 30 days
    assert "at site <strong>main</strong>" in default and "the last 30 days" in default


@pytest.mark.parametrize(("query", "status"), [
    ("site=south", 404), ("days=0", 400), ("days=367", 400), ("days=ten", 400),
    ("days=-3", 400),
])
def test_an_unknown_site_or_a_bad_span_is_refused(
    logged_in: FlaskClient, seeded: Path, query: str, status: int
) -> None:
    assert logged_in.get(f"/figures?{query}").status_code == status
    assert logged_in.get(f"/figures.csv?{query}").status_code == status


def test_the_csv_export_has_every_step_and_day_and_names_no_patient(
    logged_in: FlaskClient, seeded: Path
) -> None:
    response = logged_in.get("/figures.csv?site=main&days=30")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="figures-main-30-days-2026-11-23.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["site", "time_zone", "day", "period", "campaign", "step", "scheduled",
                       "sent", "delivered", "bounced", "dropped", "spam_reports",
                       "unsubscribed", "viewed", "forecast"]
    assert len(rows) == 1 + 6 * (30 + 7)  # six steps, 30 days back and 7 ahead each
    day0 = [r for r in rows[1:] if r[4:6] == ["botox-cosmetic", "day-0"]]
    assert ["main", "America/New_York", "2026-11-20", "past", "botox-cosmetic", "day-0",
            "1", "1", "1", "0", "0", "0", "0", "0", ""] in day0
    assert ["main", "America/New_York", "2026-11-24", "forecast", "botox-cosmetic", "day-0",
            "", "", "", "", "", "", "", "", "1"] in day0
    past = [r for r in day0 if r[3] == "past"]
    assert [sum(int(r[n]) for r in past) for n in range(6, 14)] == [
        MAIN[("botox-cosmetic", "day-0")][f] for f in FAMILIES]
    for name in ("Ada", "Ben", "Cato", "Dora", "Eve", "Fay", "Gil", "example.com"):
        assert name.lower() not in response.text.lower()


def test_a_site_name_a_spreadsheet_would_run_is_exported_as_text(
    logged_in: FlaskClient, seeded: Path
) -> None:
    for n, site in enumerate(("=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)")):
        with Outbox.open(seeded) as box:
            box.enroll(patient(f"Zed{n}", site=site),
                       plan(("day-0", at(11, 22, 16))), NOW)
        response = logged_in.get("/figures.csv", query_string={"site": site})
        assert response.status_code == 200, response.text[:300]
        rows = list(csv.reader(io.StringIO(response.text)))[1:]
        assert {row[0] for row in rows} == {"'" + site}
        assert response.headers["Content-Disposition"].startswith('attachment; filename="figures-')
        page = logged_in.get("/figures", query_string={"site": site}).text
        assert "<script" not in page.split("<body>")[1].split("</main>")[0]


def test_the_unsubscribe_link_counts_for_the_email_it_came_in(
    logged_in: FlaskClient, seeded: Path
) -> None:
    from aftercare.render.tokens import sign
    from tests.web.conftest import SECRET

    with Outbox.open(seeded) as box:
        (ada,) = [m for m in box.messages(email="ada@example.com") if m.step_key == "day-0"]
    # A one-click unsubscribe from Ada's day-0 email, this morning (no login, no CSRF token).
    anonymous = logged_in.application.test_client()
    assert anonymous.post(f"/unsubscribe?t={sign(ada.public_id, SECRET)}").status_code == 200
    rows = list(csv.reader(io.StringIO(logged_in.get("/figures.csv?site=main&days=1").text)))
    (today,) = [r for r in rows if r[2:6] == ["2026-11-23", "past", "botox-cosmetic", "day-0"]]
    assert dict(zip(rows[0][6:14], today[6:14], strict=True)) == {
        "scheduled": "1", "sent": "1", "delivered": "0", "bounced": "0", "dropped": "0",
        "spam_reports": "0", "unsubscribed": "1", "viewed": "0"}
    # Her week-2 was cancelled with it: no longer expected on Thursday.
    (week_2,) = [r for r in rows if r[2:6] == ["2026-11-26", "forecast", "botox-cosmetic",
                                               "week-2"]]
    assert week_2[-1] == "0"
