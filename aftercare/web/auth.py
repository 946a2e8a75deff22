"""Staff passwords and logins: what a username and password must be, scrypt hashes, and
throttling per client address that slows and then stops guessing from that client only."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from werkzeug.security import check_password_hash, generate_password_hash

from aftercare.errors import InputError
from aftercare.outbox.login_failures import CLIENT
from aftercare.outbox.records import StaffRecord
from aftercare.outbox.store import Outbox

MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024  # hashing a huge "password" would be a cheap way to load the server
HASH_METHOD: Final = "scrypt"  # werkzeug's scrypt: n=2**15, r=8, p=1, 16-byte random salt
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

# Throttling counts failures per client address and account name, and per client address as a
# whole; never per account alone, so nobody can lock a colleague out by typing wrong passwords
# for their name. After FREE_TRIES failures a client waits 1, 2, 4 ... seconds between tries on
# that name; at LOCK_AT failures it is locked out of that name for LOCK_FOR, and at
# CLIENT_LOCK_AT failures on any names, out of every account. A count not added to for
# FORGET_AFTER starts again; a success clears the client's count for that name.
FREE_TRIES: Final = 3
LOCK_AT: Final = 10
CLIENT_LOCK_AT: Final = 50
LOCK_FOR: Final = dt.timedelta(minutes=15)
FORGET_AFTER: Final = dt.timedelta(hours=1)
_ACCOUNT_KEY: Final = b"aftercare-login-throttle-v1\x00"


@dataclass(frozen=True)
class LoginResult:
    """What one login attempt did. ``username`` (the stored spelling) is set only on success;
    ``refused`` says the password was not even checked because this client must wait
    ("wait") or is locked out ("locked") for ``retry_after``."""

    username: str | None
    # The account's stored name when it exists (for the audit log; never shown to the person
    # logging in), None for a name no account has.
    account: str | None
    staff_id: int | None = None
    refused: Literal["wait", "locked"] | None = None
    retry_after: dt.timedelta | None = None
    locked_now: Literal["account", "client"] | None = None  # this failure locked the client


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


def wait_before(failures: int) -> dt.timedelta:
    """How long a client waits after its ``failures``-th failure on one name."""
    if failures < FREE_TRIES:
        return dt.timedelta(0)
    return dt.timedelta(seconds=2 ** (failures - FREE_TRIES))


class StaffAccounts:
    """Staff accounts: scrypt hashes of their passwords, checked with throttling."""

    def __init__(self, outbox: Outbox, secret: bytes) -> None:
        self._outbox = outbox
        self._table = outbox.staff
        self._key = hmac.new(secret, _ACCOUNT_KEY, hashlib.sha256).digest()

    def add(self, username: str, password: str, now: dt.datetime) -> None:
        """Store a new account with a salted scrypt hash; InputError if the name is taken."""
        check_username(username)
        check_password(password, username)
        self._table.add(username, generate_password_hash(password, method=HASH_METHOD), now)

    def reset_password(self, username: str, password: str) -> tuple[StaffRecord, int]:
        """Give an account a new password; every session it has ends (how many is returned)."""
        account = self._table.active(username)
        check_password(password, account.username)
        self._table.set_password(account, generate_password_hash(password, method=HASH_METHOD))
        return account, self._outbox.sessions.end_all(account.id)

    def remove(self, username: str) -> tuple[StaffRecord, int]:
        """Remove an account: it can no longer log in, and every session it has ends."""
        account = self._table.active(username)
        self._table.remove(account)
        return account, self._outbox.sessions.end_all(account.id)

    def account_key(self, username: str) -> str:
        """The name as the failure counts know it: a keyed hash, so that what was typed (for
        an account or not) is never stored, and known and unknown names are treated alike."""
        return hmac.new(self._key, username.casefold().encode("utf-8"),
                        hashlib.sha256).hexdigest()[:32]

    def locked_clients(self, username: str, now: dt.datetime) -> list[str]:
        """The client addresses locked out of this account at ``now``."""
        return [row.client for row in
                self._outbox.login_failures.locked(self.account_key(username), now)]

    def unlock(self, username: str, client: str | None = None) -> int:
        """Lift the locks and delays on this account (for one client, or for all): the counts
        for the name, and the clients' own counts; return how many counts were removed."""
        failures = self._outbox.login_failures
        key = self.account_key(username)
        clients = [client] if client is not None else failures.clients_of(key)
        removed = failures.unlock(key, client)
        return removed + sum(failures.unlock(CLIENT, c) for c in clients)

    def login(self, username: str, password: str, client: str, now: dt.datetime) -> LoginResult:
        """Check a password from ``client``; an unknown or removed account fails like a wrong
        password, and every checked path checks one scrypt hash, so that the time taken does
        not tell which case it was."""
        failures = self._outbox.login_failures
        key = self.account_key(username)
        account = self._table.find(username)
        known = account.username if account is not None and not account.disabled else None
        refusal = self._refusal(client, key, now)
        if refusal is not None:
            return LoginResult(None, known, refused=refusal[0], retry_after=refusal[1])
        candidate = password[:MAX_PASSWORD]
        if account is None or account.disabled:
            check_password_hash(_decoy_hash(), candidate)
        elif check_password_hash(account.password_hash, candidate):
            failures.clear(client, key)
            failures.sweep(now - FORGET_AFTER)  # counts that would start again anyway
            self._table.login_succeeded(account, now)
            return LoginResult(account.username, account.username, staff_id=account.id)
        mine = failures.count(client, key, now, FORGET_AFTER, LOCK_AT, LOCK_FOR)
        whole = failures.count(client, CLIENT, now, FORGET_AFTER, CLIENT_LOCK_AT, LOCK_FOR)
        locked_now: Literal["account", "client"] | None = (
            "client" if whole.failures >= CLIENT_LOCK_AT
            else "account" if mine.failures >= LOCK_AT else None)
        return LoginResult(None, known, locked_now=locked_now)

    def _refusal(
        self, client: str, key: str, now: dt.datetime
    ) -> tuple[Literal["wait", "locked"], dt.timedelta] | None:
        failures = self._outbox.login_failures
        mine, whole = failures.find(client, key), failures.find(client, CLIENT)
        for count in (whole, mine):
            if count is not None and count.locked_until is not None and count.locked_until > now:
                return "locked", count.locked_until - now
        if mine is not None and now - mine.last_failure_at < FORGET_AFTER:
            ready = mine.last_failure_at + wait_before(mine.failures)
            if ready > now:
                return "wait", ready - now
        return None


@functools.cache
def _decoy_hash() -> str:
    """A hash of a random password, checked for unknown users so they take as long as others."""
    return generate_password_hash(secrets.token_urlsafe(16), method=HASH_METHOD)
