"""Erasing a patient on real SQLite files: name, address and patient id gone from the files
themselves; counts and the trail kept; the address still recognised as its keyed hash."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from aftercare.errors import InputError
from aftercare.outbox.erasure import HIDDEN, hidden_address
from aftercare.outbox.records import DeliveryReport
from aftercare.outbox.store import UNSUBSCRIBED, Outbox, StateError
from aftercare.outbox.vocabulary import DeliveryEvent, State
from tests.outbox.test_store import NOW, enrollment, toy_plan

SECRET = b"k" * 40
ANN = "Ann.Zed@Example.com"
PERSONAL = (b"Ann.Zed", b"ann.zed", b"Zenobia", b"MRN-4471")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "aftercare.db"


@pytest.fixture
def outbox(path: Path) -> Iterator[Outbox]:
    with Outbox.open(path, SECRET) as box:
        yield box


def enrol(outbox: Outbox, email: str = ANN, **changes: object) -> int:
    item = enrollment(email, first_name="Zenobia", patient_ref="MRN-4471", **changes)
    return outbox.enroll(item, toy_plan(item), NOW).enrollment_id


def files(path: Path) -> bytes:
    """Every byte SQLite keeps for the database: the file, its write-ahead log, its index."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def send_first(outbox: Outbox) -> int:
    (claim,) = outbox.claim_due(NOW + dt.timedelta(days=2), 1)
    outbox.mark_sent(claim.message_id, provider_id="p-1", content_hash="h", template_version="1",
                     now=NOW + dt.timedelta(days=2))
    return claim.message_id


def test_forget_erases_the_personal_data_from_the_files_and_keeps_counts_and_trail(
    outbox: Outbox, path: Path
) -> None:
    enrol(outbox)
    sent = send_first(outbox)
    assert all(value in files(path) for value in PERSONAL[:1])
    trail_before = outbox.events()
    erased = outbox.forget(ANN, NOW + dt.timedelta(days=3), "cli:admin")
    assert (erased.enrollments, erased.cancelled, erased.already) == (1, 1, False)
    for value in PERSONAL:
        assert value not in files(path), value
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
    outbox: Outbox, path: Path
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
    outbox.scrub()
    for value in PERSONAL:
        assert value not in files(path), value


def test_a_suppression_made_before_forget_is_kept_under_the_hash(
    outbox: Outbox, path: Path
) -> None:
    enrol(outbox)
    outbox.unsubscribe(ANN, NOW, source="cli", actor="cli:admin")
    outbox.forget(ANN, NOW, "cli:admin")
    assert outbox.is_suppressed(ANN)
    with pytest.raises(InputError, match=UNSUBSCRIBED):
        enrol(outbox)
    assert b"ann.zed" not in files(path).lower()
    with Outbox.open(path) as without_key:  # the key is what makes the hash match
        assert not without_key.is_suppressed(ANN)


def test_a_patient_who_comes_back_is_a_new_patient_and_is_erased_into_the_same_record(
    outbox: Outbox, path: Path
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


def test_forget_needs_the_secret_key(path: Path) -> None:
    with Outbox.open(path) as outbox:
        enrol(outbox)
        with pytest.raises(InputError, match="erasing needs the clinic's secret key"):
            outbox.forget(ANN, NOW, "cli:admin")
