"""The outbox's one State type: every state write is checked against the transition table."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest

from aftercare.outbox.migrations import MIGRATIONS
from aftercare.outbox.store import Outbox
from aftercare.outbox.vocabulary import (
    INITIAL,
    SUPPRESSING,
    TRANSITIONS,
    DeliveryEvent,
    State,
    StateError,
    Trail,
)
from aftercare.outbox.writes import Writes
from tests.outbox.test_store import NOW, enrollment, toy_plan
from tests.postgres import OutboxDatabase


@pytest.fixture
def outbox(database: OutboxDatabase) -> Iterator[Outbox]:
    with Outbox.open(database.location) as box:
        yield box


def test_the_table_has_a_row_for_every_state_and_failed_is_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.FAILED] == frozenset()
    assert {State.SCHEDULED, State.CANCELLED} == INITIAL


def test_the_database_allows_exactly_the_states_of_the_enum() -> None:
    check = MIGRATIONS[0].split("state IN (", 1)[1].split(")", 1)[0]
    assert {word.strip(" '\n") for word in check.split(",")} == {s.value for s in State}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(State, State)))
def test_every_move_is_allowed_or_refused_as_the_table_says(
    database: OutboxDatabase, current: State, target: State
) -> None:
    with Outbox.open(database.location) as outbox:
        outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
        message_id = outbox.messages()[0].message_id
    with database.raw() as raw:  # put the message in the state to move from
        raw.execute("UPDATE messages SET state = ? WHERE id = ?", (current.value, message_id))
    with Outbox.open(database.location) as outbox:
        writes = Writes(outbox._db)
        if target in TRANSITIONS[current]:
            assert writes.move(message_id, current, target, doing="test")
            assert outbox.messages()[0].state is target
        else:
            with pytest.raises(StateError, match=f"message {message_id} is '{current.value}'"):
                writes.move(message_id, current, target, doing="test")
            assert outbox.messages()[0].state is current


def test_a_move_from_a_state_the_message_has_left_changes_nothing(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    message_id = outbox.messages()[0].message_id
    writes = Writes(outbox._db)
    assert not writes.move(message_id, State.SENDING, State.SENT, doing="test")
    assert outbox.messages()[0].state is State.SCHEDULED


def test_a_new_message_starts_scheduled_or_cancelled_only(outbox: Outbox) -> None:
    result = outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    with pytest.raises(StateError, match="a new message cannot start 'sent'"):
        Writes(outbox._db).add_message("x" * 32, result.enrollment_id, "day-9", "clinical",
                                       "2026-01-01T00:00:00.000000+00:00", State.SENT, None)


def test_public_operations_go_through_the_table(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    claim = outbox.claim_due(NOW + dt.timedelta(days=400), 1)[0]
    outbox.mark_failed(claim.message_id, "refused", NOW)
    with pytest.raises(StateError):  # failed is final: a person cannot resolve it
        outbox.resolve_unknown(claim.message_id, True, NOW, "staff:x")
    with pytest.raises(StateError):
        outbox.mark_withdrawn(claim.message_id, True, "gone", NOW, "staff:x")


def test_the_trail_and_delivery_vocabularies_read_back_typed(outbox: Outbox) -> None:
    outbox.enroll(enrollment(), toy_plan(enrollment()), NOW)
    kinds = {event.kind for event in outbox.events()}
    assert kinds <= set(Trail) and Trail.ENROLLED in kinds
    assert all(isinstance(kind, Trail) for kind in kinds)
    assert set(DeliveryEvent) > SUPPRESSING
    assert DeliveryEvent.DELIVERED not in SUPPRESSING
