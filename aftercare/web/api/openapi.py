"""The API's OpenAPI 3.1 document, made from the clinic's content (its campaigns, treatments,
languages and sites) and the consent wording on file, and served at /api/v1/openapi.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aftercare.content.model import Project
from aftercare.enrol.rules import (
    CONSENT_WORDING,
    MAX_NAME,
    MAX_PATIENT_ID,
    consent_wording_version,
    known_sites,
    supported_languages,
)
from aftercare.outbox.vocabulary import State
from aftercare.web.api.bodies import MAX_BODY, MAX_RECORDED_BY
from aftercare.web.api.problems import MEDIA_TYPE, TYPES

Schema = dict[str, Any]
_PROBLEM: Final = {"$ref": "#/components/schemas/Problem"}
_REFUSALS: Final = {
    400: "The body is not JSON, or the Idempotency-Key header is malformed.",
    401: "No API key, an unknown one, or a revoked one.",
    403: "The key acts for another site.",
    404: "No such enrolment or patient.",
    409: "The Idempotency-Key was sent with another request, or its first request is still "
         "being answered; or the change conflicts with the enrolment's state.",
    413: f"The body is larger than {MAX_BODY} bytes.",
    415: "The body is not application/json.",
    422: "Fields are missing or not valid: `errors` has a JSON pointer to each.",
    429: "The key's rate limit is reached: see Retry-After.",
    503: "The database is busy or cannot be written: nothing was changed; see Retry-After.",
}
_DATE: Final = {"type": "string", "format": "date"}
_INSTANT: Final = {"type": "string", "format": "date-time"}
_PATIENT_ID: Final = f"^[A-Za-z0-9._-]{{1,{MAX_PATIENT_ID}}}$"


def document(project: Project) -> dict[str, Any]:
    """The whole document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{project.clinic.name} aftercare API",
            "version": "1.0.0",
            "description": (
                "Enrol patients in aftercare emails from a booking or practice system, cancel "
                "or re-time an enrolment, stop reminders when a patient rebooks, and "
                "unsubscribe. Every call needs an API key (`pipeline apikey add NAME`) as "
                "`Authorization: Bearer <key>`, and is recorded in the trail under the key's "
                "name. A POST may carry an `Idempotency-Key`: the same key with the same body "
                "gets the first answer again. External patient ids must not be personal data."),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "A key from `pipeline apikey add`."}},
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Repeat the request safely: the same key and body get the "
                                   "first answer for 24 hours.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 257}},
                "EnrolmentId": {"name": "public_id", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}},
                "ExternalId": {"name": "external_id", "in": "path", "required": True,
                               "schema": {"type": "string", "pattern": _PATIENT_ID}},
            },
            "schemas": _schemas(project),
        },
    }


def _paths() -> dict[str, Any]:
    ident = [{"$ref": "#/components/parameters/EnrolmentId"}]
    return {
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document.", "security": [],
            "responses": {"200": _json("The OpenAPI document.", {"type": "object"})}}},
        "/enrolments": {"post": _post(
            "createEnrolment", "Enrol a patient; a repeat returns the enrolment already made.",
            _body("EnrolmentRequest"), {
                "201": _json("Enrolled: the enrolment with its planned messages.",
                             _ref("EnrolmentCreated"), location=True),
                "200": _json("Already enrolled for that campaign and treatment date; a changed "
                             "reminder consent is applied and listed in `changes`.",
                             _ref("EnrolmentCreated"), location=True),
            }, (400, 401, 403, 409, 413, 415, 422, 429))},
        "/enrolments/{public_id}": {"parameters": ident, "get": {
            "operationId": "getEnrolment", "summary": "An enrolment and its messages.",
            "responses": {"200": _json("The enrolment.", _ref("Enrolment")),
                          **_problems((401, 403, 404, 429))}}},
        "/enrolments/{public_id}/cancel": {"parameters": ident, "post": _post(
            "cancelEnrolment", "Cancel the enrolment's unsent messages, and withdraw what "
            "SendGrid holds of them.",
            {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "maxProperties": 0}}}},
            {"200": _json("Cancelled.", _ref("EnrolmentCancelled"))},
            (400, 401, 403, 404, 409, 413, 415, 422, 429))},
        "/enrolments/{public_id}/reschedule": {"parameters": ident, "post": _post(
            "rescheduleEnrolment", "Correct the treatment date: unsent messages are re-timed.",
            _body("RescheduleRequest"),
            {"200": _json("Re-timed.", _ref("EnrolmentRescheduled"))},
            (400, 401, 403, 404, 409, 413, 415, 422, 429))},
        "/patients/{external_id}/rebooked": {
            "parameters": [{"$ref": "#/components/parameters/ExternalId"}],
            "post": _post(
                "patientRebooked", "The patient booked their next visit: cancel the pending "
                "reminders of their enrolments treated before it (clinical emails are kept), "
                "and withdraw what SendGrid holds of them.",
                _body("RebookedRequest"), {"200": _json("Reminders stopped.", _ref("Rebooked"))},
                (400, 401, 403, 404, 409, 413, 415, 422, 429))},
        "/unsubscribe": {"post": _post(
            "unsubscribe", "Stop every email to an address for good (for a system that keeps "
            "its own preferences).",
            _body("UnsubscribeRequest"), {"200": _json("Unsubscribed.", _ref("Unsubscribed"))},
            (400, 401, 403, 409, 413, 415, 422, 429))},
    }


def _schemas(project: Project) -> dict[str, Schema]:
    message = _object({
        "step": {"type": "string"},
        "kind": {"enum": ["clinical", "marketing"],
                 "description": "marketing: the reminder to book, sent only with consent"},
        "status": {"enum": [s.value for s in State]},
        "due_at": _INSTANT,
        "due_local": {**_INSTANT, "description": "due_at in the patient's time zone"},
        "note": {"type": ["string", "null"], "description": "why it will not be sent"},
    })
    consents = _object({
        "aftercare": {"const": True}, "reminders": {"type": "boolean"},
        "recorded_by": {"type": "string"}, "recorded_at": _INSTANT,
        "wording_version": {"type": "string"},
    })
    enrolment: Schema = {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "site": {"enum": list(known_sites(project))},
        "campaign": {"type": "string"},
        "treatment": {"type": ["string", "null"]},
        "treated_on": _DATE,
        "timezone": {"type": "string"},
        "language": {"type": "string"},
        "external_patient_id": {"type": ["string", "null"]},
        "consents": consents,
        "created_at": _INSTANT,
        "messages": {"type": "array", "items": message},
    }
    stopped = _object({name: {"type": "integer", "minimum": 0} for name in (
        "cancelled", "withdrawn_at_provider", "still_delivered")})
    wording = " / ".join(CONSENT_WORDING.values())
    versions = sorted({consent_wording_version(project, language)
                       for language in supported_languages(project)})
    return {
        "Problem": _object({
            "type": {"type": "string", "format": "uri-reference",
                     "description": "about:blank, or one of: " + ", ".join(TYPES)},
            "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": _object({
                "pointer": {"type": "string",
                            "description": "JSON pointer (RFC 6901) into the request body"},
                "detail": {"type": "string"}})},
        }, optional=("errors",)),
        "EnrolmentRequest": {**_object({
            "campaign": {"enum": sorted(project.campaigns)},
            "treatment": {"enum": sorted({c.indication for c in project.campaigns.values()}),
                          "description": "instead of campaign: the campaign of that treatment"},
            "site": {"enum": list(known_sites(project))},
            "patient": _object({
                "first_name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                "email": {"type": "string", "minLength": 3, "maxLength": 254},
                "external_id": {"type": "string", "pattern": _PATIENT_ID,
                                "description": "the booking system's id for the patient: "
                                               "never a name or other personal data"},
                "language": {"enum": list(supported_languages(project))},
                "timezone": {"type": "string", "description": "IANA name; default: the "
                                                              "clinic's"},
            }, optional=("external_id", "language", "timezone")),
            "treated_on": {**_DATE, "description": "today or up to 365 days back, at the clinic"},
            "consents": _object({
                "aftercare": {"const": True, "description": "required to enrol"},
                "reminders": {"type": "boolean"},
                "recorded_by": {"type": "string", "minLength": 1, "maxLength": MAX_RECORDED_BY,
                                "description": "who recorded the consents at the clinic"},
                "wording_version": {"enum": versions,
                                    "description": "the version of the wording the patient "
                                                   f"read, in their language: {wording}; "
                                                   "default: the version for the enrolment's "
                                                   "language"},
            }),
        }, optional=("campaign", "treatment", "site")),
            "anyOf": [{"required": ["campaign"]}, {"required": ["treatment"]}]},
        "RescheduleRequest": _object({"treated_on": _DATE}),
        "RebookedRequest": _object({"appointment_on": {
            **_DATE, "description": "the next visit's date: today or later"}}),
        "UnsubscribeRequest": _object({"email": {"type": "string", "minLength": 3,
                                                 "maxLength": 254}}),
        "Enrolment": _object(enrolment),
        "EnrolmentCreated": _object({
            **enrolment, "created": {"type": "boolean"},
            "changes": {"type": "array", "items": {"type": "string"}}}),
        "EnrolmentCancelled": _object({**enrolment, "stopped": stopped}),
        "EnrolmentRescheduled": _object({**enrolment, "retimed": {"type": "integer",
                                                                  "minimum": 0}}),
        "Rebooked": _object({
            "external_patient_id": {"type": "string"}, "appointment_on": _DATE,
            "stopped": stopped, "enrolments": {"type": "array", "items": _ref("Enrolment")}}),
        "Unsubscribed": _object({"stopped": stopped}),
    }


def _object(properties: Schema, optional: Sequence[str] = ()) -> Schema:
    """A closed object: these properties, all required but the ``optional`` ones."""
    return {"type": "object", "properties": properties,
            "required": [name for name in properties if name not in optional],
            "additionalProperties": False}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _json(description: str, schema: Schema, *, location: bool = False) -> Schema:
    response: Schema = {"description": description,
                        "content": {"application/json": {"schema": schema}}}
    headers: Schema = {"Idempotent-Replayed": {
        "description": "true when this is the first answer to the Idempotency-Key, given again",
        "schema": {"const": "true"}}}
    if location:
        headers["Location"] = {"required": True, "description": "the enrolment's URL",
                               "schema": {"type": "string"}}
    response["headers"] = headers
    return response


def _problems(statuses: Sequence[int]) -> dict[str, Schema]:
    """The refusals ``statuses``, and the 503 any call that reads the outbox may get."""
    answers: dict[str, Schema] = {}
    for status in (*statuses, 503):
        answer: Schema = {"description": _REFUSALS[status],
                          "content": {MEDIA_TYPE: {"schema": _PROBLEM}}}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"required": True,
                                                      "schema": {"type": "string"}}}
        if status in (429, 503):
            answer["headers"] = {"Retry-After": {"required": True,
                                                 "schema": {"type": "string"}}}
        answers[str(status)] = answer
    return answers


def _post(operation: str, summary: str, body: Schema, answers: dict[str, Schema],
          refusals: Sequence[int]) -> Schema:
    return {"operationId": operation, "summary": summary,
            "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
            "requestBody": body, "responses": {**answers, **_problems(refusals)}}
