"""The care page: what a minimal email links to, opened by the signed token in its address, in
the patient's language.

A token that is malformed, altered, signed with another key or names no message gets the same
"link not valid" page, with the same status and headers, after the same work (one MAC, one
lookup); a genuine token past its days gets a page that says so with the clinic's number. A
link to a patient who reads another language than the clinic's names it before the token
(/care/es/<token>), so that even a link cut short gets its pages in that language.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from flask import Blueprint, Response, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from aftercare.content.model import Campaign
from aftercare.errors import InputError, RenderError
from aftercare.outbox.records import MessageView
from aftercare.render.card import PatientCard
from aftercare.render.care_links import CARE_PATH, care_link_expiry
from aftercare.render.emails import CarePage, Recipient
from aftercare.render.tokens import read_care
from aftercare.web import state
from aftercare.web.public import PATIENT, link_language, patient_page

care = Blueprint("care", __name__)

NOT_VALID: Final = 404
EXPIRED: Final = 410


@dataclass(frozen=True)
class _Opened:
    """A care page link that opens: its message, campaign and the step's content."""

    message: MessageView
    campaign: Campaign
    page: CarePage
    language: str  # the page's: the message's own


@care.before_request
def limit_clients() -> BaseResponse | None:
    """Too many requests from one address get a page saying when to try again."""
    wait = state.current().care_limit.wait(request.remote_addr or "")
    if not wait:
        return None
    response = _page("care_busy.html", 429, link_language())
    response.headers["Retry-After"] = str(wait)
    return response


@care.after_request
def keep_private(response: Response) -> Response:
    """Never indexed; and, as every page here, never cached, no referrer, the strict policy."""
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@care.get(f"{CARE_PATH}<token>")
@care.get(f"{CARE_PATH}<language>/<token>")
def page(token: str, language: str | None = None) -> BaseResponse:
    opened = _open(token, language)
    if isinstance(opened, BaseResponse):
        return opened
    app = state.current()
    if request.method == "GET":  # a HEAD (a link checker) reads nothing
        state.outbox().record_view(opened.message.message_id, app.now(), PATIENT)
    return _care_page(token, opened)


@care.get(f"{CARE_PATH}<token>/reminder.ics")
@care.get(f"{CARE_PATH}<language>/<token>/reminder.ics")
def calendar(token: str, language: str | None = None) -> BaseResponse:
    opened = _open(token, language)
    if isinstance(opened, BaseResponse):
        return opened
    if opened.page.ics is None:
        return _not_valid(opened.language)
    response = Response(opened.page.ics, mimetype="text/calendar")
    name = opened.page.ics_filename or "reminder.ics"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@care.get(f"{CARE_PATH}<token>/handout.pdf")
@care.get(f"{CARE_PATH}<language>/<token>/handout.pdf")
def handout(token: str, language: str | None = None) -> BaseResponse:
    """The patient's one-sheet handout, in their language, from what is stored: their first
    name, treatment date and consents (the last name, areas, provider, product and lot number
    never are)."""
    opened = _open(token, language)
    if isinstance(opened, BaseResponse):
        return opened
    app = state.current()
    if not app.project.clinic.email.care_handout:
        return _not_valid(opened.language)
    message = opened.message
    card = PatientCard(message.first_name, message.treated_on, aftercare_consent=True,
                       reminder_consent=message.marketing_consent, planned_at=message.enrolled_at)
    written = app.project.in_language(opened.language).handouts
    sheet = written.get(opened.campaign.handout) or app.project.handouts[opened.campaign.handout]
    try:
        with app.render_lock:
            pdf = app.renderer.pdf(sheet, card)
    except InputError:  # a name the handout's font cannot print
        return _care_page(token, opened, handout_failed=True)
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'inline; filename="handout.pdf"'
    return response


# ---------------------------------------------------------------- helpers


def _open(token: str, language: str | None) -> _Opened | BaseResponse:
    """The message the token names, or the page a patient sees instead."""
    app = state.current()
    link = read_care(token, app.config.secret_key)
    message = state.outbox().message_by_public_id(link.public_id)  # for every token
    campaign = None if message is None else app.campaign(message.campaign)
    step = None if message is None or campaign is None else campaign.step(message.step_key)
    # Only a further language is ever named before a token; anything else was never sent.
    named = language is None or language in app.project.translations
    if not link.genuine or not named or message is None or campaign is None or step is None:
        return _not_valid(language if named else None)
    code = _language(message)
    zone = (message.timezone or app.project.clinic.timezone).zone
    # As the email was rendered: its send time (signed in the token) dates the .ics.
    recipient = Recipient(
        first_name=message.first_name,
        email=message.email,
        language=code,
        treated_on=message.treated_on,
        local_due=link.issued.astimezone(zone),
        public_id=message.public_id,
    )
    expires_on = care_link_expiry(app.project.clinic, recipient)
    if app.now().astimezone(zone).date() > expires_on:
        return _page("care_expired.html", EXPIRED, code,
                     days=app.project.clinic.email.care_link_days)
    try:
        page = app.emails.care_page(campaign, step, recipient)
    except RenderError:  # its language's words were removed since: the clinic's own, then
        code = app.project.clinic.language
        page = app.emails.care_page(campaign, step, dataclasses.replace(recipient, language=code))
    return _Opened(message, campaign, page, code)


def _care_page(token: str, opened: _Opened, *, handout_failed: bool = False) -> BaseResponse:
    clinic = state.current().project.clinic
    # The page's own links name its language as the email's link did.
    named = None if opened.language == clinic.language else opened.language
    links: dict[str, str | None] = {"calendar": None, "handout": None}
    if opened.page.ics is not None:
        links["calendar"] = url_for("care.calendar", token=token, language=named)
    if clinic.email.care_handout:
        links["handout"] = url_for("care.handout", token=token, language=named)
    return _page("care.html", 200, opened.language, body=opened.page.body,
                 until=opened.page.expires_on, handout_failed=handout_failed, **links)


def _not_valid(language: str | None) -> BaseResponse:
    return _page("care_invalid.html", NOT_VALID, language)


def _page(template: str, status: int, language: str | None, **context: object) -> Response:
    html = patient_page(template, language or "", **context)
    return Response(html, status=status, mimetype="text/html")


def _language(message: MessageView) -> str:
    """The language the message was written in (the clinic's own if the content no longer
    has it: its emails could not be sent, but the page still opens)."""
    project = state.current().project
    return message.language if message.language in project.languages else project.clinic.language
