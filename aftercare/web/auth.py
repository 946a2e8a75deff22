"""Staff accounts in the outbox database: adding them, scrypt password hashes and login lockout."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Final

from werkzeug.security import check_password_hash, generate_password_hash

from aftercare.errors import InputError

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
            "USERNAME",
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
    """The ``staff`` table: create accounts, check passwords, lock after repeated failures."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def add(self, username: str, password: str, now: dt.datetime) -> None:
        """Store a new account with a salted scrypt hash; InputError if the name is taken."""
        check_username(username)
        check_password(password, username)
        hashed = generate_password_hash(password, method=HASH_METHOD)
        try:
            self._db.execute(
                "INSERT INTO staff (username, password_hash, created_at) VALUES (?, ?, ?)",
                (username, hashed, stamp(now)),
            )
        except sqlite3.IntegrityError:
            raise InputError("USERNAME", f"an account called {username!r} already exists") from None

    def usernames(self) -> list[str]:
        rows = self._db.execute("SELECT username FROM staff ORDER BY username").fetchall()
        return [row[0] for row in rows]

    def is_active(self, username: str) -> bool:
        """The account exists and is not disabled (checked on every request of a session)."""
        row = self._db.execute(
            "SELECT disabled FROM staff WHERE username = ?", (username,)
        ).fetchone()
        return row is not None and not row[0]

    def login(self, username: str, password: str, now: dt.datetime) -> LoginResult:
        """Check a password; a locked, disabled or unknown account fails like a wrong password.

        Every path checks one scrypt hash, so the time taken does not tell which case it was.
        """
        row = self._db.execute(
            "SELECT id, username, password_hash, locked_until, disabled FROM staff"
            " WHERE username = ?",
            (username,),
        ).fetchone()
        candidate = password[:MAX_PASSWORD]
        if row is None:
            check_password_hash(_decoy_hash(), candidate)
            return LoginResult(None, known=False)
        locked = row["locked_until"] is not None and dt.datetime.fromisoformat(
            row["locked_until"]) > now
        if locked or row["disabled"]:
            check_password_hash(_decoy_hash(), candidate)
            return LoginResult(None, known=True)
        if check_password_hash(row["password_hash"], candidate):
            self._db.execute(
                "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = ?",
                (row["id"],),
            )
            return LoginResult(row["username"], known=True)
        # One statement, so two wrong guesses at once both count. SQLite reads the old row on
        # the right-hand side: the failure that reaches the limit locks and restarts the count.
        self._db.execute(
            "UPDATE staff SET"
            " locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END,"
            " failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END"
            " WHERE id = ?",
            (MAX_FAILURES, stamp(now + LOCKOUT), MAX_FAILURES, row["id"]),
        )
        after = self._db.execute(
            "SELECT locked_until FROM staff WHERE id = ?", (row["id"],)
        ).fetchone()
        locked_now = after["locked_until"] is not None and after["locked_until"] > stamp(now)
        return LoginResult(None, known=True, locked_now=locked_now)


def stamp(moment: dt.datetime) -> str:
    """Fixed-width UTC text, as the outbox writes times."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("expected a timezone-aware datetime; got a naive one")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


@functools.cache
def _decoy_hash() -> str:
    """A hash of a random password, checked for unknown users so they take as long as others."""
    return generate_password_hash(secrets.token_urlsafe(16), method=HASH_METHOD)
