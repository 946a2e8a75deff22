"""7. PostgreSQL and parallel workers: claims among 100,000 patients, claims per second with 1, 2
and 4 workers, delivery through workers, and time from due to hand-over with `pipeline worker`."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, Section, Sizes, median, timed

FIRST_DAY = dt.date(2026, 3, 2)  # treatment days run from this Monday on
GOAL_GROWTH = 2.0  # time per claim among 100 times the patients, at most this many times
WORKERS = (1, 2, 4)
SITES = 50  # the patients are spread over this many sites
GOAL_SITE_RATIO = 5.0  # one site's figures at least this many times cheaper than all sites'
KEY = b"benchmark key: links signed with it verify nowhere"


def run(sizes: Sizes, section: Section) -> None:
    from tests.postgres import PostgresServer

    server = PostgresServer.start_new()
    try:
        version = _server_version(server)
        section.note(f"{version}, started for this run in a temporary folder (fsync off: "
                     "the figures are the outbox's work, not the disk's)")
        _claims_among_many(server, sizes, section)
        _claims_per_second(server, sizes, section)
        _delivery_through_workers(server, sizes, section)
        _due_to_hand_over(server, sizes, section)
    finally:
        server.stop()


def _server_version(server: Any) -> str:
    import psycopg

    with psycopg.connect(server.url("postgres")) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


# ---------------------------------------------------------------- claims among many patients


def _seed(url: str, patients: int, days: int) -> None:
    """``patients`` enrolled in the cosmetic campaign at SITES sites, treated on ``days``
    successive days from FIRST_DAY, three messages each (the evening of the day, week 2,
    month 3), written in bulk."""
    import psycopg

    from aftercare.outbox.store import Outbox

    Outbox.open(url).close()  # the schema
    at = "2026-03-01T12:00:00.000000+00:00"
    stamp = "YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("INSERT INTO patients (email, first_name, language, created_at)"
                   " SELECT 'patient' || g || '@example.com', 'Pat ' || g, 'en', %s"
                   " FROM generate_series(1, %s) AS g", (at, patients))
        db.execute("INSERT INTO enrollments (patient_id, campaign, treated_on, timezone,"
                   " marketing_consent, consent_at, consent_recorded_by,"
                   " consent_wording_version, created_at, site)"
                   " SELECT id, 'botox-cosmetic', to_char(%s::date + (id %% %s)::int,"
                   " 'YYYY-MM-DD'), 'America/New_York', 1, %s, 'bench', 'v1', %s,"
                   " 'site-' || lpad((id %% %s)::text, 2, '0')"
                   " FROM patients", (FIRST_DAY, days, at, at, SITES))
        db.execute("INSERT INTO messages (public_id, enrollment_id, step_key, kind, due_at)"
                   " SELECT md5(e.id || s.key), e.id, s.key, s.kind,"
                   f" to_char(e.treated_on::date + s.days + s.hour, '{stamp}')"
                   " FROM enrollments AS e CROSS JOIN (VALUES"
                   " ('day-0', 'clinical', 0, interval '23 hours'),"
                   " ('week-2', 'clinical', 14, interval '15 hours'),"
                   " ('month-3', 'marketing', 91, interval '15 hours'))"
                   " AS s(key, kind, days, hour)")
        db.execute("ANALYZE")


def _claims_among_many(server: Any, sizes: Sizes, section: Section) -> None:
    from aftercare.outbox.sending import CLAIMABLE
    from aftercare.outbox.store import Outbox

    now = dt.datetime.combine(FIRST_DAY, dt.time(23, 30), tzinfo=dt.UTC)  # day 1's evening
    per_claim: dict[int, list[float]] = {}
    plans: dict[int, str] = {}
    for patients in (sizes.pg_small, sizes.pg_patients):
        url = server.url(server.create_database())
        days = max(1, min(100, patients // (sizes.pg_claims * 2)))
        seconds = timed(lambda url=url, patients=patients, days=days: _seed(url, patients,
                                                                                days))
        section.line(f"{patients:,} patients, {3 * patients:,} messages, written in bulk",
                     f"{seconds:.1f} s")
        with Outbox.open(url) as outbox:
            outbox.claim_due(now, 1)  # warm, as a running worker is
            times = [timed(lambda outbox=outbox: outbox.claim_due(now, 1))
                     for _ in range(sizes.pg_claims)]
            at = now.isoformat(timespec="microseconds")
            claimable = CLAIMABLE.format(lock=outbox._db.lock("m", skip_locked=True))
            plan = outbox._db.all(f"EXPLAIN {claimable}", (at, at, 1))
        per_claim[patients] = times
        lines = [str(next(iter(row.values()))).strip() for row in plan]
        plans[patients] = " / ".join(line.split("  (cost")[0] for line in lines
                                     if "Lock" in line or "Index" in line)
    _sites_on_postgresql(url, sizes, section)
    small, big = (median(per_claim[n]) for n in (sizes.pg_small, sizes.pg_patients))
    for patients in (sizes.pg_small, sizes.pg_patients):
        section.line(f"claim one due message among {patients:,} patients (median of "
                     f"{sizes.pg_claims})", f"{median(per_claim[patients]) * 1000:.2f} ms")
    section.note(f"plan among {sizes.pg_patients:,}: {plans[sizes.pg_patients]}")
    growth = big / small
    section.goal(f"time per claim among {sizes.pg_patients:,} patients on PostgreSQL",
                 f"{big * 1000:.2f} ms vs {small * 1000:.2f} ms among {sizes.pg_small:,}: "
                 f"{growth:.2f} times", f"<= {GOAL_GROWTH:g} times", growth <= GOAL_GROWTH)


def _sites_on_postgresql(url: str, sizes: Sizes, section: Section) -> None:
    """On the large outbox (its patients spread over SITES sites): one site's figures against
    every site's, and one site's outbox listing, as the staff pages ask for them."""
    from aftercare.content.load import load_project
    from aftercare.outbox.store import Outbox
    from aftercare.report.gather import gather

    project = load_project(ROOT)
    now = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=20), dt.time(12), tzinfo=dt.UTC)
    one: list[float] = []
    every: list[float] = []
    listing: list[float] = []
    with Outbox.open(url) as outbox:
        for _ in range(5):  # in turns
            one.append(timed(lambda: gather(project, outbox, ["site-03"], now, 30)))
            every.append(timed(lambda: gather(project, outbox, None, now, 30)))
            listing.append(timed(lambda: (outbox.messages(status="scheduled", sites={"site-03"}),
                                          outbox.count_by_state({"site-03"}))))
    section.line(f"PostgreSQL, {sizes.pg_patients:,} patients across {SITES} sites: one "
                 "site's figures (30 days and the next 7)", f"{median(one) * 1000:.0f} ms")
    section.line(f"the same for all {SITES} sites", f"{median(every) * 1000:.0f} ms")
    section.line("one site's outbox page reads (its scheduled messages, counts by state)",
                 f"{median(listing) * 1000:.0f} ms")
    ratio = median(every) / median(one)
    section.goal(f"one site's figures among {SITES} sites on PostgreSQL",
                 f"{ratio:.1f} times cheaper than all sites' ({median(one) * 1000:.0f} ms "
                 f"vs {median(every) * 1000:.0f} ms)", f">= {GOAL_SITE_RATIO:g} times",
                 ratio >= GOAL_SITE_RATIO)


# ---------------------------------------------------------------- claims per second


def claim_and_record(location: str, seconds: float, start: Any, results: Any) -> None:
    """A worker process: claim one message at a time and record it sent, for ``seconds``."""
    from aftercare.outbox.store import Outbox

    now = dt.datetime(2026, 12, 31, tzinfo=dt.UTC)  # everything is due
    mine: list[int] = []
    with Outbox.open(location) as outbox:
        start.wait()
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            claims = outbox.claim_due(now, 1)
            if not claims:  # all claimed: too few seeded for this long a run
                break
            claim = claims[0]
            outbox.mark_sent(claim.message_id, provider_id=None, content_hash="bench",
                             template_version="bench", now=now)
            mine.append(claim.message_id)
    results.put(mine)


def _claiming(location: str, workers: int, seconds: float) -> tuple[float, list[int]]:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(workers + 1), context.Queue()
    processes = [context.Process(target=claim_and_record, args=(location, seconds, start,
                                                                 results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    start.wait()  # every process has started and opened the outbox: all go at once
    claimed = [n for _ in processes for n in results.get(timeout=seconds + 120)]
    for process in processes:
        process.join(60)
    return len(claimed) / seconds, claimed


def _claims_per_second(server: Any, sizes: Sizes, section: Section) -> None:
    url = server.url(server.create_database())
    _seed(url, sizes.pg_patients, 100)
    rates: dict[int, list[float]] = {n: [] for n in WORKERS}
    everything: list[int] = []
    turns = WORKERS if sizes.smoke else (*WORKERS, *reversed(WORKERS))
    for workers in turns:  # in turns: a busy minute weighs on all alike
        rate, claimed = _claiming(url, workers, sizes.claim_seconds)
        rates[workers].append(rate)
        everything += claimed
    one = median(rates[1])
    for workers in WORKERS:
        section.line(f"{workers} worker process{'es' if workers > 1 else ''} claiming and "
                     "recording, PostgreSQL", f"{median(rates[workers]):.0f} claims/s "
                     f"({median(rates[workers]) / one:.2f} times one worker)")
    lite_rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
        for n in (1, 4):
            lite = str(Path(folder) / f"outbox-{n}.db")
            _seed_sqlite(lite, sizes.pg_patients // 10)
            lite_rates[n] = _claiming(lite, n, sizes.claim_seconds)[0]
    section.line("the same on one SQLite file: 1 / 4 processes",
                 f"{lite_rates[1]:.0f} / {lite_rates[4]:.0f} claims/s "
                 f"({lite_rates[4] / lite_rates[1]:.2f} times)")
    duplicates = len(everything) - len(set(everything))
    section.goal("claims per second with 2 and 4 workers on PostgreSQL",
                 f"{median(rates[2]) / one:.2f} and {median(rates[4]) / one:.2f} times one "
                 f"worker ({one:.0f} claims/s) on 2 shared cores, PostgreSQL on the same cores",
                 "informative (more than 1 time)", median(rates[2]) > one)
    section.goal("no message claimed twice", f"{duplicates} duplicates among "
                 f"{len(everything):,} claims", "0", duplicates == 0)


def _seed_sqlite(path: str, patients: int) -> None:
    from aftercare.outbox.store import Outbox

    with Outbox.open(Path(path)) as outbox:
        outbox._db.execute("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g"
                           " WHERE n < ?) INSERT INTO patients (email, first_name, language,"
                           " created_at) SELECT 'p' || n || '@example.com', 'Pat', 'en', 'x'"
                           " FROM g", (patients,))
        outbox._db.execute("INSERT INTO enrollments (patient_id, campaign, treated_on, timezone,"
                           " marketing_consent, consent_at, consent_recorded_by,"
                           " consent_wording_version, created_at) SELECT id, 'botox-cosmetic',"
                           " '2026-03-02', 'America/New_York', 1, 'x', 'bench', 'v1', 'x'"
                           " FROM patients")
        outbox._db.execute("INSERT INTO messages (public_id, enrollment_id, step_key, kind,"
                           " due_at) SELECT lower(hex(randomblob(16))), e.id, s.key, 'clinical',"
                           " '2026-03-16T15:00:00.000000+00:00' FROM enrollments AS e CROSS JOIN"
                           " (SELECT 'day-0' AS key UNION ALL SELECT 'week-2'"
                           " UNION ALL SELECT 'month-3') AS s")


# ---------------------------------------------------------------- delivery through workers


def deliver(location: str, host: str, now_text: str, start: Any, results: Any) -> None:
    """A worker process: send-due runs until one finds nothing, as `pipeline worker` does."""
    from aftercare.content.load import load_project
    from aftercare.delivery.sendgrid import SendGridBackend
    from aftercare.outbox.store import Outbox
    from aftercare.render.emails import EmailRenderer
    from aftercare.send.dispatch import send_due

    project = load_project(ROOT)
    renderer, now = EmailRenderer(project, KEY), dt.datetime.fromisoformat(now_text)
    backend = SendGridBackend("SG.benchmark-key", host=host)
    sent = 0
    with Outbox.open(location) as outbox:
        start.wait()
        while True:
            report = send_due(outbox, project, renderer, backend, now, 100)
            sent += report.sent
            if not report.claimed:
                break
    results.put(sent)


def _delivery_through_workers(server: Any, sizes: Sizes, section: Section) -> None:
    from bench.bench_dispatch import LATENCY, SlowSendGrid

    rates: dict[int, float] = {}
    duplicates = unsent = 0
    for workers in WORKERS:
        url = server.url(server.create_database())
        now = _enrol_due(url, sizes.worker_messages)
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(workers + 1), context.Queue()
        with SlowSendGrid() as look_alike:
            processes = [context.Process(target=deliver, args=(
                url, look_alike.url, now.isoformat(), start, results)) for _ in range(workers)]
            for process in processes:
                process.start()
            start.wait()
            began = time.perf_counter()
            sent = sum(results.get(timeout=600) for _ in processes)
            rates[workers] = sent / (time.perf_counter() - began)
            for process in processes:
                process.join(60)
            requested = Counter(look_alike.sent)
        duplicates += sum(n - 1 for n in requested.values())
        unsent += sizes.worker_messages - len(requested)
    parallel = _max_parallel()
    for workers in WORKERS:
        section.line(f"{workers} worker process{'es' if workers > 1 else ''}, each up to "
                     f"{parallel} requests at once, server {LATENCY * 1000:.0f} ms away",
                     f"{rates[workers]:.0f} messages/s ({rates[workers] / rates[1]:.2f} times "
                     "one worker)")
    section.goal("delivery with 4 workers against one", f"{rates[4] / rates[1]:.2f} times "
                 f"({rates[4]:.0f} vs {rates[1]:.0f} messages/s)", "informative (more than 1 "
                 "time)", rates[4] > rates[1])
    section.goal("each message handed over once", f"{duplicates} duplicates, {unsent} left "
                 f"unsent of {len(WORKERS) * sizes.worker_messages}", "0 and 0",
                 duplicates == 0 and unsent == 0)


def _max_parallel() -> int:
    from aftercare.content.load import load_project

    return load_project(ROOT).clinic.delivery.max_parallel


def _enrol_due(location: str, count: int, due: dt.datetime | None = None,
               spread: float = 0.0) -> dt.datetime:
    """``count`` week-2 messages of the cosmetic campaign, due at ``due`` (or on 16 March
    2026), spread evenly over ``spread`` seconds after it; return when the last is due."""
    from aftercare.content.values import EmailAddress, ZoneName
    from aftercare.outbox.records import Enrollment
    from aftercare.outbox.store import Outbox
    from aftercare.plan.schedule import PlannedMessage

    first = due or dt.datetime.combine(FIRST_DAY + dt.timedelta(days=14), dt.time(15),
                                       tzinfo=dt.UTC)
    zone = ZoneName("America/New_York")
    items = []
    for n in range(count):
        at = first + dt.timedelta(seconds=spread * n / max(count - 1, 1))
        enrollment = Enrollment(
            email=EmailAddress(f"patient{n}@example.com"), first_name=f"Pat {n}",
            campaign="botox-cosmetic", treated_on=(at - dt.timedelta(days=14)).date(),
            timezone=zone, language="en", marketing_consent=False, recorded_by="bench",
            consent_wording_version="v1")
        items.append((enrollment, [PlannedMessage("week-2", "clinical", at.astimezone(
            zone.zone), at, "send", None)]))
    with Outbox.open(location) as outbox:
        outbox.enroll_many(items, first - dt.timedelta(days=14))
    return first + dt.timedelta(seconds=spread)


# ---------------------------------------------------------------- from due to hand-over


def _due_to_hand_over(server: Any, sizes: Sizes, section: Section) -> None:
    from aftercare.outbox.store import Outbox

    url = server.url(server.create_database())
    first = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    last = _enrol_due(url, sizes.handover_messages, first, sizes.handover_spread)
    with tempfile.TemporaryDirectory(prefix="bench-handover-") as folder:
        out = Path(folder) / "outbox"
        env = {**os.environ, "AFTERCARE_DB": url, "AFTERCARE_OUTBOX_DIR": str(out),
               "AFTERCARE_SECRET_KEY": "b" * 40, "SENDGRID_API_KEY": "",
               "PYTHONUNBUFFERED": "1"}
        workers = [subprocess.Popen(
            [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT), "worker",
             "--interval", f"{sizes.handover_interval:g}"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True) for _ in range(2)]
        wait = (last - dt.datetime.now(dt.UTC)).total_seconds() + sizes.handover_interval * 1.3
        time.sleep(max(wait, 0) + 1.0)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(60) for worker in workers]
        for worker in workers:
            worker.communicate()
        handed = {p.stem: dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC)
                  for p in out.glob("*.eml")}
    with Outbox.open(url) as outbox:
        messages = outbox.messages()
        claims = Counter(e.message_id for e in outbox.events() if e.kind == "claimed")
    delays = [(handed[m.public_id] - m.due_at).total_seconds() for m in messages
              if m.public_id in handed]
    twice = sum(1 for n in claims.values() if n > 1)
    section.line(f"2 `pipeline worker`s (--interval {sizes.handover_interval:g}, file backend), "
                 f"{len(messages)} messages falling due over {sizes.handover_spread:g} s",
                 f"{len(handed)} handed over; exit codes {codes}")
    if delays:
        section.line("from due to hand-over: median / p95 / most",
                     f"{statistics.median(delays):.2f} s / {_p95(delays):.2f} s / "
                     f"{max(delays):.2f} s")
    section.goal("due to hand-over with `pipeline worker`",
                 f"median {statistics.median(delays) if delays else float('nan'):.2f} s, p95 "
                 f"{_p95(delays) if delays else float('nan'):.2f} s with a "
                 f"{sizes.handover_interval:g} s interval", "informative: about half the "
                 "interval, at most 1.25 times it", bool(delays) and len(handed) == len(messages))
    section.goal("zero duplicates through `pipeline worker`",
                 f"{twice} messages claimed twice; {len(handed)} of {len(messages)} handed over",
                 "0", twice == 0 and len(handed) == len(messages))


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
