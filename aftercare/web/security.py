"""Signed session cookies, CSRF tokens, the staff login guard, and security headers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Collection
from typing import Any, Final

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from aftercare.web import state

CSRF_FIELD: Final = "csrf_token"
MAX_BODY: Final = 2 * 1024 * 1024  # SendGrid posts at most 768 KB; staff forms are tiny
_USER: Final = "user"
_LOGIN_AT: Final = "login_at"
_CSRF: Final = "csrf"
# The session key is derived from the clinic's secret for this one purpose, so a signature made
# for a session can never pass as an unsubscribe token (which uses its own purpose), or the reverse.
_PURPOSE: Final = b"aftercare-staff-session-v1"
_HTML_POLICY: Final = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
_OTHER_POLICY: Final = "default-src 'self'; frame-ancestors 'none'"
_CACHEABLE: Final = frozenset({"public.stylesheet", "public.font", "public.logo"})


def _sha256(string: bytes = b"") -> Any:
    return hashlib.sha256(string)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, signed with HMAC-SHA256 instead of SHA-1."""

    salt = "aftercare-staff-session"
    digest_method = staticmethod(_sha256)


def configure(app: Flask, secret_key: bytes, secure_cookies: bool, lifetime: dt.timedelta) -> None:
    """Session cookie settings, the body size limit, the CSRF token helper and the headers."""
    app.secret_key = hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest()
    app.session_interface = _SessionInterface()
    app.config.update(
        # "__Host-" makes the browser refuse the cookie unless it is Secure, host-only, path /.
        SESSION_COOKIE_NAME="__Host-aftercare" if secure_cookies else "aftercare",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=lifetime,
        MAX_CONTENT_LENGTH=MAX_BODY,
    )
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csrf_field"] = CSRF_FIELD
    app.after_request(_add_headers)


def csrf_token() -> str:
    """This session's CSRF token, created on first use; every staff form carries it."""
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_CSRF] = token
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


def log_in(username: str) -> None:
    """Start a fresh session for ``username``, with a new CSRF token."""
    session.clear()
    session.permanent = True
    session[_USER] = username
    session[_LOGIN_AT] = state.current().now().isoformat()
    session[_CSRF] = secrets.token_urlsafe(32)


def log_out() -> None:
    session.clear()


def session_user() -> str | None:
    """The user named by the session cookie, if it is still valid (not checked against the db)."""
    user, login_at = session.get(_USER), session.get(_LOGIN_AT)
    if not isinstance(user, str) or not isinstance(login_at, str):
        return None
    try:
        started = dt.datetime.fromisoformat(login_at)
    except ValueError:
        return None
    age = state.current().now() - started
    if age < dt.timedelta(0) or age > state.current().config.session_lifetime:
        return None
    return user


def _require_login() -> BaseResponse | None:
    user = session_user()
    if user is None or not state.accounts().is_active(user):
        if _USER in session:
            session.clear()  # expired or disabled: forget it; the login page says nothing more
        return redirect(url_for("staff.login"))
    g.staff_user = user
    return None


def _check_csrf() -> None:
    expected = session.get(_CSRF)
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
