"""Event Webhook posts end to end, and withdrawals at a local SendGrid look-alike."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.outbox.store import Outbox
from aftercare.send.dispatch import send_due
from aftercare.send.webhook import WebhookResult, process_webhook
from aftercare.send.withdrawal import Stopped, WithdrawReport, cancel
from tests.delivery.fake_sendgrid import API_KEY, FakeSendGrid, WebhookSigner, threaded_server
from tests.postgres import OutboxDatabase
from tests.send.test_dispatch import DAY_1, MONTH_3, WEEK_2, World, open_world

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
SUBMITTED = DAY_1 - 2 * HOUR + 7 * MINUTE  # the cron run that hands day 1 over


@dataclasses.dataclass
class Setup:
    world: World
    fake: FakeSendGrid
    backend: SendGridBackend
    signer: WebhookSigner

    @property
    def outbox(self) -> Outbox:
        return self.world.outbox

    def send(self, at: dt.datetime) -> None:
        self.fake.now = at
        w = self.world
        send_due(w.outbox, w.project, w.renderer, self.backend, at, 100, pause=lambda s: None)

    def post(self, kind: str, name: str, step: str, at: dt.datetime,
             **extra: object) -> WebhookResult:
        self.fake.now = at
        (message,) = [m for m in self.outbox.messages(email=f"{name}@example.com")
                      if m.step_key == step]
        event = self.signer.event(kind, message.email, message.public_id, at, **extra)
        body, headers = self.signer.post([event], at)
        return process_webhook(self.outbox, self.backend, body, headers, self.signer.public_key,
                               at)

    def state(self, name: str, step: str) -> tuple[str, str | None]:
        (message,) = [m for m in self.outbox.messages(email=f"{name}@example.com")
                      if m.step_key == step]
        return message.state, message.last_error


@pytest.fixture
def setup(tmp_path: Path, database: OutboxDatabase) -> Iterator[Setup]:
    world = open_world(tmp_path, database=database.location)
    with threaded_server() as server:
        fake = FakeSendGrid(server, sender="care@clinic.example", reply_to="desk@clinic.example",
                            step_keys={"day-1", "week-2", "month-3"},
                            forbidden=("botox-cosmetic",))
        backend = SendGridBackend(API_KEY, host=fake.host, timeout=5.0, clock=lambda: fake.now)
        try:
            yield Setup(world, fake, backend, WebhookSigner())
        finally:
            world.outbox.close()
    assert fake.problems == []


def test_a_bounce_after_day_1_stops_week_2_and_month_3(setup: Setup) -> None:
    setup.world.enroll("Ann")
    setup.world.enroll("Ben")
    setup.send(SUBMITTED)
    result = setup.post("bounce", "ann", "day-1", DAY_1 + HOUR, reason="550 unknown user")
    assert result == WebhookResult(
        200, "1 events: 0 repeated, 0 for no known message, 0 unknown outcomes resolved, "
        "1 addresses suppressed, 2 unsent messages cancelled, 0 withdrawn at the provider")
    for when in (WEEK_2 - 2 * HOUR + 7 * MINUTE, WEEK_2 - HOUR + 7 * MINUTE,
                 WEEK_2 + 90 * 24 * HOUR):
        setup.send(when)
    requested = {r.public_id for r in setup.fake.requests}
    ann = {m.public_id: m for m in setup.outbox.messages(email="ann@example.com")}
    assert [m.state for m in ann.values()] == ["sent", "cancelled", "cancelled"]
    assert requested & set(ann) == {next(iter(ann))}  # day 1 only
    assert setup.state("ben", "month-3")[0] == "sent"


def test_an_unsubscribe_while_sendgrid_holds_the_message_cancels_its_batch(
    setup: Setup,
) -> None:
    setup.world.enroll("Ann")
    setup.send(SUBMITTED)
    (request,) = setup.fake.requests
    batch = request.body["batch_id"]
    result = setup.post("unsubscribe", "ann", "day-1", DAY_1 - 30 * MINUTE)
    assert result.status_code == 200
    assert result.text.endswith("2 unsent messages cancelled, 1 withdrawn at the provider")
    assert setup.fake.cancels == [(batch, DAY_1 - 30 * MINUTE)]
    assert setup.fake.delivers(request.public_id or "") == 0
    assert setup.state("ann", "day-1") == (
        "cancelled", "cancelled at the provider before its send time (2026-03-03 15:00 UTC)")
    # SendGrid repeats the post: nothing is cancelled twice.
    again = setup.post("unsubscribe", "ann", "day-1", DAY_1 - 29 * MINUTE)
    assert again.status_code == 200 and len(setup.fake.cancels) == 1


def test_an_unsubscribe_inside_the_cut_off_is_recorded_as_still_delivered(
    setup: Setup,
) -> None:
    setup.world.enroll("Ann")
    setup.send(SUBMITTED)
    result = setup.post("unsubscribe", "ann", "day-1", DAY_1 - 9 * MINUTE)
    assert result.text.endswith("0 withdrawn at the provider (1 could not be)")
    assert setup.fake.cancels == []
    assert setup.state("ann", "day-1") == ("sent", None)
    (message,) = [m for m in setup.outbox.messages() if m.step_key == "day-1"]
    assert setup.outbox.events(message_id=message.message_id)[-1].detail == (
        "will be delivered at 2026-03-03 15:00 UTC: too close to its send time to cancel "
        "(SendGrid allows it until 10 minutes before)")


def test_a_refused_cancellation_is_tried_again_by_the_next_run(setup: Setup) -> None:
    setup.world.enroll("Ann")
    setup.send(SUBMITTED)
    setup.fake.cancel_status = 500
    result = setup.post("spamreport", "ann", "day-1", DAY_1 - HOUR)
    assert result.text.endswith("0 withdrawn at the provider (1 could not be)")
    assert setup.state("ann", "day-1") == ("sent", None)
    setup.fake.cancel_status = None
    setup.send(DAY_1 - HOUR + 7 * MINUTE)  # the next cron run finishes the withdrawal
    assert setup.state("ann", "day-1")[0] == "cancelled"
    assert len(setup.fake.cancels) == 1


def test_a_processed_event_settles_an_unknown_outcome(setup: Setup) -> None:
    setup.world.enroll("Ann")
    setup.fake.fault_for = lambda public_id, attempt: "drop"
    setup.send(SUBMITTED)
    assert setup.state("ann", "day-1")[0] == "unknown"
    result = setup.post("processed", "ann", "day-1", SUBMITTED + MINUTE)
    assert "1 unknown outcomes resolved" in result.text
    assert setup.state("ann", "day-1") == ("sent", None)
    assert len(setup.fake.requests) == 1


# ---------------------------------------------------------------- refusals


def test_refused_posts_change_nothing(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    setup.world.enroll("Ann")
    setup.send(SUBMITTED)
    (message,) = [m for m in setup.outbox.messages() if m.step_key == "day-1"]
    event = setup.signer.event("bounce", message.email, message.public_id, DAY_1)
    body, headers = setup.signer.post([event], DAY_1)
    key = setup.signer.public_key
    before = setup.outbox.events()
    tampered = body.replace(b"bounce", b"bounce ")
    lower = {name.lower(): value for name, value in headers.items()}
    with caplog.at_level(logging.INFO, logger="aftercare.withdrawal"):
        refusals = [
            process_webhook(setup.outbox, setup.backend, tampered, headers, key, DAY_1),
            process_webhook(setup.outbox, setup.backend, body, {}, key, DAY_1),
            process_webhook(setup.outbox, setup.backend, body, headers, key,
                            DAY_1 + 11 * MINUTE),  # stale: a replay
            process_webhook(setup.outbox, setup.backend, body, headers, "not a key", DAY_1),
        ]
        bad_body, bad_headers = setup.signer.post([{"event": "bounce"}], DAY_1)
        malformed = process_webhook(setup.outbox, setup.backend, bad_body, bad_headers, key,
                                    DAY_1)
        accepted = process_webhook(setup.outbox, setup.backend, body, lower, key, DAY_1)
    assert refusals == [
        WebhookResult(403, "signature refused"),
        WebhookResult(403, "signature refused"),
        WebhookResult(403, "signature refused"),
        WebhookResult(500, "webhook verification key is not valid"),
    ]
    assert malformed == WebhookResult(
        400, "webhook body[0].sg_event_id: expected a non-empty string, received nothing")
    status, text = accepted  # header names in any case, as a web framework gives them
    assert status == 200 and "1 addresses suppressed" in text
    assert setup.outbox.events()[: len(before)] == before
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for personal in ("ann", "example.com", message.public_id):
        assert personal not in logged


def test_a_batch_cancelled_by_an_unanswered_request_is_recognised(setup: Setup) -> None:
    setup.world.enroll("Ann")
    setup.send(SUBMITTED)
    (request,) = setup.fake.requests
    # An earlier cancellation reached SendGrid, but its answer was lost.
    setup.fake.batches[request.body["batch_id"]].cancelled_at = SUBMITTED
    result = setup.post("unsubscribe", "ann", "day-1", DAY_1 - HOUR)
    assert result.text.endswith("1 withdrawn at the provider")
    assert setup.state("ann", "day-1") == (
        "cancelled", "cancelled at the provider before its send time (2026-03-03 15:00 UTC); "
        "its batch was already cancelled")


# ---------------------------------------------------------------- reminders of some enrolments


def test_cancelling_only_the_reminders_withdraws_the_held_one_and_keeps_clinical_emails(
    setup: Setup,
) -> None:
    ann, ben = setup.world.enroll("Ann"), setup.world.enroll("Ben")
    for due in (DAY_1, WEEK_2):
        setup.send(due - 2 * HOUR + 7 * MINUTE)
    setup.send(MONTH_3 - 2 * HOUR + 7 * MINUTE)  # SendGrid now holds both month-3 reminders
    held = {r.public_id: r.body["batch_id"] for r in setup.fake.requests}
    (ann_reminder,) = [m for m in setup.outbox.messages(email="ann@example.com")
                       if m.step_key == "month-3"]
    reason = "not needed: the patient booked their next visit for 2026-06-20"
    setup.fake.now = MONTH_3 - HOUR
    stopped = cancel(setup.outbox, setup.backend, None, MONTH_3 - HOUR, "api:booking",
                     enrollments=[ann.enrollment_id], kind="marketing", reason=reason)
    assert stopped == Stopped(0, WithdrawReport(cancelled=1))
    assert setup.fake.cancels == [(held[ann_reminder.public_id], MONTH_3 - HOUR)]
    assert setup.state("ann", "month-3") == (
        "cancelled", f"{reason}: cancelled at the provider before its send time "
        "(2026-06-02 14:00 UTC)")
    assert setup.state("ann", "day-1")[0] == setup.state("ann", "week-2")[0] == "sent"
    assert setup.state("ben", "month-3") == ("sent", None)
    assert ben.enrollment_id != ann.enrollment_id
