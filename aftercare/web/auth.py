"""Staff passwords: what a username and password must be, scrypt hashes, lockout on login."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass
from typing import Final

from werkzeug.security import check_password_hash, generate_password_hash

from aftercare.errors import InputError
from aftercare.outbox.store import Outbox

MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024  # hashing a huge "password" would be a cheap way to load the server
MAX_FAILURES: Final = 5
LOCKOUT: Final = dt.timedelta(minutes=15)
HASH_METHOD: Final = "scrypt"  # werkzeug's scrypt: n=2**15, r=8, p=1, 16-byte random salt
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class LoginResult:
    """What one login attempt did; ``username`` is the stored spelling, set only on success."""

    username: str | None
    known: bool  # the account exists (never shown to the person logging in)
    locked_now: bool = False  # this failure locked the account


def check_username(username: str) -> str:
    """The username, or InputError: 1 to 64 letters, digits, '.', '_', '@' or '-'."""
    if not _USERNAME.fullmatch(username):
        raise InputError(
            "username",
            "expected 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter "
            "or digit",
        )
    return username


def check_password(password: str, username: str) -> str:
    """The password, or InputError when it is too short, too long or the username itself."""
    if len(password) < MIN_PASSWORD:
        raise InputError(
            "password", f"expected at least {MIN_PASSWORD} characters; got {len(password)}"
        )
    if len(password) > MAX_PASSWORD:
        raise InputError("password", f"expected at most {MAX_PASSWORD} characters")
    if password.strip().lower() == username.lower():
        raise InputError("password", "expected a password that is not the username")
    return password


class StaffAccounts:
    """Staff accounts: scrypt hashes of their passwords, checked with lockout after failures."""

    def __init__(self, outbox: Outbox) -> None:
        self._table = outbox.staff

    def add(self, username: str, password: str, now: dt.datetime) -> None:
        """Store a new account with a salted scrypt hash; InputError if the name is taken."""
        check_username(username)
        check_password(password, username)
        self._table.add(username, generate_password_hash(password, method=HASH_METHOD), now)

    def is_active(self, username: str) -> bool:
        """The account exists and is not disabled (checked on every request of a session)."""
        account = self._table.find(username)
        return account is not None and not account.disabled

    def login(self, username: str, password: str, now: dt.datetime) -> LoginResult:
        """Check a password; a locked, disabled or unknown account fails like a wrong password.

        Every path checks one scrypt hash, so the time taken does not tell which case it was.
        """
        account = self._table.find(username)
        candidate = password[:MAX_PASSWORD]
        if account is None:
            check_password_hash(_decoy_hash(), candidate)
            return LoginResult(None, known=False)
        locked = account.locked_until is not None and account.locked_until > now
        if locked or account.disabled:
            check_password_hash(_decoy_hash(), candidate)
            return LoginResult(None, known=True)
        if check_password_hash(account.password_hash, candidate):
            self._table.login_succeeded(account)
            return LoginResult(account.username, known=True)
        locked_now = self._table.login_failed(account, now, MAX_FAILURES, LOCKOUT)
        return LoginResult(None, known=True, locked_now=locked_now)


@functools.cache
def _decoy_hash() -> str:
    """A hash of a random password, checked for unknown users so they take as long as others."""
    return generate_password_hash(secrets.token_urlsafe(16), method=HASH_METHOD)
