"""What each provider promises, without loading its library: how far ahead it holds a message
until its send time, how close to that time it can still cancel one, and its name for staff."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Holding:
    """How a provider that sends at a set time holds messages until then."""

    provider: str  # as staff read it: "SendGrid"
    max_ahead: dt.timedelta  # it refuses a send time further ahead
    cancel_cutoff: dt.timedelta  # it refuses to cancel closer to the send time

    def too_close_to_cancel(self, send_at: dt.datetime, now: dt.datetime) -> bool:
        """Whether a message held until ``send_at`` can no longer be cancelled at ``now``."""
        return send_at - now <= self.cancel_cutoff


# Twilio SendGrid: send_at at most 72 hours ahead; a scheduled batch can be cancelled until
# 10 minutes before its send time.
SENDGRID: Final = Holding("SendGrid", dt.timedelta(hours=72), dt.timedelta(minutes=10))
# The longest any provider holds a message: a lookahead longer than this would be refused.
LONGEST_HOLD: Final = max(h.max_ahead for h in (SENDGRID,))

_ADDRESS = re.compile(r"<?[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+>?")


def scrub_addresses(text: str, *known: str) -> str:
    """``text`` with every email address in it replaced by "<address>": a provider's error or
    bounce text often quotes the recipient, and what we keep must not."""
    for address in known:
        text = text.replace(address, "<address>")
    return _ADDRESS.sub("<address>", text)
