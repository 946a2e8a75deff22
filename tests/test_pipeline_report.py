"""`pipeline report`: the same per-site figures as the staff page, as a table or as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pipeline
from tests.conftest import ROOT
from tests.report.seed import MAIN, NORTH, NOW, seed


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var" / "aftercare.db"
    monkeypatch.setenv("AFTERCARE_DB", str(path))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    monkeypatch.setattr(pipeline, "_now", lambda: NOW)
    seed(path)
    return path


def run(*argv: str) -> int:
    return pipeline.main(["--project", str(ROOT), "report", *argv])


def test_report_prints_each_steps_figures_for_one_site(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--site", "north", "--days", "30") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Site north: 2026-10-25 to 2026-11-23 (30 days, today included) and the "
                      "next 7 days; days in America/New_York")
    assert out[1].split() == ["step", "Scheduled", "Sent", "Delivered", "Bounced", "Dropped",
                              "Spam", "reports", "Unsubscribed", "Viewed", "Next", "7", "days"]
    rows = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in out[2:-2]}
    assert rows["botox-migraine/day-0"] == [2, 2, 1, 0, 1, 1, 0, 0, 0]
    assert rows["botox-cosmetic/day-0"] == [0] * 9
    assert out[-2].split()[:2] == ["every", "step"]
    assert out[-1] == "figures for 1 site over 30 days"


def test_report_json_holds_every_site_and_only_json_on_standard_output(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--json") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert captured.err == "figures for 4 sites over 30 days\n"
    # The project's sites (main, and the samples portland and scottsdale) and the outbox's.
    assert [s["site"] for s in data["sites"]] == ["main", "north", "portland", "scottsdale"]
    assert [s["time_zone"] for s in data["sites"][2:]] == ["America/Los_Angeles",
                                                           "America/Phoenix"]
    main = data["sites"][0]
    assert main["time_zone"] == "America/New_York"
    assert (main["days"][0], main["days"][-1], len(main["days"])) == (
        "2026-10-25", "2026-11-23", 30)
    assert main["forecast_days"][0] == "2026-11-23" and len(main["forecast_days"]) == 7
    for site, expected in zip(data["sites"], (MAIN, NORTH, {}, {}), strict=True):
        for step in site["steps"]:
            want = expected.get((step["campaign"], step["step"]))
            assert step["totals"] == (want or dict.fromkeys(step["totals"], 0))
    day0 = main["steps"][0]
    assert (day0["campaign"], day0["step"]) == ("botox-cosmetic", "day-0")
    assert day0["daily"]["viewed"][27] == 1  # 21 November
    assert day0["forecast"] == [1, 1, 0, 0, 0, 0, 0]
    assert main["totals"]["forecast"] == 3
    assert data["meanings"]["delivered"] == (
        "the provider reported it reached the patient's mail server")
    assert "example.com" not in captured.out


def test_report_refuses_an_unknown_site_and_a_bad_span(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--site", "south") == 1
    assert capsys.readouterr().err == ("error: --site: expected one of main, north, "
                                       "portland, scottsdale; got 'south'\n")
    assert run("--days", "400") == 1
    assert capsys.readouterr().err == (
        "error: --days: expected a number of days from 1 to 366; got 400\n")


def test_report_on_an_empty_outbox_lists_the_projects_sites_with_zeros(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AFTERCARE_DB", str(tmp_path / "empty.db"))
    monkeypatch.setenv("AFTERCARE_SECRET_KEY", "k" * 40)
    monkeypatch.setattr(pipeline, "_now", lambda: NOW)
    assert run("--json", "--days", "1") == 0
    site, *samples = json.loads(capsys.readouterr().out)["sites"]
    assert [s["site"] for s in samples] == ["portland", "scottsdale"]
    assert site["site"] == "main" and set(site["totals"].values()) == {0}
    assert site["days"] == ["2026-11-23"]
