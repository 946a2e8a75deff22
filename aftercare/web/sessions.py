"""Staff sessions kept in the outbox database: the cookie holds only a random id, the database
its SHA-256, the account and the session's values; logging out, idling, a new password or a
removed account ends a session for every copy of its cookie."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from aftercare.errors import StorageError
from aftercare.outbox.store import Outbox
from aftercare.web.state import API_PREFIX

logger = logging.getLogger("aftercare.web")

# A session used again within this time is not written back just to say so: one write a minute
# at most, so the idle timeout is kept to within a minute.
TOUCH_EVERY: Final = dt.timedelta(minutes=1)
_ID: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_ANONYMOUS_CSRF: Final = b"aftercare-login-form-v1\x00"


def new_id() -> str:
    """A fresh session id: 256 random bits."""
    return secrets.token_urlsafe(32)


def id_hash(session_id: str) -> str:
    """What the database keeps of a session id: a copy of the table opens no session."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


class StaffSession(CallbackDict[str, Any], SessionMixin):
    """One request's session: a logged-in staff member's (``user`` set, values stored), or an
    anonymous visitor's (only an id, whose CSRF token is derived from it; nothing stored)."""

    def __init__(self, session_id: str, values: Mapping[str, Any] | None = None,
                 user: str | None = None, staff_id: int | None = None,
                 last_seen: dt.datetime | None = None) -> None:
        def changed(_: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(values, changed)
        self.session_id = session_id
        self.user = user
        self.staff_id = staff_id
        self.last_seen = last_seen
        self.modified = False
        self.send_cookie = False  # a new id the browser must be given
        self.ended: str | None = None  # why a session the cookie named has ended ("idle")
        self.storage_error: StorageError | None = None  # the session could not be looked up


class ServerSessions(SessionInterface):
    """Flask's session interface over the outbox's ``staff_sessions`` table."""

    def __init__(
        self, outbox: Callable[[], Outbox], now: Callable[[], dt.datetime], idle: dt.timedelta,
        lifetime: dt.timedelta, secret: bytes,
    ) -> None:
        self._outbox = outbox
        self._now = now
        self.idle = idle
        self.lifetime = lifetime
        self._secret = secret

    def open_session(self, app: Flask, request: Request) -> StaffSession | None:
        if request.path.startswith(API_PREFIX):
            # The API is called with a key: a staff cookie sent along is neither looked up nor
            # kept alive by it, and no session is made (None: Flask's null session, not saved).
            return None
        given = request.cookies.get(self.get_cookie_name(app), "")
        if not _ID.fullmatch(given):
            return StaffSession(new_id())
        try:
            sessions = self._outbox().sessions
            stored = sessions.find(id_hash(given))
        except StorageError as exc:  # staff pages say so (see security.guard); others go on
            unknown = StaffSession(given)
            unknown.storage_error = exc
            return unknown
        if stored is None:  # a visitor's id (the login form's token is bound to it)
            return StaffSession(given)
        now = self._now()
        if now - stored.last_seen_at > self.idle or now - stored.created_at > self.lifetime:
            sessions.end(id_hash(given))
            expired = StaffSession(new_id())
            expired.ended = "idle"
            return expired
        values = json.loads(stored.data)
        return StaffSession(given, values, stored.username, stored.staff_id, stored.last_seen_at)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, StaffSession):
            return
        if session.user is not None and session.last_seen is not None:
            now = self._now()
            if session.modified or now - session.last_seen >= TOUCH_EVERY:
                data = json.dumps(dict(session)) if session.modified else None
                try:
                    self._outbox().sessions.save(id_hash(session.session_id), data, now)
                except StorageError as exc:  # the page is made: deliver it all the same
                    logger.warning("session not brought up to date: %s", exc.reason)
        if session.send_cookie:
            response.set_cookie(
                self.get_cookie_name(app), session.session_id,
                domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                secure=self.get_cookie_secure(app), httponly=self.get_cookie_httponly(app),
                samesite=self.get_cookie_samesite(app),
            )
        elif session.ended:
            response.delete_cookie(
                self.get_cookie_name(app), domain=self.get_cookie_domain(app),
                path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
                httponly=self.get_cookie_httponly(app), samesite=self.get_cookie_samesite(app),
            )

    def anonymous_csrf(self, session: StaffSession) -> str:
        """The login form's CSRF token: bound to the visitor's random id, stored nowhere."""
        session.send_cookie = True
        mac = hmac.new(self._secret, _ANONYMOUS_CSRF + session.session_id.encode(),
                       hashlib.sha256)
        return mac.hexdigest()

    def start(self, session: StaffSession, username: str, staff_id: int, csrf: str) -> None:
        """Log ``session`` in as a new session with a new id (never the one it arrived with)."""
        session.clear()
        session["csrf"] = csrf
        session.session_id, session.user, session.staff_id = new_id(), username, staff_id
        now = self._now()
        self._outbox().sessions.start(id_hash(session.session_id), staff_id,
                                      json.dumps(dict(session)), now)
        session.last_seen, session.modified, session.send_cookie = now, False, True

    def end(self, session: StaffSession, why: str) -> None:
        """End the session in the database; the browser is told to forget its cookie."""
        self._outbox().sessions.end(id_hash(session.session_id))
        session.clear()
        session.user = session.staff_id = session.last_seen = None
        session.modified, session.send_cookie, session.ended = False, False, why
