"""What staff give at checkout to personalise one printed handout, checked before rendering."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aftercare.dates import require_aware
from aftercare.errors import InputError

# The longest text each typed field may hold. Side 1 of the checkout handout must stay one page
# with every field at its longest (a test fills them with the widest letter); the product,
# units and lot number are short by nature.
FIELD_LIMITS: Mapping[str, int] = MappingProxyType({
    "name": 80, "areas": 80, "provider": 40, "product": 40, "units": 12, "lot": 16,
})
# The typed fields, by the PatientCard attribute each fills (the command line and the checkout
# form name them their own way).
TYPED_FIELDS: tuple[str, ...] = tuple(FIELD_LIMITS)


@dataclass(frozen=True)
class PatientCard:
    """The details printed on one patient's handout, and what they agreed to at checkout.

    Everything here is printed and nothing is stored: the product, units and lot number in
    particular never reach the outbox. The consents and ``planned_at`` decide which email
    dates the handout lists: exactly those the outbox will send for an enrolment made at
    ``planned_at`` (None: the start of the treatment day). Without aftercare consent the
    patient is not enrolled and the handout lists no email.
    """

    name: str
    treated_on: dt.date
    areas: str | None = None
    provider: str | None = None
    product: str | None = None
    units: str | None = None
    lot: str | None = None
    aftercare_consent: bool = False
    reminder_consent: bool = False
    planned_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        name = checked_text("name", self.name)
        if name is None:
            raise InputError("name", "expected the patient's name; got an empty value")
        object.__setattr__(self, "name", name)
        for field in TYPED_FIELDS[1:]:
            object.__setattr__(self, field, checked_text(field, getattr(self, field)))
        if isinstance(self.treated_on, dt.datetime) or not isinstance(self.treated_on, dt.date):
            raise InputError("treated_on", f"expected a date; got {self.treated_on!r}")
        if self.planned_at is not None:
            require_aware(self.planned_at, "planned_at")

    def typed(self) -> dict[str, str | None]:
        """Each typed field by name, for checks that name the field."""
        return {field: getattr(self, field) for field in TYPED_FIELDS}


def checked_text(field: str, text: str | None) -> str | None:
    """``text`` trimmed (None when empty); InputError naming ``field`` if it cannot print."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(field, f"expected text; got {text!r}")
    text = text.strip()
    if not text:
        return None
    limit = FIELD_LIMITS[field]
    if len(text) > limit:
        raise InputError(field, f"expected at most {limit} characters; got {len(text)}")
    for position, char in enumerate(text, start=1):
        # Control, format (bidi overrides, zero-width) and line-break characters could hide
        # or reorder what is printed; no name needs them. The message leaves the text out:
        # it may be a patient's name.
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            raise InputError(
                field,
                f"expected printable characters; got U+{ord(char):04X} at position {position}",
            )
    return text
