"""Dispatch: each due message goes out once, on time; crashes and errors never cause a resend.

Tests taking ``world`` or ``database`` run on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import logging
import os
import signal
import subprocess
import sys
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from aftercare.content.model import Campaign, Project, Step
from aftercare.delivery import Backend, Outcome, OutgoingEmail
from aftercare.delivery.files import FileBackend
from aftercare.enrol.enrolment import enroll_one
from aftercare.enrol.rules import parse_enrollment
from aftercare.errors import RenderError
from aftercare.outbox.database import Location
from aftercare.outbox.records import Claim, EnrollResult
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer, Recipient, RenderedEmail
from aftercare.render.tokens import verify
from aftercare.send.dispatch import DispatchReport, send_due
from tests.conftest import ROOT
from tests.postgres import OutboxDatabase
from tests.projects import make_project

UTC = dt.UTC
KEY = b"k" * 32
ENROLLED_AT = dt.datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # 1 pm in New York, treatment day
SECOND = dt.timedelta(seconds=1)
# Treated Monday 2 March 2026 in New York; 10:00 local (DST starts on 8 March).
DAY_1 = dt.datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
WEEK_2 = dt.datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
MONTH_3 = dt.datetime(2026, 6, 2, 14, 0, tzinfo=UTC)


@dataclasses.dataclass
class World:
    root: Path
    project: Project
    outbox: Outbox
    renderer: EmailRenderer
    files: FileBackend

    @property
    def mail_dir(self) -> Path:
        return self.files.directory

    def enroll(self, name: str = "Ann", address: str | None = None) -> EnrollResult:
        fields = {
            "email": address or f"{name.lower()}@example.com",
            "first_name": name,
            "campaign": "botox-cosmetic",
            "treated_on": "2026-03-02",
            "marketing_consent": "yes",
        }
        enrollment = parse_enrollment(fields, self.project, ENROLLED_AT, "cli:test")
        return enroll_one(self.outbox, self.project, enrollment, ENROLLED_AT)

    def send(
        self, now: dt.datetime, backend: Backend | None = None, limit: int = 100,
        project: Project | None = None,
    ) -> DispatchReport:
        return send_due(
            self.outbox, project or self.project, self.renderer, backend or self.files, now, limit
        )

    def send_every_step(
        self, after: dt.timedelta = dt.timedelta(0), backend: Backend | None = None
    ) -> list[DispatchReport]:
        """Run the sender at each step's due time (plus ``after``), as cron would."""
        return [self.send(due + after, backend) for due in (DAY_1, WEEK_2, MONTH_3)]

    def emls(self) -> list[str]:
        if not self.mail_dir.exists():
            return []
        return sorted(p.name for p in self.mail_dir.iterdir())

    def states(self) -> dict[str, str]:
        return {f"{m.email} {m.step_key}": m.state for m in self.outbox.messages()}


def open_world(
    root: Path, outbox_class: type[Outbox] = Outbox, database: Location | None = None
) -> World:
    """The sample project in ``root`` and its outbox (an SQLite file in ``root`` by default)."""
    project = make_project(root / "project")
    return World(
        root=root,
        project=project,
        outbox=outbox_class.open(database or root / "var" / "aftercare.db"),
        renderer=EmailRenderer(project, KEY),
        files=FileBackend(root / "var" / "outbox"),
    )


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    return message


class ScriptedBackend:
    """Answers every send with the same outcome, or raises; remembers what it was given."""

    name = "scripted"

    def __init__(self, outcome: Outcome | None = None, error: Exception | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.seen: list[OutgoingEmail] = []

    def send(self, email: OutgoingEmail) -> Outcome:
        self.seen.append(email)
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


# ---------------------------------------------------------------- the happy path


def test_each_step_goes_out_once_at_its_due_time_and_never_before(world: World) -> None:
    result = world.enroll()
    assert [m.due_at for m in result.messages] == [DAY_1, WEEK_2, MONTH_3]
    by_step = {m.step_key: m for m in world.outbox.messages()}
    sent: list[str] = []
    for step, due in (("day-1", DAY_1), ("week-2", WEEK_2), ("month-3", MONTH_3)):
        early = world.send(due - SECOND)
        assert early.claimed == ()
        assert world.emls() == sorted(sent)
        on_time = world.send(due)
        assert (on_time.claimed, on_time.sent) == ((by_step[step].message_id,), 1)
        sent.append(f"{by_step[step].public_id}.eml")
        assert world.emls() == sorted(sent)
        again = world.send(due + dt.timedelta(hours=1))
        assert again == DispatchReport(claimed=())
        assert world.emls() == sorted(sent)
    assert world.states() == {
        "ann@example.com day-1": "sent",
        "ann@example.com week-2": "sent",
        "ann@example.com month-3": "sent",
    }


def test_running_again_much_later_sends_nothing_new(world: World) -> None:
    world.enroll()
    first = world.send_every_step()
    assert [(len(r.claimed), r.sent) for r in first] == [(1, 1), (1, 1), (1, 1)]
    files = {name: (world.mail_dir / name).read_bytes() for name in world.emls()}
    second = world.send(MONTH_3 + dt.timedelta(days=100))
    assert second == DispatchReport(claimed=())
    assert {name: (world.mail_dir / name).read_bytes() for name in world.emls()} == files


def test_the_eml_is_the_rendered_email_for_that_patient_and_step(world: World) -> None:
    world.enroll("Zoë", "zoe@example.com")
    world.send(DAY_1)
    world.send(WEEK_2)
    day_1, week_2, month_3 = world.outbox.messages()
    assert (day_1.state, week_2.state, month_3.state) == ("sent", "sent", "scheduled")
    assert week_2.provider_id == f"file:{week_2.public_id}.eml"
    assert week_2.content_hash is not None and len(week_2.content_hash) == 64
    assert week_2.template_version is not None
    assert week_2.sent_at == WEEK_2
    message = read_eml(world.mail_dir / f"{week_2.public_id}.eml")
    assert message["To"] == "Zoë <zoe@example.com>"
    assert message["From"] == "Test Clinic <care@clinic.example>"
    assert message["Reply-To"] == "desk@clinic.example"
    assert message["Message-ID"] == f"<{week_2.public_id}@clinic.example>"
    assert message["Date"].datetime == WEEK_2
    # The unsubscribe link identifies this message, and only with the clinic's key.
    url = message["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://care.clinic.example/unsubscribe?t=")
    assert verify(url.split("t=", 1)[1], KEY) == week_2.public_id
    alternative, ics = message.iter_parts()
    assert isinstance(alternative, EmailMessage)
    text, html = alternative.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert "Hello Zoë," in text.get_content()
    assert "the week-2 email" in html.get_content()
    assert ics.get_content_type() == "text/calendar"
    # day-1 has no calendar entry: no attachment, just the two alternatives.
    plain = read_eml(world.mail_dir / f"{day_1.public_id}.eml")
    assert plain.get_content_type() == "multipart/alternative"


class NeedsTheWriteLock:
    """A backend that proves no transaction is open while it sends: it takes the write lock
    (SQLite), or every message's row (PostgreSQL), failing at once if dispatch held one."""

    name = "lock-checking"

    def __init__(self, database: OutboxDatabase, inner: FileBackend) -> None:
        self.database = database
        self.inner = inner

    def send(self, email: OutgoingEmail) -> Outcome:
        self.database.lock_every_message()
        return self.inner.send(email)


def test_no_transaction_is_held_while_the_backend_sends(
    world: World, database: OutboxDatabase
) -> None:
    world.enroll()
    backend = NeedsTheWriteLock(database, world.files)
    assert [r.sent for r in world.send_every_step(backend=backend)] == [1, 1, 1]


def test_a_message_past_its_steps_grace_is_not_sent(world: World) -> None:
    world.enroll()
    # day-1 has 2 days of grace: still sent at the very end of it...
    assert world.send(DAY_1 + dt.timedelta(days=2)).sent == 1
    # ...but week-2 (7 days of grace) is dropped when the sender wakes up 8 days late.
    late = world.send(WEEK_2 + dt.timedelta(days=8))
    assert (late.too_late, late.sent) == (1, 0)
    _, week_2, month_3 = world.outbox.messages()
    assert (week_2.state, week_2.last_error) == (
        "failed", "not sent: more than 7 days late (was due 2026-03-16 14:00 UTC)"
    )
    assert month_3.state == "scheduled"
    assert len(world.emls()) == 1


def test_limit_caps_one_run(world: World) -> None:
    for name in ("Ann", "Ben", "Cat"):
        world.enroll(name)
    report = world.send(DAY_1, limit=2)
    assert (len(report.claimed), report.sent) == (2, 2)
    assert world.send(DAY_1).sent == 1
    with pytest.raises(ValueError, match="limit"):
        world.send(DAY_1, limit=0)


def test_naive_now_is_a_bug(world: World) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        world.send(dt.datetime(2026, 3, 3, 15, 0))


# ---------------------------------------------------------------- outcomes other than sent


def test_a_backend_that_raises_leaves_the_message_unknown_and_it_is_never_resent(
    world: World,
) -> None:
    world.enroll()
    raising = ScriptedBackend(error=ConnectionResetError("ann@example.com: connection reset"))
    report = world.send(DAY_1, backend=raising)
    assert (len(report.claimed), report.unknown, report.sent) == (1, 1, 0)
    (day_1, *_) = world.outbox.messages()
    assert day_1.state == "unknown"
    assert day_1.last_error == "scripted backend raised ConnectionResetError"
    assert world.send(DAY_1 + dt.timedelta(days=1)).claimed == ()
    assert world.emls() == []
    assert len(raising.seen) == 1


@pytest.mark.parametrize(
    ("outcome", "state", "counted", "last_error"),
    [
        (Outcome("failed", None, "400 bad request: from address"), "failed", "failed",
         "400 bad request: from address"),
        (Outcome("unknown", None, "timed out after 10 s"), "unknown", "unknown",
         "timed out after 10 s"),
    ],
)
def test_outcomes_other_than_sent_are_recorded(
    world: World, outcome: Outcome, state: str, counted: str, last_error: str
) -> None:
    world.enroll()
    report = world.send(DAY_1, backend=ScriptedBackend(outcome))
    assert getattr(report, counted) == 1
    assert report.sent == 0
    (day_1, *_) = world.outbox.messages()
    assert (day_1.state, day_1.last_error) == (state, last_error)
    assert world.send(DAY_1 + dt.timedelta(days=1)).claimed == ()


def test_a_retry_outcome_puts_the_message_back_until_the_time_given(world: World) -> None:
    world.enroll()
    retry_at = DAY_1 + dt.timedelta(hours=1)
    report = world.send(DAY_1, backend=ScriptedBackend(
        Outcome("retry", None, "429 too many requests", retry_at)))
    assert (report.retried, report.sent) == (1, 0)
    day_1, *_ = world.outbox.messages()
    assert (day_1.state, day_1.last_error, day_1.due_at) == (
        "scheduled", "429 too many requests", retry_at)
    assert world.send(retry_at - dt.timedelta(seconds=1)).claimed == ()
    assert world.send(retry_at).sent == 1
    assert len(world.emls()) == 1


def test_a_step_removed_from_the_campaign_since_enrolment_fails_with_the_reason(
    world: World,
) -> None:
    world.enroll()
    campaign = world.project.campaigns["botox-cosmetic"]
    without_day_1 = dataclasses.replace(campaign, steps=campaign.steps[1:])
    changed = dataclasses.replace(
        world.project, campaigns={**world.project.campaigns, "botox-cosmetic": without_day_1}
    )
    report = world.send(DAY_1, project=changed)
    assert (report.failed, report.sent) == (1, 0)
    (day_1, *_) = world.outbox.messages()
    assert day_1.state == "failed"
    assert day_1.last_error == (
        "not sent: step removed from the clinic's content since enrolment "
        "(campaign 'botox-cosmetic', step 'day-1')"
    )
    assert world.emls() == []


def test_a_removed_campaign_fails_its_messages(world: World) -> None:
    world.enroll()
    gone = dataclasses.replace(world.project, campaigns={})
    assert world.send(DAY_1, project=gone).failed == 1
    (day_1, *_) = world.outbox.messages()
    assert day_1.last_error == (
        "not sent: campaign removed from the clinic's content since enrolment "
        "(campaign 'botox-cosmetic', step 'day-1')"
    )


class FailsFirstRender:
    """A renderer whose first render fails, as a broken template would."""

    def __init__(self, inner: EmailRenderer) -> None:
        self.inner = inner
        self.calls = 0

    def render(self, campaign: Campaign, step: Step, recipient: Recipient) -> RenderedEmail:
        self.calls += 1
        if self.calls == 1:
            raise RenderError(f"templates/email/note.html: cannot greet {recipient.first_name}")
        return self.inner.render(campaign, step, recipient)


def test_a_render_failure_fails_that_message_and_the_run_goes_on(world: World) -> None:
    world.enroll("Ann")
    world.enroll("Ben")
    renderer = FailsFirstRender(world.renderer)
    report = send_due(world.outbox, world.project, renderer, world.files, DAY_1, 10)
    assert (report.failed, report.sent) == (1, 1)
    failed = world.outbox.messages(status="failed")
    assert [m.last_error for m in failed] == ["not sent: rendering failed (RenderError)"]
    assert len(world.emls()) == 1


def test_an_address_unsubscribed_before_its_time_is_never_claimed(world: World) -> None:
    world.enroll()
    world.outbox.unsubscribe("ann@example.com", DAY_1 - SECOND, source="link", actor="patient")
    assert world.send(MONTH_3).claimed == ()
    assert set(world.states().values()) == {"cancelled"}
    assert world.emls() == []


class UnsubscribesAfterClaim(Outbox):
    """An outbox where the patient unsubscribes between the claim and the send."""

    def claim_due(
        self, now: dt.datetime, limit: int, horizon: dt.datetime | None = None
    ) -> list[Claim]:
        claims = super().claim_due(now, limit, horizon)
        for claim in claims:
            self.unsubscribe(claim.email, now, source="link", actor="patient")
        return claims


def test_an_address_unsubscribed_after_the_claim_is_not_sent(
    tmp_path: Path, database: OutboxDatabase
) -> None:
    racing = open_world(tmp_path, UnsubscribesAfterClaim, database.location)
    try:
        racing.enroll()
        report = racing.send(DAY_1)
        assert (report.cancelled, report.sent) == (1, 0)
        day_1, week_2, month_3 = racing.outbox.messages()
        assert (day_1.state, day_1.last_error) == (
            "cancelled", "the address unsubscribed before sending"
        )
        assert (week_2.state, month_3.state) == ("cancelled", "cancelled")
        assert racing.emls() == []
    finally:
        racing.outbox.close()


# ---------------------------------------------------------------- crashes


def test_a_claim_left_by_a_crashed_run_becomes_unknown_and_is_not_resent(world: World) -> None:
    world.enroll()
    (stranded,) = world.outbox.claim_due(DAY_1, 1)  # a run that died before sending
    within_lease = world.send(DAY_1 + dt.timedelta(minutes=14))
    assert within_lease == DispatchReport(claimed=())
    after_lease = world.send(DAY_1 + dt.timedelta(minutes=16))
    assert (after_lease.released, after_lease.claimed) == (1, ())
    (day_1, *_) = world.outbox.messages()
    assert (day_1.message_id, day_1.state) == (stranded.message_id, "unknown")
    assert [r.sent for r in world.send_every_step()] == [0, 1, 1]
    assert world.states()["ann@example.com day-1"] == "unknown"
    assert len(world.emls()) == 2


class KillsItself:
    """Writes the file like the real backend, then dies by SIGKILL after the Nth message."""

    name = "file"

    def __init__(self, inner: FileBackend, kill_after: int) -> None:
        self.inner = inner
        self.kill_after = kill_after
        self.count = 0

    def send(self, email: OutgoingEmail) -> Outcome:
        outcome = self.inner.send(email)
        self.count += 1
        if self.count == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome


def run_until_killed(root: Path, database: str, now: dt.datetime, kill_after: int) -> None:
    """The child process: send what is due, one at a time, with a backend that kills the
    process mid-run (tests/test_dispatch_crash.py kills parallel runs)."""
    world = open_world(root, database=database)
    one_at_a_time = dataclasses.replace(world.project.clinic.delivery, max_parallel=1)
    clinic = dataclasses.replace(world.project.clinic, delivery=one_at_a_time)
    project = dataclasses.replace(world.project, clinic=clinic)
    world.send(now, backend=KillsItself(world.files, kill_after), project=project)
    raise SystemExit("the backend should have killed this process")


CHILD = """
import datetime as dt, sys
from pathlib import Path
from tests.send.test_dispatch import run_until_killed
run_until_killed(Path(sys.argv[1]), sys.argv[2], dt.datetime.fromisoformat(sys.argv[3]),
                 int(sys.argv[4]))
"""


@pytest.mark.parametrize("kill_after", [1, 3])
def test_a_sender_killed_mid_run_never_causes_a_message_to_be_sent_twice(
    world: World, database: OutboxDatabase, kill_after: int
) -> None:
    names = ("Ann", "Ben", "Cat", "Dan", "Eve")
    for name in names:
        world.enroll(name)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(world.root), str(database.location), DAY_1.isoformat(),
         str(kill_after)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    def check_nothing_is_both_sent_and_sendable() -> None:
        files = set(world.emls())
        for message in world.outbox.messages():
            delivered = f"{message.public_id}.eml" in files or message.state == "sent"
            if delivered:
                assert message.state in ("sent", "sending", "unknown"), message

    check_nothing_is_both_sent_and_sendable()
    states = [m.state for m in world.outbox.messages() if m.step_key == "day-1"]
    assert states.count("sent") == kill_after - 1
    assert states.count("sending") == 1  # written, then killed before it was recorded
    assert len(world.emls()) == kill_after

    # A run within the lease leaves the in-flight message alone and sends the rest.
    soon = world.send(DAY_1 + dt.timedelta(minutes=1))
    assert (soon.released, soon.sent) == (0, len(names) - kill_after)
    check_nothing_is_both_sent_and_sendable()
    # After the lease the in-flight message becomes unknown; it is not sent again.
    later = world.send(DAY_1 + dt.timedelta(minutes=20))
    assert (later.released, later.claimed) == (1, ())
    check_nothing_is_both_sent_and_sendable()
    day_1_files = world.emls()
    assert len(day_1_files) == len(names)

    # Run through the whole campaign: everything ends sent or unknown, each file once.
    world.send_every_step(after=dt.timedelta(hours=1))
    messages = world.outbox.messages()
    assert {m.state for m in messages} <= {"sent", "cancelled", "unknown"}
    unknown = [m for m in messages if m.state == "unknown"]
    assert [m.step_key for m in unknown] == ["day-1"]
    assert set(world.emls()) == {f"{m.public_id}.eml" for m in messages if m.state != "cancelled"}
    assert len(world.emls()) == len(names) * 3
    assert world.send(MONTH_3 + dt.timedelta(days=30)).claimed == ()


# ---------------------------------------------------------------- logs


def test_logs_name_message_ids_and_counts_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.enroll("Ann")
    world.enroll("Ben")
    (stranded,) = world.outbox.claim_due(DAY_1, 1)
    raising = ScriptedBackend(error=OSError("ben@example.com refused"))
    with caplog.at_level(logging.DEBUG, logger="aftercare.dispatch"):
        world.send(DAY_1 + dt.timedelta(hours=1), backend=raising)
        world.send(WEEK_2)
    logged = [r.getMessage() for r in caplog.records if r.name == "aftercare.dispatch"]
    ids = {f"{m.email} {m.step_key}": m.message_id for m in world.outbox.messages()}
    assert stranded.message_id == ids["ann@example.com day-1"]
    # The two week-2 emails are sent in parallel: their lines come in the order they finish.
    assert logged[:3] + sorted(logged[3:5]) + logged[5:] == [
        "1 message(s) left sending by an earlier run marked unknown",
        f"message {ids['ben@example.com day-1']}: unknown",
        "dispatch: 1 due: 0 sent, 0 failed, 1 unknown, 0 to retry later, "
        "0 cancelled, 0 too late; 1 left unfinished by an earlier run marked unknown",
        *sorted([f"message {ids['ann@example.com week-2']}: sent",
                 f"message {ids['ben@example.com week-2']}: sent"]),
        "dispatch: 2 due: 2 sent, 0 failed, 0 unknown, 0 to retry later, "
        "0 cancelled, 0 too late",
    ]
    text = "\n".join(logged)
    for personal in ("Ann", "Ben", "ann@", "ben@", "example.com", "botox", "2026-03-02"):
        assert personal not in text
