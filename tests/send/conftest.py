"""The send tests' world: the tiny project and its outbox, on each engine in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import OutboxDatabase
from tests.send.test_dispatch import World, open_world


@pytest.fixture
def world(tmp_path: Path, database: OutboxDatabase) -> Iterator[World]:
    opened = open_world(tmp_path, database=database.location)
    try:
        yield opened
    finally:
        opened.outbox.close()
