"""send-due killed at random points, and two started at once: no message twice, none lost.

The sender runs in a child process against a local SendGrid look-alike in this one, and is
killed by SIGKILL either while the server holds one of its requests (the request reached
SendGrid) or a random moment after its first request (in a claim, a render, a commit, a send).
Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aftercare.content.load import load_project
from aftercare.content.values import EmailAddress, ZoneName
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.enrol.enrolment import plan_for
from aftercare.outbox.records import Enrollment
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer
from aftercare.send.dispatch import DispatchReport, send_due
from tests.conftest import ROOT
from tests.delivery.fake_sendgrid import API_KEY, FakeSendGrid, threaded_server
from tests.postgres import OutboxDatabase
from tests.projects import make_project

UTC = dt.UTC
KEY = b"k" * 32
DAY_1 = dt.datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York, the day after
NOW = DAY_1 - dt.timedelta(minutes=90)  # inside the two-hour lookahead: held until DAY_1
PATIENTS = 40
FINAL = {"sent", "failed", "cancelled", "unknown"}

CHILD = """
import sys
from tests.send.test_dispatch_crash import run_sender
run_sender(*sys.argv[1:])
"""


def run_sender(root: str, database: str, host: str, now: str, start_file: str = "") -> None:
    """The child process: one send-due run, as the CLI would do it."""
    if start_file:  # wait for the signal to start, so that two senders start together
        while not os.path.exists(start_file):
            time.sleep(0.002)
    project = make_project(Path(root) / "project")
    moment = dt.datetime.fromisoformat(now)
    backend = SendGridBackend(API_KEY, host=host, timeout=5.0, clock=lambda: moment)
    with Outbox.open(database) as outbox:
        report = send_due(outbox, project, EmailRenderer(project, KEY), backend, moment, 1000)
    print(",".join(map(str, report.claimed)))


def start_sender(
    root: Path, database: OutboxDatabase, fake: FakeSendGrid, start_file: Path | None = None
) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", CHILD, str(root), str(database.location), fake.host,
               NOW.isoformat()]
    if start_file is not None:
        command.append(str(start_file))
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def enroll(root: Path, database: OutboxDatabase, patients: int) -> None:
    project = make_project(root / "project")
    at = DAY_1 - dt.timedelta(hours=22)  # treatment day, 1 pm in New York
    items = []
    for n in range(patients):
        enrollment = Enrollment(
            email=EmailAddress(f"p{n:03d}@example.com"), first_name=f"Pat{n}",
            campaign="botox-cosmetic", treated_on=dt.date(2026, 3, 2),
            timezone=ZoneName("America/New_York"), language="en", marketing_consent=True,
            recorded_by="staff:test", consent_wording_version="v1",
        )
        items.append((enrollment, plan_for(project, enrollment, at)))
    with Outbox.open(database.location) as outbox:
        outbox.enroll_many(items, at)


def finish(
    root: Path, database: OutboxDatabase, fake: FakeSendGrid, after: dt.timedelta
) -> DispatchReport:
    """A later run in this process, as the next cron run would be."""
    project = make_project(root / "project")
    moment = NOW + after
    fake.now = moment
    backend = SendGridBackend(API_KEY, host=fake.host, timeout=5.0, clock=lambda: moment)
    with Outbox.open(database.location) as outbox:
        return send_due(outbox, project, EmailRenderer(project, KEY), backend, moment, 1000)


def fake_sendgrid_for(server: HTTPServer) -> FakeSendGrid:
    return FakeSendGrid(
        server, sender="care@clinic.example", reply_to="desk@clinic.example",
        step_keys={"day-1", "week-2", "month-3"}, forbidden=("botox-cosmetic",), now=NOW,
    )


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with threaded_server() as running:
        yield running


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_sender_killed_at_random_never_sends_twice_or_loses_a_message(
    tmp_path: Path, database: OutboxDatabase, server: HTTPServer, seed: int
) -> None:
    rng = random.Random(seed)
    enroll(tmp_path, database, PATIENTS)
    fake = fake_sendgrid_for(server)
    held_back = seed % 2 == 1  # odd seeds: killed while the server holds a request
    if held_back:
        fake.block_at = rng.randrange(PATIENTS - 4)
    child = start_sender(tmp_path, database, fake)
    try:
        if held_back:
            assert fake.blocked.wait(30), "the sender never reached the held request"
        else:  # a random point in the run: after the Nth request, plus a moment
            seen, deadline = rng.randrange(1, PATIENTS - 4), time.monotonic() + 30
            while len(fake.requests) < seen and time.monotonic() < deadline:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0.0, 0.004))
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
        fake.release.set()
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    # Within the lease, the next run sends the rest and leaves the in-flight ones alone...
    soon = finish(tmp_path, database, fake, dt.timedelta(minutes=1))
    # ...and after it, they become unknown, never resent.
    later = finish(tmp_path, database, fake, dt.timedelta(minutes=20))
    assert later.claimed == () and soon.released == 0
    assert soon.claimed, "the sender was killed before it finished, so work was left"
    print(f"seed {seed}: killed after {len(fake.requests) - len(soon.claimed)} requests; "
          f"{later.released} in flight became unknown, {soon.sent} sent by the next run")

    with Outbox.open(database.location) as outbox:
        day_1 = [m for m in outbox.messages() if m.step_key == "day-1"]
        others = [m for m in outbox.messages() if m.step_key != "day-1"]
    states = Counter(m.state for m in day_1)
    assert set(states) <= FINAL and len(day_1) == PATIENTS, states
    assert {m.state for m in others} == {"scheduled"}  # not due yet: untouched
    in_flight = load_project(ROOT).clinic.delivery.max_parallel  # at most this many at once
    assert later.released == states["unknown"] <= in_flight
    for message in day_1:
        reached = fake.reached(message.public_id)
        assert len(reached) <= 1, message  # never twice
        if message.state == "sent":
            assert len(reached) == 1 and reached[0].body["send_at"] == int(DAY_1.timestamp())
        else:
            assert message.state == "unknown", message  # killed in flight: no resend
    if held_back:
        blocked = fake.requests[fake.block_at or 0].public_id
        assert blocked is not None
        assert outbox_state(database, blocked) == "unknown"
    assert fake.problems == []


def outbox_state(database: OutboxDatabase, public_id: str) -> str:
    with Outbox.open(database.location) as outbox:
        view = outbox.message_by_public_id(public_id)
    assert view is not None
    return view.state


def test_two_senders_started_together_never_send_the_same_message(
    tmp_path: Path, database: OutboxDatabase, server: HTTPServer
) -> None:
    patients = 120
    enroll(tmp_path, database, patients)
    fake = fake_sendgrid_for(server)
    start_file = tmp_path / "go"
    children = [start_sender(tmp_path, database, fake, start_file) for _ in range(2)]
    time.sleep(0.05)
    start_file.touch()
    claimed: list[list[int]] = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        claimed.append([int(n) for n in out.strip().split(",") if n])
    mine, theirs = claimed
    assert mine and theirs, "both senders should have had work: they started together"
    assert not set(mine) & set(theirs)
    sent = [r.public_id for r in fake.requests if r.reached]
    assert len(sent) == len(set(sent)) == patients
    with Outbox.open(database.location) as outbox:
        assert {m.state for m in outbox.messages() if m.step_key == "day-1"} == {"sent"}
    assert fake.problems == []
