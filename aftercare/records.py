"""The outbox's records: an enrolment going in; claims, listings and events coming out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aftercare.schedule import PlannedMessage
from aftercare.values import EmailAddress, ZoneName


@dataclass(frozen=True)
class Enrollment:
    """Validated input, ready to store."""

    email: EmailAddress
    first_name: str
    campaign: str
    treated_on: dt.date
    timezone: ZoneName
    language: str  # e.g. "en"
    marketing_consent: bool
    recorded_by: str  # who recorded the consent: "cli:<os user>", "import:<file>", "staff:<user>"
    consent_wording_version: str
    patient_ref: str | None = None  # optional external patient id


@dataclass(frozen=True)
class EnrollResult:
    enrollment_id: int
    created: bool  # False: the same patient + campaign + treatment date already existed (a no-op)
    messages: tuple[PlannedMessage, ...]  # the plan as stored (for display)


@dataclass(frozen=True)
class Claim:
    """A message claimed for sending; its state is now 'sending'."""

    message_id: int
    public_id: str  # opaque random id (uuid4 hex); the only id ever given to a provider
    enrollment_id: int
    campaign: str
    step_key: str
    email: EmailAddress
    first_name: str
    language: str
    treated_on: dt.date
    timezone: ZoneName
    due_at: dt.datetime  # aware UTC
    attempts: int


@dataclass(frozen=True)
class MessageView:
    """One message for listings (CLI outbox, staff page)."""

    message_id: int
    public_id: str
    email: EmailAddress
    first_name: str
    campaign: str
    step_key: str
    kind: str
    treated_on: dt.date
    due_at: dt.datetime
    state: str  # scheduled | sending | sent | failed | cancelled | unknown
    attempts: int
    provider_id: str | None
    content_hash: str | None
    template_version: str | None
    sent_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class EventView:
    """One entry of the append-only audit trail."""

    at: dt.datetime
    kind: str
    enrollment_id: int | None
    message_id: int | None
    actor: str
    detail: str | None
