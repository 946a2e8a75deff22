"""Typed values to the text the outbox stores, and stored rows back to typed records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aftercare.content.values import EmailAddress, ZoneName
from aftercare.dates import require_aware
from aftercare.outbox.database import Row
from aftercare.outbox.vocabulary import DeliveryEvent, State, Trail

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def stamp(moment: dt.datetime, name: str) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    require_aware(moment, name)
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def where(filters: Mapping[str, object]) -> tuple[str, list[object]]:
    """A WHERE clause matching every filter that is not None (all of them when none is set)."""
    chosen = {column: value for column, value in filters.items() if value is not None}
    clause = " AND ".join(f"{column} = ?" for column in chosen)
    return (f"WHERE {clause}" if clause else ""), list(chosen.values())


_TRAIL_KINDS: Final = frozenset(kind.value for kind in Trail)
_READERS: Final[Mapping[str, Callable[[Any], object]]] = {
    "email": EmailAddress,
    "timezone": ZoneName,
    "treated_on": dt.date.fromisoformat,
    "due_at": instant,
    "sent_at": instant,
    "send_at": instant,
    "locked_until": instant,
    "viewed_at": instant,
    "enrolled_at": instant,
    "created_at": instant,
    "last_login_at": instant,
    "last_seen_at": instant,
    "last_failure_at": instant,
    "consent_at": instant,
    "revoked_at": instant,
    "at": instant,
    "marketing_consent": bool,
    "disabled": bool,
    "state": State,
    "kind": lambda text: Trail(text) if text in _TRAIL_KINDS else text,  # or a message's kind
    "delivery": DeliveryEvent,
}


def read(cls: type[T], row: Row, **overrides: object) -> T:
    """A record from a row whose column names match its fields, stored text made typed."""
    values = {**row, **overrides}
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value, reader = values[field.name], _READERS.get(field.name)
        fields[field.name] = value if value is None or reader is None else reader(value)
    return cls(**fields)
