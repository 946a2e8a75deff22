"""End to end: 1,000 patients, cron every hour for three months, a faulty local SendGrid.

Each message's first request may meet a fault (429, 500, 503, a slow answer beyond the client's
timeout, a connection dropped after the request); later requests succeed. With a two-hour
lookahead and an hourly cron every message is seen twice before it is due, so a refused first
request is retried in time, and every message that reaches SendGrid carries its exact due time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aftercare.content.model import Project
from aftercare.content.values import EmailAddress, ZoneName
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.enrol.enrolment import plan_for
from aftercare.outbox.records import Enrollment, MessageView
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer
from aftercare.send.dispatch import DispatchReport, send_due
from aftercare.send.webhook import process_webhook
from tests.delivery.fake_sendgrid import (
    API_KEY,
    FakeSendGrid,
    Fault,
    WebhookSigner,
    threaded_server,
)
from tests.projects import make_project

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
KEY = b"k" * 32
TREATMENT_DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=d) for d in range(5)]  # Mon to Fri
PER_DAY = 200
STEPS = ("day-1", "week-2", "month-3")
FINAL = {"sent", "failed", "cancelled", "unknown"}
MAX_SLOW, MAX_DROPPED = 3, 4
Action = Callable[[dt.datetime], None]


def first_request_faults() -> Callable[[str, int], Fault | None]:
    """About 1.5 % each of 429, 500 and 503, and a few slow or dropped answers (unknown)."""
    seen: Counter[Fault] = Counter()

    def fault_for(public_id: str, attempt: int) -> Fault | None:
        if attempt:
            return None
        roll = int(public_id[:6], 16) % 1000
        fault: Fault | None = None
        if roll < 15:
            fault = "429"
        elif roll < 30:
            fault = "500"
        elif roll < 45:
            fault = "503"
        elif roll < 55 and seen["slow"] < MAX_SLOW:
            fault = "slow"
        elif roll < 65 and seen["drop"] < MAX_DROPPED:
            fault = "drop"
        if fault is not None:
            seen[fault] += 1
        return fault

    return fault_for


@dataclasses.dataclass
class Clinic:
    project: Project
    outbox: Outbox
    renderer: EmailRenderer
    backend: SendGridBackend
    fake: FakeSendGrid
    signer: WebhookSigner
    due: dict[tuple[str, str], dt.datetime]  # (email, step) -> planned due time
    pauses: list[float]
    reports: list[DispatchReport]

    def run_cron(self, at: dt.datetime) -> None:
        self.fake.now = at
        report = send_due(self.outbox, self.project, self.renderer, self.backend, at, 10_000,
                          pause=self.pauses.append)
        self.reports.append(report)

    def enroll_day(self, day: dt.date, at: dt.datetime) -> None:
        items = []
        for n in range(PER_DAY):
            enrollment = Enrollment(
                email=EmailAddress(f"p{day:%d}-{n:03d}@example.com"),
                first_name=f"Pat{n}",
                campaign="botox-cosmetic",
                treated_on=day,
                timezone=ZoneName("America/New_York"),
                language="en",
                marketing_consent=n % 5 != 0,  # month-3 only with consent
                recorded_by="staff:test",
                consent_wording_version="v1",
            )
            items.append((enrollment, plan_for(self.project, enrollment, at)))
        for (enrollment, _), result in zip(items, self.outbox.enroll_many(items, at), strict=True):
            for entry in result.messages:
                self.due[(enrollment.email, entry.step_key)] = entry.due_at

    def view(self, day: dt.date, n: int, step: str) -> MessageView:
        (found,) = [m for m in self.outbox.messages(email=f"p{day:%d}-{n:03d}@example.com")
                    if m.step_key == step]
        return found

    def post(self, kind: str, views: list[MessageView], at: dt.datetime, **extra: object) -> str:
        self.fake.now = at
        events = [self.signer.event(kind, v.email, v.public_id, at, **extra) for v in views]
        body, headers = self.signer.post(events, at)
        status, text = process_webhook(self.outbox, self.backend, body, headers,
                                       self.signer.public_key, at)
        assert status == 200, text
        return text


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[Clinic]:
    project = make_project(tmp_path / "project")
    steps = {step.key for step in project.campaigns["botox-cosmetic"].steps}
    with threaded_server() as server, Outbox.open(tmp_path / "var" / "aftercare.db") as outbox:
        # Durable against a crashed process still, not against power loss: this test is about
        # what is sent, and an fsync per commit would make it five times slower.
        outbox._db.execute("PRAGMA synchronous = NORMAL")
        fake = FakeSendGrid(
            server, sender="care@clinic.example", reply_to="desk@clinic.example",
            step_keys=steps, forbidden=("botox-cosmetic", "botox-migraine"),
            fault_for=first_request_faults(),
        )
        backend = SendGridBackend(
            API_KEY, host=fake.host, timeout=1.0, clock=lambda: fake.now,
            rand=random.Random(7).random,
        )
        renderer = EmailRenderer(project, KEY)
        yield Clinic(project, outbox, renderer, backend, fake, WebhookSigner(), {}, [], [])


def test_a_thousand_patients_get_each_message_once_on_time_through_faults(
    clinic: Clinic,
) -> None:
    started = time.monotonic()
    bounced = [(TREATMENT_DAYS[0], n) for n in range(10)]
    withdrawn = [(TREATMENT_DAYS[1], n) for n in range(10)]
    too_close = [(TREATMENT_DAYS[2], n) for n in range(1, 6)]
    left_group = [(TREATMENT_DAYS[3], n) for n in range(1, 6)]

    def first_due(patients: list[tuple[dt.date, int]], step: str) -> dt.datetime:
        return clinic.due[(f"p{patients[0][0]:%d}-{patients[0][1]:03d}@example.com", step)]

    def bounce(at: dt.datetime) -> None:
        views = [clinic.view(day, n, "day-1") for day, n in bounced]
        text = clinic.post("bounce", views, at, reason="550 5.1.1 <x@example.com> unknown user",
                           type="bounce")
        assert "10 addresses suppressed" in text
        # SendGrid repeats posts: nothing changes the second time.
        body, headers = clinic.signer.post(
            [clinic.signer.event("bounce", v.email, v.public_id, at) for v in views[:1]], at
        )
        process_webhook(clinic.outbox, clinic.backend, body, headers, clinic.signer.public_key, at)
        again = process_webhook(clinic.outbox, clinic.backend, body, headers,
                                clinic.signer.public_key, at)
        assert again.text.startswith("1 events: 1 repeated")

    def unsubscribe(patients: list[tuple[dt.date, int]], kind: str) -> Action:
        def post(at: dt.datetime) -> None:
            clinic.post(kind, [clinic.view(day, n, "week-2") for day, n in patients], at)

        return post

    def enroll(day: dt.date) -> Action:
        return lambda at: clinic.enroll_day(day, at)

    def resolve_unknowns(at: dt.datetime) -> None:
        unknown = clinic.outbox.messages(status="unknown")
        assert unknown, "the slow and dropped answers should have left some unknown"
        text = clinic.post("processed", unknown[::2], at)
        assert f"{len(unknown[::2])} unknown outcomes resolved" in text

    # At 1 pm in New York on each treatment day, the day's patients are enrolled at checkout.
    actions = [(dt.datetime.combine(day, dt.time(18, 0), UTC), enroll(day))
               for day in TREATMENT_DAYS]
    actions.append((dt.datetime(2026, 3, 3, 17, 30, tzinfo=UTC), bounce))
    actions.append((dt.datetime(2026, 3, 17, 13, 30, tzinfo=UTC),
                    unsubscribe(withdrawn, "unsubscribe")))
    actions.append((dt.datetime(2026, 3, 18, 13, 55, tzinfo=UTC),
                    unsubscribe(too_close, "unsubscribe")))
    actions.append((dt.datetime(2026, 3, 19, 16, 0, tzinfo=UTC),
                    unsubscribe(left_group, "group_unsubscribe")))
    actions.append((dt.datetime(2026, 3, 25, 12, 0, tzinfo=UTC), resolve_unknowns))
    actions.sort(key=lambda action: action[0])

    tick = dt.datetime(2026, 3, 2, 0, 7, tzinfo=UTC)  # cron: 7 minutes past every hour
    while tick < dt.datetime(2026, 6, 9, tzinfo=UTC):
        while actions and actions[0][0] <= tick:
            at, act = actions.pop(0)
            act(at)
        clinic.run_cron(tick)
        tick += HOUR
    assert not actions

    fake, outbox = clinic.fake, clinic.outbox
    assert first_due(withdrawn, "week-2") == dt.datetime(2026, 3, 17, 14, 0, tzinfo=UTC)
    assert first_due(too_close, "week-2") == dt.datetime(2026, 3, 18, 14, 0, tzinfo=UTC)
    assert first_due(bounced, "day-1") == dt.datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    assert fake.problems == []
    messages = outbox.messages()
    states = Counter(m.state for m in messages)
    assert set(states) <= FINAL, states
    faults = Counter(r.fault for r in fake.requests)

    # Every message that reached SendGrid did so exactly once, with its exact due time; every
    # other request for it was refused before (429, 5xx) and so could not have sent it.
    for message in messages:
        attempts = fake.attempts(message.public_id)
        reached = fake.reached(message.public_id)
        if message.state == "cancelled" and not reached:
            assert attempts == [], message
            continue
        assert len(reached) == 1, (message, attempts)
        assert attempts[-1] is reached[0]
        assert all(r.fault in ("429", "500", "503") for r in attempts[:-1])
        due = clinic.due[(message.email, message.step_key)]
        assert reached[0].body["send_at"] == int(due.timestamp()), message
        assert reached[0].body["categories"] == ["aftercare", message.step_key]
        assert fake.delivers(message.public_id) <= 1
    planned = sum(1 for m in messages if m.last_error != "skipped: no consent to reminders")
    assert planned == 2800 and len(messages) == 3000

    # Slow and dropped answers left messages unknown; none was sent again, and the provider's
    # processed events settled half of them.
    uncertain = {r.public_id for r in fake.requests if r.fault in ("slow", "drop")}
    assert len(uncertain) == faults["slow"] + faults["drop"] >= 1
    assert {m.public_id for m in messages if m.state == "unknown"} < uncertain
    for public_id in uncertain:
        view = outbox.message_by_public_id(str(public_id))
        assert view is not None and view.state in ("unknown", "sent", "cancelled")

    # Bounced after day 1: nothing more was ever requested for them.
    for day, n in bounced:
        later = [clinic.view(day, n, step) for step in ("week-2", "month-3")]
        assert [m.state for m in later] == ["cancelled", "cancelled"]
        assert all(fake.attempts(m.public_id) == [] for m in later)
        assert outbox.is_suppressed(f"p{day:%d}-{n:03d}@example.com")
    # Unsubscribed while SendGrid held week-2: its batch was cancelled, and SendGrid drops it.
    for day, n in withdrawn:
        week = clinic.view(day, n, "week-2")
        assert (week.state, week.last_error) == (
            "cancelled", "cancelled at the provider before its send time (2026-03-17 14:00 UTC)")
        assert week.provider_batch in fake.cancelled_batches()
        assert fake.delivers(week.public_id) == 0
    assert len(fake.cancels) == len(withdrawn)
    # Unsubscribed five minutes before: too late to cancel, recorded as such, delivered once.
    for day, n in too_close:
        week = clinic.view(day, n, "week-2")
        assert week.state in ("sent", "unknown")
        assert fake.delivers(week.public_id) == 1
        assert outbox.events(message_id=week.message_id)[-1].detail == (
            "will be delivered at 2026-03-18 14:00 UTC: too close to its send time to cancel "
            "(SendGrid allows it until 10 minutes before)")
    for day, n in [*withdrawn, *too_close, *left_group]:
        month = clinic.view(day, n, "month-3")
        assert month.state == "cancelled" and fake.attempts(month.public_id) == []

    # Rate limits were waited for (until the reset SendGrid named: 20 s, less what the run had
    # already waited), never hammered.
    assert clinic.pauses and all(1.0 <= pause <= 20.0 for pause in clinic.pauses)
    assert 20.0 in clinic.pauses
    assert not any(report.rate_limited for report in clinic.reports)
    sent = sum(1 for r in fake.requests if r.reached)
    assert sent == len(fake.requests) - faults["429"] - faults["500"] - faults["503"]
    elapsed = time.monotonic() - started
    print(  # shown with -s: the numbers behind the report
        f"\n{len(messages)} messages, {len(fake.requests)} mail/send requests "
        f"({dict(faults)}), {len(fake.batches)} batches, {len(fake.cancels)} cancelled, "
        f"{states['unknown']} unknown, {len(clinic.reports)} cron runs, {elapsed:.1f} s"
    )
