"""The outbox's records: an enrolment going in; claims, listings and trail entries coming out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from aftercare.content.values import EmailAddress, ZoneName
from aftercare.outbox.vocabulary import DeliveryEvent, State, Trail
from aftercare.plan.schedule import PlannedMessage

# The one site of an installation without sites/: its settings are clinic.yaml's.
IMPLICIT_SITE: Final = "main"


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
    site: str = IMPLICIT_SITE  # the site the patient was treated at


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
    due_at: dt.datetime  # aware UTC: when it became claimable (a retry moves it)
    attempts: int
    # When it should reach the patient: its due time, kept through retries. A provider that
    # schedules gets this as the send time; the step's grace period counts from it.
    send_at: dt.datetime


@dataclass(frozen=True)
class MessageView:
    """One message for listings (CLI outbox, staff page)."""

    message_id: int
    public_id: str
    email: EmailAddress
    first_name: str
    language: str
    campaign: str
    step_key: str
    kind: str
    treated_on: dt.date
    due_at: dt.datetime
    state: State
    attempts: int
    provider_id: str | None
    content_hash: str | None
    template_version: str | None
    sent_at: dt.datetime | None
    last_error: str | None
    # Sent (accepted) with a later send_at: the provider holds it until then ("scheduled at
    # SendGrid for <send_at>"), cancellable through provider_batch. Put back for a retry: the
    # time it is still meant to reach the patient.
    send_at: dt.datetime | None = None
    provider_batch: str | None = None
    delivery: DeliveryEvent | None = None  # the latest delivery event reported
    viewed_at: dt.datetime | None = None  # when the patient first opened its care page
    # The enrolment's zone, reminder consent and time: what its care page and handout need.
    timezone: ZoneName | None = None
    marketing_consent: bool = False
    enrolled_at: dt.datetime | None = None



@dataclass(frozen=True)
class EnrollResult:
    enrollment_id: int
    created: bool  # False: the same patient + campaign + treatment date already existed
    messages: tuple[PlannedMessage, ...]  # the plan as stored (for display)
    # A repeat with other consents: what changed, in words for staff ("Reminder consent
    # withdrawn: cancelled 1 reminder (month-3, Tue 23 Feb)"); empty when nothing changed.
    changes: tuple[str, ...] = ()
    # Reminders the provider holds that the new consent withdraws: cancel them there.
    to_withdraw: tuple[Submitted, ...] = ()


@dataclass(frozen=True)
class DeliveryReport:
    """One delivery event a provider reported, in our words; ``message_id`` is the public id
    the message was handed over with, when the provider returns it."""

    event_id: str  # the provider's id for the event: a repeated post is recognised by it
    event: DeliveryEvent
    message_id: str | None
    email: str
    timestamp: dt.datetime  # aware, UTC
    reason: str | None  # bounce or drop reason, addresses removed, truncated


@dataclass(frozen=True)
class Submitted:
    """A message handed to the provider that it has not sent yet (it holds it until send_at)."""

    message_id: int
    batch: str | None  # the provider's batch that cancels it; None: it cannot be cancelled
    send_at: dt.datetime


@dataclass(frozen=True)
class EventReport:
    """What one post of provider events changed; counts only, no personal data."""

    received: int
    duplicates: int = 0  # already recorded (the provider repeats events): ignored
    unmatched: int = 0  # naming no message of ours: recorded, and still suppress the address
    resolved: int = 0  # 'unknown' messages the provider's events proved sent
    suppressed: int = 0  # addresses newly suppressed
    cancelled: int = 0  # unsent messages cancelled because their address is now suppressed
    # Messages of suppressed addresses the provider still holds: withdraw them there.
    to_withdraw: tuple[Submitted, ...] = ()


@dataclass(frozen=True)
class EventView:
    """One entry of the append-only audit trail."""

    at: dt.datetime
    kind: Trail
    enrollment_id: int | None
    message_id: int | None
    actor: str
    detail: str | None


@dataclass(frozen=True)
class StaffRecord:
    """One staff account as stored: the password only as a hash."""

    id: int
    username: str  # as first written (logins compare without regard to case)
    password_hash: str
    disabled: bool


@dataclass(frozen=True)
class StaffListing:
    """One staff account for `pipeline staff list`; no password hash."""

    id: int
    username: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    disabled: bool  # removed: it can no longer log in, and its name is not given out again


@dataclass(frozen=True)
class StaffSession:
    """A staff member's session as stored: whose it is, what it holds, and its times."""

    staff_id: int
    username: str
    data: str  # the session's values as JSON (the CSRF token, messages waiting to be shown)
    created_at: dt.datetime
    last_seen_at: dt.datetime


@dataclass(frozen=True)
class FailedLogins:
    """Failed logins counted for one client address and one account (or the client alone)."""

    client: str
    account: str
    failures: int
    last_failure_at: dt.datetime
    locked_until: dt.datetime | None


@dataclass(frozen=True)
class EnrollmentView:
    """One enrolment as the API shows it: no name and no address."""

    enrollment_id: int
    public_id: str  # opaque random id (uuid4 hex): the only id the API's URLs carry
    campaign: str
    treated_on: dt.date
    timezone: ZoneName
    language: str
    patient_ref: str | None  # the booking system's id for the patient
    marketing_consent: bool
    consent_at: dt.datetime
    consent_recorded_by: str
    consent_wording_version: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ApiKeyRecord:
    """One API key as stored: the key itself only as a hash."""

    id: int
    name: str
    key_hash: str
    site: str | None  # the one site the key may act for; None: every site
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to an Idempotency-Key, given again to a repeated request."""

    status: int
    location: str | None
    body: str
