"""Sends due messages: claim each in a short transaction, render, deliver, record the outcome."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from aftercare.content import Campaign, Project, Step
from aftercare.delivery import Backend, Outcome, OutgoingEmail
from aftercare.emails import Recipient, RenderedEmail, clean_name
from aftercare.records import Claim
from aftercare.store import Outbox, StateError

logger = logging.getLogger("aftercare.dispatch")

DEFAULT_LEASE = dt.timedelta(minutes=15)
# A provider that asks us to retry without saying when gets this long before the next try.
RETRY_DELAY = dt.timedelta(minutes=5)


class Renderer(Protocol):
    """What dispatch needs from aftercare.emails.EmailRenderer."""

    def render(self, campaign: Campaign, step: Step, recipient: Recipient) -> RenderedEmail: ...


@dataclass(frozen=True)
class DispatchReport:
    """What one run did; every claimed message is counted in exactly one of the outcomes."""

    claimed: tuple[int, ...]  # message ids, in the order they were handled
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0  # the backend asked to retry later; recorded as failed until retries exist
    cancelled: int = 0  # the address was suppressed after the message was claimed
    too_late: int = 0  # past the step's grace period (the sender did not run): not sent
    released: int = 0  # messages left 'sending' by a crashed run, now 'unknown' (never resent)

    def summary(self) -> str:
        """One line for the CLI; counts only, no personal data."""
        return (
            f"{len(self.claimed)} due: {self.sent} sent, {self.failed} failed, "
            f"{self.unknown} unknown, {self.retried} asked to retry (kept as failed), "
            f"{self.cancelled} cancelled, {self.too_late} too late"
            + (f"; {self.released} left unfinished by an earlier run marked unknown"
               if self.released else "")
        )


def send_due(
    outbox: Outbox,
    project: Project,
    renderer: Renderer,
    backend: Backend,
    now: dt.datetime,
    limit: int,
    lease: dt.timedelta = DEFAULT_LEASE,
) -> DispatchReport:
    """Deliver up to ``limit`` due messages, each at most once; a crash leaves them 'unknown'."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware; got a naive datetime")
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    released = outbox.release_stale(now, lease)
    if released:
        logger.warning("%d message(s) left sending by an earlier run marked unknown", released)
    counts = dict.fromkeys(("sent", "failed", "unknown", "retried", "cancelled", "too_late"), 0)
    claimed: list[int] = []
    # One claim at a time: a crash then strands only the message in flight (it becomes
    # 'unknown'), never the untouched rest of a batch, and no claim waits in a queue long
    # enough for another run's lease to expire it while this run still means to send it.
    while len(claimed) < limit:
        batch = outbox.claim_due(now, 1)
        if not batch:
            break
        claim = batch[0]
        claimed.append(claim.message_id)
        # No transaction is open here: the claim is committed, so a crash during delivery
        # leaves the message 'sending' and a later run marks it unknown instead of resending.
        result = _deliver(outbox, project, renderer, backend, claim, now)
        counts[result] += 1
        logger.info("message %d: %s", claim.message_id, result)
    report = DispatchReport(claimed=tuple(claimed), released=released, **counts)
    logger.info("dispatch: %s", report.summary())
    return report


def _deliver(
    outbox: Outbox,
    project: Project,
    renderer: Renderer,
    backend: Backend,
    claim: Claim,
    now: dt.datetime,
) -> str:
    """Handle one claimed message and record what happened; returns the report bucket."""
    mid = claim.message_id
    if outbox.is_suppressed(claim.email):
        # Unsubscribed or bounced after the claim was made: it must not go out.
        outbox.mark_cancelled(mid, "the address unsubscribed before sending", now)
        return "cancelled"
    campaign = project.campaigns.get(claim.campaign)
    step = _step(campaign, claim.step_key)
    if campaign is None or step is None:
        where = "campaign" if campaign is None else "step"
        outbox.mark_failed(
            mid,
            f"not sent: {where} removed from the clinic's content since enrolment "
            f"(campaign {claim.campaign!r}, step {claim.step_key!r})",
            now,
        )
        return "failed"
    late = _too_late(claim, step, now)
    if late:
        # A "first day" email is wrong three days later: past its grace a step is dropped,
        # exactly as the scheduler drops it for a late enrolment.
        outbox.mark_failed(mid, f"not sent: {late}", now)
        return "too_late"
    try:
        rendered = renderer.render(campaign, step, _recipient(claim))
    except Exception as exc:  # nothing went out, so failing is safe; keep the run going
        outbox.mark_failed(mid, f"not sent: rendering failed ({type(exc).__name__})", now)
        logger.error("message %d: rendering failed (%s)", mid, type(exc).__name__)
        return "failed"
    email = _outgoing(project, claim, campaign, step, rendered, now)
    try:
        outcome = backend.send(email)
    except Exception as exc:
        # It may or may not have gone out. The message text can quote the recipient, so only
        # the class name is kept.
        outbox.mark_unknown(mid, f"{backend.name} backend raised {type(exc).__name__}", now)
        return "unknown"
    try:
        return _record(outbox, mid, outcome, rendered, now)
    except StateError:
        # Another run's lease expired this claim mid-send and already marked it unknown;
        # that state stands, whatever the backend said.
        logger.warning("message %d: outcome %s not recorded; already resolved", mid, outcome.status)
        return "unknown"


def _record(
    outbox: Outbox, mid: int, outcome: Outcome, rendered: RenderedEmail, now: dt.datetime
) -> str:
    if outcome.status == "sent":
        outbox.mark_sent(
            mid,
            provider_id=outcome.provider_id,
            content_hash=rendered.content_hash,
            template_version=rendered.template_version,
            now=now,
        )
        return "sent"
    if outcome.status == "unknown":
        outbox.mark_unknown(mid, outcome.detail, now)
        return "unknown"
    if outcome.status == "retry":
        # Nothing went out (a rate limit, a 5xx): back to scheduled for a later run.
        retry_at = outcome.retry_at or now + RETRY_DELAY
        outbox.mark_retry(mid, outcome.detail, retry_at, now)
        return "retried"
    outbox.mark_failed(mid, outcome.detail, now)
    return "failed"


def _step(campaign: Campaign | None, key: str) -> Step | None:
    if campaign is None:
        return None
    return next((s for s in campaign.steps if s.key == key), None)


def _too_late(claim: Claim, step: Step, now: dt.datetime) -> str | None:
    local_due = claim.due_at.astimezone(claim.timezone.zone)
    day = local_due.date()
    if now <= local_due + (step.grace.after(day) - day):
        return None
    return f"more than {step.grace} late (was due {claim.due_at:%Y-%m-%d %H:%M} UTC)"


def _recipient(claim: Claim) -> Recipient:
    return Recipient(
        first_name=claim.first_name,
        email=claim.email,
        language=claim.language,
        treated_on=claim.treated_on,
        local_due=claim.due_at.astimezone(claim.timezone.zone),
        public_id=claim.public_id,
    )


def _outgoing(
    project: Project,
    claim: Claim,
    campaign: Campaign,
    step: Step,
    rendered: RenderedEmail,
    now: dt.datetime,
) -> OutgoingEmail:
    settings = project.clinic.email
    return OutgoingEmail(
        public_id=claim.public_id,
        to=claim.email,
        to_name=clean_name(claim.first_name),
        from_address=settings.from_address,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        campaign=campaign.id or claim.campaign,
        step_key=step.key,
        rendered=rendered,
        send_at=now.astimezone(dt.UTC),
    )
