"""The figures page in a real browser (Chromium, through Playwright, against `pipeline serve`):
the chart is an image with a name, the page passes axe-core's WCAG 2.1 AA rules, the site
choice and the CSV download work, and the page's own security policy blocks nothing."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

from tests.report.seed import seed
from tests.web import test_browser
from tests.web.test_browser import axe_violations, log_in, shot

# The browser tests' fixtures: `pipeline serve` with one staff account, Chromium, a fresh tab.
server, context, page = test_browser.server, test_browser.context, test_browser.page


def test_managers_read_the_figures_chart_and_table_and_download_them(
    page: Page, server: tuple[str, Path]
) -> None:
    base, database = server
    seed(database)  # two sites; the server keeps real time, so only the shape is checked here
    problems: list[str] = []
    page.on("console", lambda message: _problem(message, problems))
    log_in(page, base)
    page.get_by_role("link", name="Figures", exact=True).click()
    page.wait_for_url(f"{base}/figures")
    assert page.get_by_role("heading", level=1).inner_text() == "Figures"
    chart = page.get_by_role("img", name=re.compile(r"^Emails per day at site main: sent in the "
                                                    r"last 30 days, expected in the next 7$"))
    assert chart.is_visible() and chart.bounding_box() is not None
    description = chart.evaluate("svg => document.getElementById("
                                 "svg.getAttribute('aria-describedby')).textContent")
    assert description.startswith("Bars, one per day, from ")
    assert page.get_by_role("table", name=re.compile("^Emails per step")).is_visible()
    assert page.get_by_role("table", name="The last 30 days, every step").is_visible()
    assert page.get_by_role("link", name="Figures", exact=True).get_attribute(
        "aria-current") == "page"
    assert axe_violations(page) == []
    shot(page, "figures-main")

    page.get_by_label("Site", exact=True).select_option("north")
    page.get_by_label("Days back").select_option("7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{base}/figures?site=north&days=7")
    assert "at site north" in page.inner_text(".lead")
    assert page.get_by_role("table", name="The last 7 days, every step").is_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download these figures")).click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename.startswith("figures-north-7-days-")
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("site,time_zone,day,period,campaign,step,scheduled,sent")
    assert len(lines) == 1 + 6 * (7 + 7)
    assert problems == []


def _problem(message: ConsoleMessage, problems: list[str]) -> None:
    """A console error or warning, except the browser's own request for /favicon.ico (there is
    none); a policy refusal reads "Refused to apply inline style ..." and the like."""
    if message.type in ("error", "warning") and "favicon.ico" not in message.location["url"]:
        problems.append(f"{message.text} ({message.location['url']})")
