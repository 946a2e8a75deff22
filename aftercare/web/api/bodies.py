"""Request bodies: JSON only, size-limited, read into the enrolment rules' fields with a JSON
pointer for every member that is missing, of the wrong type or unknown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import request

from aftercare.content.model import Project
from aftercare.enrol.rules import known_sites
from aftercare.web.api.problems import ApiProblem, FieldError, invalid, pointer

MAX_BODY: Final = 16 * 1024  # an enrolment is under 1 KB
MAX_TEXT: Final = 320  # longer than any field the rules accept (an address is at most 254)
MAX_RECORDED_BY: Final = 64


def read_json(*, required: bool = True) -> dict[str, Any]:
    """The request's JSON object: 413 when too large, 415 when not JSON, 400 when malformed,
    422 when not an object (an empty body is an empty object when ``required`` is False)."""
    data = request.get_data(cache=True)  # 413 past request.max_content_length
    if not data and not required:
        return {}
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        got = f"got {mimetype!r}" if mimetype else "got no Content-Type"
        raise ApiProblem(415, f"expected a JSON body (Content-Type: application/json); {got}")
    try:
        body = json.loads(data.decode("utf-8"), object_pairs_hook=_no_repeats,
                          parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiProblem(400, f"expected a JSON body in UTF-8; {_reason(exc)}") from None
    if not isinstance(body, dict):
        raise invalid([FieldError("", f"expected a JSON object; got {_kind(body)}")])
    return body


class Reader:
    """Reads members of one JSON object, collecting a FieldError for each problem."""

    def __init__(self, body: Mapping[str, Any], errors: list[FieldError], *path: str) -> None:
        self.body, self.errors, self.path = body, errors, path

    def at(self, name: str) -> str:
        return pointer(*self.path, name)

    def problem(self, name: str, detail: str) -> None:
        self.errors.append(FieldError(self.at(name), detail))

    def only(self, *names: str) -> None:
        for name in sorted(set(self.body) - set(names)):
            self.problem(name, f"expected one of {', '.join(names)}; got unknown member "
                               f"{name[:40]!r}")

    def text(self, name: str, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
        """A string member (None when absent and optional, or wrong)."""
        value = self.body.get(name)
        if value is None:
            if required:
                self.problem(name, "required; got nothing")
            return None
        if not isinstance(value, str):
            self.problem(name, f"expected a string; got {_kind(value)}")
            return None
        if len(value) > limit:
            self.problem(name, f"expected at most {limit} characters; got {len(value)}")
            return None
        return value

    def flag(self, name: str) -> bool | None:
        value = self.body.get(name)
        if not isinstance(value, bool):
            self.problem(name, "expected true or false; got "
                               + ("nothing" if value is None else _kind(value)))
            return None
        return value

    def member(self, name: str) -> Reader:
        """A required object member, read with its own pointer (empty when missing or wrong)."""
        value = self.body.get(name)
        if not isinstance(value, dict):
            self.problem(name, "required; got nothing" if value is None
                         else f"expected an object; got {_kind(value)}")
            return Reader({}, [], *self.path, name)  # the member is reported, not its parts
        return Reader(value, self.errors, *self.path, name)


def check_site(reader: Reader, project: Project) -> str | None:
    """The optional ``site`` member: only a site this installation has."""
    site = reader.text("site", required=False)
    sites = known_sites(project)
    if site is not None and site not in sites:
        reader.problem("site", f"expected {' or '.join(sites)} (the sites of this "
                               f"installation); got {site[:40]!r}")
        return None
    return site


@dataclass(frozen=True)
class Consented:
    """The consents member as sent (all four are required); None where a member is wrong."""

    aftercare: bool | None
    reminders: bool | None
    recorded_by: str | None
    wording_version: str | None


def read_consents(reader: Reader) -> Consented:
    consents = reader.member("consents")
    consents.only("aftercare", "reminders", "recorded_by", "wording_version")
    aftercare, reminders = consents.flag("aftercare"), consents.flag("reminders")
    recorded_by = consents.text("recorded_by", limit=MAX_RECORDED_BY)
    if recorded_by is not None and (not recorded_by.strip() or not recorded_by.isprintable()):
        consents.problem("recorded_by", "expected who recorded the consent (a name or id at "
                                        "the clinic), in printable characters")
        recorded_by = None
    version = consents.text("wording_version", limit=64)
    return Consented(aftercare, reminders, recorded_by and recorded_by.strip(), version)


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"member {repeated[0][:40]!r} appears more than once")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "got bytes that are not UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"got {exc.msg.lower()} at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "got arrays or objects nested too deeply"
    return f"got {exc}"


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "a value")
