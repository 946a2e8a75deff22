"""Dates as people read them, all written by one function in the reader's language (Babel); spans
of days, weeks or months likewise; and the check that a moment is aware."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Mapping
from typing import Final, Literal

Style = Literal["short", "long", "full", "weekday", "padded"]

# CLDR patterns, so that another language is another locale, not another function.
STYLES: Final[dict[Style, str]] = {
    "short": "EEE d MMM",  # Tue 24 Nov (the printed handout, the plan's notes)
    "long": "EEE d MMM y",  # Tue 24 Nov 2026 (the staff pages, the diary)
    "full": "d MMMM y",  # 24 November 2026 (review dates, the sources page)
    "weekday": "EEEE d MMMM",  # Tuesday 24 November (what an email says)
    "padded": "EEE dd MMM y",  # Tue 03 Nov 2026 (the plan's columns line up)
}
# Spanish writes "de" between day, month and year (and its weekdays and months in lower case).
SPANISH: Final[dict[Style, str]] = {
    "short": "EEE d 'de' MMM",  # mar 24 de nov
    "long": "EEE d 'de' MMM 'de' y",  # mar 24 de nov de 2026
    "full": "d 'de' MMMM 'de' y",  # 24 de noviembre de 2026
    "weekday": "EEEE d 'de' MMMM",  # martes 24 de noviembre
    "padded": "EEE dd MMM y",
}
# By language; any other language takes the first patterns, which need no words of their own.
PATTERNS: Final[Mapping[str, Mapping[Style, str]]] = {"en": STYLES, "es": SPANISH}
DEFAULT_LOCALE: Final = "en"
_UNITS: Final = {"days": "duration-day", "weeks": "duration-week", "months": "duration-month"}


@functools.lru_cache(maxsize=4096)
def format_day(day: dt.date, style: Style = "short", locale: str = DEFAULT_LOCALE) -> str:
    """``day`` written in ``style`` for ``locale`` (a language code or CLDR name: "en", "es",
    "es_US", "es-US"), the same whatever the machine's own locale."""
    from babel.dates import format_date  # loading its locale data costs; only when a date shows

    cldr = locale.replace("-", "_")
    patterns = PATTERNS.get(cldr.split("_")[0], STYLES)
    return format_date(day, patterns[style], locale=cldr)


@functools.lru_cache(maxsize=256)
def format_span(amount: int, unit: str, locale: str = DEFAULT_LOCALE) -> str:
    """A span such as "12 weeks" ("12 semanas") in ``locale``'s words; ``unit`` is "days",
    "weeks" or "months"."""
    from babel.units import format_unit

    text: str = format_unit(amount, _UNITS[unit], length="long",
                            locale=locale.replace("-", "_"))
    return text


def require_aware(moment: dt.datetime, name: str) -> None:
    """Raise ValueError for a naive datetime: every moment the pipeline handles has a zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got a naive datetime")


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same moment ``months`` calendar months earlier; a day the month lacks becomes its
    last (31 March less one month is 28 or 29 February)."""
    require_aware(moment, "moment")
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last))
