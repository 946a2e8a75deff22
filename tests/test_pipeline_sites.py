"""One installation, three sites: each patient's schedule, emails, sender and handout are their
site's, through the command line, real SQLite files, .eml files and PDFs read back."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import shutil
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest
from pypdf import PdfReader

import pipeline
from tests.conftest import ROOT
from tests.postgres import OutboxDatabase
from tests.projects import copy_of_the_clinic

# Saturday 21 November 2026, noon in Portland: 15:00 in New York, 13:00 in Scottsdale.
ENROLLED_AT = dt.datetime(2026, 11, 21, 20, 0, tzinfo=dt.UTC)
ORGANISATION = ("(617) 555-0142", "(617) 555-0199")
PORTLAND = ("(503) 555-0117", "(503) 555-0118")
SCOTTSDALE = ("(480) 555-0163", "(480) 555-0164")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The database, outbox and secret in a temporary folder."""
    for name, value in (("AFTERCARE_DB", tmp_path / "var" / "aftercare.db"),
                        ("AFTERCARE_OUTBOX_DIR", tmp_path / "var" / "outbox"),
                        ("AFTERCARE_SECRET_KEY", "k" * 40)):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    return tmp_path


def at(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(pipeline, "_now", lambda: moment)


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def enroll(address: str, *site: str) -> int:
    return run("enroll", "botox-cosmetic", "--email", address, "--first-name", "Ana",
               "--treated-on", "2026-11-21", "--aftercare-consent", *site)


def emls(env: Path) -> dict[str, EmailMessage]:
    """Every email written by the file backend, by recipient."""
    found = {}
    for path in sorted((env / "var" / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found[str(message["To"])] = message
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    # Lines are wrapped, sometimes inside a phone number: compare with single spaces.
    return " ".join(str(part.get_content()).split())  # type: ignore[attr-defined]


def stored_sites(env: Path) -> dict[str, str]:
    with sqlite3.connect(env / "var" / "aftercare.db") as db:
        rows = db.execute("SELECT p.email, e.site FROM enrollments AS e JOIN patients AS p"
                          " ON p.id = e.patient_id").fetchall()
    return dict(rows)


def test_each_sites_patient_gets_the_evening_email_at_six_in_the_sites_zone_from_its_sender(
    env: Path, database: OutboxDatabase, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # One installation, on SQLite and on PostgreSQL: AFTERCARE_DB names the outbox.
    monkeypatch.setenv("AFTERCARE_DB", str(database.location))
    at(monkeypatch, ENROLLED_AT)
    assert enroll("ny@example.com") == 0
    assert enroll("pdx@example.com", "--site", "portland") == 0
    assert enroll("az@example.com", "--site", "scottsdale") == 0
    out = capsys.readouterr().out
    assert "day-0    Sat 21 Nov 2026 18:00 EST (2026-11-21 23:00 UTC)  to send" in out
    assert "day-0    Sat 21 Nov 2026 18:00 PST (2026-11-22 02:00 UTC)  to send" in out
    assert "day-0    Sat 21 Nov 2026 18:00 MST (2026-11-22 01:00 UTC)  to send" in out
    with database.raw() as db:
        stored = dict(db.execute("SELECT p.email, e.site FROM enrollments AS e JOIN patients"
                                 " AS p ON p.id = e.patient_id").fetchall())
    assert stored == {"ny@example.com": "main", "pdx@example.com": "portland",
                                 "az@example.com": "scottsdale"}
    sent_by = {}
    for now in ("2026-11-21T23:00Z", "2026-11-22T01:00Z", "2026-11-22T02:00Z"):
        assert run("send-due", "--now", now) == 0
        sent_by[now] = sorted(emls(env))
    assert sent_by == {
        "2026-11-21T23:00Z": ["Ana <ny@example.com>"],
        "2026-11-22T01:00Z": ["Ana <az@example.com>", "Ana <ny@example.com>"],
        "2026-11-22T02:00Z": ["Ana <az@example.com>", "Ana <ny@example.com>",
                              "Ana <pdx@example.com>"],
    }
    sent = emls(env)
    expected = {
        "Ana <ny@example.com>": ("Juniper Lane Clinic <care@juniperlane.example>",
                                 "frontdesk@juniperlane.example", ORGANISATION),
        "Ana <pdx@example.com>": ("Juniper Lane Portland <portland@juniperlane.example>",
                                  "portland-desk@juniperlane.example", PORTLAND),
        "Ana <az@example.com>": ("Juniper Lane Scottsdale <scottsdale@juniperlane.example>",
                                 "scottsdale-desk@juniperlane.example", SCOTTSDALE),
    }
    for to, (sender, reply_to, numbers) in expected.items():
        message = sent[to]
        assert (str(message["From"]), str(message["Reply-To"])) == (sender, reply_to)
        text = text_of(message)
        others = {n for _, _, ns in expected.values() for n in ns} - set(numbers)
        assert all(number in text for number in numbers), to
        assert not [n for n in others if n in text], to
        # The emergency signs come before the site's contact block, with its numbers.
        assert text.index("911") < text.rindex(numbers[0])


def test_closures_and_send_time_are_the_sites(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Week 2 of a 10 December treatment falls on 24 December: Portland is closed that day
    # and the organisation on the 25th, so Portland's moves to Saturday the 26th at its
    # own 09:30; the organisation's own site sends on the 24th at 10:00.
    at(monkeypatch, dt.datetime(2026, 12, 11, 20, 0, tzinfo=dt.UTC))
    weeks = {}
    for site in ("main", "portland", "scottsdale"):
        assert run("schedule", "botox-cosmetic", "--treated-on", "2026-12-10", "--site", site,
                   "--json") == 0
        plan = json.loads(capsys.readouterr().out)
        weeks[site] = next(line["local"] for line in plan if line["step"] == "week-2")
    assert weeks == {"main": "2026-12-24T10:00:00-05:00",
                     "portland": "2026-12-26T09:30:00-08:00",
                     "scottsdale": "2026-12-24T10:00:00-07:00"}


def test_import_takes_a_site_column_and_a_site_for_the_rest(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, ENROLLED_AT)
    sheet = env / "patients.csv"
    sheet.write_text("email,first_name,campaign,treated_on,site\n"
                     "a@example.com,Ana,botox-cosmetic,2026-11-20,scottsdale\n"
                     "b@example.com,Bo,botox-cosmetic,2026-11-20,\n", encoding="utf-8")
    assert run("import", str(sheet), "--site", "portland") == 0
    assert stored_sites(env) == {"a@example.com": "scottsdale", "b@example.com": "portland"}
    bad = env / "bad.csv"
    bad.write_text("email,first_name,campaign,treated_on,site\n"
                   "c@example.com,Cy,botox-cosmetic,2026-11-20,mars\n", encoding="utf-8")
    capsys.readouterr()
    assert run("import", str(bad)) == 1
    assert capsys.readouterr().err.strip() == (
        "bad.csv:2: site: expected one of main, portland, scottsdale (the sites of sites/ and "
        "the organisation's own, main); got 'mars'")
    assert run("import", str(sheet), "--site", "mars") == 1
    assert capsys.readouterr().err.strip() == (
        "error: --site: expected one of main, portland, scottsdale; got 'mars'")
    assert sorted(stored_sites(env)) == ["a@example.com", "b@example.com"]


def test_enroll_refuses_an_unknown_site_and_writes_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, ENROLLED_AT)
    assert enroll("a@example.com", "--site", "mars") == 1
    assert capsys.readouterr().err.strip() == (
        "command line: --site: expected one of main, portland, scottsdale (the sites of "
        "sites/ and the organisation's own, main); got 'mars'")
    assert not (env / "var" / "aftercare.db").exists() or stored_sites(env) == {}


def test_the_handout_prints_the_sites_name_numbers_and_hours(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, ENROLLED_AT)
    out = env / "ana.pdf"
    assert run("handout", "aftercare-cosmetic", "--name", "Ana", "--treated-on", "2026-11-21",
               "--aftercare-consent", "--site", "scottsdale", "--out", str(out)) == 0
    text = "\n".join(page.extract_text() for page in PdfReader(out).pages)
    assert "Juniper Lane Scottsdale" in text
    assert all(number in text for number in SCOTTSDALE)
    assert "Monday to Friday, 8 am to 4 pm" in text
    assert not [n for n in ORGANISATION + PORTLAND if n in text]
    assert "Juniper Lane Clinic" not in text


def test_preview_shows_a_sites_email(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at(monkeypatch, ENROLLED_AT)
    monkeypatch.chdir(env)
    assert run("preview", "botox-cosmetic", "day-0", "--site", "portland",
               "--language", "es") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "HTML: build/sites/portland/emails/es/botox-cosmetic/day-0.html" in out
    assert all(number in out for number in PORTLAND)
    assert "de martes a sábado, de 10 a. m. a 6 p. m." in out


def test_a_message_of_a_site_removed_since_enrolment_is_not_sent_with_other_numbers(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_of_the_clinic(ROOT, env / "clinic")
    shutil.copytree(ROOT / "sites", project / "sites")
    at(monkeypatch, ENROLLED_AT)
    assert pipeline.main(["--project", str(project), "enroll", "botox-cosmetic", "--email",
                          "pdx@example.com", "--first-name", "Ana", "--treated-on",
                          "2026-11-21", "--aftercare-consent", "--site", "portland"]) == 0
    (project / "sites" / "portland.yaml").unlink()
    assert pipeline.main(["--project", str(project), "send-due", "--now",
                          "2026-11-22T02:00Z"]) == 0
    assert emls(env) == {}
    with sqlite3.connect(env / "var" / "aftercare.db") as db:
        rows = db.execute("SELECT step_key, state, last_error FROM messages"
                          " WHERE state = 'failed'").fetchall()
    assert rows == [("day-0", "failed",
                     "not sent: site 'portland' removed from sites/ since enrolment")]
