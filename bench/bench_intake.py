"""5. `pipeline import` of a large CSV file, and finding due messages among very many scheduled."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, Section, Sizes, median, run_python, timed

GOAL_IMPORT = 10.0  # seconds for 10,000 rows
GOAL_GROWTH = 2.0  # claiming with 100 times more scheduled messages: at most this much slower
CLAIM = 50  # messages claimed per measured call
FIRST_DAY = dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in Boston
IMPORT = """
import sys, pipeline
sys.exit(pipeline.main(["--project", sys.argv[1], "import", sys.argv[2]]))
"""
# The question the outbox asks: the oldest due messages. Only the messages table matters for
# how the work grows; NOT INDEXED shows what the index saves.
DUE = ("SELECT id FROM messages {hint} WHERE state = 'scheduled' AND due_at <= ? "
       "ORDER BY due_at, id LIMIT ?")


def run(sizes: Sizes, section: Section) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        work = Path(folder)
        _import(section, work, sizes)
        _due(section, work, sizes)


def _import(section: Section, work: Path, sizes: Sizes) -> None:
    from aftercare.content.load import load_project
    from aftercare.enrol.csv_import import import_file
    from aftercare.outbox.store import Outbox

    project = load_project(ROOT)
    today = dt.datetime.now(dt.UTC).astimezone(project.clinic.timezone.zone).date()
    rows = sizes.import_rows
    big = _csv(work / "patients.csv", rows, today)
    seconds, result = run_python(IMPORT, str(ROOT), str(big), env={
        "AFTERCARE_DB": str(work / "import.db"), "AFTERCARE_OUTBOX_DIR": str(work / "outbox")})
    section.note(result.stdout.strip())
    section.line(f"`pipeline import` of {rows:,} rows (one transaction), whole command",
                 f"{seconds:.2f} s ({rows / seconds:,.0f} rows/s)")
    # How the work grows: the same import, in this process, at a tenth of the size.
    small_rows = max(rows // 10, 10)
    small = _csv(work / "small.csv", small_rows, today)
    now = dt.datetime.now(dt.UTC)
    with Outbox.open(work / "small.db") as outbox:
        small_s = timed(lambda: import_file(outbox, project, small, now, "import:bench"))
    with Outbox.open(work / "again.db") as outbox:
        big_s = timed(lambda: import_file(outbox, project, big, now, "import:bench"))
    growth = (big_s / rows) / (small_s / small_rows)
    section.line(f"in-process import: {small_rows:,} rows vs {rows:,} rows",
                 f"{small_s:.2f} s vs {big_s:.2f} s: {growth:.2f} times the time per row")
    section.goal(f"`pipeline import` of {rows:,} rows", f"{seconds:.2f} s",
                 f"<= {GOAL_IMPORT:g} s for 10,000 rows", seconds <= GOAL_IMPORT)


def _csv(path: Path, rows: int, today: dt.date) -> Path:
    with path.open("w", encoding="utf-8") as file:
        file.write("email,first_name,campaign,treated_on,marketing_consent,patient_id\n")
        for i in range(rows):
            campaign = ("botox-cosmetic", "botox-migraine")[i % 2]
            treated = today - dt.timedelta(days=i % 30)
            consent = ("yes", "no", "")[i % 3]
            file.write(f"patient{i}@example.com,Pat {i},{campaign},{treated.isoformat()},"
                       f"{consent},P-{i:06d}\n")
    return path


def _due(section: Section, work: Path, sizes: Sizes) -> None:
    small_count = max(sizes.scheduled // 100, 1_000)
    big = _scheduled_outbox(work / "big.db", sizes.scheduled)
    small = _scheduled_outbox(work / "small-due.db", small_count)
    section.note(f"outboxes of {big['messages']:,} and {small['messages']:,} scheduled "
                 f"messages; {big['due']:,} and {small['due']:,} of them due")
    claim_big = _claims(big, sizes.claim_reps)
    claim_small = _claims(small, sizes.claim_reps)
    section.line(f"claim_due(limit={CLAIM}) among {big['messages']:,} scheduled",
                 f"{median(claim_big) * 1000:.1f} ms")
    section.line(f"claim_due(limit={CLAIM}) among {small['messages']:,} scheduled",
                 f"{median(claim_small) * 1000:.1f} ms")
    with sqlite3.connect(f"file:{big['path']}?mode=ro", uri=True) as db:
        plan = " / ".join(row[3] for row in db.execute(
            "EXPLAIN QUERY PLAN " + DUE.format(hint=""), (big["now"], CLAIM)))
        indexed = [timed(lambda: db.execute(DUE.format(hint=""), (big["now"], CLAIM)).fetchall())
                   for _ in range(5)]
        scan = [timed(lambda: db.execute(DUE.format(hint="NOT INDEXED"),
                                         (big["now"], CLAIM)).fetchall()) for _ in range(5)]
    section.line("query plan", plan)
    section.line(f"due query among {big['messages']:,}: index vs full scan (baseline)",
                 f"{median(indexed) * 1000:.2f} ms vs {median(scan) * 1000:.2f} ms "
                 f"({median(scan) / median(indexed):.0f} times faster)")
    growth = median(claim_big) / median(claim_small)
    section.goal("finding due messages stays proportional to what is due",
                 f"{growth:.2f} times the time with "
                 f"{big['messages'] / small['messages']:.0f} times more scheduled",
                 f"<= {GOAL_GROWTH:g} times", growth <= GOAL_GROWTH and "INDEX" in plan)


def _scheduled_outbox(path: Path, messages: int) -> dict[str, Any]:
    """Patients treated on up to 100 successive days, each enrolled on the day of treatment,
    three messages each; "now" is the evening after the first day, when only the first day's
    patients have an email due (their day-1 email)."""
    from aftercare.content.load import load_project
    from aftercare.enrol.enrolment import plan_for
    from aftercare.enrol.rules import parse_enrollment
    from aftercare.outbox.store import Outbox

    project = load_project(ROOT)
    patients = messages // 3  # each enrolment plans three messages
    # Enough due on the first day for every measured claim to find CLAIM messages.
    days = min(100, max(patients // (CLAIM * 7), 1))
    zone = project.clinic.timezone.zone
    with Outbox.open(path) as outbox:
        for day in range(days):
            enrolled_at = FIRST_DAY + dt.timedelta(days=day)
            treated_on = enrolled_at.astimezone(zone).date().isoformat()
            items = []
            for i in range(day, patients, days):
                fields = {"email": f"patient{i}@example.com", "first_name": f"Pat {i}",
                          "campaign": ("botox-cosmetic", "botox-migraine")[i % 2],
                          "treated_on": treated_on, "marketing_consent": "true"}
                enrollment = parse_enrollment(fields, project, enrolled_at, "bench")
                items.append((enrollment, plan_for(project, enrollment, enrolled_at)))
            outbox.enroll_many(items, enrolled_at)
    now = (FIRST_DAY + dt.timedelta(days=1, hours=6)).isoformat(timespec="microseconds")
    with sqlite3.connect(path) as db:
        total, due = db.execute(
            "SELECT count(*), sum(due_at <= ?) FROM messages WHERE state = 'scheduled'", (now,)
        ).fetchone()
    return {"path": path, "messages": total, "due": due or 0, "now": now}


def _claims(outbox_info: dict[str, Any], reps: int) -> list[float]:
    from aftercare.outbox.store import Outbox

    now = dt.datetime.fromisoformat(outbox_info["now"])
    times = []
    with Outbox.open(outbox_info["path"]) as outbox:
        outbox.claim_due(now, 1)  # warm the page cache, as a running sender has it
        for _ in range(reps):
            times.append(timed(lambda: outbox.claim_due(now, CLAIM)))
    return times
