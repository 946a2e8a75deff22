"""Shared by the enrol tests: the clinic's "today", a tiny project and an outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from aftercare.content.model import (
    Project,
)
from aftercare.outbox.store import Outbox
from tests.projects import make_project

CSV = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
UTC = dt.UTC
# 10:00 in New York on Monday 2 March 2026, the clinic's "today".
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BY = "cli:frontdesk"



@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(tmp_path / "var" / "aftercare.db")
    try:
        yield box
    finally:
        box.close()
