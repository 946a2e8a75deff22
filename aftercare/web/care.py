"""The care page: what a minimal email links to, opened by the signed token in its address.

A token that is malformed, altered, signed with another key or names no message gets the same
"link not valid" page, with the same status and headers, after the same work (one MAC, one
lookup); a genuine token past its days gets a page that says so with the clinic's number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from aftercare.content.model import Campaign
from aftercare.errors import InputError
from aftercare.outbox.records import MessageView
from aftercare.render.card import PatientCard
from aftercare.render.emails import CARE_PATH, CarePage, Recipient, care_link_expiry
from aftercare.render.tokens import read_care
from aftercare.web import state
from aftercare.web.public import PAGE_LANGUAGES, PATIENT

care = Blueprint("care", __name__)

NOT_VALID: Final = 404
EXPIRED: Final = 410


@dataclass(frozen=True)
class _Opened:
    """A care page link that opens: its message, campaign and the step's content."""

    message: MessageView
    campaign: Campaign
    page: CarePage


@care.before_request
def limit_clients() -> BaseResponse | None:
    """Too many requests from one address get a page saying when to try again."""
    wait = state.current().care_limit.wait(request.remote_addr or "")
    if not wait:
        return None
    response = _page("care_busy.html", 429)
    response.headers["Retry-After"] = str(wait)
    return response


@care.after_request
def keep_private(response: Response) -> Response:
    """Never indexed; and, as every page here, never cached, no referrer, the strict policy."""
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@care.get(f"{CARE_PATH}<token>")
def page(token: str) -> BaseResponse:
    opened = _open(token)
    if isinstance(opened, BaseResponse):
        return opened
    app = state.current()
    if request.method == "GET":  # a HEAD (a link checker) reads nothing
        state.outbox().record_view(opened.message.message_id, app.now(), PATIENT)
    return _care_page(token, opened)


@care.get(f"{CARE_PATH}<token>/reminder.ics")
def calendar(token: str) -> BaseResponse:
    opened = _open(token)
    if isinstance(opened, BaseResponse):
        return opened
    if opened.page.ics is None:
        return _not_valid()
    response = Response(opened.page.ics, mimetype="text/calendar")
    name = opened.page.ics_filename or "reminder.ics"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@care.get(f"{CARE_PATH}<token>/handout.pdf")
def handout(token: str) -> BaseResponse:
    """The patient's one-sheet handout from what is stored: their first name, treatment date
    and consents (the last name, areas, provider, product and lot number never are)."""
    opened = _open(token)
    if isinstance(opened, BaseResponse):
        return opened
    app = state.current()
    if not app.project.clinic.email.care_handout:
        return _not_valid()
    message = opened.message
    card = PatientCard(message.first_name, message.treated_on, aftercare_consent=True,
                       reminder_consent=message.marketing_consent, planned_at=message.enrolled_at)
    try:
        with app.render_lock:
            pdf = app.renderer.pdf(app.project.handouts[opened.campaign.handout], card)
    except InputError:  # a name the handout's font cannot print
        return _care_page(token, opened, handout_failed=True)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'inline; filename="handout.pdf"'
    return response


# ---------------------------------------------------------------- helpers


def _open(token: str) -> _Opened | BaseResponse:
    """The message the token names, or the page a patient sees instead."""
    app = state.current()
    link = read_care(token, app.config.secret_key)
    message = state.outbox().message_by_public_id(link.public_id)  # for every token
    campaign = None if message is None else app.campaign(message.campaign)
    step = None if message is None or campaign is None else campaign.step(message.step_key)
    if not link.genuine or message is None or campaign is None or step is None:
        return _not_valid()
    zone = (message.timezone or app.project.clinic.timezone).zone
    # As the email was rendered: its send time (signed in the token) dates the .ics.
    recipient = Recipient(
        first_name=message.first_name,
        email=message.email,
        language=message.language,
        treated_on=message.treated_on,
        local_due=link.issued.astimezone(zone),
        public_id=message.public_id,
    )
    expires_on = care_link_expiry(app.project.clinic, recipient)
    if app.now().astimezone(zone).date() > expires_on:
        return _page("care_expired.html", EXPIRED, lang=_language(message),
                     days=app.project.clinic.email.care_link_days)
    return _Opened(message, campaign, app.emails.care_page(campaign, step, recipient))


def _care_page(token: str, opened: _Opened, *, handout_failed: bool = False) -> BaseResponse:
    clinic = state.current().project.clinic
    links: dict[str, str | None] = {"calendar": None, "handout": None}
    if opened.page.ics is not None:
        links["calendar"] = url_for("care.calendar", token=token)
    if clinic.email.care_handout:
        links["handout"] = url_for("care.handout", token=token)
    return _page("care.html", 200, lang=_language(opened.message), body=opened.page.body,
                 until=opened.page.expires_on, handout_failed=handout_failed, **links)


def _not_valid() -> BaseResponse:
    return _page("care_invalid.html", NOT_VALID)


def _page(template: str, status: int, lang: str | None = None, **context: object) -> Response:
    clinic = state.current().project.clinic
    html = render_template(template, clinic=clinic, lang=lang or PAGE_LANGUAGES[0], **context)
    return Response(html, status=status, mimetype="text/html")


def _language(message: MessageView) -> str:
    return message.language if message.language in PAGE_LANGUAGES else PAGE_LANGUAGES[0]
