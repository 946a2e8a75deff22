"""Staff accounts (password hashes and lockout counters) and the trail of what staff do."""

from __future__ import annotations

import datetime as dt

from aftercare.errors import InputError
from aftercare.outbox.records import StaffRecord
from aftercare.outbox.rows import read, stamp
from aftercare.outbox.vocabulary import Trail
from aftercare.outbox.writes import Writes


class StaffTable:
    """The ``staff`` table; names are compared without regard to case."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db

    def add(self, username: str, password_hash: str, now: dt.datetime) -> None:
        """Store a new account; InputError on ``username`` if the name is taken."""
        added = self._db.execute(
            "INSERT INTO staff (username, password_hash, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (username) DO NOTHING",
            (username, password_hash, stamp(now, "now")),
        ).rowcount
        if not added:
            raise InputError("username", f"an account called {username!r} already exists")

    def find(self, username: str) -> StaffRecord | None:
        row = self._db.one(
            "SELECT id, username, password_hash, locked_until, disabled FROM staff"
            f" WHERE {self._db.equal_ignoring_case('username')}",
            (username,),
        )
        return None if row is None else read(StaffRecord, row)

    def login_succeeded(self, account: StaffRecord) -> None:
        self._db.execute("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = ?",
                         (account.id,))

    def login_failed(
        self, account: StaffRecord, now: dt.datetime, max_failures: int, lockout: dt.timedelta
    ) -> bool:
        """Count a wrong password; the one that reaches ``max_failures`` locks the account for
        ``lockout`` and starts the count again. Return whether this failure locked it."""
        # One statement, so two wrong guesses at once both count. SQL reads the old row on the
        # right-hand side.
        self._db.execute(
            "UPDATE staff SET"
            " locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END,"
            " failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END"
            " WHERE id = ?",
            (max_failures, stamp(now + lockout, "now"), max_failures, account.id),
        )
        after = self._db.one("SELECT locked_until FROM staff WHERE id = ?", (account.id,))
        return (after is not None and after["locked_until"] is not None
                and after["locked_until"] > stamp(now, "now"))

    def record(
        self, now: dt.datetime, kind: Trail, actor: str, detail: str | None = None, *,
        enrollment_id: int | None = None, message_id: int | None = None,
    ) -> None:
        """Append what a staff member did to the trail; ``detail`` must never hold a name, an
        address or anything typed."""
        self._writes.log(stamp(now, "now"), kind, enrollment_id, message_id, actor, detail)
