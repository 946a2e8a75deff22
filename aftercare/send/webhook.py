"""A provider's delivery report, end to end: verify the post, read it into our own words, record
it in the outbox, and withdraw what the provider still holds for addresses it suppressed."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from aftercare.delivery import Backend
from aftercare.outbox.store import Outbox
from aftercare.send.withdrawal import WithdrawReport, withdraw_held

logger = logging.getLogger("aftercare.withdrawal")


class Headers(Protocol):
    """Request headers: a dict, or a web framework's case-insensitive headers."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class WebhookResult(NamedTuple):
    """The answer to one webhook post: an HTTP status and a short text without personal data."""

    status_code: int  # 200 recorded; 400 malformed; 403 signature refused; 500 bad key setting
    text: str


def process_webhook(
    outbox: Outbox,
    backend: Backend | None,
    raw_body: bytes,
    headers: Headers,
    public_key: str,
    now: dt.datetime,
) -> WebhookResult:
    """Verify, parse and record one SendGrid Event Webhook post, then withdraw what SendGrid
    still holds for addresses it suppressed. A repeated post changes nothing (events are
    kept once each)."""
    # Here, not at the top: the SendGrid library and cryptography load only for webhook posts.
    from aftercare.delivery.sendgrid_events import (
        ACTOR,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        load_public_key,
        parse_events,
        verify_signature,
    )

    try:
        # Only the configured key can fail this way (`pipeline serve` checks it at start-up);
        # nothing a post carries is ever reported as a bad key.
        key = load_public_key(public_key)
    except ValueError:
        logger.error("webhook: the configured SendGrid public key is not valid")
        return WebhookResult(500, "webhook verification key is not valid")
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    if not verify_signature(key, raw_body, signature, timestamp, now):
        logger.warning("webhook: post refused (signature missing, wrong or stale)")
        return WebhookResult(403, "signature refused")
    try:
        events = parse_events(raw_body)
    except ValueError as exc:  # the text names the item and field, never a value
        logger.warning("webhook: %s", exc)
        return WebhookResult(400, str(exc))
    report = outbox.apply_delivery_events(events, now, ACTOR)
    withdrawn = WithdrawReport()
    if report.to_withdraw:
        withdrawn = withdraw_held(outbox, backend, report.to_withdraw, now, ACTOR)
    text = (
        f"{report.received} events: {report.duplicates} repeated, {report.unmatched} for no "
        f"known message, {report.resolved} unknown outcomes resolved, {report.suppressed} "
        f"addresses suppressed, {report.cancelled} unsent messages cancelled, "
        f"{withdrawn.cancelled} withdrawn at the provider"
    )
    if withdrawn.kept:
        text += f" ({withdrawn.kept} could not be)"
    logger.info("webhook: %s", text)
    return WebhookResult(200, text)
