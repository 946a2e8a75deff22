"""The outbox by site: listings narrowed to some sites, and staff accounts with their role and
the sites they work at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from aftercare.errors import InputError
from aftercare.outbox.store import Outbox, State
from tests.outbox.test_store import NOW, enrollment, toy_plan


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(tmp_path / "aftercare.db")
    for email, site in (("ann@example.com", "main"), ("bea@example.com", "north"),
                        ("cy@example.com", "south")):
        item = enrollment(email, site=site)
        box.enroll(item, toy_plan(item), NOW)
    yield box
    box.close()


def test_messages_are_narrowed_to_the_sites_asked_for(outbox: Outbox) -> None:
    every = outbox.messages()
    assert {(str(m.email), m.site) for m in every} == {
        ("ann@example.com", "main"), ("bea@example.com", "north"), ("cy@example.com", "south")}
    assert len({m.enrollment_id for m in every}) == 3
    two = outbox.messages(sites={"main", "north"})
    assert {str(m.email) for m in two} == {"ann@example.com", "bea@example.com"}
    assert [m.message_id for m in two] == [m.message_id for m in every if m.site != "south"]
    assert outbox.messages(sites=set()) == []  # no site: nothing, never everything
    assert outbox.messages(email="bea@example.com", sites={"main"}) == []
    one = every[0]
    assert outbox.messages(message_id=one.message_id) == [one]
    assert outbox.messages(message_id=one.message_id, sites={"elsewhere"}) == []


def test_counts_and_views_are_narrowed_too(outbox: Outbox) -> None:
    every = outbox.count_by_state()
    north = outbox.count_by_state({"north"})
    assert north[State.SCHEDULED] * 3 == every[State.SCHEDULED] > 0
    assert set(north) == set(State)  # every state listed, zero included
    bea = outbox.messages(email="bea@example.com")[0]
    ann = outbox.messages(email="ann@example.com")[0]
    for message in (ann, bea):
        assert outbox.record_view(message.message_id, NOW, "patient")
    since = NOW - dt.timedelta(days=1)
    assert {m.message_id for m in outbox.viewed_since(since)} == {ann.message_id, bea.message_id}
    assert [m.message_id for m in outbox.viewed_since(since, {"north"})] == [bea.message_id]


def test_an_account_keeps_its_role_and_sites(outbox: Outbox) -> None:
    staff = outbox.staff
    staff.add("desk", "hash", NOW, "front_desk", ["north", "main", "north"])
    staff.add("boss", "hash", NOW)
    accounts = {a.username: a for a in staff.listing()}
    assert (accounts["desk"].role, accounts["desk"].sites) == ("front_desk", ("main", "north"))
    assert (accounts["boss"].role, accounts["boss"].sites) == ("administrator", None)
    assert staff.access(accounts["desk"].id) == ("front_desk", ("main", "north"))
    assert staff.access(accounts["boss"].id) == ("administrator", None)
    # A name taken stores nothing more: no second set of sites.
    with pytest.raises(InputError, match="already exists"):
        staff.add("DESK", "hash", NOW, "manager", ["south"])
    assert staff.access(accounts["desk"].id) == ("front_desk", ("main", "north"))
    found = staff.find("desk")
    assert found is not None
    staff.remove(found)
    with pytest.raises(InputError, match="no active account"):
        staff.access(found.id)
