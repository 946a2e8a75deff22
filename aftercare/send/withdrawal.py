"""After the hand-over: withdrawing what SendGrid still holds, and applying its webhook posts.

A message handed to SendGrid with a later ``send_at`` is held there until then, and can be
cancelled through the batch it was submitted in -- but SendGrid refuses to cancel within
10 minutes of the send time (``CANCEL_CUTOFF``): such a message will be delivered. Dispatch
therefore gives a message a batch only when it is submitted more than 10 minutes ahead, and a
patient who unsubscribes (or bounces) in the last 10 minutes still gets that one email. Every
withdrawal is recorded on the message: "cancelled at the provider", or why it will still go out.
SendGrid also allows only 10 cancelled batches pending at once; a refusal is recorded, and for a
suppressed address each run of send-due tries again while the cut-off allows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from aftercare.delivery import Backend, ProviderError, SchedulingBackend, scheduling
from aftercare.outbox.records import Submitted
from aftercare.outbox.store import Outbox
from aftercare.outbox.tracking import PROVIDER

logger = logging.getLogger("aftercare.withdrawal")

CANCEL_CUTOFF: Final = dt.timedelta(minutes=10)  # SendGrid: no cancelling closer to send_at
# A provider holds a message at most this long (SendGrid: 72 h), so only suppressions this
# recent can still have messages held for them.
MAX_HOLD: Final = dt.timedelta(hours=72)


class Headers(Protocol):
    """Request headers: a dict, or a web framework's case-insensitive headers."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class WebhookResult(NamedTuple):
    """The answer to one webhook post: an HTTP status and a short text without personal data."""

    status_code: int  # 200 recorded; 400 malformed; 403 signature refused; 500 bad key setting
    text: str


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


def withdraw(
    outbox: Outbox,
    backend: Backend | None,
    email: str,
    now: dt.datetime,
    actor: str,
    *,
    campaign: str | None = None,
) -> WithdrawReport:
    """Cancel at the provider what it still holds for the address (optionally one campaign).

    Call it after ``outbox.cancel`` or ``outbox.unsubscribe``; a backend that sends at once
    (the file backend) holds nothing, and this does nothing.
    """
    scheduler = scheduling(backend)
    if scheduler is None:
        return WithdrawReport()
    held = outbox.provider_scheduled(email, now, campaign=campaign)
    return withdraw_messages(outbox, scheduler, held, now, actor)


def withdraw_held(
    outbox: Outbox,
    backend: Backend | None,
    held: Sequence[Submitted],
    now: dt.datetime,
    actor: str,
) -> WithdrawReport:
    """Cancel at the provider these messages it holds (a reminder whose consent was withdrawn);
    a backend that sends at once holds nothing, and this does nothing."""
    scheduler = scheduling(backend)
    if scheduler is None or not held:
        return WithdrawReport()
    return withdraw_messages(outbox, scheduler, held, now, actor)


def withdraw_messages(
    outbox: Outbox,
    scheduler: SchedulingBackend,
    messages: Sequence[Submitted],
    now: dt.datetime,
    actor: str,
) -> WithdrawReport:
    """Cancel each message's batch at the provider, recording every result on the message."""
    cancelled = too_close = failed = 0
    for held in messages:
        when = f"{held.send_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        if held.batch is None or held.send_at - now <= CANCEL_CUTOFF:
            why = (
                "too close to its send time to cancel (SendGrid allows it until 10 minutes before)"
                if held.batch is not None
                else "it was submitted without a batch, so it cannot be cancelled"
            )
            outbox.mark_withdrawn(held.message_id, False, f"will be delivered at {when}: {why}",
                                  now, actor)
            too_close += 1
            continue
        try:
            result = scheduler.cancel_batch(held.batch)
        except ProviderError as exc:
            # The text names the action and SendGrid's error, never the key or the address.
            outbox.mark_withdrawn(held.message_id, False, f"could not cancel at the provider: "
                                  f"{exc}; it will be delivered at {when}", now, actor)
            failed += 1
            continue
        detail = f"cancelled at the provider before its send time ({when})"
        if result == "already":
            detail += "; its batch was already cancelled"
        outbox.mark_withdrawn(held.message_id, True, detail, now, actor)
        cancelled += 1
    report = WithdrawReport(cancelled, too_close, failed)
    if messages:
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
    held = outbox.held_for_suppressed(now, now - MAX_HOLD - CANCEL_CUTOFF)
    cancellable = [m for m in held if m.send_at - now > CANCEL_CUTOFF]
    return withdraw_messages(outbox, scheduler, cancellable, now, PROVIDER)


def process_webhook(
    outbox: Outbox,
    backend: Backend | None,
    raw_body: bytes,
    headers: Headers,
    public_key: str,
    now: dt.datetime,
) -> WebhookResult:
    """Verify, parse and record one Event Webhook post, then withdraw what the provider still
    holds for addresses it suppressed. A repeated post changes nothing (events are deduped)."""
    # Here, not at the top: the SendGrid library and cryptography load only for webhook posts.
    from aftercare.delivery.sendgrid_events import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        parse_events,
        verify_signature,
    )

    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    try:
        valid = verify_signature(public_key, raw_body, signature, timestamp, now)
    except ValueError:
        logger.error("webhook: the configured SendGrid public key is not valid")
        return WebhookResult(500, "webhook verification key is not valid")
    if not valid:
        logger.warning("webhook: post refused (signature missing, wrong or stale)")
        return WebhookResult(403, "signature refused")
    try:
        events = parse_events(raw_body)
    except ValueError as exc:  # the text names the item and field, never a value
        logger.warning("webhook: %s", exc)
        return WebhookResult(400, str(exc))
    report = outbox.apply_provider_events(events, now)
    withdrawn = WithdrawReport()
    scheduler = scheduling(backend)
    if scheduler is not None and report.to_withdraw:
        withdrawn = withdraw_messages(outbox, scheduler, report.to_withdraw, now, PROVIDER)
    text = (
        f"{report.received} events: {report.duplicates} repeated, {report.unmatched} for no "
        f"known message, {report.resolved} unknown outcomes resolved, {report.suppressed} "
        f"addresses suppressed, {report.cancelled} unsent messages cancelled, "
        f"{withdrawn.cancelled} withdrawn at the provider"
    )
    if withdrawn.too_close or withdrawn.failed:
        text += f" ({withdrawn.too_close + withdrawn.failed} could not be)"
    logger.info("webhook: %s", text)
    return WebhookResult(200, text)
