"""Loads sites/<id>.yaml, each site of the organisation overriding what clinic.yaml says for
its patients (name, numbers, hours, zone, closures, sender, logo), and checks every file.

A site file names only what differs; the rest is the organisation's. Closures add to the
organisation's (a chain-wide holiday closes every site). Without sites/ the organisation is one
site, the implicit "main"; a file sites/main.yaml overrides that one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aftercare.content.model import Clinic, ClinicText
from aftercare.content.values import ClockTime, EmailAddress, FrozenMap, Url, ZoneName

if TYPE_CHECKING:  # the outbox reads IMPLICIT_SITE from here without loading the YAML reader
    from aftercare.content.schema import Document

FOLDER = "sites"
# The organisation's own site, clinic.yaml as written: the one site of an installation without
# sites/, and the site of everything that names none.
IMPLICIT_SITE: Final = "main"


@dataclass(frozen=True)
class SiteEmail:
    """The site's own sender, and the days it is closed on top of the organisation's."""

    from_address: EmailAddress | None = None
    from_name: str | None = None
    reply_to: EmailAddress | None = None
    closed_on: tuple[dt.date, ...] = ()


@dataclass(frozen=True)
class SiteFile:
    """What one sites/<id>.yaml says; every key but the name falls back to clinic.yaml."""

    name: str
    phone: str | None = None
    urgent_line: str | None = None
    emergency_number: str | None = None
    hours: str | None = None
    address: tuple[str, ...] = ()
    timezone: ZoneName | None = None
    send_time: ClockTime | None = None
    website: Url | None = None
    booking_url: Url | None = None
    logo: str | None = None
    email: SiteEmail = field(default_factory=SiteEmail)
    translations: Mapping[str, ClinicText] = field(default_factory=FrozenMap)
    id: str = field(default="", metadata={"yaml": False})  # the file's name


@dataclass(frozen=True)
class Site:
    """One site: its id (the file's name), and clinic.yaml with the site's settings in place,
    which is what its patients read and when their emails go."""

    id: str
    clinic: Clinic

    @property
    def name(self) -> str:
        return self.clinic.name


def check_sites(
    root: Path, files: Mapping[str, SiteFile], clinic: Clinic | None, languages: Sequence[str],
    docs: Mapping[str, Document],
) -> dict[str, Site]:
    """The sites of the files read from sites/, each checked (problems go to its document)."""
    sites: dict[str, Site] = {}
    for site_id, found in files.items():
        doc = docs[f"{FOLDER}/{site_id}.yaml"]
        before = len(doc.problems)
        _check_site(root, found, doc, languages)
        if clinic is not None and len(doc.problems) == before:
            sites[site_id] = Site(site_id, apply_site(clinic, found))
    return sites


def apply_site(clinic: Clinic, site: SiteFile) -> Clinic:
    """clinic.yaml as a patient of ``site`` reads it."""
    mail = site.email
    email = dataclasses.replace(
        clinic.email,
        from_address=mail.from_address or clinic.email.from_address,
        from_name=mail.from_name or clinic.email.from_name,
        reply_to=mail.reply_to or clinic.email.reply_to,
        closed_on=tuple(sorted({*clinic.email.closed_on, *mail.closed_on})),
    )
    return dataclasses.replace(
        clinic,
        name=site.name,
        phone=site.phone or clinic.phone,
        urgent_line=site.urgent_line or clinic.urgent_line,
        emergency_number=site.emergency_number or clinic.emergency_number,
        hours=site.hours or clinic.hours,
        address=site.address or clinic.address,
        timezone=site.timezone or clinic.timezone,
        send_time=site.send_time or clinic.send_time,
        website=site.website or clinic.website,
        booking_url=site.booking_url or clinic.booking_url,
        logo=site.logo or clinic.logo,
        email=email,
        translations=FrozenMap({**clinic.translations, **site.translations}),
    )


def check_logo(root: Path, logo: str, doc: Document, path: str = "logo") -> None:
    """A logo is an .svg file under templates/assets/: the only files the PDF renderer reads."""
    assets = (root / "templates" / "assets").resolve()
    found = (assets / logo).resolve()
    if not found.is_relative_to(assets) or found.suffix != ".svg" or not found.is_file():
        doc.add_at(path, f"expected an .svg file under templates/assets/; got {logo!r}")


def check_sender_name(name: str, doc: Document, path: str) -> None:
    """SendGrid refuses a From name that is not plain ASCII."""
    if not name.isascii():
        doc.add_at(path, f"expected plain ASCII (SendGrid refuses others); got {name!r}")


def _check_site(
    root: Path, site: SiteFile, doc: Document, languages: Sequence[str]
) -> None:
    if site.logo is not None:
        check_logo(root, site.logo, doc)
    if site.email.from_name is not None:
        check_sender_name(site.email.from_name, doc, "email.from_name")
    for code in site.translations:
        if code not in languages:
            shown = ", ".join(languages) or "none: no content is translated"
            doc.add_at(f"translations.{code}", f"expected a language the content is "
                       f"translated into ({shown}); got {code!r}")
    if site.hours is not None:
        # The site's own hours would otherwise print in English on a translated handout,
        # or the organisation's hours would print in its place.
        for code in languages:
            if code not in site.translations:
                doc.add_at("hours", f"expected translations.{code}.hours beside the site's "
                           f"own hours (its patients reading {code} see them); got none")
