"""The small value types read from text: each accepts its form and says what it expected."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from aftercare.content.values import (
    ClockTime,
    Colour,
    EmailAddress,
    Offset,
    Slug,
    Url,
    ZoneName,
    normalise_address,
)


@pytest.mark.parametrize(("kind", "good", "bad"), [
    (Slug, "day-0", "Day 0"),
    (Colour, "#1A2b3C", "blue"),
    (Url, "https://clinic.example/book", "http://clinic.example/"),
    (EmailAddress, " Ann@Example.COM ", "ann@example"),
    (ZoneName, "Europe/London", "Mars/Olympus"),
    (ClockTime, "9:05", "24:00"),
    (Offset, "3 months", "a fortnight"),
])
def test_each_type_parses_its_form_and_names_what_it_expected(
    kind: type, good: str, bad: str
) -> None:
    kind.parse(good)
    with pytest.raises(ValueError, match=re.escape(f"expected {kind.expected}")):
        kind.parse(bad)


def test_addresses_keep_the_local_part_and_lower_the_domain() -> None:
    assert EmailAddress.parse(" Ann.Lee@Example.COM ") == "Ann.Lee@example.com"
    assert normalise_address(" Ann.Lee@Example.COM ") == "Ann.Lee@example.com"
    assert normalise_address("not an address ") == "not an address"
    with pytest.raises(ValueError):
        EmailAddress.parse("ann..lee@example.com")


def test_colours_are_stored_in_lower_case_and_times_print_padded() -> None:
    assert Colour.parse("#ABCDEF") == "#abcdef"
    assert str(ClockTime.parse("9:05")) == "09:05"
    assert ClockTime.parse("18:00").as_time() == dt.time(18, 0)


def test_offsets_count_calendar_months_and_clamp_to_the_months_end() -> None:
    three_months = Offset.parse("3 months")
    assert three_months.after(dt.date(2025, 11, 30)) == dt.date(2026, 2, 28)
    assert three_months.after(dt.date(2027, 11, 30)) == dt.date(2028, 2, 29)
    assert Offset.parse("2 weeks").after(dt.date(2026, 12, 25)) == dt.date(2027, 1, 8)
    assert (three_months.shortest_days(), three_months.longest_days()) == (84, 93)
    assert str(Offset.parse("1 days")) == "1 day"
    assert ZoneName.parse("Asia/Tokyo").zone.key == "Asia/Tokyo"
