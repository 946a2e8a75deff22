"""The default backend: writes each outgoing email as an RFC 5322 .eml file, atomically."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from aftercare.delivery import Outcome, OutgoingEmail
from aftercare.files import write_atomically

# Public ids become file names, so only a plain token is accepted (no separators, no dots).
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Headers set raw (set_raw) are written as given: a List-Unsubscribe URL has no space to fold
# at, and folding it anyway turns it into RFC 2047 encoded-words that mail clients ignore.
# Every other header is a header object and is still folded at 78 columns.
POLICY = SMTP.clone(refold_source="none")


class FileBackend:
    """Delivers into a folder (mode 0700): one ``<public_id>.eml`` per message, written whole."""

    name = "file"
    can_schedule = False  # written at once: nothing is held for later, so nothing to cancel
    holding = None

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, email: OutgoingEmail) -> Outcome:
        if not _SAFE_ID.fullmatch(email.public_id):
            return Outcome("failed", None, "public id is not a safe file name")
        data = build_message(email).as_bytes(policy=POLICY)
        file_name = f"{email.public_id}.eml"
        self._write(file_name, data)
        return Outcome("sent", f"file:{file_name}", f"written to {file_name}")

    def _write(self, file_name: str, data: bytes) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.chmod(0o700)  # mkdir's mode is filtered by the umask
        write_atomically(self.directory / file_name, data, private=True)


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The message as a mail provider would see it: plain text first, HTML, then any .ics."""
    rendered = email.rendered
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(email.from_name, addr_spec=email.from_address)
    message["To"] = Address(email.to_name, addr_spec=email.to)
    message["Reply-To"] = Address(addr_spec=email.reply_to)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(email.send_at)
    domain = email.from_address.rsplit("@", 1)[1]
    message["Message-ID"] = f"<{email.public_id}@{domain}>"
    # RFC 8058 one-click unsubscribe; the URL is plain ASCII (a signed token) within 998 octets.
    message.set_raw("List-Unsubscribe", f"<{rendered.unsubscribe_url}>")
    message.set_raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if rendered.ics is not None:
        message.add_attachment(
            rendered.ics,
            maintype="text",
            subtype="calendar",
            filename=rendered.ics_filename or "event.ics",
            params={"method": "PUBLISH", "charset": "utf-8"},
        )
    return message

