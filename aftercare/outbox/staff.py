"""Staff accounts (password hashes, last logins, removal) and the trail of what staff do."""

from __future__ import annotations

import datetime as dt

from aftercare.errors import InputError
from aftercare.outbox.records import StaffListing, StaffRecord
from aftercare.outbox.rows import read, stamp
from aftercare.outbox.vocabulary import Trail
from aftercare.outbox.writes import Writes

# What a removed account keeps instead of a hash: no password ever checks against it.
NO_PASSWORD = "!"


class StaffTable:
    """The ``staff`` table; names are compared without regard to case."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db

    def add(self, username: str, password_hash: str, now: dt.datetime) -> None:
        """Store a new account; InputError on ``username`` if the name is taken (a removed
        account keeps its name, so the trail never mixes two people up)."""
        added = self._db.execute(
            "INSERT INTO staff (username, password_hash, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (username) DO NOTHING",
            (username, password_hash, stamp(now, "now")),
        ).rowcount
        if not added:
            existing = self.find(username)
            removed = existing is not None and existing.disabled
            raise InputError("username", (
                f"an account called {username!r} was removed; choose another name, so that the "
                "audit log never mixes two people up" if removed
                else f"an account called {username!r} already exists"))

    def find(self, username: str) -> StaffRecord | None:
        row = self._db.one(
            "SELECT id, username, password_hash, disabled FROM staff"
            f" WHERE {self._db.equal_ignoring_case('username')}",
            (username,),
        )
        return None if row is None else read(StaffRecord, row)

    def active(self, username: str) -> StaffRecord:
        """The account, or InputError on ``username`` when there is none (or it was removed)."""
        account = self.find(username)
        if account is None or account.disabled:
            raise InputError("username", f"no account called {username!r}"
                             + (" (it was removed)" if account is not None else ""))
        return account

    def listing(self) -> list[StaffListing]:
        rows = self._db.all("SELECT id, username, created_at, last_login_at, disabled FROM staff"
                            " ORDER BY username")
        return [read(StaffListing, row) for row in rows]

    def login_succeeded(self, account: StaffRecord, now: dt.datetime) -> None:
        self._db.execute("UPDATE staff SET last_login_at = ? WHERE id = ?",
                         (stamp(now, "now"), account.id))

    def set_password(self, account: StaffRecord, password_hash: str) -> None:
        self._db.execute("UPDATE staff SET password_hash = ? WHERE id = ?",
                         (password_hash, account.id))

    def remove(self, account: StaffRecord) -> None:
        """Disable the account for good: no password opens it, and its name stays taken."""
        self._db.execute("UPDATE staff SET disabled = 1, password_hash = ? WHERE id = ?",
                         (NO_PASSWORD, account.id))

    def record(
        self, now: dt.datetime, kind: Trail, actor: str, detail: str | None = None, *,
        enrollment_id: int | None = None, message_id: int | None = None,
    ) -> None:
        """Append what a staff member did to the trail; ``detail`` must never hold a name, an
        address or anything typed."""
        self._writes.log(stamp(now, "now"), kind, enrollment_id, message_id, actor, detail)
