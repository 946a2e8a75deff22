"""Renders one campaign step into an email: HTML, plain text and an optional .ics invitation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderedEmail:
    """One email ready for a delivery backend; holds no database or provider state."""

    subject: str
    preheader: str
    html: str
    text: str
    language: str
    ics: bytes | None          # text/calendar body for the attachment, or None
    ics_filename: str | None
    content_hash: str          # sha256 hex of subject + html + text + ics, as sent
    template_version: str      # short hash of the template files and campaign step used
    unsubscribe_url: str
