"""The command line end to end for the emails: the evening email, consents, the date rule and
messages stored under a step's former key, through real SQLite files and .eml files."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import sqlite3
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import pipeline
from aftercare.content.load import load_project
from aftercare.content.values import EmailAddress, ZoneName
from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from aftercare.outbox.records import Enrollment
from aftercare.outbox.store import Outbox
from aftercare.plan.schedule import PlannedMessage
from tests.conftest import ROOT

NY = ZoneInfo("America/New_York")
SATURDAY = "2026-11-21"  # the clinic is open until 1 pm; New York is UTC-5 then


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AFTERCARE_DB", str(tmp_path / "var" / "aftercare.db"))
    monkeypatch.setenv("AFTERCARE_OUTBOX_DIR", str(tmp_path / "var" / "outbox"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    return tmp_path


def at(monkeypatch: pytest.MonkeyPatch, local: str) -> None:
    """Pin the command line's clock to a New York wall-clock time."""
    moment = dt.datetime.fromisoformat(local).replace(tzinfo=NY).astimezone(dt.UTC)
    monkeypatch.setattr(pipeline, "_now", lambda: moment)


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def enroll(*extra: str, email_address: str = "ana@example.com", campaign: str = "botox-cosmetic",
           treated_on: str = SATURDAY) -> int:
    return run("enroll", campaign, "--email", email_address, "--first-name", "Ana",
               "--treated-on", treated_on, *extra)


def emls(env: Path) -> list[EmailMessage]:
    folder = env / "var" / "outbox"
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def send_due(now_utc: str) -> int:
    return run("send-due", "--now", now_utc)


# ------------------------------------------------------------------ the evening email


def test_treated_saturday_noon_and_enrolled_at_two_the_first_email_comes_that_evening(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T14:00")
    assert enroll("--aftercare-consent") == 0
    out = capsys.readouterr().out
    assert "day-0    Sat 21 Nov 2026 18:00 EST (2026-11-21 23:00 UTC)  to send" in out
    subject = load_project(ROOT).campaigns["botox-cosmetic"].steps[0].subject
    for now, count in (("2026-11-21T19:05Z", 0), ("2026-11-21T22:59Z", 0),
                       ("2026-11-21T23:00Z", 1), ("2026-11-21T23:30Z", 1),
                       ("2026-11-22T15:00Z", 1)):
        assert send_due(now) == 0
        assert len(emls(env)) == count, now
    (message,) = emls(env)
    assert message["Subject"] == subject
    assert message["Date"].datetime == dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)


def test_enrolled_after_six_it_goes_at_the_next_run_before_nine(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T19:30")
    assert enroll("--aftercare-consent") == 0
    assert "sent at the next run, before 21:00" in capsys.readouterr().out
    assert send_due("2026-11-22T00:35Z") == 0  # 19:35 in New York: the next cron run
    assert len(emls(env)) == 1


def test_enrolled_after_nine_it_waits_for_sunday_morning_although_sunday_is_quiet(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T21:30")
    assert enroll("--aftercare-consent") == 0
    out = capsys.readouterr().out
    assert ("day-0    Sun 22 Nov 2026 10:00 EST (2026-11-22 15:00 UTC)  to send — was due "
            "Sat 21 Nov 18:00; too late that evening, so sent Sun 22 Nov 10:00") in out
    for now, count in (("2026-11-22T02:35Z", 0), ("2026-11-22T14:59Z", 0),
                       ("2026-11-22T15:00Z", 1)):
        assert send_due(now) == 0
        assert len(emls(env)) == count, now


# ------------------------------------------------------------------ consents


def test_enrolling_needs_the_aftercare_consent_and_writes_nothing_without_it(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, f"{SATURDAY}T14:00")
    assert enroll("--reminder-consent") == 1
    err = capsys.readouterr().err
    assert err.startswith("command line: --aftercare-consent: required: enrol a patient only "
                          "once they agree to aftercare emails")
    assert not (env / "var").exists()


def _events(env: Path, kind: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(env / "var" / "aftercare.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    finally:
        db.close()


def _states(env: Path) -> dict[str, str]:
    with Outbox.open(env / "var" / "aftercare.db") as outbox:
        return {m.step_key: m.state for m in outbox.messages()}


def test_enrolling_again_with_another_reminder_consent_updates_the_enrolment(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, "2026-11-23T15:00")
    assert enroll("--aftercare-consent", "--marketing-consent", treated_on="2026-11-23") == 0
    (enrolled,) = _events(env, "enrolled")
    assert enrolled["detail"] == (
        f"aftercare consent: yes; reminder consent: yes (wording {CONSENT_WORDING_VERSION})")
    capsys.readouterr()

    assert enroll("--aftercare-consent", treated_on="2026-11-23") == 0
    out = capsys.readouterr().out
    assert "Reminder consent withdrawn: cancelled 1 reminder (month-3, Tue 23 Feb)\n" in out
    assert out.endswith("already enrolled for that treatment date; consent updated\n")
    assert _states(env) == {"day-0": "scheduled", "week-2": "scheduled", "month-3": "cancelled"}
    (changed,) = _events(env, "consent-changed")
    assert changed["actor"].startswith("cli:")
    assert changed["at"].startswith("2026-11-23T20:00")
    assert changed["detail"] == (f"reminder consent: yes -> no; aftercare consent: yes "
                                 f"(wording {CONSENT_WORDING_VERSION})")

    assert enroll("--aftercare-consent", "--reminder-consent", treated_on="2026-11-23") == 0
    out = capsys.readouterr().out
    assert "Reminder consent given: scheduled 1 reminder (month-3, Tue 23 Feb)\n" in out
    assert _states(env)["month-3"] == "scheduled"

    assert enroll("--aftercare-consent", "--reminder-consent", treated_on="2026-11-23") == 0
    assert capsys.readouterr().out.endswith(
        "already enrolled for that treatment date; nothing changed\n")
    assert len(_events(env, "consent-changed")) == 2
    # The reminder goes out at its time.
    assert send_due("2027-02-23T15:00Z") == 0
    reminder = load_project(ROOT).campaigns["botox-cosmetic"].step("month-3")
    assert [m["Subject"] for m in emls(env)] == [reminder.subject]


# ------------------------------------------------------------------ the treatment-date rule


@pytest.mark.parametrize(("treated_on", "accepted"), [
    ("2026-11-21", True),   # today at the clinic
    ("2026-11-22", False),  # tomorrow: it is already Sunday in London, but not at the clinic
    ("2025-11-21", True),   # 365 days ago
    ("2025-11-20", False),  # 366 days ago
])
def test_one_treatment_date_rule_for_enroll_handout_and_import(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    treated_on: str, accepted: bool,
) -> None:
    at(monkeypatch, f"{SATURDAY}T20:30")
    expected = 0 if accepted else 1
    assert enroll("--aftercare-consent", "--tz", "Europe/London", treated_on=treated_on) == expected
    assert run("handout", "aftercare-cosmetic", "--name", "Ana", "--treated-on", treated_on,
               "--out", str(env / "ana.pdf")) == expected
    csv = env / "rows.csv"
    csv.write_text("email,first_name,campaign,treated_on\n"
                   f"bo@example.com,Bo,botox-cosmetic,{treated_on}\n")
    assert run("import", str(csv)) == expected
    err = capsys.readouterr().err
    if treated_on == "2026-11-22":
        assert ("command line: --treated-on: expected today (2026-11-21 at the clinic) "
                "or earlier: a treatment date cannot be in the future; got '2026-11-22'") in err
        assert ("rows.csv:2: treated_on: expected today (2026-11-21 at the clinic) or earlier: "
                "a treatment date cannot be in the future; got '2026-11-22'") in err
    if treated_on == "2025-11-20":
        assert "expected a date within the last 365 days (on or after 2025-11-21)" in err


# ------------------------------------------------------------------ renamed steps


def test_messages_stored_under_a_former_step_key_are_still_found_and_sent(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outbox written before day-1 became day-0 and month-3 became week-10 (migraine)."""
    db = env / "var" / "aftercare.db"
    treated = dt.date(2026, 11, 23)
    now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)

    def old(key: str, due: dt.datetime) -> PlannedMessage:
        return PlannedMessage(key, "clinical", due.astimezone(NY), due, "send", None)

    stored = (old("day-1", dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)),
              old("week-2", dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)),
              old("month-3", dt.datetime(2027, 2, 1, 15, 0, tzinfo=dt.UTC)))
    enrollment = Enrollment(EmailAddress("ana@example.com"), "Ana", "botox-migraine", treated,
                            ZoneName("America/New_York"), "en", False, "cli:old-version",
                            CONSENT_WORDING_VERSION)
    with Outbox.open(db) as outbox:
        outbox.enroll(enrollment, stored, now)
    # Correcting the treatment date re-times them under their old keys, none is dropped.
    at(monkeypatch, "2026-11-23T11:00")
    assert run("reschedule", "--email", "ana@example.com", "--campaign", "botox-migraine",
               "--treated-on", "2026-11-22") == 0
    assert capsys.readouterr().out == "re-timed 3 unsent messages from 2026-11-22\n"
    assert _states(env) == {"day-1": "scheduled", "week-2": "scheduled", "month-3": "scheduled"}
    steps = load_project(ROOT).campaigns["botox-migraine"].steps
    # day-0 of the corrected date has passed: sent at the next run; week-2 and week-10 fall on
    # Sundays (quiet) and move to Monday.
    for now_utc in ("2026-11-23T16:05Z", "2026-12-07T15:00Z", "2027-02-01T15:00Z"):
        assert send_due(now_utc) == 0
    assert _states(env) == {"day-1": "sent", "week-2": "sent", "month-3": "sent"}
    subjects = sorted(m["Subject"] for m in emls(env))
    assert subjects == sorted(s.subject for s in steps)
    week_10 = next(m for m in emls(env) if m["Subject"] == steps[2].subject)
    # The migraine emails are minimal: week-10's content is on the care page its link opens
    # (tests/web/test_care.py); its calendar reminder is week-10's, on the 12-week day (a
    # Sunday, so Monday).
    assert "Read your aftercare notes:" in week_10.get_body(("plain",)).get_content()
    reminder = next(part for part in week_10.iter_attachments())
    assert reminder.get_filename() == "next-visit.ics"
    assert "DTSTART;VALUE=DATE:20270215" in reminder.get_content()


def test_a_csv_row_for_an_existing_enrolment_never_changes_its_consent(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, "2026-11-23T15:00")
    assert enroll("--aftercare-consent", "--reminder-consent", treated_on="2026-11-23") == 0
    csv = env / "rows.csv"
    csv.write_text("email,first_name,campaign,treated_on\n"
                   "ana@example.com,Ana,botox-cosmetic,2026-11-23\n")
    capsys.readouterr()
    assert run("import", str(csv)) == 0
    assert capsys.readouterr().out == "imported rows.csv: 0 enrolled, 1 already enrolled\n"
    assert _states(env)["month-3"] == "scheduled"
    assert _events(env, "consent-changed") == []


def test_an_evening_email_the_sender_reaches_only_at_night_waits_for_the_morning(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Enrolled at 20:50 (sent at the next run), but cron does not run again before 23:30."""
    at(monkeypatch, f"{SATURDAY}T20:50")
    assert enroll("--aftercare-consent") == 0
    capsys.readouterr()
    assert send_due("2026-11-22T04:30Z") == 0  # 23:30 in New York
    assert capsys.readouterr().out == (
        "1 due: 0 sent, 0 failed, 0 unknown, 1 to retry later, 0 cancelled, 0 too late\n")
    assert emls(env) == []
    assert send_due("2026-11-22T14:59Z") == 0
    assert emls(env) == []
    assert send_due("2026-11-22T15:00Z") == 0  # Sunday 10:00: the next morning
    assert len(emls(env)) == 1
    assert _states(env)["day-0"] == "sent"
