"""API keys (stored only as hashes, revocable) and the trail of what each key's calls did."""

from __future__ import annotations

import datetime as dt

from aftercare.errors import InputError
from aftercare.outbox.records import ApiKeyRecord
from aftercare.outbox.rows import read, stamp
from aftercare.outbox.vocabulary import Trail
from aftercare.outbox.writes import Writes

_COLUMNS = "id, name, key_hash, site, created_at, revoked_at"


def api_actor(name: str) -> str:
    """The actor the trail records for a key's calls."""
    return f"api:{name}"


class ApiKeyTable:
    """The ``api_keys`` table; a name is never used twice, so the trail always says which key."""

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._db = writes.db

    def add(
        self, name: str, key_hash: str, site: str | None, now: dt.datetime, actor: str
    ) -> None:
        """Store a new key's hash; InputError on ``name`` if a key (even a revoked one) has it."""
        at = stamp(now, "now")
        with self._db.transaction():
            added = self._db.execute(
                "INSERT INTO api_keys (name, key_hash, site, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, key_hash, site, at),
            ).rowcount
            if not added:
                raise InputError("name", f"a key called {name!r} already exists (names are "
                                         "never reused, so the trail stays clear); choose another")
            where = "every site" if site is None else f"site {site}"
            self._writes.log(at, Trail.API_KEY_ADDED, None, None, actor, f"key {name} for {where}")

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not."""
        row = self._db.one(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
        return None if row is None else read(ApiKeyRecord, row)

    def all(self) -> list[ApiKeyRecord]:
        rows = self._db.all(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name")
        return [read(ApiKeyRecord, row) for row in rows]

    def revoke(self, name: str, now: dt.datetime, actor: str) -> bool:
        """Revoke the key called ``name``; False if it already was; InputError if none is."""
        at = stamp(now, "now")
        with self._db.transaction():
            row = self._db.one(f"SELECT revoked_at FROM api_keys WHERE name = ?{self._db.lock()}",
                               (name,))
            if row is None:
                raise InputError("name", f"no key is called {name!r}")
            if row["revoked_at"] is not None:
                return False
            self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ?", (at, name))
            self._writes.log(at, Trail.API_KEY_REVOKED, None, None, actor, f"key {name}")
            return True

    def record_call(
        self, name: str, now: dt.datetime, detail: str, enrollment_id: int | None = None
    ) -> None:
        """Append one call to the trail under the key's name; ``detail`` names the route and
        the answer, never a patient."""
        with self._db.transaction():
            self._writes.log(stamp(now, "now"), Trail.API_CALL, enrollment_id, None,
                             api_actor(name), detail)
