"""Staff sessions (kept on the server), CSRF tokens, the staff login guard, and security
headers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Collection
from typing import Final

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from aftercare.web import state
from aftercare.web.sessions import ServerSessions, StaffSession

CSRF_FIELD: Final = "csrf_token"
MAX_BODY: Final = 2 * 1024 * 1024  # SendGrid posts at most 768 KB; staff forms are tiny
_CSRF: Final = "csrf"
# The key of the login form's CSRF tokens is derived from the clinic's secret for this one
# purpose, so that it can never pass as an unsubscribe token (which uses its own), or the reverse.
_PURPOSE: Final = b"aftercare-staff-session-v1"
_HTML_POLICY: Final = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
_OTHER_POLICY: Final = "default-src 'self'; frame-ancestors 'none'"
_CACHEABLE: Final = frozenset({"public.stylesheet", "public.font", "public.logo"})


def configure(
    app: Flask, secret_key: bytes, secure_cookies: bool, lifetime: dt.timedelta,
    idle: dt.timedelta,
) -> None:
    """Sessions, cookie settings, the body size limit, the CSRF token helper and the headers.

    A session ends after ``idle`` without use, and ``lifetime`` after its login in any case.
    """
    app.session_interface = ServerSessions(
        state.outbox, lambda: state.current().now(), idle, lifetime,
        hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest(),
    )
    app.config.update(
        # "__Host-" makes the browser refuse the cookie unless it is Secure, host-only, path /.
        SESSION_COOKIE_NAME="__Host-aftercare" if secure_cookies else "aftercare",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        MAX_CONTENT_LENGTH=MAX_BODY,
    )
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csrf_field"] = CSRF_FIELD
    app.after_request(_add_headers)


def csrf_token() -> str:
    """This session's CSRF token; every staff form carries it. Before login it is derived
    from the visitor's random session id (nothing is stored for a visitor)."""
    own = _session()
    if own.user is None:
        return _sessions().anonymous_csrf(own)
    token = own.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        own[_CSRF] = token
    return token


def guard(blueprint: Blueprint, public: Collection[str] = ()) -> None:
    """Refuse the blueprint's routes to anyone not logged in, and any POST without its token.

    ``public`` names the endpoints reachable without a login (the login page); they still
    need the CSRF token to POST.
    """

    def check() -> BaseResponse | None:
        if request.endpoint not in public:
            refusal = _require_login()
            if refusal is not None:
                return refusal
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            _check_csrf()
        return None

    blueprint.before_request(check)


def current_user() -> str:
    """The logged-in staff member (only inside a guarded route)."""
    user: str = g.staff_user
    return user


def log_in(username: str, staff_id: int) -> None:
    """Start a new session for ``username``: a new id (the one the browser had is dropped),
    a new CSRF token; expired sessions are swept away meanwhile."""
    sessions = _sessions()
    now = state.current().now()
    state.outbox().sessions.sweep(now - sessions.idle, now - sessions.lifetime)
    sessions.start(_session(), username, staff_id, secrets.token_urlsafe(32))


def log_out() -> None:
    """End this session in the database: a copy of its cookie opens nothing any more."""
    _sessions().end(_session(), "logout")


def _session() -> StaffSession:
    own = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(own, StaffSession)
    return own


def _sessions() -> ServerSessions:
    interface = current_app.session_interface
    assert isinstance(interface, ServerSessions)
    return interface


def _require_login() -> BaseResponse | None:
    own = _session()
    if own.storage_error is not None:
        raise own.storage_error
    if own.user is None:
        if own.ended:
            return redirect(url_for("staff.login", ended=own.ended))
        return redirect(url_for("staff.login"))
    g.staff_user = own.user
    g.staff_id = own.staff_id
    return None


def _check_csrf() -> None:
    expected = csrf_token()
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode("utf-8"), given.encode("utf-8")
    ):
        page = render_template(
            "error.html",
            title="This form was not accepted",
            message=(
                "The form's security check failed: it was sent without its token, or from a "
                "page opened before you last logged in. Nothing was saved."
            ),
            advice="Go back, reload the page, and send the form again.",
        )
        abort(Response(page, status=400))


def _add_headers(response: Response) -> Response:
    is_html = response.mimetype == "text/html"
    response.headers["Content-Security-Policy"] = _HTML_POLICY if is_html else _OTHER_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint in _CACHEABLE:
        response.headers["Cache-Control"] = "public, max-age=3600"
    else:  # pages show patients' details: no copy in the browser's or a proxy's cache
        response.headers["Cache-Control"] = "no-store"
    return response
