"""Shared test setup: the repository root, and a guard that fails a test if a library logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

# The outbox's engines: ``database`` (each outbox test on SQLite and on PostgreSQL), the
# session's PostgreSQL server it starts, and ``postgresql`` (a database on that server alone).
from tests.postgres import database, postgres_server, postgresql  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Loggers of the libraries we drive; any record from them is a defect (a missing font, a bad
# CSS rule, a refused URL), not noise.
WATCHED_LOGGERS = ("weasyprint", "weasyprint.progress", "fontTools")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.records.append(record)


@pytest.fixture(autouse=True)
def assert_no_library_logs() -> Iterator[None]:
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
    messages = [f"{r.name}: {r.getMessage()}" for r in collector.records]
    assert not messages, f"libraries logged during the test: {messages}"


@pytest.fixture
def root() -> Path:
    """The repository root, holding the clinic's real content."""
    return ROOT


def edit_file(root: Path, name: str, old: str, new: str) -> None:
    """Replace the first ``old`` in a fixture copy; fail loudly if the fixture changed."""
    path = root / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture does not contain {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
