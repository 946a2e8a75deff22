"""Dates as people read them, all written by one function; and the check that a moment is aware."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import Final, Literal

Style = Literal["short", "long", "full", "weekday", "padded"]

# CLDR patterns, so that another language is another locale, not another function. In English:
STYLES: Final[dict[Style, str]] = {
    "short": "EEE d MMM",  # Tue 24 Nov (the printed handout, the plan's notes)
    "long": "EEE d MMM y",  # Tue 24 Nov 2026 (the staff pages, the diary)
    "full": "d MMMM y",  # 24 November 2026 (review dates, the sources page)
    "weekday": "EEEE d MMMM",  # Tuesday 24 November (what an email says)
    "padded": "EEE dd MMM y",  # Tue 03 Nov 2026 (the plan's columns line up)
}
DEFAULT_LOCALE: Final = "en"


@functools.lru_cache(maxsize=4096)
def format_day(day: dt.date, style: Style = "short", locale: str = DEFAULT_LOCALE) -> str:
    """``day`` written in ``style`` for ``locale`` (a CLDR name: "en", "en_US", "es"), the same
    whatever the machine's own locale."""
    from babel.dates import format_date  # loading its locale data costs; only when a date shows

    return format_date(day, STYLES[style], locale=locale)


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
