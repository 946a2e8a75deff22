"""Sample outgoing emails shared by the delivery backend tests."""

from __future__ import annotations

import datetime as dt

from aftercare.content.values import EmailAddress
from aftercare.delivery import OutgoingEmail
from aftercare.render.emails import RenderedEmail

ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:PUBLISH\r\nEND:VCALENDAR\r\n"
PUBLIC_ID = "5f0c1e2d3b4a59687766554433221100"
TO = "zoe@example.com"


def rendered(ics: bytes | None = None) -> RenderedEmail:
    return RenderedEmail(
        subject="How are you doing?",
        preheader="Two weeks on",
        html='<!doctype html><html lang="en"><body><p>Hello Zoë</p></body></html>\n',
        text="Hello Zoë\n",
        language="en",
        ics=ics,
        ics_filename="check-in.ics" if ics else None,
        content_hash="0" * 64,
        template_version="abc123",
        unsubscribe_url="https://care.clinic.example/unsubscribe?t=abc.def",
    )


def outgoing(
    *,
    send_at: dt.datetime,
    campaign: str,
    step_key: str,
    public_id: str = PUBLIC_ID,
    ics: bytes | None = None,
    to_name: str = "Zoë",
) -> OutgoingEmail:
    return OutgoingEmail(
        public_id=public_id,
        to=EmailAddress(TO),
        to_name=to_name,
        from_address=EmailAddress("care@clinic.example"),
        from_name="Juniper Lane Clinic",
        reply_to=EmailAddress("desk@clinic.example"),
        campaign=campaign,
        step_key=step_key,
        rendered=rendered(ics),
        send_at=send_at,
    )
