"""Failed staff logins counted per client address and account, with the lockouts they cause;
the rules (how many, how long) are the caller's."""

from __future__ import annotations

import datetime as dt

from aftercare.outbox.database import Database
from aftercare.outbox.records import FailedLogins
from aftercare.outbox.rows import read, stamp

CLIENT: str = ""  # the account of the count kept for a client address as a whole


class LoginFailureTable:
    """The ``login_failures`` table; ``account`` is whatever key the caller gives (never the
    name as typed, which may be anything)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def find(self, client: str, account: str) -> FailedLogins | None:
        row = self._db.one("SELECT * FROM login_failures WHERE client = ? AND account = ?",
                           (client, account))
        return None if row is None else read(FailedLogins, row)

    def count(
        self, client: str, account: str, now: dt.datetime, forget_after: dt.timedelta,
        lock_at: int, lock_for: dt.timedelta,
    ) -> FailedLogins:
        """Count one more failure; a count not added to for ``forget_after`` starts again, and
        reaching ``lock_at`` locks until ``lock_for`` from now (each further failure too)."""
        at = stamp(now, "now")
        with self._db.transaction() as db:
            # The count's row exists (a new one counting nothing yet) and is held until the
            # end, so that failures at the same moment each count, one after the other.
            db.execute("INSERT INTO login_failures (client, account, failures, last_failure_at)"
                       " VALUES (?, ?, 0, ?) ON CONFLICT (client, account) DO NOTHING",
                       (client, account, at))
            row = db.one("SELECT * FROM login_failures WHERE client = ? AND account = ?"
                         f"{db.lock()}", (client, account))
            assert row is not None
            old = read(FailedLogins, row)
            if old.last_failure_at < now - forget_after:
                failures, locked_until = 1, None
            else:
                failures, locked_until = old.failures + 1, old.locked_until
            if failures >= lock_at:
                locked_until = now + lock_for
            db.execute(
                "UPDATE login_failures SET failures = ?, last_failure_at = ?, locked_until = ?"
                " WHERE client = ? AND account = ?",
                (failures, at, None if locked_until is None else stamp(locked_until,
                                                                       "locked_until"),
                 client, account),
            )
        return FailedLogins(client, account, failures, now, locked_until)

    def clear(self, client: str, account: str) -> None:
        """A successful login: this client's count for this account starts again."""
        self._db.execute("DELETE FROM login_failures WHERE client = ? AND account = ?",
                         (client, account))

    def locked(self, account: str, now: dt.datetime) -> list[FailedLogins]:
        """The clients locked out of one account (or, with CLIENT, as a whole) at ``now``."""
        rows = self._db.all(
            "SELECT * FROM login_failures WHERE account = ? AND locked_until > ?"
            " ORDER BY client", (account, stamp(now, "now")))
        return [read(FailedLogins, row) for row in rows]

    def clients_of(self, account: str) -> list[str]:
        """The client addresses with a count for this account."""
        rows = self._db.all("SELECT client FROM login_failures WHERE account = ? ORDER BY client",
                            (account,))
        return [str(row["client"]) for row in rows]

    def unlock(self, account: str | None, client: str | None) -> int:
        """Forget the counts of an account (every client), of a client (every account, and the
        client's own), or of one client for one account; return how many counts were removed."""
        if account is None and client is None:
            raise ValueError("unlock needs an account, a client or both")
        clauses, args = [], []
        if account is not None:
            clauses.append("account = ?")
            args.append(account)
        if client is not None:
            clauses.append("client = ?")
            args.append(client)
        cursor = self._db.execute(f"DELETE FROM login_failures WHERE {' AND '.join(clauses)}",
                                  args)
        return cursor.rowcount

    def sweep(self, before: dt.datetime) -> int:
        """Delete counts whose last failure is older than ``before`` and that lock nothing."""
        at = stamp(before, "before")
        cursor = self._db.execute(
            "DELETE FROM login_failures WHERE last_failure_at < ?"
            " AND (locked_until IS NULL OR locked_until < ?)", (at, at))
        return cursor.rowcount
