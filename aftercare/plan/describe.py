"""The plan in words, one way for everyone: each email's step, its local and UTC times, what will
happen and why; the command line prints these lines and the staff pages show them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from aftercare.content.model import Campaign
from aftercare.dates import format_day
from aftercare.plan.schedule import Action, PlannedMessage

# What will happen to each email: as the command line's plan says it, and as the staff page does.
ACTIONS: Final[dict[Action, tuple[str, str]]] = {
    "send": ("to send", "Will be sent"),
    "send-now": ("due now", "Sending now"),
    "skip": ("not sent", "Not sent"),
}


@dataclass(frozen=True)
class PlanLine:
    """One planned email, described."""

    step_key: str
    kind: str  # clinical | marketing
    step: str  # "2 weeks after treatment", "the treatment day"
    label: str  # what the email is, in the campaign's words
    local: dt.datetime  # aware, in the zone it is shown in
    due_at: dt.datetime  # aware, UTC
    action: Action
    note: str | None

    @property
    def status(self) -> str:
        """What will happen, for the staff page: "Will be sent", "Sending now" or "Not sent"."""
        return ACTIONS[self.action][1]

    @property
    def when(self) -> str:
        """Like "Tue 24 Nov 2026, 10:00 EST"."""
        return moment_words(self.local)

    def text(self, width: int = 0) -> str:
        """One line for the command line, its step key padded to ``width``."""
        local = self.local
        line = (f"{self.step_key:<{width}}  {format_day(local.date(), 'padded')} {local:%H:%M} "
                f"{local.tzname()} ({self.due_at:%Y-%m-%d %H:%M} UTC)  {ACTIONS[self.action][0]}")
        return line + (f" — {self.note}" if self.note else "")

    def as_json(self) -> dict[str, str | None]:
        return {"step": self.step_key, "kind": self.kind, "action": self.action, "note": self.note,
                "local": self.local.isoformat(), "utc": self.due_at.isoformat()}


def describe_plan(
    campaign: Campaign | None, planned: Iterable[PlannedMessage], zone: dt.tzinfo
) -> tuple[PlanLine, ...]:
    """Each planned email of ``campaign`` described, its times in ``zone``."""
    lines = []
    for p in planned:
        step, label = step_words(campaign, p.step_key)
        lines.append(PlanLine(p.step_key, p.kind, step, label, p.due_at.astimezone(zone),
                              p.due_at.astimezone(dt.UTC), p.action, p.note))
    return tuple(lines)


def plan_text(lines: Iterable[PlanLine]) -> list[str]:
    """The plan as command-line lines, their step keys in one column."""
    lines = list(lines)
    width = max((len(line.step_key) for line in lines), default=0)
    return [line.text(width) for line in lines]


def step_words(campaign: Campaign | None, step_key: str) -> tuple[str, str]:
    """("2 weeks after treatment", the step's label); a removed step shows its key."""
    step = None if campaign is None else campaign.step(step_key)
    if step is None:
        return step_key, "(no longer in the campaign)"
    if step.offset.amount == 0:
        return "the treatment day", step.label
    return f"{step.offset} after treatment", step.label


def moment_words(moment: dt.datetime) -> str:
    """Like "Tue 24 Nov 2026, 10:00 EST" (already in the zone it is shown in)."""
    return f"{format_day(moment.date(), 'long')}, {moment:%H:%M} {moment.tzname() or ''}".rstrip()
