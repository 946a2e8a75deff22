"""The file backend writes parseable .eml files (plain, then HTML, then any .ics) atomically."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import os
import stat
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from aftercare.content.model import DeliverySettings
from aftercare.delivery import Outcome, OutgoingEmail, backend_from_env, scheduling
from aftercare.delivery.files import FileBackend
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.errors import UsageError
from tests.delivery import samples
from tests.delivery.samples import ICS

SEND_AT = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)


def outgoing(public_id: str = samples.PUBLIC_ID, ics: bytes | None = None,
             to_name: str = "Zoë") -> OutgoingEmail:
    return samples.outgoing(send_at=SEND_AT, campaign="botox-cosmetic", step_key="week-2",
                            public_id=public_id, ics=ics, to_name=to_name)


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_writes_one_eml_named_by_public_id(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "outbox")
    outcome = backend.send(outgoing())
    name = "5f0c1e2d3b4a59687766554433221100.eml"
    assert outcome == Outcome("sent", f"file:{name}", f"written to {name}", None)
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [name]


def test_headers(tmp_path: Path) -> None:
    FileBackend(tmp_path).send(outgoing())
    message = read_eml(tmp_path / "5f0c1e2d3b4a59687766554433221100.eml")
    assert message["From"] == "Juniper Lane Clinic <care@clinic.example>"
    assert message["To"] == "Zoë <zoe@example.com>"
    assert message["Reply-To"] == "desk@clinic.example"
    assert message["Subject"] == "How are you doing?"
    assert message["Date"].datetime == SEND_AT
    assert message["Message-ID"] == "<5f0c1e2d3b4a59687766554433221100@clinic.example>"
    assert message["List-Unsubscribe"] == (
        "<https://care.clinic.example/unsubscribe?t=abc.def>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"


def test_nothing_about_the_campaign_or_step_reaches_the_headers(tmp_path: Path) -> None:
    FileBackend(tmp_path).send(outgoing())
    raw = (tmp_path / "5f0c1e2d3b4a59687766554433221100.eml").read_bytes()
    assert b"botox" not in raw
    assert b"week-2" not in raw


def test_lines_end_in_crlf_and_stay_short(tmp_path: Path) -> None:
    FileBackend(tmp_path).send(outgoing(ics=ICS))
    raw = (tmp_path / "5f0c1e2d3b4a59687766554433221100.eml").read_bytes()
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 78


def test_a_long_unsubscribe_link_is_one_plain_header_line_not_encoded_words(
    tmp_path: Path,
) -> None:
    # A real link: the public base URL and a signed token, far longer than a folded line.
    url = "https://care.clinic.example/unsubscribe?t=" + "Ab0_-" * 30 + ".sig" + "x" * 43
    base = outgoing()
    email_out = dataclasses.replace(base, rendered=dataclasses.replace(
        base.rendered, unsubscribe_url=url, subject="A subject long enough to be folded " * 3))
    FileBackend(tmp_path).send(email_out)
    raw = (tmp_path / f"{samples.PUBLIC_ID}.eml").read_bytes()
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    lines = header_block.split(b"\r\n")
    assert f"List-Unsubscribe: <{url}>".encode() in lines
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    listed = [line for line in lines if line.lower().startswith(b"list-unsubscribe")]
    assert len(listed) == 2
    assert not any(b"=?" in line for line in listed)  # no RFC 2047 encoded-words
    assert max(len(line) for line in lines) <= 998
    # Other headers are still folded at 78 columns.
    subject = next(line for line in lines if line.startswith(b"Subject:"))
    assert len(subject) <= 78
    message = email.message_from_bytes(raw, policy=default)
    assert message["List-Unsubscribe"] == f"<{url}>"


def test_plain_text_comes_before_html(tmp_path: Path) -> None:
    FileBackend(tmp_path).send(outgoing())
    message = read_eml(tmp_path / "5f0c1e2d3b4a59687766554433221100.eml")
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert isinstance(parts[0], EmailMessage) and isinstance(parts[1], EmailMessage)
    assert parts[0].get_content().replace("\r\n", "\n") == "Hello Zoë\n"
    assert "<p>Hello Zoë</p>" in parts[1].get_content()


def test_calendar_steps_carry_the_ics_after_the_alternatives(tmp_path: Path) -> None:
    FileBackend(tmp_path).send(outgoing(ics=ICS))
    message = read_eml(tmp_path / "5f0c1e2d3b4a59687766554433221100.eml")
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert isinstance(alternative, EmailMessage) and isinstance(attachment, EmailMessage)
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain", "text/html"
    ]
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "check-in.ics"
    assert attachment.get_payload(decode=True) == ICS


def test_a_name_with_a_comma_or_quote_is_quoted_not_split(tmp_path: Path) -> None:
    FileBackend(tmp_path).send(outgoing(to_name='Ann "Annie", Jr'))
    message = read_eml(tmp_path / "5f0c1e2d3b4a59687766554433221100.eml")
    (address,) = message["To"].addresses
    assert (address.display_name, address.addr_spec) == ('Ann "Annie", Jr', "zoe@example.com")


def test_folder_is_created_owner_only_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "outbox"
    backend = FileBackend(folder)
    for index in range(3):
        backend.send(outgoing(public_id=f"id{index}"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(os.listdir(folder)) == ["id0.eml", "id1.eml", "id2.eml"]
    assert stat.S_IMODE((folder / "id0.eml").stat().st_mode) == 0o600


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        FileBackend(tmp_path).send(outgoing())
    assert os.listdir(tmp_path) == []


def test_a_public_id_that_is_not_a_plain_token_is_refused(tmp_path: Path) -> None:
    outcome = FileBackend(tmp_path / "outbox").send(outgoing(public_id="../escape"))
    assert outcome == Outcome("failed", None, "public id is not a safe file name")
    assert not (tmp_path / "escape.eml").exists()
    assert not (tmp_path / "outbox").exists()


def test_send_at_must_be_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        OutgoingEmail(**{**outgoing().__dict__, "send_at": dt.datetime(2026, 3, 3, 15, 0)})


def test_backend_from_env_defaults_to_files_under_var_outbox(tmp_path: Path) -> None:
    backend = backend_from_env({}, base=tmp_path)
    assert backend.name == "file"
    assert isinstance(backend, FileBackend)
    assert backend.directory == tmp_path / "var" / "outbox"


def test_backend_from_env_reads_the_outbox_folder(tmp_path: Path) -> None:
    relative = backend_from_env({"AFTERCARE_OUTBOX_DIR": "mail"}, base=tmp_path)
    assert isinstance(relative, FileBackend) and relative.directory == tmp_path / "mail"
    absolute = backend_from_env({"AFTERCARE_OUTBOX_DIR": str(tmp_path / "abs")}, base=Path("x"))
    assert isinstance(absolute, FileBackend) and absolute.directory == tmp_path / "abs"


def test_unknown_backend_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        backend_from_env({}, name="carrier-pigeon")
    assert str(caught.value) == (
        "delivery backend: expected one of file, sendgrid; got 'carrier-pigeon'"
    )


def test_a_sendgrid_key_in_the_environment_selects_sendgrid(tmp_path: Path) -> None:
    chosen = backend_from_env({"SENDGRID_API_KEY": "SG.test", "SENDGRID_API_HOST":
                               "http://127.0.0.1:9/"}, tmp_path)
    assert chosen.name == "sendgrid"
    assert "SG.test" not in repr(chosen)
    assert backend_from_env({}, tmp_path).name == "file"


def test_the_clinics_delivery_settings_reach_sendgrid(tmp_path: Path) -> None:
    env = {"SENDGRID_API_KEY": "SG.test", "SENDGRID_API_HOST": "http://127.0.0.1:9"}
    plain = backend_from_env(env, tmp_path)
    assert isinstance(plain, SendGridBackend)
    assert (plain.sandbox, plain.unsubscribe_group_id, plain.host) == (
        False, None, "http://127.0.0.1:9")
    settings = DeliverySettings(sandbox=True, unsubscribe_group_id=42)
    configured = backend_from_env(env, tmp_path, delivery=settings)
    assert isinstance(configured, SendGridBackend)
    assert (configured.sandbox, configured.unsubscribe_group_id) == (True, 42)


def test_only_sendgrid_holds_messages_until_their_send_time(tmp_path: Path) -> None:
    files = backend_from_env({}, tmp_path)
    sendgrid = backend_from_env({"SENDGRID_API_KEY": "SG.test"}, tmp_path)
    assert scheduling(files) is None and scheduling(None) is None
    assert scheduling(sendgrid) is sendgrid
