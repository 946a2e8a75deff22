"""The per-address limit of the public pages: counted in a sliding window, forgotten after it."""

from __future__ import annotations

import datetime as dt

import pytest

from aftercare.web import client_limit
from aftercare.web.client_limit import ClientLimit
from tests.web.conftest import Clock


def test_an_address_gets_its_limit_then_waits_for_its_oldest_request_to_age(
    clock: Clock,
) -> None:
    limit = ClientLimit(3, dt.timedelta(minutes=1), clock)
    assert [limit.wait("203.0.113.5") for _ in range(3)] == [0, 0, 0]
    assert limit.wait("203.0.113.5") == 60
    assert limit.wait("198.51.100.7") == 0  # another address has its own count
    clock.advance(seconds=45)
    assert limit.wait("203.0.113.5") == 15  # refused requests are not counted
    clock.advance(seconds=15)
    assert limit.wait("203.0.113.5") == 0
    assert limit.wait("203.0.113.5") == 0
    assert limit.wait("203.0.113.5") == 0
    assert limit.wait("203.0.113.5") == 60


def test_addresses_are_forgotten_once_their_window_has_passed(clock: Clock) -> None:
    limit = ClientLimit(2, dt.timedelta(minutes=1), clock)
    for n in range(50):
        limit.wait(f"192.0.2.{n}")
    assert len(limit) == 50
    clock.advance(minutes=2)
    limit.wait("192.0.2.200")
    assert len(limit) == 1


def test_memory_is_bounded_by_forgetting_the_least_recent(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_limit, "MAX_CLIENTS", 10)
    limit = ClientLimit(1, dt.timedelta(minutes=1), clock)
    for n in range(25):
        assert limit.wait(f"192.0.2.{n}") == 0
    assert len(limit) == 10
    assert limit.wait("192.0.2.24") > 0  # the most recent are the ones remembered
    assert limit.wait("192.0.2.0") == 0


@pytest.mark.parametrize(("count", "minutes"), [(0, 1), (5, 0)])
def test_a_limit_must_allow_something(clock: Clock, count: int, minutes: int) -> None:
    with pytest.raises(ValueError, match="expected a limit of 1 or more"):
        ClientLimit(count, dt.timedelta(minutes=minutes), clock)
