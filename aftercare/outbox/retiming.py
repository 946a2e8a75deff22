"""Re-timing an enrollment's stored messages from a fresh plan (a corrected date, a new consent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aftercare.outbox.ledger import Ledger, stamp
from aftercare.plan.schedule import PlannedMessage

# Messages a new treatment date re-times: the unsent ones, and the ones only a plan skipped (a
# corrected date can bring a "too late" step back); never ones a person cancelled.
_RETIMABLE = """
    SELECT m.id, m.step_key, m.due_at, m.state FROM messages AS m
    WHERE m.enrollment_id = ? AND (m.state = 'scheduled' OR (m.state = 'cancelled' AND (
        SELECT v.kind FROM events AS v WHERE v.message_id = m.id
        AND v.kind IN ('skipped', 'cancelled') ORDER BY v.id DESC LIMIT 1) = 'skipped'))
    ORDER BY m.due_at, m.id
"""


def by_key(plan: Sequence[PlannedMessage]) -> dict[str, PlannedMessage]:
    """The plan's entries by step key, and by any key a step had before a rename."""
    return {key: entry for entry in plan for key in (entry.step_key, *entry.formerly)}


class Retiming(Ledger):
    """Inside a write: stored messages moved to the times a fresh plan gives them."""

    def _retime(
        self, enrollment_id: int, plan: Mapping[str, PlannedMessage], at: str, actor: str
    ) -> int:
        retimed = 0
        for row in self._db.execute(_RETIMABLE, (enrollment_id,)).fetchall():
            entry, scheduled = plan.get(row["step_key"]), row["state"] == "scheduled"
            if entry is None or entry.action == "skip":
                if scheduled:  # a step the new plan skips (or no longer has) is cancelled
                    note = "step no longer in the campaign" if entry is None else entry.note
                    self._db.execute(
                        "UPDATE messages SET state = 'cancelled', last_error = ? WHERE id = ?",
                        (note, row["id"]),
                    )
                    self._log(at, "skipped", enrollment_id, row["id"], actor, note)
                continue
            due = self._schedule_again(row["id"], entry, at)
            change = f"due {row['due_at']} -> {due}" + ("" if scheduled else " (was skipped)")
            self._log(at, "rescheduled", enrollment_id, row["id"], actor, change)
            retimed += 1
        return retimed

    def _schedule_again(self, message_id: int, entry: PlannedMessage, at: str) -> str:
        """Put one message back in the queue at its planned time; return that time, stored."""
        due = at if entry.action == "send-now" else stamp(entry.due_at, "due_at")
        self._db.execute(
            "UPDATE messages SET state = 'scheduled', due_at = ?, send_at = NULL,"
            " last_error = NULL WHERE id = ?",
            (due, message_id),
        )
        return due
