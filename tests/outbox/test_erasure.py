"""Erasing a patient on each engine: name, address and patient id gone from what the engine
stores (SQLite's files themselves; every row version PostgreSQL keeps); counts and the trail
kept; the address still recognised as its keyed hash."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

import aftercare.outbox.sqlite
from aftercare.errors import InputError
from aftercare.outbox.erasure import HIDDEN, hidden_address
from aftercare.outbox.records import DeliveryReport
from aftercare.outbox.rows import stamp
from aftercare.outbox.store import UNSUBSCRIBED, Outbox, StateError
from aftercare.outbox.vocabulary import DeliveryEvent, State
from tests.outbox.test_store import NOW, enrollment, toy_plan
from tests.postgres import OutboxDatabase

SECRET = b"k" * 40
ANN = "Ann.Zed@Example.com"
PERSONAL = (b"Ann.Zed", b"ann.zed", b"Zenobia", b"MRN-4471")


@pytest.fixture
def outbox(database: OutboxDatabase) -> Iterator[Outbox]:
    with Outbox.open(database.location, SECRET) as box:
        yield box


def enrol(outbox: Outbox, email: str = ANN, **changes: object) -> int:
    item = enrollment(email, first_name="Zenobia", patient_ref="MRN-4471", **changes)
    return outbox.enroll(item, toy_plan(item), NOW).enrollment_id


def send_first(outbox: Outbox) -> int:
    (claim,) = outbox.claim_due(NOW + dt.timedelta(days=2), 1)
    outbox.mark_sent(claim.message_id, provider_id="p-1", content_hash="h", template_version="1",
                     now=NOW + dt.timedelta(days=2))
    return claim.message_id


def test_forget_erases_the_personal_data_from_the_files_and_keeps_counts_and_trail(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    enrol(outbox)
    sent = send_first(outbox)
    assert all(value in database.stored() for value in PERSONAL[:1])
    trail_before = outbox.events()
    erased = outbox.forget(ANN, NOW + dt.timedelta(days=3), "cli:admin")
    assert (erased.enrollments, erased.cancelled, erased.already) == (1, 1, False)
    for value in PERSONAL:
        assert value not in database.stored(), value
    (message, *others) = outbox.messages()
    assert message.message_id == sent and message.state == State.SENT
    assert message.email == hidden_address(SECRET, ANN) and message.email.startswith(HIDDEN)
    assert message.first_name == ""
    assert [m.state for m in others] == [State.CANCELLED, State.CANCELLED]
    assert outbox.count_by_state()[State.SENT] == 1
    trail = outbox.events()
    assert trail[: len(trail_before)] == trail_before  # nothing of the trail is lost
    assert [e.kind for e in trail[len(trail_before):]] == ["cancelled", "patient-forgotten"]
    assert trail[-1].detail == ("name, address and patient id erased (on request); the address "
                                "is kept as a hash")


def test_after_forget_an_unsubscribe_or_a_bounce_still_matches_and_stays_hashed(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    enrol(outbox)
    send_first(outbox)
    outbox.forget(ANN, NOW, "cli:admin")
    public_id = outbox.messages()[0].public_id
    # The patient clicks the unsubscribe link of an email sent before: it names the message.
    message = outbox.message_by_public_id(public_id)
    assert message is not None
    outbox.unsubscribe(message.email, NOW, source="link", actor="patient")
    assert outbox.is_suppressed(ANN) and outbox.is_suppressed(ANN.lower())
    with pytest.raises(InputError, match=UNSUBSCRIBED):
        enrol(outbox)
    # SendGrid later reports a bounce for the plain address: kept under the hash too.
    report = DeliveryReport("ev-1", DeliveryEvent.BOUNCED, public_id, ANN.lower(), NOW, None)
    outbox.apply_delivery_events([report], NOW, "sendgrid")
    assert outbox.scrub()
    for value in PERSONAL:
        assert value not in database.stored(), value


def test_a_suppression_made_before_forget_is_kept_under_the_hash(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    enrol(outbox)
    outbox.unsubscribe(ANN, NOW, source="cli", actor="cli:admin")
    outbox.forget(ANN, NOW, "cli:admin")
    assert outbox.is_suppressed(ANN)
    with pytest.raises(InputError, match=UNSUBSCRIBED):
        enrol(outbox)
    assert b"ann.zed" not in database.stored().lower()
    with Outbox.open(database.location) as without_key:  # the key is what makes the hash match
        assert not without_key.is_suppressed(ANN)


def test_a_patient_who_comes_back_is_a_new_patient_and_is_erased_into_the_same_record(
    outbox: Outbox,
) -> None:
    enrol(outbox)
    outbox.forget(ANN, NOW, "cli:admin")
    enrol(outbox, treated_on=NOW.date() + dt.timedelta(days=30))
    assert {m.first_name for m in outbox.messages()} == {"", "Zenobia"}
    assert outbox.forget(ANN, NOW, "cli:admin").enrollments == 2
    assert {m.email for m in outbox.messages()} == {hidden_address(SECRET, ANN)}
    assert outbox.forget(ANN, NOW, "cli:admin").already


def test_forget_refuses_an_unknown_address_and_waits_for_a_message_being_sent(
    outbox: Outbox,
) -> None:
    with pytest.raises(InputError, match="no patient with this address in the outbox"):
        outbox.forget("nobody@example.com", NOW, "cli:admin")
    enrol(outbox)
    outbox.claim_due(NOW + dt.timedelta(days=2), 1)
    with pytest.raises(StateError, match="being sent right now; try again in a minute"):
        outbox.forget(ANN, NOW, "cli:admin")


def test_retention_picks_patients_whose_last_message_is_old_and_nothing_is_pending(
    outbox: Outbox,
) -> None:
    enrol(outbox)
    enrol(outbox, "ben@example.com", marketing_consent=True)
    later = NOW + dt.timedelta(days=400)
    assert outbox.due_for_retention(later, later) == []  # scheduled messages keep them both
    outbox.cancel(ANN, None, NOW, "cli:admin")
    # Ann's last message was due 90 days after her treatment, at 09:00 (the reminder, skipped).
    last = dt.datetime.combine(NOW.date() + dt.timedelta(days=90), dt.time(9), tzinfo=dt.UTC)
    assert outbox.due_for_retention(last, later) == []
    assert outbox.due_for_retention(last + dt.timedelta(seconds=1), later) == [
        "Ann.Zed@example.com"]


def test_forget_needs_the_secret_key(database: OutboxDatabase) -> None:
    with Outbox.open(database.location) as outbox:
        enrol(outbox)
        with pytest.raises(InputError, match="erasing needs the clinic's secret key"):
            outbox.forget(ANN, NOW, "cli:admin")


def test_forget_waits_for_a_claim_in_progress_and_then_refuses(
    outbox: Outbox, database: OutboxDatabase
) -> None:
    # A sender is claiming Ann's first email at this very moment (its transaction not yet
    # committed): the erasure waits for it, sees the message being sent, and changes nothing.
    enrol(outbox)
    first = outbox.messages()[0].message_id
    refused: list[BaseException] = []

    def erase() -> None:
        with Outbox.open(database.location, SECRET) as other:
            try:
                other.forget(ANN, NOW, "cli:admin")
            except StateError as exc:
                refused.append(exc)

    with database.raw(timeout=5) as sender:
        if database.engine == "sqlite":
            sender.execute("BEGIN IMMEDIATE")
        else:
            sender.execute("BEGIN")
            sender.execute("SELECT id FROM messages WHERE id = ? FOR NO KEY UPDATE", (first,))
        sender.execute("UPDATE messages SET state = 'sending', claimed_at = ?,"
                       " attempts = attempts + 1 WHERE id = ?", (stamp(NOW, "now"), first))
        eraser = threading.Thread(target=erase)
        eraser.start()
        time.sleep(0.3)
        assert eraser.is_alive()  # waiting for the sender
        sender.execute("COMMIT")
    eraser.join()
    assert [str(e) for e in refused] == [
        "a message to this patient is being sent right now; try again in a minute"]
    assert {m.email for m in outbox.messages()} == {"Ann.Zed@example.com"}
    assert [m.state for m in outbox.messages()] == [State.SENDING, State.SCHEDULED,
                                                    State.CANCELLED]  # month 3: no consent


def test_a_reader_still_open_keeps_the_erased_values_until_the_next_scrub(
    database: OutboxDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another connection is in the middle of reading (a report, a backup): what it may still
    # see cannot be removed yet. The next scrub after it ends removes it. (SQLite waits for
    # the reader up to its busy timeout before it gives up: shortened here.)
    monkeypatch.setattr(aftercare.outbox.sqlite, "BUSY_TIMEOUT_MS", 200)
    outbox = Outbox.open(database.location, SECRET)
    enrol(outbox)
    with closing(outbox), database.raw() as reader:
        reader.execute("BEGIN" if database.engine == "sqlite"
                       else "BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert reader.execute("SELECT count(*) FROM patients").fetchone()[0] == 1
        outbox.forget(ANN, NOW, "cli:admin")
        assert outbox.scrub() is False
        assert b"Zenobia" in database.stored()
        reader.execute("COMMIT")
        assert outbox.scrub() is True
    for value in PERSONAL:
        assert value not in database.stored(), value
