"""The care page link of a minimal email: its address (a further language named before the
token), the moment it counts from, and the last day it opens."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from aftercare.content.model import Clinic

if TYPE_CHECKING:
    from aftercare.render.emails import Recipient

# Where `pipeline serve` shows the care page of the message a token names.
CARE_PATH = "/care/"


def sent_moment(recipient: Recipient) -> dt.datetime:
    """When the message is meant to reach the patient (a preview: the treatment day, 00:00
    UTC): its calendar stamp, and the time its care page link counts from."""
    return recipient.local_due or dt.datetime.combine(
        recipient.treated_on, dt.time(), tzinfo=dt.UTC)


def care_link(clinic: Clinic, token: str, language: str = "") -> str:
    """The address of a care page; a language other than the clinic's own is named before the
    token, so that even a link cut short opens a page in the patient's language."""
    base = clinic.email.public_base_url.rstrip("/")
    return f"{base}{CARE_PATH}{language}{'/' if language else ''}{token}"


def care_link_expiry(clinic: Clinic, recipient: Recipient) -> dt.date:
    """The last day the care page link of this message opens, in the patient's zone."""
    sent = sent_moment(recipient)
    return (sent + dt.timedelta(days=clinic.email.care_link_days)).date()
