"""The staff side of the outbox on each engine: accounts, sessions kept on the server, and failed
logins counted per client and account (also when several arrive at the same moment)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest

from aftercare.errors import InputError
from aftercare.outbox.login_failures import CLIENT
from aftercare.outbox.staff import NO_PASSWORD
from aftercare.outbox.store import Outbox
from tests.outbox.test_store import NOW
from tests.postgres import OutboxDatabase

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
LOCK_FOR = dt.timedelta(minutes=15)


@pytest.fixture
def outbox(database: OutboxDatabase) -> Iterator[Outbox]:
    with Outbox.open(database.location) as box:
        box.staff.add("FrontDesk", "hash-1", NOW)
        yield box


def staff_id(box: Outbox, name: str = "frontdesk") -> int:
    account = box.staff.find(name)
    assert account is not None
    return account.id


# ---------------------------------------------------------------- accounts


def test_accounts_are_listed_removed_for_good_and_their_names_never_reused(
    outbox: Outbox,
) -> None:
    outbox.staff.add("manager", "hash-2", NOW)
    with pytest.raises(InputError, match="an account called 'FRONTDESK' already exists"):
        outbox.staff.add("FRONTDESK", "hash-3", NOW)
    outbox.staff.login_succeeded(outbox.staff.active("frontdesk"), NOW + MINUTE)
    outbox.staff.remove(outbox.staff.active("manager"))
    listing = {a.username: a for a in outbox.staff.listing()}
    assert listing["FrontDesk"].last_login_at == NOW + MINUTE
    assert (listing["manager"].disabled, listing["manager"].last_login_at) == (True, None)
    removed = outbox.staff.find("Manager")
    assert removed is not None and removed.password_hash == NO_PASSWORD
    with pytest.raises(InputError, match="no account called 'manager' \\(it was removed\\)"):
        outbox.staff.active("manager")
    with pytest.raises(InputError, match="'manager' was removed; choose another name"):
        outbox.staff.add("manager", "hash-4", NOW)


# ---------------------------------------------------------------- sessions


def test_sessions_are_found_by_their_hash_saved_and_ended(outbox: Outbox) -> None:
    sessions, me = outbox.sessions, staff_id(outbox)
    sessions.start("hash-a", me, '{"csrf": "1"}', NOW)
    sessions.start("hash-b", me, "{}", NOW)
    found = sessions.find("hash-a")
    assert found is not None
    assert (found.staff_id, found.username, found.data) == (me, "FrontDesk", '{"csrf": "1"}')
    assert found.created_at == found.last_seen_at == NOW
    sessions.save("hash-a", None, NOW + MINUTE)
    sessions.save("hash-b", '{"flash": "x"}', NOW + 2 * MINUTE)
    a, b = sessions.find("hash-a"), sessions.find("hash-b")
    assert a is not None and (a.data, a.last_seen_at) == ('{"csrf": "1"}', NOW + MINUTE)
    assert b is not None and (b.data, b.last_seen_at) == ('{"flash": "x"}', NOW + 2 * MINUTE)
    assert sessions.find("no-such-hash") is None
    sessions.end("hash-a")
    assert sessions.find("hash-a") is None and sessions.find("hash-b") is not None
    assert sessions.end_all(me) == 1
    assert sessions.find("hash-b") is None


def test_a_removed_account_opens_none_of_its_sessions(outbox: Outbox) -> None:
    outbox.sessions.start("hash-a", staff_id(outbox), "{}", NOW)
    outbox.staff.remove(outbox.staff.active("frontdesk"))
    assert outbox.sessions.find("hash-a") is None


def test_idle_and_old_sessions_are_swept(outbox: Outbox) -> None:
    me = staff_id(outbox)
    outbox.sessions.start("idle", me, "{}", NOW)
    outbox.sessions.start("old-but-busy", me, "{}", NOW)
    outbox.sessions.start("fresh", me, "{}", NOW + 2 * HOUR)
    outbox.sessions.save("old-but-busy", None, NOW + 2 * HOUR)
    swept = outbox.sessions.sweep(idle_since=NOW + HOUR, started_before=NOW + MINUTE)
    assert swept == 2
    assert outbox.sessions.find("fresh") is not None
    assert outbox.sessions.find("idle") is None and outbox.sessions.find("old-but-busy") is None


# ---------------------------------------------------------------- failed logins


def count(box: Outbox, now: dt.datetime, client: str = "10.0.0.1", account: str = "k1",
          lock_at: int = 3) -> tuple[int, dt.datetime | None]:
    got = box.login_failures.count(client, account, now, HOUR, lock_at, LOCK_FOR)
    return got.failures, got.locked_until


def test_failures_count_up_lock_and_start_again_after_an_hour(outbox: Outbox) -> None:
    assert count(outbox, NOW) == (1, None)
    assert count(outbox, NOW + MINUTE) == (2, None)
    assert count(outbox, NOW + 2 * MINUTE) == (3, NOW + 2 * MINUTE + LOCK_FOR)
    assert [f.client for f in outbox.login_failures.locked("k1", NOW + 3 * MINUTE)] == [
        "10.0.0.1"]
    assert outbox.login_failures.locked("k1", NOW + 2 * MINUTE + LOCK_FOR) == []
    stored = outbox.login_failures.find("10.0.0.1", "k1")
    assert stored is not None and (stored.failures, stored.last_failure_at) == (
        3, NOW + 2 * MINUTE)
    # An hour and more without a failure: the count starts again, and the lock has passed.
    assert count(outbox, NOW + 2 * MINUTE + HOUR + MINUTE) == (1, None)


def test_counts_are_kept_apart_cleared_unlocked_and_swept(outbox: Outbox) -> None:
    count(outbox, NOW)
    count(outbox, NOW, client="10.0.0.2")
    count(outbox, NOW, account=CLIENT)
    count(outbox, NOW + HOUR, account="k2")
    assert outbox.login_failures.clients_of("k1") == ["10.0.0.1", "10.0.0.2"]
    outbox.login_failures.clear("10.0.0.2", "k1")
    assert outbox.login_failures.clients_of("k1") == ["10.0.0.1"]
    assert outbox.login_failures.unlock(None, "10.0.0.1") == 3  # k1, k2 and the client's own
    count(outbox, NOW)
    assert outbox.login_failures.sweep(NOW + MINUTE) == 1
    with pytest.raises(ValueError, match="unlock needs an account, a client or both"):
        outbox.login_failures.unlock(None, None)


def test_failures_at_the_same_moment_all_count(database: OutboxDatabase) -> None:
    # Guessers on several connections at once: each failure is counted, none overwrites
    # another's (a count read before another's write and then written back would).
    threads, each = 6, 5
    Outbox.open(database.location).close()
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def guess() -> None:
        try:
            with Outbox.open(database.location) as box:
                start.wait()
                for _ in range(each):
                    count(box, NOW, lock_at=1000)
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    workers = [threading.Thread(target=guess) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    with Outbox.open(database.location) as box:
        stored = box.login_failures.find("10.0.0.1", "k1")
    assert stored is not None and stored.failures == threads * each
