"""The outbox's words: message states and the moves allowed between them, the kinds of trail
entry, and the delivery events providers report, said in our words rather than theirs."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from aftercare.errors import PipelineError


class State(StrEnum):
    """Where a message is. The database's CHECK constraint lists the same six."""

    SCHEDULED = "scheduled"  # waiting for its due time
    SENDING = "sending"  # claimed by a run of send-due, which is handing it to the backend
    SENT = "sent"  # the provider accepted it (it may hold it until its send time)
    FAILED = "failed"  # refused for good, or dropped as too late: never sent
    CANCELLED = "cancelled"  # will never be sent: cancelled, skipped by its plan, withdrawn
    UNKNOWN = "unknown"  # it may or may not have gone out: never resent by itself


# A new message is scheduled, or stored already cancelled when its plan skips it.
INITIAL: Final = frozenset({State.SCHEDULED, State.CANCELLED})
# Every move a state write may make; the outbox checks each write against this table.
TRANSITIONS: Final[Mapping[State, frozenset[State]]] = MappingProxyType({
    # claimed; cancelled (by a person, a suppression, a new plan); re-timed where it is
    State.SCHEDULED: frozenset({State.SENDING, State.CANCELLED, State.SCHEDULED}),
    # the backend's outcome, or back in the queue for a retry
    State.SENDING: frozenset({State.SENT, State.FAILED, State.UNKNOWN, State.CANCELLED,
                              State.SCHEDULED}),
    # withdrawn at the provider before its send time
    State.SENT: frozenset({State.CANCELLED}),
    # settled as sent (by a person or the provider's report), queued again, or withdrawn
    State.UNKNOWN: frozenset({State.SENT, State.SCHEDULED, State.CANCELLED}),
    # a step only its plan skipped comes back when a new date or consent allows it
    State.CANCELLED: frozenset({State.SCHEDULED}),
    State.FAILED: frozenset(),
})


class StateError(PipelineError):
    """A message was not in the state an operation needs (for example, already sent)."""


def check_move(message_id: int, current: State, target: State, doing: str) -> None:
    """Raise StateError unless the table allows ``current`` -> ``target``."""
    if target not in TRANSITIONS[current]:
        raise StateError(f"message {message_id} is {current.value!r}; {doing}")


class Trail(StrEnum):
    """The kinds of entry in the append-only trail (the ``events`` table)."""

    ENROLLED = "enrolled"
    SCHEDULED = "scheduled"
    SKIPPED = "skipped"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    RETRY = "retry"
    RESCHEDULED = "rescheduled"
    REQUEUED = "requeued"
    CONSENT_CHANGED = "consent-changed"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"
    REPORTED = "reported"  # a delivery event from the provider
    WITHDRAWAL_FAILED = "withdrawal-failed"
    VIEWED = "viewed"  # the patient first opened the message's care page (time only)
    PATIENT_FORGOTTEN = "patient-forgotten"  # name, address and patient id erased
    BACKED_UP = "backed-up"
    # What staff do, written with the staff member as actor.
    STAFF_ADDED = "staff-added"
    STAFF_LOGIN = "staff-login"
    STAFF_LOGIN_FAILED = "staff-login-failed"
    STAFF_LOCKED = "staff-locked"
    STAFF_LOGOUT = "staff-logout"
    STAFF_CLIENT_LOCKED = "staff-client-locked"  # one client address, whatever account it tries
    STAFF_UNLOCKED = "staff-unlocked"
    STAFF_LISTED = "staff-listed"
    STAFF_REMOVED = "staff-removed"
    STAFF_PASSWORD_RESET = "staff-password-reset"
    HANDOUT_PRINTED = "handout-printed"
    PATIENT_LOOKUP = "patient-lookup"
    # The booking-system API: every call, under the key's name; keys added and revoked.
    API_CALL = "api-call"
    API_KEY_ADDED = "api-key-added"
    API_KEY_REVOKED = "api-key-revoked"


class DeliveryEvent(StrEnum):
    """What a provider reports about a message it accepted, in our words; each provider's
    module maps its own event names to these. The stored spellings are those earlier
    versions wrote, so an existing outbox reads the same."""

    PROCESSED = "processed"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounce"
    DROPPED = "dropped"
    COMPLAINED = "spamreport"
    UNSUBSCRIBED = "unsubscribe"
    UNSUBSCRIBED_FROM_GROUP = "group_unsubscribe"
    RESUBSCRIBED_TO_GROUP = "group_resubscribe"


# Events after which the address must get no more email.
SUPPRESSING: Final = frozenset({
    DeliveryEvent.BOUNCED, DeliveryEvent.DROPPED, DeliveryEvent.COMPLAINED,
    DeliveryEvent.UNSUBSCRIBED, DeliveryEvent.UNSUBSCRIBED_FROM_GROUP,
})
# A later event never overwrites a further one: 'deferred' after 'delivered' is old news, but a
# bounce after 'delivered' is real (asynchronous bounces), and so is a complaint after either.
DELIVERY_RANK: Final[Mapping[str, int]] = MappingProxyType({
    DeliveryEvent.PROCESSED: 1, DeliveryEvent.DEFERRED: 2, DeliveryEvent.DELIVERED: 3,
    DeliveryEvent.BOUNCED: 4, DeliveryEvent.DROPPED: 4, DeliveryEvent.COMPLAINED: 5,
    DeliveryEvent.UNSUBSCRIBED: 5, DeliveryEvent.UNSUBSCRIBED_FROM_GROUP: 5,
})
# Suppression reasons that mean the patient asked to stop (the rest are delivery problems).
UNSUBSCRIBING: Final = frozenset({
    "unsubscribed", DeliveryEvent.UNSUBSCRIBED, DeliveryEvent.UNSUBSCRIBED_FROM_GROUP,
})
SYSTEM: Final = "system"  # the actor of automatic moves: claims, outcomes, expiry
