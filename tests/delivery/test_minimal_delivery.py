"""Minimal emails handed over for real: written by the file backend and posted to the local
SendGrid look-alike by the sendgrid library. Everything either carries is read back whole and
checked word by word; the request to SendGrid is exactly the email and nothing more."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from aftercare.check.minimal import minimal_words
from aftercare.content.load import load_project
from aftercare.content.values import EmailAddress, ZoneName
from aftercare.delivery.files import FileBackend
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.enrol.enrolment import plan_for
from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from aftercare.outbox.records import Enrollment, MessageView
from aftercare.outbox.store import Outbox
from aftercare.render.care_links import CARE_PATH
from aftercare.render.emails import EmailRenderer, Recipient
from aftercare.send.dispatch import send_due
from tests.conftest import ROOT
from tests.delivery.fake_sendgrid import API_KEY, FakeSendGrid, threaded_server

PROJECT = load_project(ROOT)
KEY = b"d" * 32
TREATED = dt.date(2026, 11, 23)
ENROLLED = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)  # noon at the clinic
WORDS = minimal_words(PROJECT)


@dataclass(frozen=True)
class Sent:
    """What both backends carried for the same patients."""

    emls: dict[str, EmailMessage]  # public id -> the .eml the file backend wrote
    requests: dict[str, dict[str, Any]]  # public id -> the request SendGrid received
    file_messages: list[MessageView]
    sendgrid_messages: list[MessageView]


def _enrol(outbox: Outbox, address: str, campaign: str) -> None:
    enrollment = Enrollment(
        email=EmailAddress(address), first_name="Ann", campaign=campaign, treated_on=TREATED,
        timezone=ZoneName("America/New_York"), language="en", marketing_consent=True,
        recorded_by="staff:test", consent_wording_version=CONSENT_WORDING_VERSION)
    outbox.enroll(enrollment, plan_for(PROJECT, enrollment, ENROLLED), ENROLLED)


def _send_all(outbox: Outbox, backend: FileBackend | SendGridBackend,
              fake: FakeSendGrid | None = None) -> None:
    """Every message, each run an hour before it is due (SendGrid holds it until then)."""
    renderer = EmailRenderer(PROJECT, KEY)
    for due in sorted({m.due_at for m in outbox.messages()}):
        at = due - dt.timedelta(hours=1) if fake is not None else due
        if fake is not None:
            fake.now = at
        report = send_due(outbox, PROJECT, renderer, backend, at, 100)
        assert report.failed == report.unknown == report.retried == 0, report.summary()


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sent]:
    folder = tmp_path_factory.mktemp("minimal-delivery")
    with Outbox.open(folder / "file.db") as outbox:
        _enrol(outbox, "ann@example.com", "botox-migraine")
        _enrol(outbox, "bea@example.com", "botox-cosmetic")
        _send_all(outbox, FileBackend(folder / "outbox"))
        file_messages = outbox.messages()
    emls = {path.stem: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in (folder / "outbox").glob("*.eml")}
    steps = {s.key for c in PROJECT.campaigns.values() for s in c.steps}
    with threaded_server() as server, Outbox.open(folder / "sendgrid.db") as outbox:
        fake = FakeSendGrid(server, sender=PROJECT.clinic.email.from_address,
                            reply_to=PROJECT.clinic.email.reply_to, step_keys=steps,
                            forbidden=tuple(PROJECT.campaigns))
        _enrol(outbox, "ann@example.com", "botox-migraine")
        _enrol(outbox, "bea@example.com", "botox-cosmetic")
        backend = SendGridBackend(API_KEY, host=fake.host, clock=lambda: fake.now)
        _send_all(outbox, backend, fake)
        assert fake.problems == []
        requests = {r.public_id or "": r.body for r in fake.requests}
        sendgrid_messages = outbox.messages()
    yield Sent(emls, requests, file_messages, sendgrid_messages)


def _minimal(messages: list[MessageView]) -> list[MessageView]:
    return [m for m in messages if m.campaign == "botox-migraine"]


def _eml_text(message: EmailMessage) -> str:
    """Every header and every decoded part of the message, as one text."""
    texts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        texts += [f"{name}: {value}" for name, value in part.items()]
        if not part.is_multipart():
            content = part.get_content()
            texts.append(content.decode() if isinstance(content, bytes) else content)
    return "\n".join(texts)


def _strings(value: Any) -> Iterator[str]:
    """Every key and value of a request body, attachments decoded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from ([base64.b64decode(item).decode()] if key == "content"
                        and isinstance(item, str) else _strings(item))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    else:
        yield str(value)


def _visible(text: str) -> str:
    """Tags and our own signed links taken out: they are markup and random tokens, not words."""
    text = re.sub(r"https://care\.juniperlane\.example/\S+?(?=[\s\"<>]|$)", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


def test_both_backends_carried_every_message(sent: Sent) -> None:
    for messages in (sent.file_messages, sent.sendgrid_messages):
        assert [m.state for m in messages] == ["sent"] * 6
    assert {m.public_id for m in _minimal(sent.file_messages)} <= set(sent.emls)
    assert {m.public_id for m in _minimal(sent.sendgrid_messages)} <= set(sent.requests)


@pytest.mark.parametrize("word", WORDS)
def test_no_minimal_message_names_the_word_in_anything_either_backend_carries(
    sent: Sent, word: str
) -> None:
    spelled = r"\s+".join(re.escape(w) for w in word.split()).replace("'", "['’]?")
    pattern = re.compile(rf"(?<!\w){spelled}(?:['’]s|s|es)?(?!\w)", re.IGNORECASE)
    for message in _minimal(sent.file_messages):
        text = _visible(_eml_text(sent.emls[message.public_id]))
        assert not pattern.search(text), f".eml of {message.step_key} names {word!r}"
    for message in _minimal(sent.sendgrid_messages):
        body = sent.requests[message.public_id]
        text = _visible(" ".join(_strings(body)))
        assert not pattern.search(text), f"request of {message.step_key} names {word!r}"


def test_the_word_check_reads_what_a_full_message_carries(sent: Sent) -> None:
    # The same reading finds the words in the cosmetic (full) emails: the check can fail.
    full = [m for m in sent.sendgrid_messages if m.campaign == "botox-cosmetic"]
    text = _visible(" ".join(_strings(sent.requests[full[0].public_id])))
    assert re.search(r"(?<!\w)(eyebrow|face|needle)(?!\w)", text, re.IGNORECASE)


def test_the_request_to_sendgrid_is_the_email_and_nothing_more(sent: Sent) -> None:
    renderer = EmailRenderer(PROJECT, KEY)
    campaign = PROJECT.campaigns["botox-migraine"]
    for message in _minimal(sent.sendgrid_messages):
        step = campaign.step(message.step_key)
        assert step is not None and message.send_at is not None
        zone = message.timezone.zone if message.timezone else dt.UTC
        rendered = renderer.render(campaign, step, Recipient(
            first_name=message.first_name, email=message.email, language=message.language,
            treated_on=message.treated_on, local_due=message.send_at.astimezone(zone),
            public_id=message.public_id))
        body = sent.requests[message.public_id]
        expected: dict[str, Any] = {
            "personalizations": [{"to": [{"email": "ann@example.com", "name": "Ann"}]}],
            "from": {"email": "care@juniperlane.example", "name": "Juniper Lane Clinic"},
            "reply_to": {"email": "frontdesk@juniperlane.example"},
            "subject": step.subject,
            "content": [{"type": "text/plain", "value": rendered.text},
                        {"type": "text/html", "value": rendered.html}],
            "categories": ["aftercare"],  # no step key: only one campaign has a week-10
            "custom_args": {"message_id": message.public_id},
            "headers": {"List-Unsubscribe": f"<{rendered.unsubscribe_url}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            "send_at": int(message.send_at.timestamp()),
            "batch_id": body["batch_id"],
        }
        if rendered.ics is not None:
            expected["attachments"] = [{
                "content": base64.b64encode(rendered.ics).decode(),
                "type": "text/calendar; method=PUBLISH", "filename": "next-visit.ics",
                "disposition": "attachment"}]
        assert body == expected
        assert rendered.care_url is not None and CARE_PATH in rendered.care_url
        assert rendered.care_url in rendered.text and rendered.care_url in rendered.html
    # The full (cosmetic) emails keep their step key as a category, as before.
    cosmetic = [m for m in sent.sendgrid_messages if m.campaign == "botox-cosmetic"]
    assert [sent.requests[m.public_id]["categories"] for m in cosmetic] == [
        ["aftercare", m.step_key] for m in cosmetic]


def test_the_file_backends_message_carries_the_same_email(sent: Sent) -> None:
    for message in _minimal(sent.file_messages):
        eml = sent.emls[message.public_id]
        text = eml.get_body(("plain",))
        assert text is not None
        body = text.get_content()
        assert "Juniper Lane Clinic has sent you aftercare notes." in body
        assert body.count(CARE_PATH) == 1
        names = [part.get_filename() for part in eml.iter_attachments()]
        assert names == (["next-visit.ics"] if message.step_key == "week-10" else [])
        assert eml["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert eml["List-Unsubscribe"].startswith("<https://care.juniperlane.example/unsubscribe?t=")
