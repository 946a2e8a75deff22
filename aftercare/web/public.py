"""What anyone may reach: the SendGrid webhook, the unsubscribe page, handout sources, assets."""

from __future__ import annotations

from typing import Final

from flask import Blueprint, Response, abort, render_template, request

from aftercare.outbox.records import MessageView
from aftercare.render.localised import language_name
from aftercare.render.page import SOURCES_PATH
from aftercare.render.tokens import verify
from aftercare.send.webhook import process_webhook
from aftercare.send.withdrawal import unsubscribe as stop_all_email
from aftercare.web import state

public = Blueprint("public", __name__)

PATIENT: Final = "patient"


# ---------------------------------------------------------------- SendGrid Event Webhook


@public.post("/webhooks/sendgrid")
def sendgrid_webhook() -> Response:
    """Signed delivery events; never behind a login or a CSRF token (SendGrid has neither)."""
    app = state.current()
    key = app.config.webhook_public_key
    if not key:
        return _text("webhook verification key not configured", 403)
    result = process_webhook(
        state.outbox(), app.backend(), request.get_data(cache=False), request.headers, key,
        app.now(),
    )
    return _text(result.text, result.status_code)


# ---------------------------------------------------------------- unsubscribe (RFC 8058)


@public.get("/unsubscribe")
def unsubscribe_page() -> tuple[str, int]:
    message = _message_or_refusal()
    done = state.outbox().is_suppressed(message.email)
    return _page("unsubscribe.html", message, done=done, email=_masked(message.email)), 200


@public.post("/unsubscribe")
def unsubscribe() -> tuple[str, int]:
    """One-click: the token alone decides; no login, no CSRF token, and never a redirect."""
    message = _message_or_refusal()
    app = state.current()
    now = app.now()
    stop_all_email(state.outbox(), app.backend(), message.email, now, source="link",
                   actor=PATIENT)
    return _page("unsubscribed.html", message, email=_masked(message.email)), 200


# ---------------------------------------------------------------- sources of the handouts


@public.get(f"{SOURCES_PATH}<topic>")
@public.get(f"{SOURCES_PATH}<language>/<topic>")
def sources(topic: str, language: str | None = None) -> str:
    """The full list of a handout's sources, in the handout's language: the checkout sheet
    prints this address (/sources/es/<topic> for a Spanish one)."""
    project = state.current().project
    if language == project.clinic.language or (language and language not in project.languages):
        abort(404)
    code = language or project.clinic.language
    local = project.in_language(code)
    handout = local.handouts.get(topic)
    if handout is None:
        abort(404)
    return render_template("sources.html", clinic=local.clinic, lang=code, handout=handout,
                           source_language=language_name(project.clinic.language, code))


# ---------------------------------------------------------------- assets


@public.get("/assets/staff.css")
def stylesheet() -> Response:
    return Response(state.current().stylesheet, mimetype="text/css")


@public.get("/assets/logo.svg")
def logo() -> Response:
    return Response(state.current().logo, mimetype="image/svg+xml")


@public.get("/assets/fonts/<name>")
def font(name: str) -> Response:
    data = state.current().fonts.get(name)
    if data is None:
        abort(404)
    return Response(data, mimetype="font/ttf")


# ---------------------------------------------------------------- helpers


def _message_or_refusal() -> MessageView:
    """The message an unsubscribe token names; a bad token ends the request with a 400 page."""
    token = request.args.get("t", "")
    app = state.current()
    public_id = verify(token, app.config.secret_key) if token else None
    message = None if public_id is None else state.outbox().message_by_public_id(public_id)
    if message is None:
        # The link names its language ahead of the token, which may have been cut.
        page = patient_page("refused.html", request.args.get("l", ""))
        abort(Response(page, status=400))
    return message


def _page(template: str, message: MessageView, **context: object) -> str:
    return patient_page(template, message.language, token=request.args.get("t", ""),
                        **context)


def patient_page(template: str, language: str, **context: object) -> str:
    """A patient's page in their language (the clinic's own when the content has not it)."""
    project = state.current().project
    code = language if language in project.languages else project.clinic.language
    return render_template(template, clinic=project.in_language(code).clinic, lang=code,
                           **context)


def link_language() -> str:
    """The language the address of this request names, if any: before a care page's token
    (/care/es/...), a handout's sources (/sources/es/...), or an unsubscribe link's ``l``;
    the clinic's own if it names none, or one the content is not written in."""
    project = state.current().project
    named = (request.view_args or {}).get("language") or request.args.get("l", "")
    return named if named in project.languages else project.clinic.language


def _masked(email: str) -> str:
    """Enough of the address to recognise it, should the link have been forwarded."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 1)}@{domain}"


def _text(body: str, status: int) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")
