"""Dispatch with a provider that schedules: lookahead, batches, parallel sends, retries, pauses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aftercare.content.model import DeliverySettings, Project
from aftercare.delivery import Outcome, OutgoingEmail, ProviderError
from aftercare.delivery.files import FileBackend
from aftercare.delivery.providers import SENDGRID
from aftercare.outbox.records import Claim, MessageView
from aftercare.outbox.store import Outbox
from aftercare.send.dispatch import MAX_ATTEMPTS, DispatchReport, send_due
from aftercare.send.withdrawal import WithdrawReport, cancel, unsubscribe
from tests.postgres import OutboxDatabase
from tests.send.test_dispatch import DAY_1, WEEK_2, World, open_world

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
SENT = Outcome("sent", "sg-id", "accepted by SendGrid (202)")


class Scheduler:
    """An in-memory scheduling provider: records what it is given, answers as told."""

    name = "fake-sendgrid"
    can_schedule = True
    holding = SENDGRID

    def __init__(
        self, answer: Callable[[OutgoingEmail, int], Outcome] | None = None, delay: float = 0.0
    ) -> None:
        self.answer = answer or (lambda email, attempt: SENT)
        self.delay = delay
        self.sent: list[tuple[OutgoingEmail, int, str | None]] = []
        self.batches = 0
        self.cancelled: list[str] = []
        self.batch_error: ProviderError | None = None
        self.cancel_error: ProviderError | None = None
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        self.during_send: Callable[[OutgoingEmail], None] = lambda email: None

    def new_batch(self) -> str:
        if self.batch_error is not None:
            raise self.batch_error
        with self._lock:
            self.batches += 1
            return f"batch-{self.batches}"

    def send(
        self, email: OutgoingEmail, *, attempt: int = 0, batch_id: str | None = None
    ) -> Outcome:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            self.during_send(email)
            with self._lock:
                self.sent.append((email, attempt, batch_id))
            return self.answer(email, attempt)
        finally:
            with self._lock:
                self.in_flight -= 1

    def cancel_batch(self, batch_id: str) -> str:
        if self.cancel_error is not None:
            raise self.cancel_error
        self.cancelled.append(batch_id)
        return "cancelled"


def with_delivery(project: Project, **changes: object) -> Project:
    delivery = dataclasses.replace(project.clinic.delivery, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(project, clinic=dataclasses.replace(project.clinic,
                                                                   delivery=delivery))


def run(
    world: World, backend: object, now: dt.datetime, project: Project | None = None,
    pauses: list[float] | None = None, limit: int = 100, max_attempts: int = MAX_ATTEMPTS,
) -> DispatchReport:
    waits = pauses if pauses is not None else []
    return send_due(world.outbox, project or world.project, world.renderer, backend,  # type: ignore[arg-type]
                    now, limit, pause=waits.append, max_attempts=max_attempts)


def day_1(world: World, name: str = "ann") -> int:
    (found,) = [m.message_id for m in world.outbox.messages(email=f"{name}@example.com")
                if m.step_key == "day-1"]
    return found


def view(world: World, message_id: int) -> MessageView:
    (found,) = [m for m in world.outbox.messages() if m.message_id == message_id]
    return found


# ---------------------------------------------------------------- exact timing


def test_messages_due_within_the_lookahead_go_ahead_with_their_due_time(world: World) -> None:
    world.enroll()
    provider = Scheduler()
    assert run(world, provider, DAY_1 - 2 * HOUR - MINUTE).claimed == ()
    report = run(world, provider, DAY_1 - 2 * HOUR + 7 * MINUTE)  # cron at 8:07 local
    assert (len(report.claimed), report.sent, report.held) == (1, 1, 1)
    ((email, attempt, batch),) = provider.sent
    assert (email.send_at, attempt, batch) == (DAY_1, 0, "batch-1")
    assert email.campaign == "botox-cosmetic" and email.step_key == "day-1"
    message = view(world, day_1(world))
    assert (message.state, message.send_at, message.provider_batch, message.provider_id) == (
        "sent", DAY_1, "batch-1", "sg-id")
    assert report.summary() == (
        "1 due: 1 sent (1 held by the provider until their send time), 0 failed, 0 unknown, "
        "0 to retry later, 0 cancelled, 0 too late")
    # The file backend holds nothing back: it writes at the due time, not before.
    assert run(world, world.files, WEEK_2 - HOUR).claimed == ()


def test_the_lookahead_comes_from_the_clinic(world: World) -> None:
    world.enroll()
    provider = Scheduler()
    ahead = with_delivery(world.project, lookahead_hours=24)
    assert run(world, provider, DAY_1 - 23 * HOUR, project=ahead).sent == 1
    assert provider.sent[0][0].send_at == DAY_1


def test_no_batch_inside_the_cancel_cut_off_and_no_send_time_when_late(world: World) -> None:
    world.enroll("Ann")
    world.enroll("Ben")
    provider = Scheduler()
    (ann,) = run(world, provider, DAY_1 - 5 * MINUTE, limit=1).claimed
    later = run(world, provider, DAY_1 + HOUR)
    assert [(e.send_at, b) for e, _, b in provider.sent] == [(DAY_1, None),
                                                            (DAY_1 + HOUR, None)]
    assert provider.batches == 0
    assert later.held == 0 and view(world, ann).provider_batch is None


# ---------------------------------------------------------------- parallel sends


class CountsClaims:
    """Checks, from its own connection, that no more messages are claimed than are sending."""

    def __init__(self, database: OutboxDatabase, inner: Scheduler) -> None:
        self.database, self.inner = database, inner
        self.most_claimed = 0
        self.name, self.can_schedule, self.holding = inner.name, True, inner.holding
        self.new_batch, self.cancel_batch = inner.new_batch, inner.cancel_batch

    def send(
        self, email: OutgoingEmail, *, attempt: int = 0, batch_id: str | None = None
    ) -> Outcome:
        with self.database.raw(timeout=5) as db:
            (claimed,) = db.execute("SELECT count(*) FROM messages WHERE state = 'sending'"
                                    ).fetchone()
        self.most_claimed = max(self.most_claimed, claimed)
        return self.inner.send(email, attempt=attempt, batch_id=batch_id)


@pytest.mark.parametrize("parallel", [1, 3])
def test_sends_run_in_parallel_up_to_the_clinics_limit(
    world: World, database: OutboxDatabase, parallel: int
) -> None:
    for n in range(10):
        world.enroll(f"P{n}")
    provider = Scheduler(delay=0.1)
    counting = CountsClaims(database, provider)
    project = with_delivery(world.project, max_parallel=parallel)
    report = run(world, counting, DAY_1 - HOUR, project=project)
    assert (len(report.claimed), report.sent) == (10, 10)
    assert provider.most_in_flight == parallel
    # Claimed one at a time into a free slot: never more claimed than can be in flight.
    assert counting.most_claimed <= parallel
    assert len({e.public_id for e, _, _ in provider.sent}) == 10


def test_no_transaction_is_held_while_sending_in_parallel(
    world: World, database: OutboxDatabase
) -> None:
    for n in range(6):
        world.enroll(f"P{n}")

    def take_the_write_lock(email: OutgoingEmail) -> None:
        database.lock_every_message()  # fails at once if dispatch held a write

    provider = Scheduler(delay=0.01)
    provider.during_send = take_the_write_lock
    # On PostgreSQL a claim passes over a row the check holds at that very moment (SKIP
    # LOCKED), as it would any row another sender holds: a later run sends it.
    reports = [run(world, provider, DAY_1 - HOUR) for _ in range(3)]
    assert [(r.failed, r.unknown) for r in reports] == [(0, 0)] * 3  # no check failed
    assert sum(r.sent for r in reports) == 6


# ---------------------------------------------------------------- refusals


def test_a_refused_message_keeps_its_send_time_for_the_next_run(world: World) -> None:
    world.enroll()
    first = DAY_1 - 2 * HOUR + 7 * MINUTE
    retry = Outcome("retry", None, "SendGrid error (503): busy", first + 30 * dt.timedelta(
        seconds=1))
    provider = Scheduler(lambda email, attempt: retry if attempt == 0 else SENT)
    assert run(world, provider, first).retried == 1
    assert run(world, provider, first + 10 * dt.timedelta(seconds=1)).claimed == ()
    assert run(world, provider, first + HOUR).sent == 1
    assert [(e.send_at, attempt) for e, attempt, _ in provider.sent] == [(DAY_1, 0), (DAY_1, 1)]
    assert provider.batches == 2  # a refused request's batch is never reused


def test_transient_refusals_give_up_after_the_attempts_limit(world: World) -> None:
    world.enroll()
    at = DAY_1 - 2 * HOUR
    provider = Scheduler(lambda email, attempt: Outcome("retry", None, "SendGrid error (500): x",
                                                       at + (attempt + 1) * MINUTE))
    reports = [run(world, provider, at + n * MINUTE, max_attempts=3) for n in range(5)]
    assert [(r.retried, r.failed) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    assert view(world, day_1(world)).last_error == (
        "SendGrid error (500): x; gave up after 3 attempts")
    assert MAX_ATTEMPTS == 8


def test_a_rate_limit_is_waited_for_then_the_run_goes_on(world: World) -> None:
    for name in ("Ann", "Ben", "Cat"):
        world.enroll(name)
    at = DAY_1 - HOUR
    limited = Outcome("retry", None, "rate limited by SendGrid (429): too many requests",
                      at + 20 * dt.timedelta(seconds=1), rate_limited=True)
    calls: list[str] = []

    def answer(email: OutgoingEmail, attempt: int) -> Outcome:
        calls.append(email.public_id)
        return limited if len(calls) == 1 else SENT

    pauses: list[float] = []
    report = run(world, Scheduler(answer), at, pauses=pauses,
                 project=with_delivery(world.project, max_parallel=1))
    assert pauses == [20.0]
    assert (report.retried, report.sent, report.paused, report.rate_limited) == (1, 2, 20.0, False)
    assert report.summary().endswith("; waited 20 s for rate limits")


def test_a_long_rate_limit_leaves_the_rest_to_the_next_run(world: World) -> None:
    for name in ("Ann", "Ben", "Cat"):
        world.enroll(name)
    at = DAY_1 - HOUR
    limited = Outcome("retry", None, "rate limited by SendGrid (429)", at + 5 * MINUTE,
                      rate_limited=True)
    pauses: list[float] = []
    report = run(world, Scheduler(lambda email, attempt: limited), at, pauses=pauses,
                 project=with_delivery(world.project, max_parallel=1))
    assert pauses == []
    assert (len(report.claimed), report.retried, report.rate_limited) == (1, 1, True)
    assert report.summary().endswith("stopped early: rate limited by the provider")
    assert [m.state for m in world.outbox.messages() if m.step_key == "day-1"] == [
        "scheduled"] * 3


def test_no_batch_means_nothing_was_sent_so_it_is_tried_again(world: World) -> None:
    world.enroll()
    provider = Scheduler()
    error = ProviderError("SendGrid new batch: too many requests")
    error.status = 429
    provider.batch_error = error
    pauses: list[float] = []
    report = run(world, provider, DAY_1 - HOUR, pauses=pauses)
    assert (report.retried, provider.sent, pauses) == (1, [], [])
    assert view(world, day_1(world)).last_error == (
        "not sent: no batch (SendGrid new batch: too many requests)")
    assert report.rate_limited  # five minutes is longer than a run waits


def test_a_backend_that_raises_leaves_a_withdrawable_unknown(world: World) -> None:
    world.enroll()

    def explode(email: OutgoingEmail, attempt: int) -> Outcome:
        raise ConnectionResetError(f"{email.to}: reset")

    report = run(world, Scheduler(explode), DAY_1 - HOUR)
    assert report.unknown == 1
    message = view(world, day_1(world))
    assert (message.state, message.last_error, message.send_at, message.provider_batch) == (
        "unknown", "fake-sendgrid backend raised ConnectionResetError", DAY_1, "batch-1")


class ClaimsTooFarAhead(Outbox):
    def claim_due(
        self, now: dt.datetime, limit: int, horizon: dt.datetime | None = None
    ) -> list[Claim]:
        return [dataclasses.replace(claim, send_at=now + dt.timedelta(hours=73))
                for claim in super().claim_due(now, limit, horizon)]


def test_a_send_time_beyond_72_hours_is_never_handed_over(
    tmp_path: Path, database: OutboxDatabase
) -> None:
    far = open_world(tmp_path, ClaimsTooFarAhead, database.location)
    try:
        far.enroll()
        provider = Scheduler()
        report = run(far, provider, DAY_1 - HOUR)
        assert (report.retried, provider.sent) == (1, [])
        message = view(far, day_1(far))
        assert message.due_at == DAY_1  # now + 73 h - 72 h: handed over once within 72 h
        assert message.last_error == (
            "not sent yet: more than 72 hours before its send time")
    finally:
        far.outbox.close()


# ---------------------------------------------------------------- withdrawal


def test_unsubscribing_withdraws_what_the_provider_holds_and_records_why_not(
    world: World,
) -> None:
    world.enroll("Ann")
    provider = Scheduler()
    run(world, provider, DAY_1 - HOUR)
    ann = day_1(world)
    stopped = unsubscribe(world.outbox, provider, "ann@example.com", DAY_1 - 30 * MINUTE,
                          source="link", actor="patient")
    report = stopped.withdrawn
    assert stopped.cancelled == 2  # the later, unsent messages
    assert (report.cancelled, report.too_close, report.failed) == (1, 0, 0)
    assert provider.cancelled == ["batch-1"]
    message = view(world, ann)
    assert (message.state, message.last_error) == (
        "cancelled", "cancelled at the provider before its send time (2026-03-03 15:00 UTC)")
    # Nothing left to withdraw; a file backend never holds anything.
    assert cancel(world.outbox, provider, "ann@example.com", DAY_1 - 29 * MINUTE, "patient"
                  ).withdrawn.cancelled == 0
    assert cancel(world.outbox, world.files, "ann@example.com", DAY_1, "patient"
                  ).withdrawn == WithdrawReport()
    assert cancel(world.outbox, None, "ann@example.com", DAY_1, "patient"
                  ).withdrawn == WithdrawReport()


def test_inside_the_cut_off_or_refused_it_will_still_be_delivered(world: World) -> None:
    world.enroll("Ann")
    world.enroll("Ben")
    provider = Scheduler()
    run(world, provider, DAY_1 - HOUR)
    close = cancel(world.outbox, provider, "ann@example.com", DAY_1 - 10 * MINUTE,
                   "staff:x").withdrawn
    provider.cancel_error = ProviderError("SendGrid cancel batch: authorization required")
    refused = cancel(world.outbox, provider, "ben@example.com", DAY_1 - HOUR, "staff:x").withdrawn
    assert (close.too_close, refused.failed, provider.cancelled) == (1, 1, [])
    details = [world.outbox.events(message_id=day_1(world, name))[-1].detail
               for name in ("ann", "ben")]
    assert details == [
        "will be delivered at 2026-03-03 15:00 UTC: too close to its send time to cancel "
        "(SendGrid allows it until 10 minutes before)",
        "could not cancel at the provider: SendGrid cancel batch: authorization required; it "
        "will be delivered at 2026-03-03 15:00 UTC",
    ]
    assert {view(world, day_1(world, n)).state for n in ("ann", "ben")} == {"sent"}


def test_cancelling_one_campaign_withdraws_only_its_messages(world: World) -> None:
    world.enroll("Ann")
    provider = Scheduler()
    run(world, provider, DAY_1 - HOUR)
    other = cancel(world.outbox, provider, "ann@example.com", DAY_1 - HOUR, "staff:x",
                   campaign="botox-migraine")
    same = cancel(world.outbox, provider, "ann@example.com", DAY_1 - HOUR, "staff:x",
                  campaign="botox-cosmetic")
    assert (other.withdrawn.cancelled, same.withdrawn.cancelled) == (0, 1)


def test_an_address_suppressed_while_its_message_was_in_flight_is_withdrawn(
    world: World, database: OutboxDatabase
) -> None:
    world.enroll("Ann")

    def patient_unsubscribes(email: OutgoingEmail) -> None:
        with Outbox.open(database.location) as elsewhere:  # the web app, at the same moment
            elsewhere.unsubscribe(email.to, DAY_1 - HOUR, "link", "patient")

    provider = Scheduler()
    provider.during_send = patient_unsubscribes
    report = run(world, provider, DAY_1 - HOUR)
    assert (report.sent, report.withdrawn) == (1, 1)
    assert provider.cancelled == ["batch-1"]
    assert view(world, day_1(world)).state == "cancelled"
    assert report.summary().endswith("; 1 withdrawn at the provider")


def test_the_file_backend_is_unchanged(world: World) -> None:
    world.enroll()
    files = FileBackend(world.root / "var" / "outbox")
    assert files.can_schedule is False
    assert run(world, files, DAY_1 - MINUTE).claimed == ()
    report = run(world, files, DAY_1)
    assert (report.sent, report.held) == (1, 0)
    assert view(world, day_1(world)).send_at == DAY_1
    assert DeliverySettings().lookahead_hours == 2
