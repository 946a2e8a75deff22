"""Sends due messages: claim each in a short transaction, render, deliver in parallel, record."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Final, Protocol

from aftercare.content.model import Campaign, Project, Step
from aftercare.content.sites import IMPLICIT_SITE
from aftercare.dates import require_aware
from aftercare.delivery import (
    Backend,
    Outcome,
    OutgoingEmail,
    ProviderError,
    SchedulingBackend,
    scheduling,
)
from aftercare.outbox.records import Claim
from aftercare.outbox.store import Outbox
from aftercare.outbox.vocabulary import StateError
from aftercare.plan.schedule import evening_hold, rules_for
from aftercare.render.emails import Recipient, RenderedEmail, clean_name
from aftercare.send.withdrawal import withdraw_suppressed

logger = logging.getLogger("aftercare.dispatch")

DEFAULT_LEASE = dt.timedelta(minutes=15)
# A provider that asks us to retry without saying when gets this long before the next try.
RETRY_DELAY = dt.timedelta(minutes=5)
# Transient refusals (5xx, network) a message survives; then it fails and staff are told.
MAX_ATTEMPTS: Final = 8
# A rate limit that resets sooner than this is waited for; the run waits this long in all.
MAX_PAUSE: Final = dt.timedelta(seconds=60)
PAUSE_BUDGET: Final = dt.timedelta(minutes=5)
_BUCKETS: Final = ("sent", "held", "failed", "unknown", "retried", "cancelled", "too_late")


class Renderer(Protocol):
    """What dispatch needs from aftercare.render.emails.EmailRenderer."""

    def render(self, campaign: Campaign, step: Step, recipient: Recipient) -> RenderedEmail: ...


@dataclass(frozen=True)
class DispatchReport:
    """What one run did; every claimed message is counted in exactly one of the outcomes."""

    claimed: tuple[int, ...]  # message ids, in the order they were claimed
    sent: int = 0  # accepted by the provider (held ones included)
    failed: int = 0
    unknown: int = 0
    retried: int = 0  # refused for now (rate limit, 5xx, network): back in the queue
    cancelled: int = 0  # the address was suppressed after the message was claimed
    too_late: int = 0  # past the step's grace period (the sender did not run): not sent
    released: int = 0  # messages left 'sending' by a crashed run, now 'unknown' (never resent)
    held: int = 0  # of the sent: held by the provider until their exact send time
    withdrawn: int = 0  # held for an address suppressed since: cancelled at the provider
    paused: float = 0.0  # seconds waited for the provider's rate limit to reset
    rate_limited: bool = False  # rate limited for longer than a run waits: the rest left

    def summary(self) -> str:
        """One line for the CLI; counts only, no personal data."""
        return (
            f"{len(self.claimed)} due: {self.sent} sent"
            + (f" ({self.held} held by the provider until their send time)" if self.held else "")
            + f", {self.failed} failed, {self.unknown} unknown, {self.retried} to retry later, "
            f"{self.cancelled} cancelled, {self.too_late} too late"
            + (f"; {self.released} left unfinished by an earlier run marked unknown"
               if self.released else "")
            + (f"; {self.withdrawn} withdrawn at the provider" if self.withdrawn else "")
            + (f"; waited {self.paused:.0f} s for rate limits" if self.paused else "")
            + ("; stopped early: rate limited by the provider" if self.rate_limited else "")
        )


def send_due(
    outbox: Outbox,
    project: Project,
    renderer: Renderer,
    backend: Backend,
    now: dt.datetime,
    limit: int,
    lease: dt.timedelta = DEFAULT_LEASE,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    pause: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> DispatchReport:
    """Deliver up to ``limit`` due messages, each at most once; a crash leaves them 'unknown'.

    A backend that schedules (SendGrid) also gets the messages due within the clinic's
    lookahead, each with its due time as send time, so patients get them on the minute whatever
    the cron cadence (aftercare.send.withdrawal cancels them there until the cut-off). Up to
    ``delivery.max_parallel`` requests run at once. When the provider rate-limits, the run calls
    ``pause`` until the limit resets (at most ``MAX_PAUSE`` at a time and ``PAUSE_BUDGET`` in
    all; then it leaves the rest to the next run). Once ``stop()`` is true the run claims
    nothing more: it records what is in flight and returns (``pipeline worker`` on SIGTERM).
    """
    require_aware(now, "now")
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    delivery = project.clinic.delivery
    sender = _Sender(outbox, project, renderer, backend, now, max_attempts)
    lookahead = dt.timedelta(hours=delivery.lookahead_hours)
    scheduler = sender.scheduler
    horizon = now + min(lookahead, scheduler.holding.max_ahead) if scheduler is not None else now
    released = outbox.release_stale(now, lease)
    if released:
        logger.warning("%d message(s) left sending by an earlier run marked unknown", released)
    run = _Run(sender, limit, horizon, max(1, delivery.max_parallel), pause, stop)
    run.deliver()
    # Withdrawals left undone now are retried by the next run.
    withdrawn = 0 if stop() else withdraw_suppressed(outbox, backend, now).cancelled
    report = DispatchReport(
        claimed=tuple(run.claimed), released=released, withdrawn=withdrawn,
        paused=run.paused, rate_limited=run.stopped, **run.counts,
    )
    logger.info("dispatch: %s", report.summary())
    return report


class _Run:
    """The claiming loop: claims and records in this thread, up to ``workers`` sends in flight."""

    def __init__(
        self, sender: _Sender, limit: int, horizon: dt.datetime, workers: int,
        pause: Callable[[float], None], stop: Callable[[], bool],
    ) -> None:
        self.sender, self.limit, self.horizon, self.workers = sender, limit, horizon, workers
        self.pause, self.stop = pause, stop
        self.counts = dict.fromkeys(_BUCKETS, 0)
        self.claimed: list[int] = []
        self.paused = 0.0  # seconds spent waiting for rate limits to reset
        self.stopped = False  # rate limited for longer than the run may wait

    def deliver(self) -> None:
        outbox, now = self.sender.outbox, self.sender.now
        in_flight: dict[Future[_Result], _Job] = {}
        more, hold = True, 0.0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="aftercare-send") as pool:
            while True:
                if self.stop():
                    more, hold = False, 0.0  # asked to stop: finish what is in flight only
                if hold and not in_flight:
                    # Rate limited: every request would be refused until the reset, so wait
                    # (nothing in flight) rather than spend the run's messages on refusals.
                    self.pause(hold)
                    self.paused, hold = self.paused + hold, 0.0
                # Claim one at a time, and only into a free slot: a crash then strands at most
                # the messages in flight (they become 'unknown'), and no claim waits in a queue
                # long enough for another run's lease to expire it while this run still means
                # to send it.
                while more and not hold and len(in_flight) < self.workers:
                    batch = []
                    if len(self.claimed) < self.limit and not self.stop():
                        batch = outbox.claim_due(now, 1, self.horizon)
                    if not batch:
                        more = False
                        break
                    self.claimed.append(batch[0].message_id)
                    job = self.sender.prepare(batch[0])
                    if isinstance(job, str):
                        self._count(batch[0].message_id, job)
                        continue
                    # No transaction is open while it sends: the claim is committed, so a crash
                    # during delivery leaves it 'sending' and a later run marks it unknown.
                    in_flight[pool.submit(self.sender.submit, job)] = job
                if not in_flight:
                    if hold:
                        continue
                    return
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    job = in_flight.pop(future)
                    result = future.result()  # submit never raises
                    bucket = self.sender.record(job, result)
                    self._count(job.claim.message_id, bucket)
                    if bucket == "sent" and job.email.send_at > now:
                        self.counts["held"] += 1
                    if result.outcome.rate_limited:
                        seconds = self._wait_for(result.outcome)
                        if seconds:
                            hold = max(hold, seconds)
                        else:  # longer than a run waits: the next run sends the rest
                            more, hold, self.stopped = False, 0.0, True

    def _wait_for(self, outcome: Outcome) -> float:
        """Seconds to wait for a rate limit to reset; 0 when that is more than the run allows."""
        reset = outcome.retry_at or self.sender.now + RETRY_DELAY
        # The run's clock stands still; what it has waited so far is the best guess of how far on.
        waited = dt.timedelta(seconds=self.paused)
        seconds = max((reset - self.sender.now - waited).total_seconds(), 1.0)
        too_long = seconds > MAX_PAUSE.total_seconds()
        return 0.0 if too_long or self.paused + seconds > PAUSE_BUDGET.total_seconds() else seconds

    def _count(self, message_id: int, bucket: str) -> None:
        self.counts[bucket] += 1
        logger.info("message %d: %s", message_id, bucket)


@dataclass(frozen=True)
class _Job:
    """A claimed message, rendered and addressed, ready for the backend."""

    claim: Claim
    email: OutgoingEmail
    rendered: RenderedEmail


@dataclass(frozen=True)
class _Result:
    outcome: Outcome
    batch: str | None  # the provider batch the request named, if any


class _Sender:
    """One run's context: prepare and record in the calling thread, submit in a worker."""

    def __init__(
        self, outbox: Outbox, project: Project, renderer: Renderer, backend: Backend,
        now: dt.datetime, max_attempts: int,
    ) -> None:
        self.outbox, self.project, self.renderer = outbox, project, renderer
        self.backend, self.scheduler = backend, scheduling(backend)
        self.now, self.max_attempts = now, max_attempts

    def prepare(self, claim: Claim) -> _Job | str:
        """Check and render a claimed message; a message that must not go out is recorded and
        its report bucket returned."""
        outbox, now, mid = self.outbox, self.now, claim.message_id
        if outbox.is_suppressed(claim.email):
            # Unsubscribed or bounced after the claim was made: it must not go out.
            outbox.mark_cancelled(mid, "the address unsubscribed before sending", now)
            return "cancelled"
        campaign = self.project.campaigns.get(claim.campaign)
        step = None if campaign is None else campaign.step(claim.step_key)
        if campaign is None or step is None:
            where = "campaign" if campaign is None else "step"
            outbox.mark_failed(
                mid,
                f"not sent: {where} removed from the clinic's content since enrolment "
                f"(campaign {claim.campaign!r}, step {claim.step_key!r})",
                now,
            )
            return "failed"
        if claim.site != IMPLICIT_SITE and claim.site not in self.project.sites:
            # Its numbers and sender are gone: the organisation's would be the wrong ones.
            outbox.mark_failed(mid, f"not sent: site {claim.site!r} removed from sites/ since "
                               "enrolment", now)
            return "failed"
        late = _too_late(claim, step, now)
        if late:
            # A "first day" email is wrong three days later: past its grace a step is dropped,
            # exactly as the scheduler drops it for a late enrolment.
            outbox.mark_failed(mid, f"not sent: {late}", now)
            return "too_late"
        send_at = max(claim.send_at, now) if self.scheduler is not None else now
        rules = rules_for(self.project.at_site(claim.site).clinic, campaign)
        zone = claim.timezone.zone
        if (wait := evening_hold(step, rules, zone, send_at)) is not None:  # never at night
            outbox.mark_retry(mid, "not sent yet: too late in the evening", wait, now)
            return "retried"
        max_ahead = None if self.scheduler is None else self.scheduler.holding.max_ahead
        if max_ahead is not None and send_at - now > max_ahead:
            # The provider would refuse it (and the backend raises): hand it over later.
            hours = int(max_ahead.total_seconds() // 3600)
            outbox.mark_retry(mid, f"not sent yet: more than {hours} hours before its send time",
                              send_at - max_ahead, now)
            return "retried"
        try:
            rendered = self.renderer.render(campaign, step, _recipient(claim))
        except Exception as exc:  # nothing went out, so failing is safe; keep the run going
            outbox.mark_failed(mid, f"not sent: rendering failed ({type(exc).__name__})", now)
            logger.error("message %d: rendering failed (%s)", mid, type(exc).__name__)
            return "failed"
        email = _outgoing(self.project, claim, campaign, step, rendered, send_at)
        return _Job(claim, email, rendered)

    def submit(self, job: _Job) -> _Result:
        """Hand one message to the backend (in a worker thread); never raises."""
        scheduler = self.scheduler
        if scheduler is None:
            try:
                return _Result(self.backend.send(job.email), None)
            except Exception as exc:
                return _Result(_raised(self.backend, exc), None)
        batch = None
        # Only a batch can cancel a held message, and only until the cut-off: no batch inside it.
        if not scheduler.holding.too_close_to_cancel(job.email.send_at, self.now):
            try:
                batch = scheduler.new_batch()
            except Exception as exc:  # nothing was sent yet, so trying again is safe
                status = exc.status if isinstance(exc, ProviderError) else None
                why = str(exc) if isinstance(exc, ProviderError) else type(exc).__name__
                retry_at = self.now + RETRY_DELAY
                outcome = Outcome("retry", None, f"not sent: no batch ({why})", retry_at,
                                  rate_limited=status == 429)
                return _Result(outcome, None)
        try:
            outcome = scheduler.send(job.email, attempt=job.claim.attempts - 1, batch_id=batch)
        except Exception as exc:
            outcome = _raised(scheduler, exc)
        return _Result(outcome, batch)

    def record(self, job: _Job, result: _Result) -> str:
        """Store the outcome of one submission; return its report bucket."""
        outbox, now, mid = self.outbox, self.now, job.claim.message_id
        outcome = result.outcome
        try:
            if outcome.status == "sent":
                outbox.mark_sent(
                    mid,
                    provider_id=outcome.provider_id,
                    content_hash=job.rendered.content_hash,
                    template_version=job.rendered.template_version,
                    now=now,
                    send_at=job.email.send_at,
                    batch=result.batch,
                )
                return "sent"
            if outcome.status == "unknown":
                # What the request asked for is kept: a held message can still be withdrawn.
                held = job.email.send_at if self.scheduler is not None else None
                outbox.mark_unknown(mid, outcome.detail, now, send_at=held, batch=result.batch)
                return "unknown"
            if outcome.status == "retry":
                # Nothing went out (a rate limit, a 5xx, a refused connection): queue it again,
                # unless transient errors have had enough tries; a rate limit always waits.
                if not outcome.rate_limited and job.claim.attempts >= self.max_attempts:
                    detail = f"{outcome.detail}; gave up after {job.claim.attempts} attempts"
                    outbox.mark_failed(mid, detail, now)
                    return "failed"
                outbox.mark_retry(mid, outcome.detail, outcome.retry_at or now + RETRY_DELAY, now)
                return "retried"
            outbox.mark_failed(mid, outcome.detail, now)
            return "failed"
        except StateError:
            # Another run's lease expired this claim mid-send and already marked it unknown;
            # that state stands, whatever the backend said.
            logger.warning("message %d: outcome %s not recorded; already resolved", mid,
                           outcome.status)
            return "unknown"


def _raised(backend: Backend | SchedulingBackend, exc: Exception) -> Outcome:
    # It may or may not have gone out. The exception text can quote the recipient, so only the
    # class name is kept.
    return Outcome("unknown", None, f"{backend.name} backend raised {type(exc).__name__}")


def _too_late(claim: Claim, step: Step, now: dt.datetime) -> str | None:
    # Grace counts from the time the patient should have had it, not from the last retry.
    local_due = claim.send_at.astimezone(claim.timezone.zone)
    day = local_due.date()
    if now <= local_due + (step.grace.after(day) - day):
        return None
    return f"more than {step.grace} late (was due {claim.send_at:%Y-%m-%d %H:%M} UTC)"


def _recipient(claim: Claim) -> Recipient:
    return Recipient(
        first_name=claim.first_name,
        email=claim.email,
        language=claim.language,
        treated_on=claim.treated_on,
        local_due=claim.send_at.astimezone(claim.timezone.zone),
        public_id=claim.public_id,
        site=claim.site,
    )


def _outgoing(
    project: Project,
    claim: Claim,
    campaign: Campaign,
    step: Step,
    rendered: RenderedEmail,
    send_at: dt.datetime,
) -> OutgoingEmail:
    settings = project.at_site(claim.site).clinic.email  # the site's sender
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
        send_at=send_at.astimezone(dt.UTC),
        minimal=rendered.minimal,
    )
