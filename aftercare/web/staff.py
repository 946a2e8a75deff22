"""The checkout desk: staff login and logout, the checkout form, its confirmation and the PDF."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from dataclasses import dataclass

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from aftercare.enrol.rules import CONSENT_WORDING, MAX_DAYS_AGO, consent_wording
from aftercare.enrol.service import enrol
from aftercare.errors import InputError, StorageError
from aftercare.outbox.records import EnrollResult, Submitted
from aftercare.plan.describe import PlanLine, describe_plan
from aftercare.render.card import PatientCard
from aftercare.render.page import offers_diary
from aftercare.send.withdrawal import withdraw_held
from aftercare.web import audit, security, state
from aftercare.web.auth import CLIENT_LOCK_AT, LOCK_AT, LOCK_FOR, LoginResult
from aftercare.web.forms import (
    Action,
    Checkout,
    card_field,
    check_checkout,
    language_label,
    language_options,
    read_form,
    sentence,
    treatment_label,
)

logger = logging.getLogger("aftercare.web")
staff = Blueprint("staff", __name__)
security.guard(staff, public={"staff.login", "staff.login_post"})

LOGIN_REFUSED = "The username or password is not right."
ENDED = {
    "logout": "You have logged out.",
    "idle": "You were logged out because this page was not used for a while. Log in again.",
}


@dataclass(frozen=True)
class Receipt:
    """One finished checkout, kept in memory for the confirmation page and the PDF link."""

    full_name: str
    email: str | None
    treatment: str
    handout_title: str
    handout_id: str
    treated_on: dt.date
    created: bool  # False: already enrolled for that date, or printing only
    changes: tuple[str, ...]  # a repeat checkout with other consents: what changed
    plan: tuple[PlanLine, ...]
    pdf: bytes
    diary: bool  # a migraine checkout: the one-page headache diary is offered too
    language: str = "en"  # the patient's: the handout's first sheet, the diary, the emails
    languages: str = "English"  # the handout's languages, as shown
    # Why the enrolment could not be saved ("locked", "read-only", ...): the handout is
    # offered, without email dates, and the patient must be checked out again later.
    unsaved: str | None = None


# ---------------------------------------------------------------- login and logout


@staff.get("/login")
def login() -> str:
    ended = ENDED.get(request.args.get("ended", ""))
    return render_template("login.html", username="", error=None, notice=ended)


@staff.post("/login")
def login_post() -> BaseResponse | tuple[str, int]:
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    now = state.current().now()
    client = request.remote_addr or "unknown"
    result = state.accounts().login(username, password, client, now)
    if result.username is None or result.staff_id is None:
        return _refused(result, username, client, now)
    security.log_in(result.username, result.staff_id)
    audit.record(state.outbox(), now, audit.LOGIN, audit.actor(result.username))
    return redirect(url_for("staff.checkout"), code=303)


def _refused(
    result: LoginResult, username: str, client: str, now: dt.datetime
) -> tuple[str, int]:
    """The login page again, after a failure or a refusal; the failure goes to the audit log
    under the account's name, or as anonymous when no such account exists (what was typed is
    not kept)."""
    who = audit.ANONYMOUS if result.account is None else audit.actor(result.account)
    db = state.outbox()
    if result.refused is None:
        audit.record(db, now, audit.LOGIN_FAILED, who)
    lock = f"locked out for {int(LOCK_FOR.total_seconds() // 60)} minutes"
    if result.locked_now == "account":
        audit.record(db, now, audit.LOCKED, who,
                     f"client {client} {lock} of this account after {LOCK_AT} failed logins")
    elif result.locked_now == "client":
        audit.record(db, now, audit.CLIENT_LOCKED, audit.ANONYMOUS,
                     f"client {client} {lock} of every account after {CLIENT_LOCK_AT} failed "
                     "logins")
    wait = None if result.retry_after is None else max(
        1, math.ceil(result.retry_after.total_seconds()))
    page = render_template("login.html", username=username, error=LOGIN_REFUSED,
                           refused=result.refused, wait=wait, notice=None)
    return page, (401 if result.refused is None else 429)


@staff.post("/logout")
def logout() -> BaseResponse:
    audit.record(state.outbox(), state.current().now(), audit.LOGOUT,
                 audit.actor(security.current_user()))
    security.log_out()
    return redirect(url_for("staff.login", ended="logout"), code=303)


# ---------------------------------------------------------------- checkout


@staff.get("/")
def home() -> BaseResponse:
    return redirect(url_for("staff.checkout"))


@staff.get("/checkout")
def checkout() -> str:
    app = state.current()
    values = read_form({})
    values.update(treated_on=app.today().isoformat(), language=app.project.clinic.language,
                  consent_aftercare="")
    return _checkout_page(values, {})


@staff.post("/checkout")
def checkout_post() -> BaseResponse | tuple[str, int]:
    app = state.current()
    values = read_form(request.form)
    action: Action = "print" if request.form.get("action") == "print" else "enrol"
    user = security.current_user()
    now = app.now()
    checked, errors = check_checkout(values, action, app.project, now, audit.actor(user))
    enrollment = None if checked is None else checked.enrollment
    if enrollment is not None and state.outbox().is_suppressed(enrollment.email):
        errors["email"] = (
            "This address has unsubscribed or bounced, so it cannot be enrolled. "
            "Choose “Print handout only”, or ask for another address."
        )
    if checked is None or errors:
        return _checkout_page(values, errors), 400
    try:
        with app.render_lock:
            pdf = app.renderer.pdf_sheets(checked.handouts, checked.card)
    except InputError as exc:  # a character the handout font does not have
        errors[card_field(exc, values)] = sentence(exc)
        return _checkout_page(values, errors), 400
    result: EnrollResult | None = None
    changes: tuple[str, ...] = ()
    unsaved: StorageError | None = None
    if checked.enrollment is not None:
        try:
            # What SendGrid holds of withdrawn reminders is withdrawn after this try: a database
            # error then comes after the enrolment was saved, so it must not say nothing was.
            done = enrol(state.outbox(), app.project, checked.enrollment, now,
                         lambda held: held)
        except InputError as exc:  # suppressed in the meantime
            errors["email"] = sentence(exc)
            return _checkout_page(values, errors), 400
        except StorageError as exc:
            # Nothing was saved: the handout is still the patient's, but without the email
            # dates it promised, since no email will come.
            logger.warning("checkout not saved: the database is %s (%s)", exc.reason, exc.detail)
            unsaved = exc
            card = dataclasses.replace(checked.card, aftercare_consent=False,
                                       reminder_consent=False)
            checked = dataclasses.replace(checked, card=card, enrollment=None)
            with app.render_lock:
                pdf = app.renderer.pdf_sheets(checked.handouts, checked.card)
        else:
            result = done.result
            changes = result.changes + _withdrawn(done.withdrawn, now, audit.actor(user))
    try:
        # After a failed enrolment this would fail (or, locked, wait) the same way: skip it.
        if unsaved is None:
            audit.record(
                state.outbox(), now, audit.PRINTED, audit.actor(user),
                f"handout {checked.handout.id}",
                enrollment_id=None if result is None else result.enrollment_id,
            )
    except StorageError as exc:  # the handout is made: it is offered all the same
        logger.warning("printed handout not in the audit log: the database is %s", exc.reason)
    receipt = _receipt(checked, result, pdf, changes, None if unsaved is None else unsaved.reason)
    key = app.scratch.put(user, receipt)
    return redirect(url_for("staff.checked_out", key=key), code=303)


@staff.get("/checkout/<key>")
def checked_out(key: str) -> str:
    receipt = _own_receipt(key)
    return render_template(
        "confirmation.html", receipt=receipt, key=key,
        minutes=int(state.current().scratch.ttl.total_seconds() // 60),
    )


@staff.get("/checkout/<key>/handout.pdf")
def handout_pdf(key: str) -> Response:
    receipt = _own_receipt(key)
    response = Response(receipt.pdf, mimetype="application/pdf")
    name = f"{receipt.handout_id}-{receipt.treated_on.isoformat()}.pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@staff.get("/checkout/<key>/diary.pdf")
def diary_pdf(key: str) -> Response:
    """The headache diary for this checkout, dated from the treatment day; laid out when asked
    for, so that a checkout that does not print it does not wait for it."""
    receipt = _own_receipt(key)
    if not receipt.diary:
        abort(404)
    app = state.current()
    with app.render_lock:
        pdf = app.renderer.diary_pdf(PatientCard(receipt.full_name, receipt.treated_on),
                                     receipt.language)
    response = Response(pdf, mimetype="application/pdf")
    name = f"headache-diary-{receipt.treated_on.isoformat()}.pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


def _own_receipt(key: str) -> Receipt:
    receipt = state.current().scratch.get(key, security.current_user(), Receipt)
    if receipt is None:
        abort(404)
    return receipt


def _withdrawn(held: tuple[Submitted, ...] | None, now: dt.datetime, actor: str
               ) -> tuple[str, ...]:
    """Withdraw at SendGrid the reminders it holds whose consent was withdrawn; say how it went."""
    if not held:
        return ()
    report = withdraw_held(state.outbox(), state.current().backend(), held, now, actor)
    line = f"Withdrew {report.cancelled} from SendGrid."
    if report.kept:
        line += f" {report.kept} will still be delivered (SendGrid could not stop it in time)."
    return (line,)


def _receipt(
    checked: Checkout, result: EnrollResult | None, pdf: bytes, changes: tuple[str, ...],
    unsaved: str | None,
) -> Receipt:
    app = state.current()
    return Receipt(
        unsaved=unsaved,
        full_name=checked.card.name,
        email=None if checked.enrollment is None else str(checked.enrollment.email),
        treatment=treatment_label(checked.campaign),
        handout_title=checked.handout.title,
        handout_id=checked.handout.id,
        treated_on=checked.card.treated_on,
        created=result is not None and result.created,
        changes=changes,
        plan=() if result is None else describe_plan(checked.campaign, result.messages,
                                                     app.project.clinic.timezone.zone),
        pdf=pdf,
        diary=offers_diary(checked.campaign),
        language=checked.language,
        languages=" and ".join(language_label(app.project.language_of(h))
                               for h in checked.handouts),
    )


def _checkout_page(values: dict[str, str], errors: dict[str, str]) -> str:
    app = state.current()
    project = app.project
    today = app.today()
    return render_template(
        "checkout.html",
        values=values,
        errors=errors,
        treatments=[(c.id, treatment_label(c)) for c in sorted(
            project.campaigns.values(), key=treatment_label)],
        languages=language_options(project),
        consent=CONSENT_WORDING,
        # The same wording in each further language, for staff to read to the patient.
        consent_in={code: (language_label(code), consent_wording(project, code))
                    for code in project.translations},
        today=today.isoformat(),
        earliest=(today - dt.timedelta(days=MAX_DAYS_AGO)).isoformat(),
    )
