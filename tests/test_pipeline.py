"""The command line end to end: exit codes, messages, and the issue's "done when" journeys."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from pypdf import PdfReader

import pipeline
from aftercare.content.load import load_project
from tests.conftest import FIXTURES, ROOT


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the database, outbox and secret at a temporary folder."""
    monkeypatch.setenv("AFTERCARE_DB", str(tmp_path / "var" / "aftercare.db"))
    monkeypatch.setenv("AFTERCARE_OUTBOX_DIR", str(tmp_path / "var" / "outbox"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    return tmp_path


# The command line reads the clock in one place; pinning it keeps these journeys (and the
# review-date lint) meaning the same whatever day the suite runs.
FIXED_NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)  # Mon 15:00 in New York


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_now", lambda: FIXED_NOW)


def _days_ago(days: int) -> str:
    """A treatment date relative to the real today, for commands run in a child process."""
    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), *argv])


def test_check_is_clean_and_strict_on_the_shipped_content_at_grade_6(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert load_project(ROOT).clinic.max_reading_grade == 6
    assert run("check", "--strict") == 0
    out, err = capsys.readouterr()
    assert out.strip() == ("checked 9 handouts and 2 campaigns, and 9 handouts and 2 campaigns "
                           "in es: 0 errors, 0 warnings")
    assert err == ""


def test_check_scores_print_each_handouts_reading_grades(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # about.yaml: "We are a small team. We are glad to help." is 10 one-syllable words in 2
    # sentences: 0.39 × 5 + 11.8 − 15.59 = −1.84; no word of three syllables: SMOG 3.13.
    assert pipeline.main(["--project", str(FIXTURES / "lint"), "check", "--scores"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "handouts/about.yaml: highest section grade -1.8, highest sentence grade -1.8, "
        "longest sentence 5 words, SMOG 3.1",
        "handouts/care.yaml: highest section grade 2.5, highest sentence grade 2.5, "
        "longest sentence 6 words, SMOG 3.1",
        # Then each template's own wording, as `check` grades it ("Hello Sample," and "Call
        # us on ... if you are worried."; "Here are a few tips.").
        "templates/email/_layout.txt: own wording grade 1.9, highest sentence grade 8.8, "
        "longest sentence 7 words",
        "templates/email/day-1.txt: own wording grade -1.8, highest sentence grade -1.8, "
        "longest sentence 5 words",
        "checked 2 handouts and 1 campaigns: 0 errors, 0 warnings",
    ]
    assert err == ""


def test_a_broken_yaml_file_gets_a_one_line_error_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "clinic"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "var", "tests", "__pycache__", ".*_cache"))
    path = project / "handouts" / "aftercare-migraine.yaml"
    path.write_text(path.read_text().replace("kind: warning", "kind: danger", 1))
    assert pipeline.main(["--project", str(project), "check"]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("handouts/aftercare-migraine.yaml:")
    assert lines[0].endswith(
        ".callout.kind: expected one of tip, warning, emergency; got 'danger'")
    assert "Traceback" not in err


def test_wrong_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run("handout", "aftercare-cosmetic")  # --name and --treated-on are required
    assert caught.value.code == 2


def test_unknown_topic_exits_1_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("build", "--out", "/nonexistent/x", "no-such-topic") == 1
    assert "handouts/no-such-topic.yaml: no such topic" in capsys.readouterr().err


def test_build_writes_every_handout_and_email_preview(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    assert run("build", "--out", str(out)) == 0
    # Every handout, diary and email step in English, and again in Spanish under es/.
    for folder, lang in (("", "en-US"), ("es/", "es-US")):
        pdfs = sorted(p.stem for p in (out / f"handouts/{folder}").glob("*.pdf"))
        assert pdfs == sorted(p.stem for p in (ROOT / "handouts").glob("*.yaml"))
        diary = out / f"printouts/{folder}headache-diary.pdf"  # there is a migraine campaign
        for pdf in (*(out / f"handouts/{folder}").glob("*.pdf"), diary):
            reader = PdfReader(pdf)
            assert "/StructTreeRoot" in reader.trailer["/Root"]
            assert reader.trailer["/Root"]["/Lang"] == lang
        assert len(PdfReader(diary).pages) == 1
        for campaign in ("botox-cosmetic", "botox-migraine"):
            for step in pipeline.load_project(ROOT).campaigns[campaign].steps:
                assert (out / f"emails/{folder}{campaign}/{step.key}.html").is_file()
                assert (out / f"emails/{folder}{campaign}/{step.key}.txt").is_file()
    assert capsys.readouterr().out.startswith("wrote 18 handouts, 2 headache diaries and ")


def _squashed_pdf_text(path: Path) -> str:
    return "".join("".join(page.extract_text().split()) for page in PdfReader(path).pages)


def _labels(campaign_id: str, kind: str) -> list[str]:
    campaign = load_project(ROOT).campaigns[campaign_id]
    return ["".join(s.label.split()) for s in campaign.steps if s.kind == kind]


def test_personalised_handout_prints_typed_text_literally_and_no_email_unasked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ana.pdf"
    assert run("handout", "aftercare-cosmetic", "--name", "<b>Ann</b> Ruiz",
               "--treated-on", "2026-11-23", "--areas", "frown lines, forehead",
               "--provider", "Dr Lee", "--product", "BOTOX <Cosmetic>", "--units", "20 & 4",
               "--lot", "C1234<AB>", "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert captured.err == ("note: without --aftercare-consent the handout lists no email "
                            "dates (as for a patient who is not enrolled)\n")
    reader = PdfReader(out)
    assert len(reader.pages) == 2
    text = " ".join(page.extract_text() for page in reader.pages)
    for typed in ("Name: <b>Ann</b> Ruiz", "Product: BOTOX <Cosmetic>", "Units: 20 & 4",
                  "Lot: C1234<AB>"):
        assert typed in text
    squashed = _squashed_pdf_text(out)
    assert "Mon15Feb:" in squashed  # the next treatment: 12 weeks on, an open day
    for label in _labels("botox-cosmetic", "clinical") + _labels("botox-cosmetic", "marketing"):
        assert label not in squashed
    assert "Wedonotemailyouaboutthistreatment." in squashed


@pytest.mark.parametrize("reminder_flag", [None, "--reminder-consent", "--marketing-consent"])
def test_the_handout_lists_the_emails_the_patient_agreed_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reminder_flag: str | None
) -> None:
    out = tmp_path / "ana.pdf"
    flags = ["--aftercare-consent"] + ([reminder_flag] if reminder_flag else [])
    assert run("handout", "aftercare-cosmetic", "--name", "Ana", "--treated-on", "2026-11-23",
               *flags, "--out", str(out)) == 0
    assert capsys.readouterr().err == ""
    squashed = _squashed_pdf_text(out)
    for label in _labels("botox-cosmetic", "clinical"):
        assert label in squashed
    for label in _labels("botox-cosmetic", "marketing"):
        assert (label in squashed) == (reminder_flag is not None)
    assert "Wedonotemailyou" not in squashed


def test_the_migraine_handout_comes_with_its_diary_and_only_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, diary = tmp_path / "handout.pdf", tmp_path / "diary.pdf"
    assert run("handout", "aftercare-migraine", "--name", "Ana Ruiz", "--treated-on",
               "2026-11-23", "--out", str(out), "--diary", str(diary)) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {out} ({out.stat().st_size // 1024} KiB) and the headache diary {diary}")
    reader = PdfReader(diary)
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "My headache diary" in text and "Name: Ana Ruiz" in text
    assert "Mon 23 Nov" in text and "Sun 20 Dec" in text  # 28 days from the treatment day

    assert run("handout", "aftercare-cosmetic", "--name", "Ana", "--treated-on", "2026-11-23",
               "--out", str(tmp_path / "c.pdf"), "--diary", str(tmp_path / "d.pdf")) == 1
    assert capsys.readouterr().err.strip() == (
        "error: --diary: expected a migraine checkout handout; aftercare-cosmetic comes "
        "without a headache diary")
    assert not (tmp_path / "c.pdf").exists() and not (tmp_path / "d.pdf").exists()


def test_a_topic_without_personal_details_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("handout", "what-is-botox", "--name", "Ana", "--treated-on", "2026-11-23",
               "--out", str(tmp_path / "x.pdf")) == 1
    assert capsys.readouterr().err.strip() == (
        "error: TOPIC: expected a checkout handout (aftercare-cosmetic or aftercare-migraine); "
        "got 'what-is-botox', a topic without personal details (`pipeline build` prints it)")
    assert not (tmp_path / "x.pdf").exists()


def test_a_treatment_date_in_the_future_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("handout", "aftercare-cosmetic", "--name", "Ana", "--treated-on", "2099-01-01",
               "--out", str(tmp_path / "x.pdf")) == 1
    assert "--treated-on" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()


def test_schedule_prints_the_plan_and_writes_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("schedule", "botox-migraine", "--treated-on", "2026-11-20",
               "--tz", "Europe/London", "--json") == 0
    plan = json.loads(capsys.readouterr().out.split("\n]")[0] + "\n]")
    assert [p["step"] for p in plan] == ["day-0", "week-2", "week-10"]
    assert not (env / "var").exists()


def _eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_enrol_then_send_due_at_each_step_time_sends_exactly_one_email_per_step(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The clinic is in America/New_York; emails go at 10:00 local (15:00 UTC in winter).
    assert run("enroll", "botox-cosmetic", "--email", "ana@example.com", "--first-name", "Ana",
               "--treated-on", "2026-11-23", "--aftercare-consent", "--marketing-consent") == 0
    assert run("enroll", "botox-cosmetic", "--email", "ana@example.com", "--first-name", "Ana",
               "--treated-on", "2026-11-23", "--aftercare-consent", "--marketing-consent") == 0
    assert "already enrolled" in capsys.readouterr().out
    outbox = env / "var" / "outbox"
    expected = {
        "2026-11-23T22:59Z": 0, "2026-11-23T23:00Z": 1,  # day-0, Mon 23 Nov 18:00
        "2026-12-07T15:00Z": 2,  # week-2, Mon 7 Dec 10:00
        "2027-02-23T14:59Z": 2, "2027-02-23T15:00Z": 3,  # month-3, Tue 23 Feb 10:00
        "2027-02-24T15:00Z": 3,  # running again sends nothing new
    }
    for now, count in expected.items():
        assert run("send-due", "--now", now) == 0
        assert len(list(outbox.glob("*.eml"))) == count, now
    subjects = sorted(_eml(p)["Subject"] for p in outbox.glob("*.eml"))
    assert subjects == sorted(s.subject for s in
                              pipeline.load_project(ROOT).campaigns["botox-cosmetic"].steps)
    for path in outbox.glob("*.eml"):
        message = _eml(path)
        assert message.get_content_type() in ("multipart/alternative", "multipart/mixed")
        assert message["To"] == "Ana <ana@example.com>"
    capsys.readouterr()
    assert run("outbox", "--json") == 0
    rows = json.loads(capsys.readouterr().out.split("\n]")[0] + "\n]")
    assert sorted(r["state"] for r in rows) == ["sent", "sent", "sent"]
    assert all(r["content_hash"] and r["template_version"] for r in rows)


def test_unsubscribe_cancels_and_refuses_later_enrolment(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("enroll", "botox-migraine", "--email", "bo@example.com", "--first-name", "Bo",
               "--treated-on", "2026-11-23", "--aftercare-consent") == 0
    assert run("unsubscribe", "bo@example.com") == 0
    assert "cancelled 3 unsent messages" in capsys.readouterr().out
    assert run("enroll", "botox-cosmetic", "--email", "bo@example.com", "--first-name", "Bo",
               "--treated-on", "2026-11-23", "--aftercare-consent") == 1
    assert "unsubscribed" in capsys.readouterr().err


def test_bad_enrolment_names_the_field_and_writes_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("enroll", "botox-cosmetic", "--email", "not-an-email", "--first-name", "Ana",
               "--treated-on", "2026-02-30") == 1
    err = capsys.readouterr().err
    assert "--email" in err and "--treated-on" in err
    assert "--aftercare-consent: required" in err  # reported with the others, not instead
    assert not (env / "var" / "aftercare.db").exists()


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["check"],
    ["schedule", "botox-cosmetic", "--treated-on", _days_ago(3)],
    ["enroll", "botox-cosmetic", "--email", "di@example.com", "--first-name", "Di",
     "--treated-on", _days_ago(3), "--aftercare-consent"],
    ["outbox"],
])
def test_commands_that_render_nothing_do_not_import_weasyprint(
    argv: list[str], env: Path
) -> None:
    code = (
        "import sys, pipeline\n"
        "try:\n"
        f"    code = pipeline.main({['--project', str(ROOT), *argv]!r})\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('WEASYPRINT' if 'weasyprint' in sys.modules else 'CLEAN', code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False, env=dict(os.environ))
    assert result.stdout.strip().splitlines()[-1] == "CLEAN 0", result.stderr


def test_send_due_refuses_a_pretend_clock_with_sendgrid(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.not-a-real-key")
    monkeypatch.setenv("SENDGRID_API_HOST", "http://127.0.0.1:9")
    assert run("send-due", "--now", "2026-11-24T15:00Z") == 2
    assert "real clock" in capsys.readouterr().err


def test_resolve_settles_only_unknown_messages(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("enroll", "botox-cosmetic", "--email", "cy@example.com", "--first-name", "Cy",
               "--treated-on", "2026-11-23", "--aftercare-consent") == 0
    capsys.readouterr()
    assert run("resolve", "1", "--sent") == 1
    assert "unknown" in capsys.readouterr().err


# ---------------------------------------------------------------- issue 10: the two bugs


ALL_QUIET = "quiet_weekdays: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]"


@pytest.fixture
def all_quiet(tmp_path: Path) -> Path:
    """The shipped project, with a campaign whose weekdays are all quiet."""
    project = tmp_path / "clinic"
    project.mkdir()
    for name in ("clinic.yaml", "handouts", "campaigns", "templates"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name)
        else:
            shutil.copy(source, project / name)
    path = project / "campaigns" / "botox-cosmetic.yaml"
    text = path.read_text(encoding="utf-8")
    assert "quiet_weekdays: [sunday]" in text
    path.write_text(text.replace("quiet_weekdays: [sunday]", ALL_QUIET), encoding="utf-8")
    return project


@pytest.mark.parametrize("argv", [
    ("check",),
    ("schedule", "botox-cosmetic", "--treated-on", "2026-11-23"),
    ("handout", "aftercare-cosmetic", "--name", "Ann", "--treated-on", "2026-11-23"),
])
def test_a_campaign_without_an_open_weekday_is_an_error_with_file_and_line(
    all_quiet: Path, env: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    assert pipeline.main(["--project", str(all_quiet), *argv]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("campaigns/botox-cosmetic.yaml:9: quiet_weekdays: expected at least "
                          "one weekday that is not quiet"), err
    assert "Traceback" not in out + err


def test_outbox_json_is_only_json_on_standard_output(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("enroll", "botox-cosmetic", "--email", "ann@example.com", "--first-name", "Ann",
               "--treated-on", "2026-11-23", "--aftercare-consent") == 0
    capsys.readouterr()
    assert run("outbox", "--json") == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)  # the whole of standard output parses
    assert [row["step_key"] for row in rows] == ["day-0", "week-2", "month-3"]
    assert {row["state"] for row in rows} == {"scheduled", "cancelled"}
    assert err == "3 messages\n"


def test_schedule_json_is_only_json_on_standard_output(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("schedule", "botox-cosmetic", "--treated-on", "2026-11-23", "--json") == 0
    out, err = capsys.readouterr()
    steps = json.loads(out)
    assert [s["step"] for s in steps] == ["day-0", "week-2", "month-3"]
    assert set(steps[0]) == {"step", "kind", "action", "note", "local", "utc"}
    assert err == "3 steps planned for botox-cosmetic; nothing written\n"


def test_outbox_json_pipes_into_a_json_tool(env: Path) -> None:
    listing = subprocess.run([sys.executable, str(ROOT / "pipeline.py"), "outbox", "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert listing.returncode == 0, listing.stderr
    tool = subprocess.run([sys.executable, "-m", "json.tool"], input=listing.stdout,
                          capture_output=True, text=True, timeout=60, check=False)
    assert tool.returncode == 0 and tool.stdout.strip() == "[]"
    assert listing.stderr == "0 messages\n"


# ---------------------------------------------------------------- fields shown as options


@pytest.mark.parametrize(("argv", "expected"), [
    (("enroll", "botox-cosmetic", "--email", "nope", "--first-name", "", "--treated-on",
      "2026-13-01", "--tz", "Mars/Olympus"),
     ["command line: --aftercare-consent: required: enrol a patient only once",
      "command line: --email: expected an email address",
      "command line: --first-name: expected a first name; got nothing",
      "command line: --treated-on: expected a real calendar date",
      "command line: --tz: expected an IANA time zone"]),
    (("handout", "aftercare-cosmetic", "--name", "A" * 81, "--treated-on", "2026-11-23"),
     ["error: --name: expected at most 80 characters; got 81"]),
    (("handout", "aftercare-cosmetic", "--name", "Ann", "--treated-on", "2026-11-24"),
     ["error: --treated-on: expected today (2026-11-23 at the clinic) or earlier"]),
    (("schedule", "botox-nope", "--treated-on", "2026-11-23"),
     ["error: CAMPAIGN: expected one of botox-cosmetic, botox-migraine; got 'botox-nope'"]),
    (("schedule", "botox-cosmetic", "--treated-on", "2026-11-23", "--tz", "Nowhere"),
     ["error: --tz: expected an IANA time zone"]),
    (("unsubscribe", "not-an-address"), ["error: EMAIL: expected an email address"]),
    (("build", "--jobs", "0", "aftercare-cosmetic"), ["error: --jobs: expected 1 or more"]),
])
def test_problems_name_the_commands_own_options(
    env: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], expected: list[str]
) -> None:
    assert run(*argv) == 1
    lines = capsys.readouterr().err.splitlines()
    for line, start in zip(lines, expected, strict=False):
        assert line.startswith(start), (line, start)
    assert len(lines) >= len(expected)
