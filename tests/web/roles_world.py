"""Two sites' patients and staff in one outbox, for the role and site checks.

Site A is the implicit site "main" (the organisation's own, clinic.yaml); site B is the sample
site "portland" (sites/portland.yaml). GONE, "north", is a site this project has no settings
for (one closed since, say)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Final

from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.enrol.enrolment import enroll_one
from aftercare.enrol.rules import parse_enrollment
from aftercare.outbox.store import Outbox
from aftercare.web.auth import StaffAccounts
from tests.web.conftest import NOW, PASSWORD, SECRET, log_in, token

A: Final = "main"
B: Final = "portland"
GONE: Final = "north"
# username: (role, sites); no sites: every site.
STAFF: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "desk_a": ("front_desk", (A,)),
    "desk_b": ("front_desk", (B,)),
    "manager_a": ("manager", (A,)),
    "manager_b": ("manager", (B,)),
    "manager_ab": ("manager", (A, B)),
    "admin": ("administrator", ()),
}
# email: (first name, site)
PATIENTS: Final = {
    "ann@example.com": ("Ann", A),
    "bea@example.com": ("Bea", B),
}


def add_people(db_path: Path, project: Project) -> None:
    """STAFF's accounts and PATIENTS' enrolments (the cosmetic campaign, treated today)."""
    with Outbox.open(db_path) as outbox:
        accounts = StaffAccounts(outbox, SECRET)
        for username, (role, sites) in STAFF.items():
            accounts.add(username, PASSWORD, NOW, role, sites)
        for email, (first_name, site) in PATIENTS.items():
            fields = {"email": email, "first_name": first_name, "campaign": "botox-cosmetic",
                      "treated_on": "2026-11-23"}
            enrollment = parse_enrollment(fields, project, NOW, "cli:test")
            enroll_one(outbox, project, dataclasses.replace(enrollment, site=site), NOW)


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    response = log_in(client, username, PASSWORD)
    assert response.status_code == 303, response.text
    return client


def search(client: FlaskClient, query: str) -> str:
    """Look a patient up; the results page's URL."""
    response = client.post("/patients", data={"query": query, "csrf_token": token(client)})
    assert response.status_code == 303, response.text
    location: str = response.headers["Location"]
    return location


def states(db_path: Path) -> list[tuple[str, str]]:
    """(address, state) of every message: what an action changed, or did not."""
    with Outbox.open(db_path) as outbox:
        return [(str(m.email), m.state.value) for m in outbox.messages()]


def without_keys(html: str) -> str:
    """A page without what differs between two requests anyway: tokens and lookup keys."""
    html = re.sub(r'name="csrf_token" value="[^"]+"', "", html)
    return re.sub(r"/patients/[A-Za-z0-9_-]{22}", "/patients/KEY", html)
