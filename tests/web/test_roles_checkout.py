"""The checkout by role and site: it is at one of the member's sites (no choice shown when
they have one), a site not theirs is refused, and a receipt is its own member's only."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from pypdf import PdfReader

from aftercare.content.model import Project
from aftercare.outbox.store import Outbox
from aftercare.web.auth import StaffAccounts
from aftercare.web.roles import StaffMember, site_choices
from tests.web.conftest import NOW, PASSWORD, SECRET, checkout_form, count, token
from tests.web.roles_world import GONE, A, B, add_people, signed_in, without_keys


@pytest.fixture
def world(app: Flask, db_path: Path, project: Project) -> Flask:
    add_people(db_path, project)
    return app


def test_the_checkout_is_at_one_of_the_members_sites(
    world: Flask, database: sqlite3.Connection
) -> None:
    desk = signed_in(world, "desk_a")
    page = desk.get("/checkout")
    assert page.status_code == 200
    assert 'name="site"' not in page.text  # one site: nothing to choose
    form = {**checkout_form(email="cy@example.com", first_name="Cy", consent_marketing="yes"),
            "csrf_token": token(desk)}
    done = desk.post("/checkout", data=form)
    assert done.status_code == 303
    actor = "staff:desk_a (front_desk at main)"
    row = database.execute("SELECT e.site, e.consent_recorded_by FROM enrollments e JOIN"
                           " patients p ON p.id = e.patient_id WHERE p.email = ?",
                           ("cy@example.com",)).fetchone()
    assert tuple(row) == (A, actor)
    kinds = database.execute("SELECT DISTINCT kind FROM events WHERE actor = ? ORDER BY kind",
                             (actor,)).fetchall()
    assert [k[0] for k in kinds] == [
        "enrolled", "handout-printed", "scheduled", "staff-login"]
    # The handout printed is the patient's.
    pdf = desk.get(done.headers["Location"] + "/handout.pdf")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Cy Quillfeather" in text


def test_a_checkout_at_a_site_not_theirs_is_refused(
    world: Flask, database: sqlite3.Connection
) -> None:
    desk = signed_in(world, "desk_a")
    before = count(database, "enrollments"), count(database, "events")

    def post(site: str) -> tuple[int, str]:
        form = {**checkout_form(email="cy@example.com"), "site": site,
                "csrf_token": token(desk)}
        response = desk.post("/checkout", data=form)
        return response.status_code, without_keys(response.text).replace(f'"{site}"', "SITE")

    refused = post(B)
    assert refused == post("nowhere")  # another site: answered as a site that does not exist
    assert refused[0] == 400 and "Choose the site from the list." in refused[1]
    assert (count(database, "enrollments"), count(database, "events")) == before
    # Naming their own site is the same as naming none.
    assert post(A)[0] == 303


def test_a_member_of_no_site_the_project_has_cannot_check_out(
    world: Flask, database: sqlite3.Connection, db_path: Path
) -> None:
    # desk_gone works at "north", which this project has no settings for (no sites/north.yaml).
    with Outbox.open(db_path) as outbox:
        StaffAccounts(outbox, SECRET).add("desk_gone", PASSWORD, NOW, "front_desk", (GONE,))
    desk = signed_in(world, "desk_gone")
    page = desk.get("/checkout").text
    assert "Your account works at no site this installation has" in page
    before = count(database, "enrollments")
    for site in ("", GONE):
        form = {**checkout_form(email="cy@example.com"), "site": site, "csrf_token": token(desk)}
        assert desk.post("/checkout", data=form).status_code == 400
    assert count(database, "enrollments") == before


def test_the_choice_of_site_lists_only_the_members_sites() -> None:
    known = ("downtown", "main", "north")
    both = StaffMember(1, "x", "front_desk", frozenset({"main", "north", "closed"}))
    assert site_choices(both, known) == ("main", "north")
    assert site_choices(StaffMember(2, "y", "manager", frozenset({"north"})), known) == ("north",)
    assert site_choices(StaffMember(3, "z", "administrator", None), known) == known


def test_a_receipt_is_its_members_only(world: Flask, project: Project) -> None:
    desk = signed_in(world, "desk_a")
    form = {**checkout_form(treatment="botox-migraine", email="cy@example.com"),
            "csrf_token": token(desk)}
    receipt = desk.post("/checkout", data=form).headers["Location"]
    assert re.fullmatch(r"/checkout/[A-Za-z0-9_-]+", receipt)
    other = signed_in(world, "admin")
    for tail in ("", "/handout.pdf", "/diary.pdf"):
        assert desk.get(receipt + tail).status_code == 200
        refused, missing = other.get(receipt + tail), other.get(f"/checkout/{'x' * 22}{tail}")
        assert (refused.status_code, refused.text) == (404, missing.text)
