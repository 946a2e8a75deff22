"""Builds a one-event iCalendar file (RFC 5545) for an aftercare email's calendar reminder."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aftercare.dates import require_aware

CRLF = "\r\n"
MAX_OCTETS = 75


@dataclass(frozen=True)
class AllDayEvent:
    """A reminder on one whole local day; ``stamp`` is when the invitation was made (aware)."""

    uid: str
    day: dt.date
    summary: str
    description: str
    stamp: dt.datetime
    organizer_name: str


def build_ics(event: AllDayEvent) -> bytes:
    """The event as a published VCALENDAR: CRLF line ends, escaped text, folded lines."""
    require_aware(event.stamp, "the DTSTAMP")
    stamp = event.stamp.astimezone(dt.UTC)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//{escape_text(event.organizer_name)}//Aftercare emails//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{stamp:%Y%m%dT%H%M%SZ}",
        f"DTSTART;VALUE=DATE:{event.day:%Y%m%d}",
        f"DTEND;VALUE=DATE:{event.day + dt.timedelta(days=1):%Y%m%d}",
        f"SUMMARY:{escape_text(event.summary)}",
        f"DESCRIPTION:{escape_text(event.description)}",
        # A reminder, not a booked appointment: it must not block the patient's day.
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + CRLF for line in lines).encode("utf-8")


def escape_text(text: str) -> str:
    """A TEXT value escaped per RFC 5545 §3.3.11 (backslash, semicolon, comma, newline)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """The line folded so no physical line exceeds 75 octets, never splitting a UTF-8 character."""
    parts: list[str] = []
    current = ""
    size = 0
    limit = MAX_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
            limit = MAX_OCTETS - 1  # a continuation line starts with one space
        current += char
        size += width
    parts.append(current)
    return (CRLF + " ").join(parts)
