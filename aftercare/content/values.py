"""Small value types read from text (offsets, clock times, colours, zones, URLs, addresses)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Deliberately simple: one @, a dotted domain, no spaces or angle brackets. Deliverability
# is SendGrid's job; this catches typing mistakes at the desk.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


class Slug(str):
    """A lower-case identifier such as ``day-1`` or ``aftercare-cosmetic``."""

    expected: ClassVar[str] = "a lower-case id of letters, digits and hyphens"

    @classmethod
    def parse(cls, text: str) -> Slug:
        if not _SLUG.match(text):
            raise ValueError(f"expected {cls.expected}")
        return cls(text)


class Colour(str):
    """A CSS colour written #rrggbb."""

    expected: ClassVar[str] = "a colour written #rrggbb"

    @classmethod
    def parse(cls, text: str) -> Colour:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
            raise ValueError(f"expected {cls.expected}")
        return cls(text.lower())


class Url(str):
    """An absolute https:// address (http:// only for localhost during development)."""

    expected: ClassVar[str] = "an address starting https://"

    @classmethod
    def parse(cls, text: str) -> Url:
        if not re.fullmatch(r"https://[^\s/]+(/\S*)?", text) and not re.fullmatch(
            r"http://(localhost|127\.0\.0\.1)(:\d+)?(/\S*)?", text
        ):
            raise ValueError(f"expected {cls.expected}")
        return cls(text)


class EmailAddress(str):
    """An email address as typed by a person, trimmed and with the domain in lower case."""

    expected: ClassVar[str] = "an email address like name@example.com"

    @classmethod
    def parse(cls, text: str) -> EmailAddress:
        text = text.strip()
        if len(text) > 254 or not _EMAIL.match(text) or ".." in text:
            raise ValueError(f"expected {cls.expected}")
        return cls(normalise_address(text))


def normalise_address(text: str) -> str:
    """An address as stored and compared: trimmed, with the domain in lower case."""
    local, at, domain = text.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else text.strip()


class ZoneName(str):
    """An IANA time zone name such as Europe/London."""

    expected: ClassVar[str] = "an IANA time zone such as America/New_York"

    @classmethod
    def parse(cls, text: str) -> ZoneName:
        try:
            zoneinfo.ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"expected {cls.expected}") from exc
        return cls(text)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self)


@dataclass(frozen=True, order=True)
class ClockTime:
    """A local wall-clock time written HH:MM (24-hour)."""

    hour: int
    minute: int
    expected: ClassVar[str] = "a time written HH:MM (24-hour)"

    @classmethod
    def parse(cls, text: str) -> ClockTime:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
        if not match:
            raise ValueError(f"expected {cls.expected}")
        return cls(int(match[1]), int(match[2]))

    def as_time(self) -> dt.time:
        return dt.time(self.hour, self.minute)

    def __str__(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


Unit = Literal["days", "weeks", "months"]


@dataclass(frozen=True)
class Offset:
    """A span after the treatment date: whole days, weeks or calendar months."""

    amount: int
    unit: Unit
    expected: ClassVar[str] = "a span such as '1 day', '2 weeks' or '3 months'"

    @classmethod
    def parse(cls, text: str) -> Offset:
        match = re.fullmatch(r"(\d{1,3})\s+(day|week|month)s?", text.strip())
        if not match:
            raise ValueError(f"expected {cls.expected}")
        unit: Unit = f"{match[2]}s"  # type: ignore[assignment]
        return cls(int(match[1]), unit)

    def after(self, day: dt.date) -> dt.date:
        """The date this offset after ``day``; months clamp to the month's last day."""
        if self.unit == "days":
            return day + dt.timedelta(days=self.amount)
        if self.unit == "weeks":
            return day + dt.timedelta(weeks=self.amount)
        month_index = day.month - 1 + self.amount
        year, month = day.year + month_index // 12, month_index % 12 + 1
        last = calendar.monthrange(year, month)[1]
        return dt.date(year, month, min(day.day, last))

    def shortest_days(self) -> int:
        """The fewest days this span can last from any start date (a month is 28 to 31)."""
        return self.amount * {"days": 1, "weeks": 7, "months": 28}[self.unit]

    def longest_days(self) -> int:
        """The most days this span can last from any start date."""
        return self.amount * {"days": 1, "weeks": 7, "months": 31}[self.unit]

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)


class FrozenMap(Mapping[K, V]):
    """A read-only mapping that can be hashed, so frozen dataclasses holding one still can be."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        self._items: dict[K, V] = dict(items or {})

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"
