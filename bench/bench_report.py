"""8. `pipeline report` on a large outbox: 100,000 patients across 50 sites, seeded through SQL.

The outbox is made by the program (so its schema and indexes are the real ones), then filled
inside SQLite in a few statements: every patient treated on one of the last 120 days, three
messages each with the states, sends, provider events, care-page views and unsubscribes a
real outbox would hold, and the trail entries a send writes. The command runs as staff run it,
in a fresh interpreter, against the real clock.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from bench.common import ROOT, Section, Sizes, median, run_python, spread, timed

GOAL_ONE_SITE = 1.0  # seconds for the whole command, one site
GOAL_SITE_RATIO = 5.0  # one site of 50 at least this many times faster than every site
SITE = "--site=site-03"
REPORT = """
import sys, pipeline
sys.exit(pipeline.main(["--project", sys.argv[1], "report", *sys.argv[2:]]))
"""
# Counting as the figures would without grouping: one COUNT per family, step and day (the way
# the figures must not be made), for one site; the baseline the real queries are compared to.
NAIVE = """
    SELECT count(*) FROM messages AS m JOIN enrollments AS e ON e.id = m.enrollment_id
    WHERE e.site = ? AND e.campaign = ? AND m.step_key = ? AND m.state = 'sent'
      AND m.sent_at >= ? AND m.sent_at < ?
"""


def run(sizes: Sizes, section: Section) -> None:
    patients, sites = (2_000, 5) if sizes.smoke else (100_000, 50)
    reps = 1 if sizes.smoke else 5
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        db = Path(folder) / "report.db"
        counts = _seed(db, patients, sites)
        section.note(f"an outbox of {patients:,} patients across {sites} sites: "
                     f"{counts['messages']:,} messages, {counts['events']:,} provider "
                     f"events, {counts['trail']:,} trail entries")
        env = {"AFTERCARE_DB": str(db), "AFTERCARE_SECRET_KEY": "b" * 40}
        empty = {**env, "AFTERCARE_DB": str(Path(folder) / "empty.db")}
        whole = {
            "one": [SITE, "--days", "30"], "every": ["--days", "30", "--json"],
            "floor": ["--days", "30"],
        }
        times: dict[str, list[float]] = {name: [] for name in whole}
        for _ in range(reps):  # in turns, so a busy moment weighs on each alike
            for name, argv in whole.items():
                times[name].append(run_python(
                    REPORT, str(ROOT), *argv, env=empty if name == "floor" else env)[0])
        one, every, floor = (median(times[name]) for name in ("one", "every", "floor"))
        section.line(f"`pipeline report {' '.join(whole['one'])}`, whole command",
                     spread(times["one"]))
        section.line(f"`pipeline report {' '.join(whole['every'])}`: all {sites} sites",
                     spread(times["every"]))
        section.line("the same command on an empty outbox (floor: start, load the content)",
                     spread(times["floor"]))
        inside = _in_process(db, reps)
        naive = _naive(db, reps)
        section.line("in process: one site's figures (every family, one query each)",
                     f"{inside['one'] * 1000:.0f} ms")
        section.line(f"in process: all {sites} sites' figures", f"{inside['every'] * 1000:.0f} ms")
        section.line("one site's sends alone, a COUNT per step and day (baseline)",
                     f"{naive['seconds'] * 1000:.0f} ms for {naive['queries']} queries")
        section.goal(f"`pipeline report` for one site among {patients:,} patients",
                     f"{one:.2f} s ({one - floor:.2f} s beyond the floor of {floor:.2f} s; "
                     f"all sites {every:.2f} s)", f"<= {GOAL_ONE_SITE:g} s",
                     one <= GOAL_ONE_SITE)
        ratio = inside["every"] / inside["one"]
        section.goal("one site's figures cost in proportion to the site",
                     f"{ratio:.1f} times faster than all {sites} sites'",
                     f">= {GOAL_SITE_RATIO:g} times", ratio >= GOAL_SITE_RATIO)
        grouped = naive["seconds"] / inside["one"]
        section.goal("figures grouped in one query per family",
                     f"all nine families {grouped:.1f} times faster than one family counted "
                     "per step and day", ">= 1 times", grouped >= 1)


def _seed(path: Path, patients: int, sites: int) -> dict[str, int]:
    from aftercare.outbox.store import Outbox

    Outbox.open(path).close()  # the real schema, migrated
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        for statement in _statements(patients, sites):
            db.execute(statement)
        db.execute("COMMIT")
        counts = {name: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for name, table in (("messages", "messages"), ("events", "provider_events"),
                                      ("trail", "events"))}
    db.close()
    return counts


# Times as the outbox writes them: fixed-width UTC text.
_STAMP = "strftime('%Y-%m-%dT%H:%M:%S.000000+00:00', {})"


def _statements(patients: int, sites: int) -> list[str]:
    due = _STAMP.format("julianday(e.treated_on) + s.days + 23.0 / 24")
    return [
        f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {patients})
        INSERT INTO patients (id, email, first_name, language, created_at)
        SELECT i, 'patient' || i || '@example.com', 'Pat', 'en', {_STAMP.format("'now'")}
        FROM n""",
        f"""INSERT INTO enrollments (id, patient_id, campaign, treated_on, timezone,
            marketing_consent, consent_at, consent_recorded_by, consent_wording_version,
            created_at, site)
        SELECT id, id, CASE id % 2 WHEN 0 THEN 'botox-cosmetic' ELSE 'botox-migraine' END,
            date('now', '-' || (id % 120) || ' days'), 'America/New_York', id % 3 = 0,
            {_STAMP.format("'now'")}, 'bench', 'v1', {_STAMP.format("'now'")},
            printf('site-%02d', id % {sites})
        FROM patients""",
        f"""INSERT INTO messages (public_id, enrollment_id, step_key, kind, due_at, state)
        SELECT e.id || '-' || s.key, e.id, s.key, 'clinical', {due}, 'scheduled'
        FROM enrollments AS e JOIN (SELECT 'day-0' AS key, 0 AS days UNION ALL
            SELECT 'week-2', 14 UNION ALL SELECT 'month-3', 90) AS s""",
        # What is past its due time went out (a few were refused or cancelled); what is not
        # waits. A tenth of the reminders were skipped for want of consent.
        f"""UPDATE messages SET
            state = CASE WHEN id % 97 = 0 THEN 'failed' WHEN id % 53 = 0 THEN 'cancelled'
                         ELSE 'sent' END,
            sent_at = CASE WHEN id % 97 = 0 OR id % 53 = 0 THEN NULL ELSE due_at END,
            attempts = 1,
            viewed_at = CASE WHEN id % 3 = 0 AND id % 97 <> 0 AND id % 53 <> 0
                             THEN {_STAMP.format("julianday(due_at) + 0.2")} END
        WHERE due_at <= {_STAMP.format("'now'")}""",
        "UPDATE messages SET state = 'cancelled' WHERE step_key = 'month-3' AND id % 10 = 0"
        " AND state = 'scheduled'",
        # The provider's events: delivered for most, the others bounced, dropped, complained or
        # unsubscribed; each a few minutes after the send.
        f"""INSERT INTO provider_events (event_id, received_at, occurred_at, kind, message_id)
        SELECT 'ev-' || id, sent_at, {_STAMP.format("julianday(sent_at) + 0.003")},
            CASE WHEN id % 50 = 0 THEN 'bounce' WHEN id % 101 = 0 THEN 'dropped'
                 WHEN id % 211 = 0 THEN 'spamreport' ELSE 'delivered' END, id
        FROM messages WHERE state = 'sent'""",
        f"""INSERT INTO provider_events (event_id, received_at, occurred_at, kind, message_id)
        SELECT 'unsub-' || id, sent_at, {_STAMP.format("julianday(sent_at) + 0.5")},
            'unsubscribe', id FROM messages WHERE state = 'sent' AND id % 307 = 0""",
        # The trail a send writes (claimed, sent), views and our own unsubscribe link.
        """INSERT INTO events (at, kind, enrollment_id, message_id, actor, detail)
        SELECT sent_at, kind.k, enrollment_id, id, 'system', NULL
        FROM messages JOIN (SELECT 'claimed' AS k UNION ALL SELECT 'sent') AS kind
        WHERE sent_at IS NOT NULL""",
        """INSERT INTO events (at, kind, enrollment_id, message_id, actor, detail)
        SELECT viewed_at, 'viewed', enrollment_id, id, 'patient', NULL FROM messages
        WHERE viewed_at IS NOT NULL""",
        f"""INSERT INTO events (at, kind, enrollment_id, message_id, actor, detail)
        SELECT {_STAMP.format("julianday(sent_at) + 1")}, 'unsubscribed', enrollment_id, id,
            'patient', 'unsubscribed via link' FROM messages
        WHERE state = 'sent' AND id % 401 = 0""",
    ]


def _in_process(path: Path, reps: int) -> dict[str, float]:
    """The figures of one site, and of every site, in this process, as the command gathers
    them (medians, taken in turns)."""
    import datetime as dt

    from aftercare.content.load import load_project
    from aftercare.outbox.store import Outbox
    from aftercare.report.gather import gather

    project = load_project(ROOT)
    now = dt.datetime.now(dt.UTC)
    one: list[float] = []
    every: list[float] = []
    with Outbox.open(path) as outbox:
        for _ in range(reps):
            one.append(timed(lambda: gather(project, outbox, ["site-03"], now, 30)))
            every.append(timed(lambda: gather(project, outbox, None, now, 30)))
    return {"one": median(one), "every": median(every)}


def _naive(path: Path, reps: int) -> dict[str, float]:
    """One family (sent) for one site, a COUNT per step and day over 30 days."""
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(29, -1, -1)]
    steps = [(c, s) for c in ("botox-cosmetic", "botox-migraine")
             for s in ("day-0", "week-2", "month-3")]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:

        def count_all() -> None:
            for campaign, step in steps:
                for day in days:
                    start = f"{day.isoformat()}T05:00:00.000000+00:00"
                    end = f"{(day + dt.timedelta(days=1)).isoformat()}T05:00:00.000000+00:00"
                    db.execute(NAIVE, ("site-03", campaign, step, start, end)).fetchone()

        seconds = median([timed(count_all) for _ in range(reps)])
    db.close()
    return {"seconds": seconds, "queries": len(steps) * len(days)}
