"""Stopping email: cancelling or unsubscribing in the outbox always withdraws, in the same call,
what the provider still holds; and retrying withdrawals for addresses suppressed since.

A message handed to a provider that sends at a set time (SendGrid) is held there until its
``send_at`` and can be cancelled through the batch it was submitted in, but only until the
provider's cut-off before that time (``Holding.cancel_cutoff``): such a message will be
delivered. Dispatch therefore gives a message a batch only when it is submitted before the
cut-off, and a patient who unsubscribes (or bounces) inside it still gets that one email.
Every withdrawal is recorded on the message: "cancelled at the provider", or why it will
still go out. A refusal (SendGrid allows only 10 cancelled batches pending at once) is
recorded, and for a suppressed address each run of send-due tries again while it can.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from aftercare.delivery import Backend, ProviderError, scheduling
from aftercare.outbox.records import Submitted
from aftercare.outbox.store import Outbox

logger = logging.getLogger("aftercare.withdrawal")


@dataclass(frozen=True)
class WithdrawReport:
    """What one withdrawal did at the provider; counts only."""

    cancelled: int = 0  # cancelled there: they will never be sent
    too_close: int = 0  # inside the cut-off (or without a batch): they will still be delivered
    failed: int = 0  # the provider refused or did not answer: they will be delivered

    def summary(self) -> str:
        return (
            f"{self.cancelled} cancelled at the provider, {self.too_close} too close to their "
            f"send time to cancel, {self.failed} could not be cancelled"
        )

    @property
    def kept(self) -> int:
        """Messages the provider will still deliver."""
        return self.too_close + self.failed


@dataclass(frozen=True)
class Stopped:
    """What a cancel or an unsubscribe did: unsent messages cancelled, and at the provider."""

    cancelled: int
    withdrawn: WithdrawReport = field(default_factory=WithdrawReport)


def cancel(
    outbox: Outbox, backend: Backend | None, email: str | None, now: dt.datetime, actor: str, *,
    campaign: str | None = None, enrollments: Sequence[int] | None = None,
    kind: str | None = None, reason: str | None = None,
) -> Stopped:
    """Cancel the unsent messages of an address or of some enrolments (optionally only of one
    campaign, or of one kind: 'marketing' for the reminders), and withdraw what the provider
    holds of them; ``reason`` is recorded on each message."""
    count = outbox.cancel(email, campaign, now, actor=actor, enrollments=enrollments, kind=kind,
                          reason=reason)
    held = [] if scheduling(backend) is None else outbox.provider_scheduled(
        email, now, campaign=campaign, enrollments=enrollments, kind=kind)
    return Stopped(count, withdraw_held(outbox, backend, held, now, actor, reason=reason))


def unsubscribe(
    outbox: Outbox, backend: Backend | None, email: str, now: dt.datetime, *, source: str,
    actor: str,
) -> Stopped:
    """Suppress the address for good, cancel its unsent messages, and withdraw what the provider
    holds for it."""
    count = outbox.unsubscribe(email, now, source=source, actor=actor)
    held = _held(outbox, backend, email, now, None)
    return Stopped(count, withdraw_held(outbox, backend, held, now, actor))


def withdraw_held(
    outbox: Outbox, backend: Backend | None, held: Sequence[Submitted], now: dt.datetime,
    actor: str, *, reason: str | None = None,
) -> WithdrawReport:
    """Cancel at the provider these messages it holds, recording every result on the message
    (after ``reason``, when given); a backend that sends at once holds nothing, and this does
    nothing."""
    scheduler = scheduling(backend)
    if scheduler is None or not held:
        return WithdrawReport()
    cancelled = too_close = failed = 0

    def said(detail: str) -> str:
        return f"{reason}: {detail}" if reason else detail

    for message in held:
        when = f"{message.send_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        holding = scheduler.holding
        if message.batch is None or holding.too_close_to_cancel(message.send_at, now):
            minutes = int(holding.cancel_cutoff.total_seconds() // 60)
            why = (
                f"too close to its send time to cancel ({holding.provider} allows it until "
                f"{minutes} minutes before)" if message.batch is not None
                else "it was submitted without a batch, so it cannot be cancelled"
            )
            outbox.mark_withdrawn(message.message_id, False,
                                  said(f"will be delivered at {when}: {why}"), now, actor)
            too_close += 1
            continue
        try:
            result = scheduler.cancel_batch(message.batch)
        except ProviderError as exc:
            # The text names the action and the provider's error, never the key or the address.
            outbox.mark_withdrawn(message.message_id, False, said(
                f"could not cancel at the provider: {exc}; it will be delivered at {when}"),
                now, actor)
            failed += 1
            continue
        detail = f"cancelled at the provider before its send time ({when})"
        if result == "already":
            detail += "; its batch was already cancelled"
        outbox.mark_withdrawn(message.message_id, True, said(detail), now, actor)
        cancelled += 1
    report = WithdrawReport(cancelled, too_close, failed)
    logger.info("withdrawal: %s", report.summary())
    return report


def withdraw_suppressed(
    outbox: Outbox, backend: Backend | None, now: dt.datetime
) -> WithdrawReport:
    """Cancel what the provider holds for recently suppressed addresses: withdrawals that
    failed or were interrupted, and messages that were in flight when the address was."""
    scheduler = scheduling(backend)
    if scheduler is None:
        return WithdrawReport()
    holding = scheduler.holding
    # A provider holds a message at most ``max_ahead``: only suppressions this recent can
    # still have messages held for them.
    since = now - holding.max_ahead - holding.cancel_cutoff
    held = outbox.held_for_suppressed(now, since)
    cancellable = [m for m in held if not holding.too_close_to_cancel(m.send_at, now)]
    return withdraw_held(outbox, scheduler, cancellable, now, scheduler.name)


def _held(
    outbox: Outbox, backend: Backend | None, email: str, now: dt.datetime, campaign: str | None
) -> list[Submitted]:
    if scheduling(backend) is None:
        return []
    return outbox.provider_scheduled(email, now, campaign=campaign)

