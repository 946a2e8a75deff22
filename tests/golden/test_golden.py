"""End-to-end output held against checked-in copies: one handout's text, one email's parts.

A difference fails the test and shows what changed. When a change is meant, refresh the
copies and review the diff before committing it:

    AFTERCARE_REFRESH_GOLDEN=1 .venv/bin/python -m pytest tests/golden
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import os
from pathlib import Path

import pytest
from pypdf import PdfReader

from aftercare.content.load import load_project
from aftercare.render.card import PatientCard
from aftercare.render.emails import EmailRenderer
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.previews import PREVIEW_KEY, preview_recipient
from tests.conftest import ROOT

HERE = Path(__file__).resolve().parent
REFRESH = os.environ.get("AFTERCARE_REFRESH_GOLDEN") == "1"
# A checkout at 15:00 in New York on the treatment day, with both consents.
CHECKOUT = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)


def _compare(name: str, actual: str) -> None:
    path = HERE / name
    if REFRESH:
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                            actual.splitlines(keepends=True),
                                            f"tests/golden/{name}", "rendered now"))
        pytest.fail(f"{name} differs from its golden copy (refresh with "
                    f"AFTERCARE_REFRESH_GOLDEN=1 if meant):\n{diff}")


def test_the_checkout_handouts_text() -> None:
    project = load_project(ROOT)
    card = PatientCard("Ana Ruiz", dt.date(2026, 11, 23), "frown lines", "Dr. Lee",
                       "BOTOX Cosmetic", "20", "C4021A", aftercare_consent=True,
                       reminder_consent=True, planned_at=CHECKOUT)
    pdf = HandoutRenderer(project).pdf(project.handouts["aftercare-cosmetic"], card)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
    text = "".join(f"--- page {n} ---\n{page.rstrip()}\n" for n, page in enumerate(pages, 1))
    _compare("aftercare-cosmetic.txt", text)


@pytest.mark.parametrize("part", ["txt", "html"])
def test_one_emails_plain_text_and_html(part: str) -> None:
    project = load_project(ROOT)
    campaign = project.campaigns["botox-cosmetic"]
    step = campaign.step("week-2")
    assert step is not None
    email = EmailRenderer(project, PREVIEW_KEY).render(campaign, step, preview_recipient(project))
    _compare(f"botox-cosmetic-week-2.{part}", email.text if part == "txt" else email.html)
