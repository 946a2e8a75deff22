"""The calendar attachment: one all-day event, escaped and folded as RFC 5545 asks."""

from __future__ import annotations

import datetime as dt

import pytest

from aftercare.render.calendar import AllDayEvent, build_ics, escape_text, fold


def _unfold(ics: bytes) -> list[str]:
    return ics.decode("utf-8").replace("\r\n ", "").split("\r\n")


def _value(lines: list[str], name: str) -> str:
    return next(line.split(":", 1)[1] for line in lines if line.split(":", 1)[0] == name)


def test_build_ics_escapes_and_folds_without_splitting_characters() -> None:
    summary = "Check-in; bring notes, and a \\ backslash\nsecond line " + "é" * 60
    ics = build_ics(
        AllDayEvent(
            uid="abc@example.org",
            day=dt.date(2027, 1, 4),
            summary=summary,
            description="Short.",
            stamp=dt.datetime(2027, 1, 4, 15, 0, tzinfo=dt.UTC),
            organizer_name="Clinic, Inc.",
        )
    )
    physical = ics.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert all(line.decode("utf-8") for line in physical)  # no UTF-8 sequence was cut
    assert any(line.startswith(b" ") for line in physical)
    lines = _unfold(ics)
    assert _value(lines, "SUMMARY") == (
        "Check-in\\; bring notes\\, and a \\\\ backslash\\nsecond line " + "é" * 60
    )
    assert _value(lines, "PRODID") == "-//Clinic\\, Inc.//Aftercare emails//EN"


def test_fold_leaves_short_lines_alone_and_counts_the_leading_space() -> None:
    assert fold("SUMMARY:short") == "SUMMARY:short"
    folded = fold("X" * 200).split("\r\n")
    # 75 + 74 + 51 characters: each continuation line starts with one space.
    assert [len(line) for line in folded] == [75, 75, 52]


def test_naive_stamp_is_refused() -> None:
    event = AllDayEvent("u@x", dt.date(2027, 1, 1), "s", "d", dt.datetime(2027, 1, 1), "C")
    with pytest.raises(ValueError, match="aware"):
        build_ics(event)


def test_escape_text_escapes_backslash_first_and_normalises_line_ends() -> None:
    assert escape_text("a\\b;c,d\r\ne\rf") == "a\\\\b\\;c\\,d\\ne\\nf"


def test_the_event_is_published_transparent_and_one_day_long() -> None:
    ics = build_ics(AllDayEvent("u@x", dt.date(2027, 12, 31), "s", "d",
                                dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "C"))
    lines = _unfold(ics)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    assert _value(lines, "DTSTART;VALUE=DATE") == "20271231"
    assert _value(lines, "DTEND;VALUE=DATE") == "20280101"
    assert _value(lines, "TRANSP") == "TRANSPARENT"
    assert _value(lines, "METHOD") == "PUBLISH"
