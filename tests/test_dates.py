"""Dates written through one function, the same whatever the machine's locale."""

from __future__ import annotations

import datetime as dt
import locale

import pytest

from aftercare.dates import STYLES, format_day, months_before, require_aware

DAY = dt.date(2026, 11, 3)


@pytest.mark.parametrize(("style", "expected"), [
    ("short", "Tue 3 Nov"),
    ("long", "Tue 3 Nov 2026"),
    ("full", "3 November 2026"),
    ("weekday", "Tuesday 3 November"),
    ("padded", "Tue 03 Nov 2026"),
])
def test_each_style_in_english(style: str, expected: str) -> None:
    assert format_day(DAY, style) == expected  # type: ignore[arg-type]


def test_every_style_is_tested() -> None:
    assert set(STYLES) == {"short", "long", "full", "weekday", "padded"}


def test_another_locale_is_another_argument_not_another_function() -> None:
    assert format_day(DAY, "weekday", "es") == "martes 3 de noviembre"


def test_the_process_locale_changes_nothing() -> None:
    before = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("C.UTF-8", "C"):
            try:
                locale.setlocale(locale.LC_TIME, name)
            except locale.Error:
                continue
            assert format_day(dt.date(2026, 12, 1), "long") == "Tue 1 Dec 2026"
    finally:
        locale.setlocale(locale.LC_TIME, before)


def test_a_naive_moment_is_refused_by_name() -> None:
    require_aware(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "now")
    with pytest.raises(ValueError, match=r"^when must be timezone-aware; got a naive datetime$"):
        require_aware(dt.datetime(2026, 1, 1), "when")


def test_months_before_counts_calendar_months_and_clamps_to_the_months_end() -> None:
    moment = dt.datetime(2026, 3, 31, 15, 0, tzinfo=dt.UTC)
    assert months_before(moment, 1) == dt.datetime(2026, 2, 28, 15, 0, tzinfo=dt.UTC)
    assert months_before(moment, 13) == dt.datetime(2025, 2, 28, 15, 0, tzinfo=dt.UTC)
    assert months_before(moment, 25) == dt.datetime(2024, 2, 29, 15, 0, tzinfo=dt.UTC)
    assert months_before(moment, 24) == dt.datetime(2024, 3, 31, 15, 0, tzinfo=dt.UTC)
    assert months_before(dt.datetime(2026, 1, 15, tzinfo=dt.UTC), 1).date() == dt.date(2025, 12, 15)
