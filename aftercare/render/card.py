"""What staff give at checkout to personalise one printed handout, checked before rendering."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aftercare.errors import InputError

# The longest text each typed field may hold. Side 1 of the checkout handout must stay one page
# with every field at its longest (a test fills them with the widest letter); the product,
# units and lot number are short by nature.
FIELD_LIMITS: Mapping[str, int] = MappingProxyType({
    "--name": 80, "--areas": 80, "--provider": 40,
    "--product": 40, "--units": 12, "--lot": 16,
})
# The historical name of the name limit (the longest of all).
MAX_FIELD_LENGTH = FIELD_LIMITS["--name"]


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
        name = checked_text("--name", self.name)
        if name is None:
            raise InputError("--name", "expected the patient's name; got an empty value")
        object.__setattr__(self, "name", name)
        for option, attribute in TYPED_FIELDS.items():
            if attribute != "name":
                value = checked_text(option, getattr(self, attribute))
                object.__setattr__(self, attribute, value)
        if isinstance(self.treated_on, dt.datetime) or not isinstance(self.treated_on, dt.date):
            raise InputError("--treated-on", f"expected a date; got {self.treated_on!r}")
        moment = self.planned_at
        if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
            raise ValueError("planned_at must be timezone-aware; got a naive datetime")

    def typed(self) -> dict[str, str | None]:
        """Each typed field by its command-line option, for checks that name the field."""
        return {option: getattr(self, attribute) for option, attribute in TYPED_FIELDS.items()}


# The command-line option of each typed field, and the PatientCard attribute it fills.
TYPED_FIELDS: Mapping[str, str] = MappingProxyType({
    "--name": "name", "--areas": "areas", "--provider": "provider",
    "--product": "product", "--units": "units", "--lot": "lot",
})


def checked_text(option: str, text: str | None) -> str | None:
    """``text`` trimmed (None when empty); InputError naming ``option`` if it cannot print."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(option, f"expected text; got {text!r}")
    text = text.strip()
    if not text:
        return None
    limit = FIELD_LIMITS.get(option, MAX_FIELD_LENGTH)
    if len(text) > limit:
        raise InputError(option, f"expected at most {limit} characters; got {len(text)}")
    for position, char in enumerate(text, start=1):
        # Control, format (bidi overrides, zero-width) and line-break characters could hide
        # or reorder what is printed; no name needs them. The message leaves the text out:
        # it may be a patient's name.
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            raise InputError(
                option,
                f"expected printable characters; got U+{ord(char):04X} at position {position}",
            )
    return text
