"""Errors as RFC 9457 problem details (application/problem+json), with a JSON pointer per field.

A problem's ``type`` is ``about:blank`` when the status says it all (its title is then the
status's own phrase), and one of the tag URIs below when a client may want to tell problems
of one status apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final

from flask import Response, request
from werkzeug.exceptions import HTTPException

from aftercare.errors import ContentError, InputError

MEDIA_TYPE: Final = "application/problem+json"
_TAG: Final = "tag:aftercare-pipeline,2026:problem:"
INVALID_FIELDS: Final = _TAG + "invalid-fields"
IDEMPOTENCY_KEY_REUSED: Final = _TAG + "idempotency-key-reused"
IDEMPOTENCY_KEY_IN_PROGRESS: Final = _TAG + "idempotency-key-in-progress"
ENROLMENT_CONFLICT: Final = _TAG + "enrolment-conflict"
TYPES: Final = (INVALID_FIELDS, IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS,
                ENROLMENT_CONFLICT)
_TITLES: Final = {
    INVALID_FIELDS: "Some fields are not valid",
    IDEMPOTENCY_KEY_REUSED: "This Idempotency-Key was sent with another request",
    IDEMPOTENCY_KEY_IN_PROGRESS: "A request with this Idempotency-Key is still being answered",
    ENROLMENT_CONFLICT: "The enrolment cannot be changed that way",
}


@dataclass(frozen=True)
class FieldError:
    """One invalid field: where it is in the request body (RFC 6901), and what is wrong."""

    pointer: str
    detail: str


@dataclass
class ApiProblem(Exception):
    """A refusal, raised anywhere under the API and answered as problem details."""

    status: int
    detail: str
    type: str = "about:blank"
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return _TITLES.get(self.type) or HTTPStatus(self.status).phrase

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"type": self.type, "title": self.title,
                                   "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in self.errors]
        return body

    def response(self) -> Response:
        response = Response(json.dumps(self.body(), ensure_ascii=False), self.status,
                            mimetype=MEDIA_TYPE)
        response.headers.update(self.headers)
        return response


def pointer(*parts: str) -> str:
    """A JSON pointer to a member (RFC 6901: '~' and '/' escaped)."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def invalid(errors: Iterable[FieldError]) -> ApiProblem:
    """422: the body is well-formed JSON, but these fields are not valid."""
    listed = sorted(set(errors), key=lambda e: (e.pointer, e.detail))
    count = len(listed)
    return ApiProblem(422, f"{count} field{'' if count == 1 else 's'} to fix; nothing was "
                           "changed", INVALID_FIELDS, listed)


def from_rules(exc: ContentError | InputError, pointers: Mapping[str, str]) -> ApiProblem:
    """The enrolment rules' problems (each naming a field) as a 422, each at its pointer."""
    if isinstance(exc, InputError):
        pairs = [(exc.field, exc.message)]
    else:
        pairs = [(problem.path, problem.message) for problem in exc.problems]
    return invalid(FieldError(pointers.get(name, pointer(name)), message)
                   for name, message in pairs)


def http_problem(error: HTTPException) -> Response:
    """A refusal raised by the web framework (no such route, method or size) as a problem."""
    status = error.code or 500
    details = {
        404: "no such resource in this API; see /api/v1/openapi.json",
        405: "this method is not allowed here; see /api/v1/openapi.json",
        413: f"expected a body of at most {request.max_content_length} bytes",
    }
    problem = ApiProblem(status, details.get(status, HTTPStatus(status).description))
    response = problem.response()
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value  # Allow, for a 405
    return response
