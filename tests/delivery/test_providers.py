"""What providers promise, known without their libraries; addresses kept out of stored text."""

from __future__ import annotations

import datetime as dt

from aftercare.delivery.files import FileBackend
from aftercare.delivery.providers import LONGEST_HOLD, SENDGRID, scrub_addresses
from aftercare.delivery.sendgrid import SendGridBackend

SEND_AT = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)


def test_sendgrid_holds_for_72_hours_and_cancels_until_10_minutes_before() -> None:
    assert (SENDGRID.max_ahead, SENDGRID.cancel_cutoff) == (
        dt.timedelta(hours=72), dt.timedelta(minutes=10))
    assert dt.timedelta(hours=72) == LONGEST_HOLD
    assert not SENDGRID.too_close_to_cancel(SEND_AT, SEND_AT - dt.timedelta(minutes=11))
    assert SENDGRID.too_close_to_cancel(SEND_AT, SEND_AT - dt.timedelta(minutes=10))


def test_the_facts_belong_to_the_backend() -> None:
    assert SendGridBackend.holding is SENDGRID
    assert FileBackend.holding is None


def test_addresses_are_scrubbed_from_provider_text() -> None:
    text = "550 5.1.1 <ben@example.org>: unknown user; to ann+x@example.com"
    assert scrub_addresses(text) == "550 5.1.1 <address>: unknown user; to <address>"
    # A known address goes even where the pattern would not find it.
    assert scrub_addresses("refused for ann@localhost", "ann@localhost") == "refused for <address>"
