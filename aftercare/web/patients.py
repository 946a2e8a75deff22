"""Patient lookup with its actions (cancel, reschedule, unsubscribe, resolve); the outbox view."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from aftercare.enrol.enrolment import replanner
from aftercare.enrol.rules import check_treatment_date
from aftercare.errors import InputError, PipelineError
from aftercare.outbox.records import MessageView
from aftercare.send.withdrawal import WithdrawReport
from aftercare.send.withdrawal import cancel as cancel_emails
from aftercare.send.withdrawal import unsubscribe as stop_all_email
from aftercare.web import audit, security, state
from aftercare.web.forms import sentence
from aftercare.web.views import STATE_LABELS, outbox_rows, patient_rows

patients = Blueprint("patients", __name__)
security.guard(patients)

WEEK: Final = dt.timedelta(days=7)
MAX_QUERY: Final = 254


@dataclass(frozen=True)
class Lookup:
    """A search kept in memory, so that neither an address nor a name goes in a URL."""

    query: str


@dataclass(frozen=True)
class FieldError:
    """A refused reschedule: which enrolment, the message, and the date as typed."""

    email: str
    campaign: str
    treated_on: str
    message: str


# ---------------------------------------------------------------- lookup


@patients.get("/patients")
def search() -> str:
    return render_template("search.html", query="", error=None)


@patients.post("/patients")
def search_post() -> BaseResponse | tuple[str, int]:
    query = request.form.get("query", "").strip()
    if not query or len(query) > MAX_QUERY:
        error = ("Enter the patient's email address or first name." if not query
                 else f"Use at most {MAX_QUERY} characters.")
        return render_template("search.html", query=query, error=error), 400
    user = security.current_user()
    audit.record(state.outbox(), state.current().now(), audit.LOOKUP, audit.actor(user))
    key = state.current().scratch.put(user, Lookup(query))
    return redirect(url_for("patients.results", key=key), code=303)


@patients.get("/patients/<key>")
def results(key: str) -> str:
    return _results_page(key)


@patients.post("/patients/<key>/cancel")
def cancel(key: str) -> BaseResponse | str:
    _lookup(key)
    email, campaign = _form("email"), _form("campaign")
    if request.form.get("confirm") != "yes":
        return _confirm(key, "cancel", "Cancel the unsent emails for this treatment?",
                        email=email, campaign=campaign)
    now, who = state.current().now(), _actor()
    stopped = cancel_emails(state.outbox(), state.current().backend(), email, now, who,
                            campaign=campaign)
    flash(f"Cancelled {_emails(stopped.cancelled)}." + _withdrawn(stopped.withdrawn))
    return _back(key)


@patients.post("/patients/<key>/unsubscribe")
def unsubscribe(key: str) -> BaseResponse | str:
    _lookup(key)
    email = _form("email")
    if request.form.get("confirm") != "yes":
        return _confirm(key, "unsubscribe", "Stop all emails to this address?", email=email)
    now, who = state.current().now(), _actor()
    stopped = stop_all_email(state.outbox(), state.current().backend(), email, now,
                             source="staff", actor=who)
    flash(f"Unsubscribed: cancelled {_emails(stopped.cancelled)}; this address cannot be "
          "enrolled again." + _withdrawn(stopped.withdrawn))
    return _back(key)


@patients.post("/patients/<key>/reschedule")
def reschedule(key: str) -> BaseResponse | tuple[str, int]:
    _lookup(key)
    app = state.current()
    email, campaign, typed = _form("email"), _form("campaign"), request.form.get("treated_on", "")
    now = app.now()
    try:
        day = check_treatment_date(typed, app.project.clinic.timezone.zone, now)
        if campaign not in app.project.campaigns:
            raise InputError("treated_on", "this treatment is no longer offered")
        count = state.outbox().reschedule(
            email, campaign, day, replanner(app.project, now), now, actor=_actor())
    except InputError as exc:
        error = FieldError(email, campaign, typed, sentence(exc))
        return _results_page(key, error), 400
    flash(f"Moved the treatment date to {day.isoformat()}: re-timed {_emails(count)}.")
    return _back(key)


@patients.post("/patients/<key>/resolve")
def resolve(key: str) -> BaseResponse:
    _lookup(key)
    try:
        message_id = int(_form("message_id"))
    except ValueError:
        abort(400)
    as_sent = _form("outcome") == "sent"
    try:
        state.outbox().resolve_unknown(message_id, as_sent, state.current().now(), _actor())
    except PipelineError as exc:  # resolved meanwhile (by the provider's webhook, say)
        flash(sentence(exc))
        return _back(key)
    flash("Marked as sent." if as_sent else "Put back in the queue: it will be sent again.")
    return _back(key)


# ---------------------------------------------------------------- the outbox


@patients.get("/outbox")
def outbox() -> str:
    app = state.current()
    now = app.now()
    box = state.outbox()
    due = [m for m in box.messages(status="scheduled") if m.due_at <= now + WEEK]
    failed = box.messages(status="failed")
    unknown = box.messages(status="unknown")
    counts = box.count_by_state()
    return render_template(
        "outbox.html",
        counts=[(STATE_LABELS[s], counts[s]) for s in STATE_LABELS],
        sections=[
            ("due", "Due in the next 7 days", outbox_rows(app.project, due, app.local)),
            ("failed", "Failed", outbox_rows(app.project, failed, app.local)),
            ("unknown", "Unknown: check with the provider", outbox_rows(
                app.project, unknown, app.local)),
            ("viewed", "Read on the care page in the last 7 days", outbox_rows(
                app.project, box.viewed_since(now - WEEK), app.local)),
        ],
    )


# ---------------------------------------------------------------- helpers


def _results_page(key: str, error: FieldError | None = None) -> str:
    app = state.current()
    query = _lookup(key).query
    box = state.outbox()
    found = _find(box.messages(), query)
    rows = patient_rows(app.project, found, box.is_suppressed, app.local)
    return render_template("results.html", key=key, query=query, patients=rows, error=error,
                           today=app.today().isoformat())


def _find(messages: list[MessageView], query: str) -> list[MessageView]:
    """Messages of patients whose address or first name is ``query``, ignoring case."""
    wanted = query.strip().casefold()
    return [m for m in messages
            if m.email.casefold() == wanted or m.first_name.casefold() == wanted]


def _lookup(key: str) -> Lookup:
    found = state.current().scratch.get(key, security.current_user(), Lookup)
    if found is None:
        abort(404)
    return found


def _confirm(key: str, action: str, question: str, **fields: str) -> str:
    return render_template("confirm.html", key=key, action=action, question=question,
                           fields=fields)


def _withdrawn(report: WithdrawReport) -> str:
    """What was withdrawn from the provider (SendGrid sends at a set time), and what stays."""
    if report.cancelled:
        return f" Withdrew {_emails(report.cancelled)} from SendGrid." + _still(report.kept)
    return _still(report.kept)


def _still(kept: int) -> str:
    if not kept:
        return ""
    return (f" {kept} email{'' if kept == 1 else 's'} already with SendGrid will still be "
            "delivered (SendGrid could not stop it in time).")


def _form(name: str) -> str:
    value = request.form.get(name, "")
    if not value:
        abort(400)
    return value


def _actor() -> str:
    return audit.actor(security.current_user())


def _back(key: str) -> BaseResponse:
    return redirect(url_for("patients.results", key=key), code=303)


def _emails(count: int) -> str:
    return f"{count} unsent email" + ("" if count == 1 else "s")
