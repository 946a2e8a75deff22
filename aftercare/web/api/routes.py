"""The API's endpoints under /api/v1/: enrol, look up, cancel and reschedule an enrolment; a
rebooking that stops a patient's reminders; unsubscribe; and the OpenAPI document.

Every change goes through the stages the desk uses: the one enrolment service, the outbox,
and ``aftercare.send.withdrawal``, which withdraws what SendGrid holds whenever email stops.
URLs carry opaque enrolment ids, and the booking system's patient id in the rebooking route
only; a name or an address never appears in a URL.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

from flask import Blueprint, g, jsonify, url_for
from flask.wrappers import Response

from aftercare.content.schema import parse_date
from aftercare.content.values import EmailAddress
from aftercare.enrol.enrolment import replanner
from aftercare.enrol.rules import MAX_PATIENT_ID, check_treatment_date
from aftercare.enrol.service import enrol
from aftercare.errors import InputError
from aftercare.outbox.api_keys import api_actor
from aftercare.outbox.records import IMPLICIT_SITE, EnrollmentView
from aftercare.send.withdrawal import cancel, unsubscribe, withdraw_held
from aftercare.web import state
from aftercare.web.api.bodies import Reader, read_json
from aftercare.web.api.enrolments import POINTERS, enrolment_json, read_enrolment, stopped_json
from aftercare.web.api.guard import audit, authenticate, authorise, current_key
from aftercare.web.api.idempotency import idempotent
from aftercare.web.api.openapi import document
from aftercare.web.api.problems import (
    ENROLMENT_CONFLICT,
    ApiProblem,
    FieldError,
    from_rules,
    invalid,
)

api = Blueprint("api", __name__, url_prefix="/api/v1")
api.before_request(authenticate)
api.after_request(audit)
api.register_error_handler(ApiProblem, lambda problem: problem.response())

MAX_DAYS_AHEAD: Final = 730  # a next visit booked more than two years ahead is a typing error
_PUBLIC_ID: Final = re.compile(r"[0-9a-f]{32}")
_PATIENT_ID: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_PATIENT_ID}}}")


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(state.current().project))


@api.post("/enrolments")
@idempotent
def create_enrolment() -> tuple[Response, int, dict[str, str]]:
    app, key = state.current(), current_key()
    now, box = app.now(), state.outbox()
    enrollment, site = read_enrolment(app.project, now, key.name)
    authorise(site)
    try:
        done = enrol(box, app.project, enrollment, now, lambda held: withdraw_held(
            box, app.backend(), held, now, enrollment.recorded_by))
    except InputError as exc:  # an unsubscribed or bounced address
        raise from_rules(exc, POINTERS) from None
    result = done.result
    changes = list(result.changes)
    if done.withdrawn is not None:
        changes.append(f"Withdrawn at the provider: {done.withdrawn.summary()}.")
    view = box.enrollments.by_id(result.enrollment_id)
    g.api_enrollment = view.enrollment_id  # the trail entry and a kept answer name it
    body = {**_shown(view), "created": result.created, "changes": changes}
    location = url_for("api.get_enrolment", public_id=view.public_id)
    return jsonify(body), 201 if result.created else 200, {"Location": location}


@api.get("/enrolments/<public_id>")
def get_enrolment(public_id: str) -> Response:
    return jsonify(_shown(_enrolment(public_id)))


@api.post("/enrolments/<public_id>/cancel")
@idempotent
def cancel_enrolment(public_id: str) -> Response:
    _no_members()
    view, app = _enrolment(public_id), state.current()
    stopped = cancel(state.outbox(), app.backend(), None, app.now(), api_actor(current_key().name),
                     enrollments=[view.enrollment_id])
    return jsonify({**_shown(view), "stopped": stopped_json(stopped)})


@api.post("/enrolments/<public_id>/reschedule")
@idempotent
def reschedule_enrolment(public_id: str) -> Response:
    app = state.current()
    typed = _one_date("treated_on")
    view, now = _enrolment(public_id), app.now()
    try:
        day = check_treatment_date(typed, app.project.clinic.timezone.zone, now)
    except InputError as exc:
        raise from_rules(exc, POINTERS) from None
    if view.campaign not in app.project.campaigns:
        raise ApiProblem(409, f"campaign {view.campaign!r} is no longer offered; its "
                              "enrolments cannot be re-timed", ENROLMENT_CONFLICT)
    try:
        retimed = state.outbox().reschedule_one(view.enrollment_id, day,
                                                replanner(app.project, now), now,
                                                api_actor(current_key().name))
    except InputError as exc:  # another enrolment on that date, or an unsubscribed address
        raise ApiProblem(409, exc.message, ENROLMENT_CONFLICT) from None
    return jsonify({**_shown(_enrolment(public_id)), "retimed": retimed})


@api.post("/patients/<external_id>/rebooked")
@idempotent
def rebooked(external_id: str) -> Response:
    app = state.current()
    typed = _one_date("appointment_on")
    box, now = state.outbox(), app.now()
    authorise(IMPLICIT_SITE)
    latest = (box.enrollments.latest_of_patient(external_id)
              if _PATIENT_ID.fullmatch(external_id) else None)
    if latest is None:
        raise ApiProblem(404, "no patient has this external id")
    # The answer (kept for a repeat) carries the external id: naming one of the patient's
    # enrolments lets erasing the patient delete it too. The trail entry names none.
    g.api_answer_about = latest
    today = app.today()
    try:
        day = parse_date(typed)
    except ValueError as exc:
        raise invalid([FieldError("/appointment_on", f"{exc}; got {typed[:40]!r}")]) from None
    if not today <= day <= today + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise invalid([FieldError("/appointment_on", (
            f"expected a date from today ({today} at the clinic) to {MAX_DAYS_AHEAD} days "
            f"ahead; got {typed!r}"))])
    earlier = box.enrollments.of_patient(external_id, day)
    stopped = cancel(box, app.backend(), None, now, api_actor(current_key().name),
                     enrollments=[e.enrollment_id for e in earlier], kind="marketing",
                     reason=f"not needed: the patient booked their next visit for {day}")
    return jsonify({
        "external_patient_id": external_id,
        "appointment_on": day.isoformat(),
        "stopped": stopped_json(stopped),
        "enrolments": [_shown(box.enrollments.by_id(e.enrollment_id)) for e in earlier],
    })


@api.post("/unsubscribe")
@idempotent
def unsubscribe_address() -> Response:
    errors: list[FieldError] = []
    reader = Reader(read_json(), errors)
    reader.only("email")
    typed = reader.text("email")
    if typed is not None:
        try:
            EmailAddress.parse(typed)
        except ValueError as exc:
            reader.problem("email", str(exc))
    if errors or typed is None:
        raise invalid(errors)
    authorise(IMPLICIT_SITE)
    app, who = state.current(), api_actor(current_key().name)
    stopped = unsubscribe(state.outbox(), app.backend(), typed, app.now(), source=who, actor=who)
    return jsonify({"stopped": stopped_json(stopped)})


# ---------------------------------------------------------------- helpers


def _enrolment(public_id: str) -> EnrollmentView:
    """The enrolment with this opaque id, for this key's site; 404 when there is none."""
    view = (state.outbox().enrollments.by_public_id(public_id)
            if _PUBLIC_ID.fullmatch(public_id) else None)
    if view is None:
        raise ApiProblem(404, "no enrolment has this id")
    authorise(IMPLICIT_SITE)
    g.api_enrollment = view.enrollment_id
    return view


def _shown(view: EnrollmentView) -> dict[str, Any]:
    box = state.outbox()
    return enrolment_json(view, box.messages(enrollment_id=view.enrollment_id),
                          state.current().project)


def _one_date(name: str) -> str:
    """The one required member of a body that is a date, as typed."""
    errors: list[FieldError] = []
    reader = Reader(read_json(), errors)
    reader.only(name)
    typed = reader.text(name)
    if errors or typed is None:
        raise invalid(errors)
    return typed


def _no_members() -> None:
    """A body that is empty, or the empty object."""
    body = read_json(required=False)
    if body:
        raise invalid([FieldError("/" + sorted(body)[0], "expected an empty body or {}; this "
                                                         "endpoint takes no members")])
