"""The delivery interface: one outgoing email in, one outcome back; backends are chosen by name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from aftercare.emails import RenderedEmail
from aftercare.errors import UsageError
from aftercare.values import EmailAddress

Status = Literal["sent", "failed", "retry", "unknown"]

DEFAULT_OUTBOX_DIR = Path("var") / "outbox"


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
    rendered: RenderedEmail
    send_at: dt.datetime  # aware, UTC

    def __post_init__(self) -> None:
        if self.send_at.tzinfo is None or self.send_at.utcoffset() != dt.timedelta(0):
            raise ValueError("send_at must be an aware datetime in UTC")


@dataclass(frozen=True)
class Outcome:
    """What a backend knows after one attempt.

    ``sent``: accepted; ``failed``: refused for good; ``retry``: refused for now, try again at
    ``retry_at``; ``unknown``: it may or may not have gone out, so it must never be resent blindly.
    """

    status: Status
    provider_id: str | None
    detail: str
    retry_at: dt.datetime | None = None


class Backend(Protocol):
    """A way to deliver email; ``send`` must not raise for a refusal it understands."""

    name: str

    def send(self, email: OutgoingEmail) -> Outcome: ...


def _file_backend(env: Mapping[str, str], base: Path) -> Backend:
    from aftercare.delivery.files import FileBackend  # here, because files imports this module

    directory = Path(env.get("AFTERCARE_OUTBOX_DIR") or DEFAULT_OUTBOX_DIR).expanduser()
    return FileBackend(directory if directory.is_absolute() else base / directory)


def _sendgrid_backend(env: Mapping[str, str], base: Path) -> Backend:
    from aftercare.delivery.sendgrid import SendGridBackend

    host = env.get("SENDGRID_API_HOST") or "https://api.sendgrid.com"
    return SendGridBackend(env["SENDGRID_API_KEY"], host=host)


BACKENDS: Mapping[str, Callable[[Mapping[str, str], Path], Backend]] = {
    "file": _file_backend,
    "sendgrid": _sendgrid_backend,
}


def backend_from_env(
    env: Mapping[str, str], base: Path | None = None, *, name: str | None = None
) -> Backend:
    """The backend called ``name``, configured from ``env``; relative paths start at ``base``.

    Without a name, a SENDGRID_API_KEY in the environment selects SendGrid; else the file
    backend, which needs no account.
    """
    if name is None:
        name = "sendgrid" if env.get("SENDGRID_API_KEY") else "file"
    factory = BACKENDS.get(name)
    if factory is None:
        raise UsageError(f"delivery backend: expected one of {', '.join(BACKENDS)}; got {name!r}")
    return factory(env, base if base is not None else Path.cwd())
