"""The outbox after the hand-over: lookahead claims, provider events, withdrawals, unknowns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Iterator

import pytest

from aftercare.errors import InputError
from aftercare.outbox.records import DeliveryReport, MessageView, Submitted
from aftercare.outbox.store import UNSUBSCRIBED, Outbox, StateError
from aftercare.outbox.vocabulary import DeliveryEvent
from tests.outbox.test_store import NOW, enrollment, kinds, toy_plan
from tests.postgres import OutboxDatabase

UTC = dt.UTC
DAY_1 = dt.datetime(2025, 3, 4, 9, 0, tzinfo=UTC)  # toy_plan's day-1 for a 3 March treatment
EARLY = DAY_1 - dt.timedelta(hours=2)  # a run two hours ahead, inside the lookahead
MINUTE = dt.timedelta(minutes=1)
JANE = "jane@example.com"
_ids = itertools.count(1)


def event(
    kind: str, message_id: str | None, email: str = JANE, at: dt.datetime = DAY_1,
    reason: str | None = None, event_id: str | None = None,
) -> DeliveryReport:
    return DeliveryReport(event_id or f"ev-{next(_ids)}", DeliveryEvent(kind), message_id, email,
                          at, reason)


@pytest.fixture
def outbox(database: OutboxDatabase) -> Iterator[Outbox]:
    with Outbox.open(database.location) as box:
        consenting = enrollment(marketing_consent=True)
        box.enroll(consenting, toy_plan(consenting), NOW)
        yield box


def views(box: Outbox, email: str = JANE) -> dict[str, MessageView]:
    return {m.step_key: m for m in box.messages(email=email)}


def held_day_1(box: Outbox, batch: str | None = "batch-1") -> int:
    """Day 1 handed over two hours early: SendGrid holds it until its due time."""
    (claim,) = box.claim_due(EARLY, 1, horizon=DAY_1)
    box.mark_sent(claim.message_id, provider_id="sg-1", content_hash="h", template_version="v1",
                  now=EARLY, send_at=DAY_1, batch=batch)
    return claim.message_id


def unknown_day_1(box: Outbox) -> int:
    (claim,) = box.claim_due(EARLY, 1, horizon=DAY_1)
    box.mark_unknown(claim.message_id, "no response from SendGrid (TimeoutError)", EARLY,
                     send_at=DAY_1, batch="batch-u")
    return claim.message_id


def public_id(box: Outbox, message_id: int) -> str:
    (found,) = [m.public_id for m in box.messages() if m.message_id == message_id]
    return found


# ---------------------------------------------------------------- claims ahead of time


def test_a_horizon_claims_messages_due_within_it_with_their_send_time(outbox: Outbox) -> None:
    assert outbox.claim_due(EARLY, 10) == []  # without a horizon: only what is due now
    assert outbox.claim_due(EARLY, 10, horizon=DAY_1 - dt.timedelta(seconds=1)) == []
    (claim,) = outbox.claim_due(EARLY, 10, horizon=DAY_1)
    assert (claim.step_key, claim.due_at, claim.send_at, claim.attempts) == (
        "day-1", DAY_1, DAY_1, 1)
    with pytest.raises(ValueError, match="horizon must not be before now"):
        outbox.claim_due(EARLY, 1, horizon=EARLY - dt.timedelta(seconds=1))
    with pytest.raises(ValueError, match="horizon must be timezone-aware"):
        outbox.claim_due(EARLY, 1, horizon=dt.datetime(2025, 3, 4, 9))


def test_mark_sent_keeps_the_providers_send_time_and_batch(outbox: Outbox) -> None:
    message_id = held_day_1(outbox)
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.send_at, day_1.provider_batch, day_1.sent_at) == (
        "sent", DAY_1, "batch-1", EARLY)
    assert outbox.events(message_id=message_id)[-1].detail == (
        "template v1; held by the provider until 2025-03-04 09:00 UTC")
    held = [Submitted(message_id, "batch-1", DAY_1)]
    assert outbox.provider_scheduled(JANE, EARLY) == held
    assert outbox.provider_scheduled("Jane@Example.COM", EARLY) == held  # any case
    assert outbox.provider_scheduled(None, EARLY) == held
    assert outbox.provider_scheduled(JANE, EARLY, campaign="aftercare-cosmetic") == held
    assert outbox.provider_scheduled(JANE, EARLY, campaign="other") == []
    assert outbox.provider_scheduled("bob@example.com", EARLY) == []
    assert outbox.provider_scheduled(JANE, DAY_1) == []  # sent by now: nothing to withdraw


def test_a_retry_keeps_the_send_time_and_waits_for_its_retry_time(outbox: Outbox) -> None:
    (claim,) = outbox.claim_due(EARLY, 1, horizon=DAY_1)
    retry_at = EARLY + dt.timedelta(seconds=20)
    outbox.mark_retry(claim.message_id, "rate limited by SendGrid (429)", retry_at, EARLY)
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.due_at, day_1.send_at) == (
        "scheduled", retry_at, DAY_1)
    # Within the horizon but before its retry time: not claimed again in the same run.
    assert outbox.claim_due(EARLY + dt.timedelta(seconds=19), 5, horizon=DAY_1) == []
    (again,) = outbox.claim_due(retry_at, 5, horizon=DAY_1)
    assert (again.attempts, again.due_at, again.send_at) == (2, retry_at, DAY_1)
    later = retry_at + dt.timedelta(minutes=1)
    outbox.mark_retry(again.message_id, "SendGrid error (503)", later, retry_at)
    assert views(outbox)["day-1"].send_at == DAY_1
    # A new treatment date re-times it from scratch.
    outbox.reschedule(JANE, "aftercare-cosmetic", dt.date(2025, 3, 5), toy_plan, NOW, "staff")
    day_1 = views(outbox)["day-1"]
    assert (day_1.due_at, day_1.send_at) == (DAY_1 + dt.timedelta(days=2), None)


def test_mark_unknown_keeps_what_the_request_asked_for(outbox: Outbox) -> None:
    message_id = unknown_day_1(outbox)
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.send_at, day_1.provider_batch) == (
        "unknown", DAY_1, "batch-u")
    # SendGrid may hold it: it can still be withdrawn.
    assert outbox.provider_scheduled(JANE, EARLY) == [Submitted(message_id, "batch-u", DAY_1)]


# ---------------------------------------------------------------- provider events


def test_a_repeated_event_counts_once(outbox: Outbox, database: OutboxDatabase) -> None:
    message_id = held_day_1(outbox)
    delivered = event("delivered", public_id(outbox, message_id), event_id="sg-1")
    report = outbox.apply_delivery_events([delivered, delivered, delivered], DAY_1, "sendgrid")
    assert (report.received, report.duplicates, report.unmatched) == (3, 2, 0)
    again = outbox.apply_delivery_events([delivered], DAY_1, "sendgrid")
    assert (again.received, again.duplicates) == (1, 1)
    with database.raw() as db:
        rows = db.execute("SELECT event_id, kind, message_id, occurred_at FROM provider_events")
        assert [tuple(r) for r in rows] == [
            ("sg-1", "delivered", message_id, "2025-03-04T09:00:00.000000+00:00")]
    assert kinds(outbox, message_id=message_id).count("reported") == 1
    assert views(outbox)["day-1"].delivery == "delivered"
    assert outbox.events(message_id=message_id)[-1].actor == "sendgrid"


def test_any_event_for_an_unknown_message_proves_it_was_sent(outbox: Outbox) -> None:
    message_id = unknown_day_1(outbox)
    processed = event("processed", public_id(outbox, message_id))
    report = outbox.apply_delivery_events([processed], DAY_1, "sendgrid")
    assert report.resolved == 1
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.sent_at, day_1.last_error, day_1.delivery) == (
        "sent", EARLY, None, "processed")
    resolved = outbox.events(message_id=message_id)[-1]
    assert (resolved.kind, resolved.actor, resolved.detail) == (
        "sent", "sendgrid", "outcome resolved by the provider: it reported processed")
    assert outbox.apply_delivery_events([processed], DAY_1, "sendgrid").resolved == 0


def test_events_that_come_while_the_sender_is_dead_settle_its_claim(outbox: Outbox) -> None:
    (claim,) = outbox.claim_due(EARLY, 1, horizon=DAY_1)  # then the sender is killed
    outbox.apply_delivery_events([event("processed", claim.public_id)], EARLY + MINUTE, "sendgrid")
    assert views(outbox)["day-1"].state == "sending"  # its sender may still record it
    assert outbox.release_stale(EARLY + 16 * MINUTE, 15 * MINUTE) == 0  # none left unknown
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.sent_at, day_1.delivery) == ("sent", EARLY, "processed")
    assert kinds(outbox, message_id=claim.message_id)[-3:] == ["reported", "unknown", "sent"]


def test_a_bounce_suppresses_the_address_and_stops_what_is_left(outbox: Outbox) -> None:
    message_id = held_day_1(outbox)
    bounce = event("bounce", public_id(outbox, message_id), reason="550 5.1.1 <address> unknown")
    report = outbox.apply_delivery_events([bounce], EARLY + dt.timedelta(minutes=30),
                                           "sendgrid")
    assert (report.suppressed, report.cancelled) == (1, 2)
    # SendGrid still holds day 1 (due in 90 minutes): the caller withdraws it there.
    assert report.to_withdraw == (Submitted(message_id, "batch-1", DAY_1),)
    states = {key: (m.state, m.last_error) for key, m in views(outbox).items()}
    assert states == {"day-1": ("sent", None), "week-2": ("cancelled", "bounce"),
                      "month-3": ("cancelled", "bounce")}
    assert views(outbox)["day-1"].delivery == "bounce"
    assert outbox.is_suppressed("JANE@example.com")
    assert outbox.events(message_id=message_id)[-1].detail == "bounce: 550 5.1.1 <address> unknown"
    suppressed = [e for e in outbox.events() if e.kind == "suppressed"]
    assert [(e.actor, e.detail) for e in suppressed] == [
        ("sendgrid", "bounce via sendgrid webhook")]
    with pytest.raises(InputError) as caught:
        outbox.enroll(enrollment(treated_on=dt.date(2025, 4, 1)), (), NOW)
    assert str(caught.value) == "email: this address is suppressed (bounce); it cannot be enrolled"
    # SendGrid posts it again: nothing new, but what it still holds is listed again, so a
    # withdrawal an earlier post could not finish is finished now.
    again = outbox.apply_delivery_events([bounce], EARLY + dt.timedelta(minutes=31),
                                          "sendgrid")
    assert (again.duplicates, again.suppressed, again.cancelled) == (1, 0, 0)
    assert again.to_withdraw == report.to_withdraw


@pytest.mark.parametrize("kind", ["unsubscribe", "group_unsubscribe"])
def test_an_unsubscribe_event_is_an_unsubscribe(outbox: Outbox, kind: str) -> None:
    message_id = held_day_1(outbox)
    outbox.apply_delivery_events([event(kind, public_id(outbox, message_id))], EARLY, "sendgrid")
    assert "unsubscribed" in kinds(outbox)
    with pytest.raises(InputError, match=UNSUBSCRIBED):
        outbox.enroll(enrollment(treated_on=dt.date(2025, 4, 1)), (), NOW)


def test_events_for_no_known_message_are_kept_and_still_suppress(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    outbox.enroll(enrollment("bob@example.com"), toy_plan(enrollment()), NOW)
    report = outbox.apply_delivery_events(
        [event("delivered", "f" * 32), event("dropped", None, email="Bob@Example.com")], EARLY,
        "sendgrid")
    assert (report.unmatched, report.suppressed, report.cancelled) == (2, 1, 2)
    assert {m.state for m in outbox.messages(email="bob@example.com")} == {"cancelled"}
    with database.raw() as db:
        rows = db.execute("SELECT kind, message_id FROM provider_events ORDER BY kind")
        assert [tuple(r) for r in rows] == [("delivered", None), ("dropped", None)]


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["processed", "delivered", "deferred"], "delivered"),
        (["deferred", "delivered"], "delivered"),
        (["delivered", "processed"], "delivered"),
        (["deferred", "processed"], "deferred"),
        (["delivered", "bounce"], "bounce"),  # an asynchronous bounce
        (["bounce", "delivered"], "bounce"),
        (["delivered", "spamreport", "deferred"], "spamreport"),
        (["delivered", "group_resubscribe"], "delivered"),
    ],
)
def test_the_delivery_status_only_moves_forward(
    outbox: Outbox, sequence: list[str], final: str
) -> None:
    message = public_id(outbox, held_day_1(outbox))
    for kind in sequence:  # one post each, in the order they arrive
        outbox.apply_delivery_events([event(kind, message)], DAY_1, "sendgrid")
    assert views(outbox)["day-1"].delivery == final


# ---------------------------------------------------------------- withdrawals and resolutions


def test_withdrawals_are_recorded(outbox: Outbox) -> None:
    message_id = held_day_1(outbox)
    outbox.mark_withdrawn(message_id, False, "could not cancel at the provider: 500", EARLY,
                          "cli:desk")
    assert views(outbox)["day-1"].state == "sent"
    outbox.mark_withdrawn(message_id, True, "cancelled at the provider", EARLY, "cli:desk")
    outbox.mark_withdrawn(message_id, True, "cancelled at the provider", EARLY, "sendgrid")
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.last_error) == ("cancelled", "cancelled at the provider")
    trail = [(e.kind, e.actor) for e in outbox.events(message_id=message_id)][-3:]
    assert trail == [("withdrawal-failed", "cli:desk"), ("cancelled", "cli:desk"),
                     ("cancelled", "sendgrid")]
    assert outbox.provider_scheduled(JANE, EARLY) == []
    week_2 = views(outbox)["week-2"].message_id
    with pytest.raises(StateError, match="is 'scheduled'; only a message handed to the provider"):
        outbox.mark_withdrawn(week_2, True, "no", EARLY, "staff")
    with pytest.raises(StateError, match="message 999 does not exist"):
        outbox.mark_withdrawn(999, True, "no", EARLY, "staff")


def test_held_messages_of_recently_suppressed_addresses(outbox: Outbox) -> None:
    message_id = held_day_1(outbox)
    assert outbox.held_for_suppressed(EARLY, EARLY - dt.timedelta(days=3)) == []
    outbox.unsubscribe(JANE, EARLY, source="link", actor="patient")
    since = EARLY - dt.timedelta(days=3)
    assert outbox.held_for_suppressed(EARLY, since) == [Submitted(message_id, "batch-1", DAY_1)]
    assert outbox.held_for_suppressed(EARLY, EARLY + dt.timedelta(seconds=1)) == []
    assert outbox.held_for_suppressed(DAY_1, since) == []  # sent by then


def test_held_without_a_batch_is_not_listed_for_withdrawal(outbox: Outbox) -> None:
    held_day_1(outbox, batch=None)
    outbox.unsubscribe(JANE, EARLY, source="link", actor="patient")
    assert outbox.held_for_suppressed(EARLY, EARLY - dt.timedelta(days=3)) == []
    assert [s.batch for s in outbox.provider_scheduled(JANE, EARLY)] == [None]


def test_staff_resolve_an_unknown_outcome(outbox: Outbox) -> None:
    message_id = unknown_day_1(outbox)
    outbox.resolve_unknown(message_id, True, DAY_1, "staff:ann")
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.sent_at) == ("sent", EARLY)
    assert outbox.events(message_id=message_id)[-1].detail == (
        "outcome resolved by staff:ann: it was sent")
    with pytest.raises(StateError, match="is 'sent', not 'unknown'"):
        outbox.resolve_unknown(message_id, False, DAY_1, "staff:ann")


def test_an_unknown_put_back_goes_out_at_its_time(outbox: Outbox) -> None:
    message_id = unknown_day_1(outbox)
    outbox.resolve_unknown(message_id, False, EARLY, "staff:ann")
    day_1 = views(outbox)["day-1"]
    assert (day_1.state, day_1.due_at, day_1.send_at, day_1.provider_batch) == (
        "scheduled", DAY_1, None, None)
    assert kinds(outbox, message_id=message_id)[-1] == "requeued"
    (claim,) = outbox.claim_due(EARLY, 5, horizon=DAY_1)
    assert (claim.message_id, claim.send_at, claim.attempts) == (message_id, DAY_1, 2)


NAIVE = dt.datetime(2025, 3, 3, 12, 0)
CALLS: dict[str, Callable[[Outbox], object]] = {
    "apply_delivery_events": lambda box: box.apply_delivery_events([], NAIVE, "sendgrid"),
    "provider_scheduled": lambda box: box.provider_scheduled(JANE, NAIVE),
    "held_for_suppressed": lambda box: box.held_for_suppressed(NAIVE, DAY_1),
    "mark_withdrawn": lambda box: box.mark_withdrawn(1, True, "x", NAIVE, "staff"),
    "resolve_unknown": lambda box: box.resolve_unknown(1, True, NAIVE, "staff"),
    "claim_due": lambda box: box.claim_due(NAIVE, 1, horizon=DAY_1),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_naive_datetimes_are_refused(outbox: Outbox, call: Callable[[Outbox], object]) -> None:
    events = outbox.events()
    with pytest.raises(ValueError, match="must be timezone-aware; got a naive datetime"):
        call(outbox)
    assert outbox.events() == events


# ---------------------------------------------------------------- the care page's first view


def test_the_first_view_is_recorded_once_with_its_time_only(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    message_id = held_day_1(outbox)
    outbox.apply_delivery_events([event("delivered", public_id(outbox, message_id))], DAY_1,
                                 "sendgrid")
    before = views(outbox)["day-1"]
    row_before = message_row(database, message_id)
    seen = DAY_1 + dt.timedelta(hours=3)
    assert outbox.record_view(message_id, seen, "patient") is True
    assert outbox.record_view(message_id, seen + dt.timedelta(days=2), "patient") is False
    after = views(outbox)["day-1"]
    # Viewing changes nothing about delivery: the state, the provider's status and every
    # other column are as they were; only viewed_at is new.
    assert after == dataclasses.replace(before, viewed_at=seen)
    assert (after.state, after.delivery) == ("sent", "delivered")
    row_after = message_row(database, message_id)
    changed = [column for column in row_before if row_before[column] != row_after[column]]
    assert changed == ["viewed_at"]
    (viewed,) = [e for e in outbox.events(message_id=message_id) if e.kind == "viewed"]
    assert (viewed.at, viewed.actor, viewed.detail) == (seen, "patient", None)
    assert kinds(outbox, message_id=message_id).count("viewed") == 1


def message_row(database: OutboxDatabase, message_id: int) -> dict[str, object]:
    """The message's row as stored, column by column."""
    with database.raw() as db:
        cursor = db.execute("SELECT * FROM messages WHERE id = ?", (message_id,))
        values = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], values, strict=True))


def test_a_view_of_an_unknown_outcome_leaves_it_unknown(outbox: Outbox) -> None:
    # Staff settle an unknown outcome; a patient reading the page is not a delivery report.
    message_id = unknown_day_1(outbox)
    assert outbox.record_view(message_id, DAY_1, "patient") is True
    assert views(outbox)["day-1"].state == "unknown"


def test_recent_views_are_listed_latest_first(outbox: Outbox) -> None:
    first = held_day_1(outbox)
    week_2 = views(outbox)["week-2"].message_id
    outbox.record_view(first, DAY_1, "patient")
    outbox.record_view(week_2, DAY_1 + dt.timedelta(days=1), "patient")
    assert [m.step_key for m in outbox.viewed_since(DAY_1)] == ["week-2", "day-1"]
    assert [m.step_key for m in outbox.viewed_since(DAY_1 + MINUTE)] == ["week-2"]
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        outbox.viewed_since(dt.datetime(2025, 3, 4))
