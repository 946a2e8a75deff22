"""The figures' chart: an accessible SVG bar chart of one site's emails per day, sent over the
span and expected over the next 7 days, with a real title and description (pure)."""

from __future__ import annotations

from html import escape
from typing import Final

from aftercare.dates import format_day
from aftercare.outbox.figures import FORECAST, SENT
from aftercare.report.figures import SiteFigures

WIDTH: Final = 760
HEIGHT: Final = 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 16, 58  # room for the axis labels and the legend
_GAP: Final = 1  # empty slots between the span's bars and the forecast's


def chart(figures: SiteFigures, element_id: str = "figures-chart") -> str:
    """The chart as an ``<svg>`` element; every text in it is escaped. Bars are told apart by
    pattern as well as by colour (forecast bars are hatched), and each has its own title."""
    sent, ahead = figures.per_day(SENT), figures.per_day(FORECAST)
    days, coming = figures.span.days, figures.span.ahead
    slots = len(days) + _GAP + len(coming)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    step = plot_w / slots
    top = _nice_top(max((*sent, *ahead, 1)))
    title, desc = f"{element_id}-title", f"{element_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{title}" aria-describedby="{desc}">',
        f'<title id="{title}">{escape(_title(figures))}</title>',
        f'<desc id="{desc}">{escape(describe(figures))}</desc>',
        '<defs><pattern id="figures-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-ground"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line" stroke-width="3"/></pattern>'
        '</defs>',
    ]
    for value in (0, top // 2, top):  # grid lines with their values
        y = _TOP + plot_h - plot_h * value / top
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{value}</text>')
    bars = [(n, day, count, "bar-sent", "sent") for n, (day, count) in enumerate(
        zip(days, sent, strict=True))]
    bars += [(len(days) + _GAP + n, day, count, "bar-forecast", "expected")
             for n, (day, count) in enumerate(zip(coming, ahead, strict=True))]
    for slot, day, count, css, word in bars:
        height = plot_h * count / top
        x, y = _LEFT + slot * step + step * 0.15, _TOP + plot_h - height
        fill = ' fill="url(#figures-hatch)"' if css == "bar-forecast" else ""
        parts.append(f'<rect class="{css}"{fill} x="{x:.1f}" y="{y:.1f}" '
                     f'width="{step * 0.7:.1f}" height="{height:.1f}">'
                     f'<title>{escape(format_day(day, "long"))}: {count} {word}</title></rect>')
    # The first day, every 7th (not crowding today's label), today, and the forecast's last day.
    last = len(days) + _GAP + len(coming) - 1
    labelled = {n for n in range(0, len(days), 7) if n == 0 or n <= len(days) - 5}
    labelled |= {len(days) - 1, last}
    for slot, day, _count, _css, _word in bars:
        if slot in labelled:
            x = _LEFT + slot * step + step / 2
            anchor = "start" if slot == 0 else "end" if slot == last else "middle"
            x = _LEFT + slot * step if slot == 0 else _LEFT + (slot + 1) * step if (
                slot == last) else x
            parts.append(f'<text class="axis" x="{x:.1f}" y="{_TOP + plot_h + 16}" '
                         f'text-anchor="{anchor}">{escape(format_day(day, "short"))}</text>')
    legend_y = HEIGHT - 14
    parts.append(
        f'<rect class="bar-sent" x="{_LEFT}" y="{legend_y - 10}" width="12" height="12"/>'
        f'<text class="legend" x="{_LEFT + 18}" y="{legend_y}">Sent (last {len(days)} days)'
        f'</text><rect class="bar-forecast" fill="url(#figures-hatch)" x="{_LEFT + 220}" '
        f'y="{legend_y - 10}" width="12" height="12"/><text class="legend" '
        f'x="{_LEFT + 238}" y="{legend_y}">Expected (next {len(coming)} days)</text>')
    parts.append("</svg>")
    return "".join(parts)


def describe(figures: SiteFigures) -> str:
    """The chart in words: what a screen reader says, and what the figure's caption can say."""
    sent, ahead = figures.per_day(SENT), figures.per_day(FORECAST)
    days = figures.span.days
    busiest = max(range(len(days)), key=lambda n: (sent[n], n)) if sum(sent) else None
    text = (f"Bars, one per day, from {format_day(days[0], 'long')} to "
            f"{format_day(figures.span.ahead[-1], 'long')}, days in {figures.span.zone}. "
            f"Sent in the last {len(days)} days: {sum(sent)}")
    if busiest is not None:
        text += f", most on {format_day(days[busiest], 'long')} ({sent[busiest]})"
    return (text + f". Expected in the next {len(ahead)} days: {sum(ahead)}. "
            "The tables below the chart give every day's figures.")


def _title(figures: SiteFigures) -> str:
    return (f"Emails per day at site {figures.site}: sent in the last "
            f"{len(figures.span.days)} days, expected in the next {len(figures.span.ahead)}")


def _nice_top(value: int) -> int:
    """The axis's top: an even number at or above ``value`` (so its half is whole)."""
    for top in (2, 4, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        if value <= top:
            return top
    return value + value % 2
