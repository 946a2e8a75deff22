"""The delivery interface: one outgoing email in, one outcome back; backends are chosen by name.

It knows nothing of rendering: an email arrives as its finished parts (``Rendered``). What a
provider promises (how far ahead it holds a message, when cancelling stops) is in
``aftercare.delivery.providers``; its event names are mapped to the outbox's own words by its
module (``aftercare.delivery.sendgrid_events``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from aftercare.content.model import DeliverySettings
from aftercare.content.values import EmailAddress
from aftercare.delivery.providers import Holding
from aftercare.errors import UsageError

Status = Literal["sent", "failed", "retry", "unknown"]

DEFAULT_OUTBOX_DIR = Path("var") / "outbox"


class Rendered(Protocol):
    """The finished parts of one email, as the render stage makes them."""

    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def ics(self) -> bytes | None: ...  # a text/calendar attachment
    @property
    def ics_filename(self) -> str | None: ...
    @property
    def unsubscribe_url(self) -> str: ...


@dataclass(frozen=True)
class OutgoingEmail:
    """Everything a backend needs to deliver one message; the public id is its only identifier."""

    public_id: str
    to: EmailAddress
    to_name: str  # the patient's first name
    from_address: EmailAddress
    from_name: str
    reply_to: EmailAddress
    campaign: str  # names a condition: never hand it to a provider as metadata
    step_key: str
    rendered: Rendered
    send_at: dt.datetime  # aware, UTC
    # A minimal email: the provider is told nothing the email does not say (not even its step).
    minimal: bool = False

    def __post_init__(self) -> None:
        if self.send_at.tzinfo is None or self.send_at.utcoffset() != dt.timedelta(0):
            raise ValueError("send_at must be an aware datetime in UTC")


@dataclass(frozen=True)
class Outcome:
    """What a backend knows after one attempt.

    ``sent``: accepted; ``failed``: refused for good; ``retry``: refused for now, try again at
    ``retry_at``; ``unknown``: it may or may not have gone out, so it must never be resent blindly.
    ``rate_limited``: the provider refuses every request until ``retry_at``, not just this one.
    """

    status: Status
    provider_id: str | None
    detail: str
    retry_at: dt.datetime | None = None
    rate_limited: bool = False


class ProviderError(Exception):
    """A provider refused or did not answer a management call (a batch, a cancellation)."""

    status: int | None = None  # the HTTP status, if the provider answered


class Backend(Protocol):
    """A way to deliver email; ``send`` must not raise for a refusal it understands."""

    name: str

    def send(self, email: OutgoingEmail) -> Outcome: ...


@runtime_checkable
class SchedulingBackend(Protocol):
    """A provider that holds a message until its ``send_at`` and can cancel it until shortly
    before, through the batch the message was submitted in (SendGrid)."""

    name: str
    can_schedule: bool
    holding: Holding  # how far ahead it holds a message, and until when it can cancel one

    def send(
        self, email: OutgoingEmail, *, attempt: int = 0, batch_id: str | None = None
    ) -> Outcome: ...

    def new_batch(self) -> str:
        """A new batch id; raises ProviderError."""
        ...

    def cancel_batch(self, batch_id: str) -> str:
        """Cancel a batch's held messages: "cancelled" or "already"; raises ProviderError."""
        ...


def scheduling(backend: Backend | None) -> SchedulingBackend | None:
    """The backend, if it can hold messages until a send time and cancel them; else None."""
    if isinstance(backend, SchedulingBackend) and backend.can_schedule is True:
        return backend
    return None


def _file_backend(
    env: Mapping[str, str], base: Path, delivery: DeliverySettings
) -> Backend:
    from aftercare.delivery.files import FileBackend  # here, because files imports this module

    directory = Path(env.get("AFTERCARE_OUTBOX_DIR") or DEFAULT_OUTBOX_DIR).expanduser()
    return FileBackend(directory if directory.is_absolute() else base / directory)


def _sendgrid_backend(
    env: Mapping[str, str], base: Path, delivery: DeliverySettings
) -> Backend:
    from aftercare.delivery.sendgrid import SendGridBackend

    host = env.get("SENDGRID_API_HOST") or "https://api.sendgrid.com"
    return SendGridBackend(
        env["SENDGRID_API_KEY"],
        host=host,
        sandbox=delivery.sandbox,
        unsubscribe_group_id=delivery.unsubscribe_group_id,
    )


BACKENDS: Mapping[str, Callable[[Mapping[str, str], Path, DeliverySettings], Backend]] = {
    "file": _file_backend,
    "sendgrid": _sendgrid_backend,
}


def backend_from_env(
    env: Mapping[str, str],
    base: Path | None = None,
    *,
    name: str | None = None,
    delivery: DeliverySettings | None = None,
) -> Backend:
    """The backend called ``name``, configured from ``env`` and the clinic's ``delivery``
    settings (sandbox mode, unsubscribe group); relative paths start at ``base``.

    Without a name, a SENDGRID_API_KEY in the environment selects SendGrid; else the file
    backend, which needs no account.
    """
    if name is None:
        name = "sendgrid" if env.get("SENDGRID_API_KEY") else "file"
    factory = BACKENDS.get(name)
    if factory is None:
        raise UsageError(f"delivery backend: expected one of {', '.join(BACKENDS)}; got {name!r}")
    settings = delivery if delivery is not None else DeliverySettings()
    return factory(env, base if base is not None else Path.cwd(), settings)
