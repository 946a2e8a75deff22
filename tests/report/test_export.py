"""The figures' CSV cells and the chart's text: what a spreadsheet or a page would run is not."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from aftercare.outbox.figures import Tally
from aftercare.report.chart import chart
from aftercare.report.export import safe_cell, to_csv
from aftercare.report.figures import assemble, span
from tests.report.seed import NOW


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("main", "main"), ("a=b", "a=b"), (0, "0"), (12, "12"),
])
def test_a_cell_a_spreadsheet_would_run_starts_with_an_apostrophe(value: object,
                                                                  cell: str) -> None:
    assert safe_cell(value) == cell


def test_a_site_name_with_markup_is_text_in_the_chart_and_a_plain_cell_in_the_csv() -> None:
    site = '<script>alert(1)</script>&"'
    report = assemble(site, span(NOW, "America/New_York", 2), [("c", "s")],
                      [Tally(site, "c", "s", "sent", 1, 4),
                       Tally(site, "c", "s", "forecast", 0, 2)])
    svg = ET.fromstring(chart(report))  # well-formed: the name is escaped
    title = svg.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text is not None and site in title.text
    assert "<script>" not in chart(report)
    lines = to_csv([report]).splitlines()
    assert len(lines) == 1 + 2 + 7
    assert lines[2].startswith('"<script>alert(1)</script>&""",America/New_York,2026-11-23,past')
