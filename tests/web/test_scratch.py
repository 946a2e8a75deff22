"""Each staff member's checkout confirmations, handouts and searches stay for their full 15
minutes, whatever another desk does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from aftercare.web.cache import MAX_PER_OWNER, ScratchCache
from tests.web.conftest import NOW, PASSWORD, Clock, add_staff, check_out, log_in, token


def search(client: FlaskClient, query: str) -> None:
    response = client.post("/patients", data={"query": query, "csrf_token": token(client)})
    assert response.status_code == 303


def test_another_desks_600_searches_evict_nothing_of_this_desk(
    app: Flask, logged_in: FlaskClient, db_path: Path, clock: Clock
) -> None:
    confirmation = check_out(logged_in).headers["Location"]
    assert logged_in.get(confirmation).status_code == 200
    add_staff(db_path, "desk2", PASSWORD)
    other_desk = app.test_client()
    assert log_in(other_desk, "desk2", PASSWORD).status_code == 303
    for i in range(600):
        search(other_desk, f"someone{i}")
    clock.advance(minutes=14, seconds=59)
    assert logged_in.get(confirmation).status_code == 200
    pdf = logged_in.get(f"{confirmation}/handout.pdf")
    assert (pdf.status_code, pdf.data[:5]) == (200, b"%PDF-")
    clock.advance(seconds=1)
    assert logged_in.get(confirmation).status_code == 404  # 15 minutes, as the page promises


def test_a_staff_members_own_quota_drops_their_own_oldest_first() -> None:
    now = NOW
    cache = ScratchCache(dt.timedelta(minutes=15), lambda: now)
    mine = cache.put("ann", "receipt")
    theirs = [cache.put("ben", i) for i in range(MAX_PER_OWNER * 3)]
    assert cache.get(mine, "ann", str) == "receipt"
    assert cache.get(theirs[0], "ben", int) is None  # ben's oldest made room for ben's newest
    assert cache.get(theirs[-1], "ben", int) == MAX_PER_OWNER * 3 - 1
    assert cache.get(mine, "ben", str) is None  # never another's
    assert len(cache) == 1 + MAX_PER_OWNER
