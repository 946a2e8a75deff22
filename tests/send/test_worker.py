"""`pipeline worker`: send-due in a loop; SIGTERM finishes what is in flight; several workers
at once, some killed by SIGKILL, never send a message twice and lose none. On both engines.

The process tests run the real command against the sample clinic and a local SendGrid
look-alike, with messages due at the real time (the worker reads the real clock).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
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
from aftercare.delivery.files import FileBackend
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.outbox.records import Enrollment
from aftercare.outbox.store import Outbox
from aftercare.plan.schedule import PlannedMessage
from aftercare.render.emails import EmailRenderer
from aftercare.send.dispatch import DispatchReport, send_due
from aftercare.send.worker import JITTER, work
from tests.conftest import ROOT
from tests.delivery.fake_sendgrid import API_KEY, FakeSendGrid, threaded_server
from tests.postgres import OutboxDatabase, PostgresServer
from tests.projects import make_project
from tests.send.test_dispatch import DAY_1, KEY, MONTH_3, World

SECRET = "s" * 40
NEW_YORK = ZoneName("America/New_York")


# ---------------------------------------------------------------- the loop, in this process


def test_the_worker_sends_each_step_once_pausing_a_jittered_interval(world: World) -> None:
    world.enroll()  # day 1, week 2 and month 3 of one patient
    clock = [DAY_1 - dt.timedelta(hours=1)]
    happened: list[float | None] = []  # None: a run; a number: a nap of that many seconds

    def sleep(seconds: float) -> None:  # a second slept is a day of the clinic's time
        happened.append(seconds)
        clock[0] += dt.timedelta(days=seconds)

    def ran(report: DispatchReport) -> None:
        happened.append(None)

    totals = work(lambda: contextlib.nullcontext(world.outbox), world.project, world.renderer,
                  world.files, lambda: clock[0], interval=1.0, limit=10,
                  stop=lambda: clock[0] > MONTH_3 + dt.timedelta(days=1), report=ran,
                  sleep=sleep, rng=random.Random(7))
    assert set(world.states().values()) == {"sent"}
    assert len(world.emls()) == 3
    assert (totals.counts["sent"], totals.failures) == (3, 0)
    assert totals.runs == happened.count(None) > 80
    pauses, pause = [], 0.0
    for nap in happened:
        if nap is None:
            pauses.append(pause)
            pause = 0.0
        else:
            assert nap <= 0.2 + 1e-9  # napped in short slices: a stop is seen at once
            pause += nap
    whole = pauses[1:]  # before the first run there is no pause
    assert all(1 - JITTER - 1e-9 <= p <= 1 + JITTER + 1e-9 for p in whole), whole
    assert len({round(p, 6) for p in whole}) > len(whole) / 2  # jittered, not one fixed beat
    assert totals.summary() == f"stopped after {totals.runs} runs: 3 sent"


def test_a_run_that_takes_its_whole_limit_is_followed_at_once(world: World) -> None:
    for name in ("Ann", "Ben", "Cat"):
        world.enroll(name)
    runs: list[DispatchReport] = []
    naps: list[float] = []
    work(lambda: contextlib.nullcontext(world.outbox), world.project, world.renderer,
         world.files, lambda: DAY_1, interval=5.0, limit=1, stop=lambda: len(runs) == 4,
         report=runs.append, sleep=naps.append)
    assert [len(r.claimed) for r in runs] == [1, 1, 1, 0]
    assert naps == []  # three full runs back to back; stopped before pausing after the 4th


def test_a_database_that_cannot_be_reached_is_tried_again(
    postgres_server: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = "outbox_not_yet"
    url = postgres_server.url(name)
    project = make_project(tmp_path / "project")
    runs: list[DispatchReport] = []

    def sleep(seconds: float) -> None:  # while the worker waits, the database comes up
        if not runs and name not in created:
            created.append(postgres_server.create_database(name))

    created: list[str] = []
    try:
        with caplog.at_level(logging.ERROR, logger="aftercare.worker"):
            totals = work(lambda: Outbox.open(url), project, EmailRenderer(project, KEY),
                          FileBackend(tmp_path / "outbox"), lambda: DAY_1, interval=1.0, limit=10,
                          stop=lambda: bool(runs), report=runs.append, sleep=sleep)
    finally:
        for made in created:
            postgres_server.drop_database(made)
    assert (totals.failures, totals.runs) == (1, 1)
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "aftercare.worker"]
    assert logged.startswith("send-due could not run (the database is unavailable: it cannot "
                             "be opened or read; ask the administrator; nothing was saved (")
    assert f"({url}: cannot open the outbox database (" in logged
    assert logged.endswith("); trying again in 1 s")
    assert totals.summary() == "stopped after 1 run: nothing was due; 1 runs could not reach " \
        "the outbox"


# ---------------------------------------------------------------- the command, in processes


def enrol_due(database: OutboxDatabase, patients: int, due: dt.datetime) -> None:
    """``patients`` week-2 messages of the sample clinic's cosmetic campaign, due at ``due``."""
    items = []
    for n in range(patients):
        enrollment = Enrollment(
            email=EmailAddress(f"p{n:03d}@example.com"), first_name=f"Pat{n}",
            campaign="botox-cosmetic", treated_on=(due - dt.timedelta(days=14)).date(),
            timezone=NEW_YORK, language="en", marketing_consent=False,
            recorded_by="staff:test", consent_wording_version="v1",
        )
        items.append((enrollment, [PlannedMessage("week-2", "clinical", due.astimezone(
            NEW_YORK.zone), due, "send", None)]))
    with Outbox.open(database.location) as outbox:
        outbox.enroll_many(items, due - dt.timedelta(days=14))


def sendgrid_look_alike(server: HTTPServer, now: dt.datetime) -> FakeSendGrid:
    clinic = load_project(ROOT).clinic
    return FakeSendGrid(server, sender=clinic.email.from_address,
                        reply_to=clinic.email.reply_to or clinic.email.from_address,
                        step_keys={"week-2"}, forbidden=("botox-cosmetic",), now=now)


def start_worker(database: OutboxDatabase, fake: FakeSendGrid, interval: float = 0.3,
                 *, wait: bool = True) -> subprocess.Popen[str]:
    """A ``pipeline worker`` process; with ``wait``, once it has said it started."""
    env = {**os.environ, "AFTERCARE_DB": str(database.location), "SENDGRID_API_KEY": API_KEY,
           "SENDGRID_API_HOST": fake.host, "AFTERCARE_SECRET_KEY": SECRET,
           "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT), "worker",
         "--interval", str(interval)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert worker.stdout is not None
    if wait:
        started(worker)
    return worker


def started(worker: subprocess.Popen[str]) -> None:
    """Wait until ``worker`` says it started (its signal handlers are in place from then)."""
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert line.startswith("worker started: send-due about every"), (
        line + (worker.stderr.read() if worker.stderr else ""))


def finish(worker: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    try:
        return worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        out, err = worker.communicate()
        raise AssertionError(f"the worker did not stop:\n{out}\n{err}") from None


def states(database: OutboxDatabase) -> Counter[str]:
    with Outbox.open(database.location) as outbox:
        return Counter(m.state for m in outbox.messages())


def after_the_lease(database: OutboxDatabase, fake: FakeSendGrid) -> DispatchReport:
    """A run 20 minutes on (past the 15-minute lease), as the next worker's would be."""
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    fake.now = later
    project = load_project(ROOT)
    backend = SendGridBackend(API_KEY, host=fake.host, timeout=5.0, clock=lambda: later)
    with Outbox.open(database.location) as outbox:
        return send_due(outbox, project, EmailRenderer(project, SECRET.encode()), backend,
                        later, 1000)


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with threaded_server() as running:
        yield running


def test_sigterm_while_idle_stops_at_once(database: OutboxDatabase, server: HTTPServer) -> None:
    fake = sendgrid_look_alike(server, dt.datetime.now(dt.UTC))
    worker = start_worker(database, fake, interval=30)
    time.sleep(0.5)
    asked = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    out, err = finish(worker, timeout=10)
    assert time.monotonic() - asked < 3
    assert worker.returncode == 0, err
    assert out.splitlines()[-2:] == [
        "stopping: claiming nothing more, finishing the messages in flight (a second signal "
        "stops at once)", "stopped after 1 run: nothing was due"]


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_mid_run_records_what_is_in_flight_and_claims_nothing_more(
    database: OutboxDatabase, server: HTTPServer, signals: int
) -> None:
    """The signal comes while the look-alike is answering the 6th request, slowly."""
    now = dt.datetime.now(dt.UTC)
    enrol_due(database, 30, now - dt.timedelta(minutes=1))
    fake = sendgrid_look_alike(server, now - dt.timedelta(minutes=1))
    fake.slow_seconds = 0.3
    in_flight = load_project(ROOT).clinic.delivery.max_parallel
    pid: list[int] = []

    def slow_and_signal(public_id: str, attempt: int) -> str:
        if len(fake.requests) == 5:
            for n in range(signals):
                if n:
                    time.sleep(0.3)  # the first handled, the second stops the process
                os.kill(pid[0], signal.SIGTERM)
        return "slow"

    fake.fault_for = slow_and_signal
    worker = start_worker(database, fake)
    pid.append(worker.pid)
    out, err = finish(worker)
    reached = {r.public_id for r in fake.requests}
    assert len(fake.requests) == len(reached) <= 5 + in_flight  # claimed before the signal
    with Outbox.open(database.location) as outbox:
        messages = outbox.messages()
    if signals == 1:
        assert worker.returncode == 0, err
        assert out.splitlines()[-1].startswith(f"stopped after 1 run: {len(reached)} sent")
        # Everything claimed was sent and recorded; the rest was never claimed.
        assert {m.public_id for m in messages if m.state == "sent"} == reached
        assert Counter(m.state for m in messages) == {"sent": len(reached),
                                                      "scheduled": 30 - len(reached)}
    else:
        assert worker.returncode == -signal.SIGTERM
        # Stopped at once: what was in flight stays claimed, for the lease rule to settle.
        left = {m.public_id for m in messages if m.state == "sending"}
        assert left and left <= reached
        assert after_the_lease(database, fake).released == len(left)
        assert {m.public_id for m in messages if m.state == "sent"} | left == reached
        assert states(database)["unknown"] == len(left)
    assert all(len(fake.reached(public_id)) == 1 for public_id in reached)  # never twice
    assert fake.problems == []


def test_four_workers_with_some_killed_send_each_message_once_and_lose_none(
    database: OutboxDatabase, server: HTTPServer
) -> None:
    """Each of the first four is killed while busy (every slot of it in flight: the look-alike
    answers slowly and more is due than they can take), at a random moment; a new worker
    takes its place each time."""
    patients, rng = 160, random.Random(14)
    now = dt.datetime.now(dt.UTC)
    fake = sendgrid_look_alike(server, now - dt.timedelta(minutes=1))
    fake.slow_seconds = 0.25
    fake.fault_for = lambda public_id, attempt: "slow"
    first = [start_worker(database, fake) for _ in range(4)]
    # The messages come once all four run (a worker takes a second or two to start; the first
    # would otherwise have sent everything before the last began).
    enrol_due(database, patients, now - dt.timedelta(minutes=1))
    workers, killed = list(first), []
    moments = sorted(rng.sample(range(8, patients // 2), len(first)))
    try:
        for victim, moment in zip(rng.sample(first, len(first)), moments, strict=True):
            deadline = time.monotonic() + 30
            while len(fake.requests) < moment and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.05))
            victim.send_signal(signal.SIGKILL)
            workers.remove(victim)
            killed.append(victim)
            workers.append(start_worker(database, fake, wait=False))
        for worker in workers:  # the new ones: on a busy machine they may still be starting
            started(worker)
        deadline = time.monotonic() + 60
        while states(database)["scheduled"] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [finish(worker) for worker in workers]
        for victim in killed:
            finish(victim)
    assert [w.returncode for w in workers] == [0] * 4, outputs
    kills = len(killed)
    assert [v.returncode for v in killed] == [-signal.SIGKILL] * kills
    assert states(database)["scheduled"] == 0
    stranded = states(database)["sending"]  # claims of the killed, in flight when they died
    assert after_the_lease(database, fake).released == stranded
    in_flight = load_project(ROOT).clinic.delivery.max_parallel
    with Outbox.open(database.location) as outbox:
        messages = outbox.messages()
    final = Counter(m.state for m in messages)
    assert final == Counter(sent=patients - stranded, unknown=stranded)
    assert 0 < stranded <= kills * in_flight
    for message in messages:
        reached = fake.reached(message.public_id)
        assert len(reached) <= 1, message  # never twice
        if message.state == "sent":
            assert len(reached) == 1, message  # none lost
    print(f"{database.engine}: {kills} workers killed; {stranded} messages in flight became "
          f"unknown; {final['sent']} sent once each")
    assert fake.problems == []
