"""What the API keeps in the outbox, on each engine: key hashes, idempotency answers (also for
requests arriving at once), opaque enrolment ids, and cancelling or re-timing one enrolment, or
only its reminders."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest

from aftercare.errors import InputError
from aftercare.outbox.migrations import MIGRATIONS
from aftercare.outbox.records import StoredAnswer
from aftercare.outbox.store import Outbox
from aftercare.outbox.vocabulary import Trail
from tests.outbox.test_store import NOW, TREATED, enrollment, toy_plan
from tests.postgres import OutboxDatabase

MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)
STALE, KEEP = dt.timedelta(minutes=2), dt.timedelta(hours=24)


@pytest.fixture
def outbox(database: OutboxDatabase) -> Iterator[Outbox]:
    with Outbox.open(database.location) as box:
        yield box


def at_once(database: OutboxDatabase, count: int, call: Callable[[Outbox], str]) -> list[str]:
    """What ``call`` returned on each of ``count`` connections, all started together."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with Outbox.open(database.location) as box:
                barrier.wait()
                outcomes.append(call(box))
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return sorted(outcomes)


# ---------------------------------------------------------------- API keys


def test_a_key_is_stored_as_its_hash_found_by_it_and_revoked_once(outbox: Outbox) -> None:
    outbox.api_keys.add("booking", "h" * 64, None, NOW, "cli:admin")
    (key,) = outbox.api_keys.all()
    assert (key.name, key.site, key.created_at, key.revoked_at) == ("booking", None, NOW, None)
    assert outbox.api_keys.find("h" * 64) == key
    assert outbox.api_keys.find("x" * 64) is None
    assert outbox.api_keys.revoke("booking", NOW + MINUTE, "cli:admin") is True
    assert outbox.api_keys.revoke("booking", NOW + 2 * MINUTE, "cli:admin") is False
    found = outbox.api_keys.find("h" * 64)
    assert found is not None and found.revoked_at == NOW + MINUTE
    trail = [(e.kind, e.actor, e.detail) for e in outbox.events()]
    assert trail == [(Trail.API_KEY_ADDED, "cli:admin", "key booking for every site"),
                     (Trail.API_KEY_REVOKED, "cli:admin", "key booking")]


def test_a_name_is_never_used_twice_even_after_revoking(outbox: Outbox) -> None:
    outbox.api_keys.add("booking", "a" * 64, "main", NOW, "cli:admin")
    outbox.api_keys.revoke("booking", NOW, "cli:admin")
    with pytest.raises(InputError, match="a key called 'booking' already exists"):
        outbox.api_keys.add("booking", "b" * 64, None, NOW, "cli:admin")
    with pytest.raises(InputError, match="no key is called 'other'"):
        outbox.api_keys.revoke("other", NOW, "cli:admin")


# ---------------------------------------------------------------- idempotency


def test_the_first_answer_is_given_again_and_another_body_is_refused(outbox: Outbox) -> None:
    outbox.api_keys.add("booking", "h" * 64, None, NOW, "cli:admin")
    table = outbox.idempotency
    assert table.reserve(1, "k1", "body-a", NOW, STALE, KEEP).outcome == "mine"
    assert table.reserve(1, "k1", "body-a", NOW, STALE, KEEP).outcome == "in-progress"
    answer = StoredAnswer(201, "/api/v1/enrolments/abc", '{"id": "abc"}')
    table.finish(1, "k1", answer, None)
    again = table.reserve(1, "k1", "body-a", NOW + MINUTE, STALE, KEEP)
    assert (again.outcome, again.answer) == ("answered", answer)
    assert table.reserve(1, "k1", "body-b", NOW + MINUTE, STALE, KEEP).outcome == "other-body"
    # Another key's requests never see it; after a day it is forgotten.
    outbox.api_keys.add("other", "o" * 64, None, NOW, "cli:admin")
    assert table.reserve(2, "k1", "body-a", NOW, STALE, KEEP).outcome == "mine"
    assert table.reserve(1, "k1", "body-b", NOW + KEEP + MINUTE, STALE, KEEP).outcome == "mine"


def test_a_reservation_whose_request_died_is_taken_over_and_one_released_is_free(
    outbox: Outbox,
) -> None:
    outbox.api_keys.add("booking", "h" * 64, None, NOW, "cli:admin")
    table = outbox.idempotency
    assert table.reserve(1, "k", "f", NOW, STALE, KEEP).outcome == "mine"
    assert table.reserve(1, "k", "f", NOW + STALE - MINUTE, STALE, KEEP).outcome == "in-progress"
    assert table.reserve(1, "k", "f", NOW + STALE + MINUTE, STALE, KEEP).outcome == "mine"
    table.release(1, "k")
    assert table.reserve(1, "k", "other", NOW + STALE + MINUTE, STALE, KEEP).outcome == "mine"


def test_two_connections_reserving_one_key_at_once_get_it_once(
    database: OutboxDatabase,
) -> None:
    with Outbox.open(database.location) as first:
        first.api_keys.add("booking", "h" * 64, None, NOW, "cli:admin")
    outcomes = at_once(database, 8, lambda box: box.idempotency.reserve(
        1, "k", "f", NOW, STALE, KEEP).outcome)
    assert outcomes == ["in-progress"] * 7 + ["mine"]


def test_requests_taking_over_a_dead_reservation_at_once_get_it_once(
    database: OutboxDatabase,
) -> None:
    with Outbox.open(database.location) as first:
        first.api_keys.add("booking", "h" * 64, None, NOW, "cli:admin")
        assert first.idempotency.reserve(1, "k", "f", NOW, STALE, KEEP).outcome == "mine"
    later = NOW + STALE + MINUTE  # the first request died: its reservation is stale
    outcomes = at_once(database, 8, lambda box: box.idempotency.reserve(
        1, "k", "f", later, STALE, KEEP).outcome)
    assert outcomes == ["in-progress"] * 7 + ["mine"]


def test_a_key_revoked_twice_at_once_is_revoked_once(database: OutboxDatabase) -> None:
    with Outbox.open(database.location) as first:
        first.api_keys.add("booking", "h" * 64, None, NOW, "cli:admin")
    outcomes = at_once(database, 4, lambda box: str(box.api_keys.revoke(
        "booking", NOW, "cli:admin")))
    assert outcomes == ["False"] * 3 + ["True"]
    with Outbox.open(database.location) as box:
        assert [e.kind for e in box.events()].count(Trail.API_KEY_REVOKED) == 1


# ---------------------------------------------------------------- enrolments for the API


def test_an_enrolment_has_an_opaque_id_and_is_found_by_it_and_by_its_patient(
    outbox: Outbox,
) -> None:
    item = enrollment(patient_ref="P-1042", marketing_consent=True)
    result = outbox.enroll(item, toy_plan(item), NOW)
    view = outbox.enrollments.by_id(result.enrollment_id)
    assert len(view.public_id) == 32 and view.public_id != str(result.enrollment_id)
    assert outbox.enrollments.by_public_id(view.public_id) == view
    assert (view.campaign, view.treated_on, view.patient_ref, view.marketing_consent,
            view.consent_recorded_by, view.consent_at) == (
        item.campaign, TREATED, "P-1042", True, "cli:frontdesk", NOW)
    assert outbox.enrollments.by_public_id("0" * 32) is None
    assert outbox.enrollments.of_patient("P-1042", TREATED + DAY) == [view]
    assert outbox.enrollments.of_patient("P-1042", TREATED) == []  # only earlier treatments
    assert outbox.enrollments.latest_of_patient("P-1042") == view.enrollment_id
    assert outbox.enrollments.latest_of_patient("P-9") is None


def test_an_enrolment_stored_before_opaque_ids_gets_one_when_first_shown(
    database: OutboxDatabase,
) -> None:
    database.migrate(MIGRATIONS[:5])  # the schema before script 6 (the API)
    with Outbox.open(database.location) as box:
        item = enrollment()
        result = box.enroll(item, toy_plan(item), NOW)
    with database.raw() as db:
        db.execute("UPDATE enrollments SET public_id = NULL")  # as the old schema left it
    with Outbox.open(database.location) as box:
        first = box.enrollments.by_id(result.enrollment_id).public_id
        assert len(first) == 32
        assert box.enrollments.by_id(result.enrollment_id).public_id == first


def test_cancel_picks_one_enrolments_reminders_only_with_a_reason(outbox: Outbox) -> None:
    ann = enrollment(marketing_consent=True, treated_on=NOW.date())
    ben = enrollment("ben@example.com", marketing_consent=True, treated_on=NOW.date())
    first = outbox.enroll(ann, toy_plan(ann), NOW)
    outbox.enroll(ben, toy_plan(ben), NOW)
    count = outbox.cancel(None, None, NOW, "api:booking", enrollments=[first.enrollment_id],
                          kind="marketing", reason="not needed: the patient booked again")
    assert count == 1
    states = {(m.email, m.step_key): (m.state, m.last_error) for m in outbox.messages()}
    assert states[("jane@example.com", "month-3")] == (
        "cancelled", "not needed: the patient booked again")
    assert states[("jane@example.com", "day-1")] == ("scheduled", None)
    assert states[("ben@example.com", "month-3")] == ("scheduled", None)
    with pytest.raises(ValueError, match="name an address or some enrollments"):
        outbox.cancel(None, None, NOW, "api:booking")


def test_reschedule_one_moves_that_enrolment_and_refuses_a_clash(outbox: Outbox) -> None:
    early, late = enrollment(treated_on=NOW.date() - DAY), enrollment(treated_on=NOW.date())
    first = outbox.enroll(early, toy_plan(early), NOW)
    outbox.enroll(late, toy_plan(late), NOW)
    with pytest.raises(InputError, match="already has an enrollment"):
        outbox.reschedule_one(first.enrollment_id, NOW.date(), toy_plan, NOW, "api:booking")
    moved = outbox.reschedule_one(first.enrollment_id, NOW.date() - 2 * DAY, toy_plan, NOW,
                                  "api:booking")
    assert moved == 2
    assert outbox.enrollments.by_id(first.enrollment_id).treated_on == NOW.date() - 2 * DAY
    with pytest.raises(InputError, match="no enrollment 99"):
        outbox.reschedule_one(99, NOW.date(), toy_plan, NOW, "api:booking")
