"""The care page behind a minimal email's link: the content, the headers, the tokens it refuses
alike, its expiry, the per-address limit, the reminder and handout, and the 'viewed' event."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aftercare.content.model import Project
from aftercare.delivery.files import FileBackend
from aftercare.outbox.store import Outbox
from aftercare.render.care_links import CARE_PATH
from aftercare.render.emails import EmailRenderer, Recipient
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.tokens import read_care, sign, sign_care
from aftercare.send.dispatch import send_due
from tests.render.test_minimal import Blocks
from tests.web.conftest import PASSWORD, SECRET, Clock, check_out, log_in, make_app
from tests.web.test_checkout import pdf_text, visible
from tests.web.test_patients import search

DUE = {  # the migraine steps for a treatment on Monday 23 November 2026, 10:00 at the clinic
    "day-0": dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC),
    "week-2": dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC),
    "week-10": dt.datetime(2027, 2, 1, 15, 0, tzinfo=dt.UTC),
}
READ_AT = dt.datetime(2026, 11, 24, 1, 30, tzinfo=dt.UTC)  # 20:30 the same evening
HEADERS = ("Content-Security-Policy", "Cache-Control", "Referrer-Policy", "X-Robots-Tag",
           "X-Content-Type-Options", "X-Frame-Options", "Content-Type")


@dataclass(frozen=True)
class Sent:
    """One migraine patient, checked out at the desk; every email written as a file."""

    emls: dict[str, EmailMessage]  # step key -> the message
    public_ids: dict[str, str]

    def link(self, step: str) -> str:
        """The care page path the step's email links to."""
        text = self.emls[step].get_body(("plain",))
        assert text is not None
        found = re.search(r"https://care\.juniperlane\.example(/care/\S+)", text.get_content())
        assert found, "no care link"
        return found[1]


@pytest.fixture
def desk(app: Flask, staff: str) -> FlaskClient:
    """The front desk, logged in (patients use ``client``, which has no session)."""
    desk = app.test_client()
    assert log_in(desk, staff, PASSWORD).status_code == 303
    return desk


@pytest.fixture
def sent(desk: FlaskClient, project: Project, db_path: Path, clock: Clock) -> Sent:
    response = check_out(desk, treatment="botox-migraine", first_name="Ann",
                         last_name="Quillfeather", areas="left temple only",
                         product="BOTOX 155 Units", lot="C7781QX", consent_marketing="yes")
    assert response.status_code == 303
    sent = send_every_step(project, db_path)
    clock.now = READ_AT
    return sent


def send_every_step(project: Project, db_path: Path) -> Sent:
    """Every email of the one migraine patient checked out, sent when due, read back from the
    files the file backend wrote."""
    folder = db_path.parent / "outbox"
    with Outbox.open(db_path) as outbox:
        for due in DUE.values():
            send_due(outbox, project, EmailRenderer(project, SECRET), FileBackend(folder), due, 10)
        public_ids = {m.step_key: m.public_id for m in outbox.messages()}
        assert [m.state for m in outbox.messages()] == ["sent"] * 3
    emls = {key: email.message_from_bytes((folder / f"{pid}.eml").read_bytes(),
                                          policy=email.policy.default)
            for key, pid in public_ids.items()}
    return Sent(emls, public_ids)


def _trail(db_path: Path, kind: str) -> list[tuple[str, str, str | None]]:
    with Outbox.open(db_path) as outbox:
        return [(e.at.isoformat(), e.actor, e.detail) for e in outbox.events() if e.kind == kind]


# ------------------------------------------------------------------ the page


def test_the_emails_link_opens_the_steps_aftercare_with_strict_headers(
    client: FlaskClient, sent: Sent
) -> None:
    response = client.get(sent.link("day-0"))
    assert response.status_code == 200
    page = visible(response.text)
    assert "Your first few days" in page
    assert "Do not rub or massage the needle spots. You can wash gently." in page
    assert "Get emergency care now" in page and "Hard to swallow, speak or breathe" in page
    assert "The link works until 23 March 2027." in page
    assert "<title>Your aftercare notes · Juniper Lane Clinic</title>" in response.text
    assert '<meta name="robots" content="noindex">' in response.text
    assert "Quillfeather" not in response.text and "Ann" not in page  # no name on the page
    staff_policy = client.get("/login").headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"] == staff_policy
    assert "script-src" not in staff_policy and "'unsafe-inline'" not in staff_policy
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert "Set-Cookie" not in response.headers  # no session for a patient


def test_the_page_shows_exactly_what_the_full_email_would_have(
    client: FlaskClient, sent: Sent, project: Project
) -> None:
    campaign = project.campaigns["botox-migraine"]
    for step in campaign.steps:
        link = read_care(sent.link(step.key).rsplit("/", 1)[1], SECRET)
        full = EmailRenderer(project, SECRET).render(campaign, step, Recipient(
            first_name="Ann", email=sent.emls[step.key]["To"].addresses[0].addr_spec,
            language="en", treated_on=dt.date(2026, 11, 23),
            local_due=link.issued.astimezone(project.clinic.timezone.zone),
            public_id=sent.public_ids[step.key]), "full")
        email_blocks = Blocks(full.html, region=("td", "content"))
        page_blocks = Blocks(client.get(sent.link(step.key)).text, region=("article", "care"))
        shown = [b for b in email_blocks.items if b[1] != "signoff" and b[2] != "Hello Ann,"]
        assert page_blocks.items == shown, step.key
        assert page_blocks.links == email_blocks.links


def test_the_reminder_is_the_emails_attachment_and_the_handout_is_made_from_what_is_kept(
    client: FlaskClient, sent: Sent
) -> None:
    page = client.get(sent.link("week-10")).text
    assert "Save the reminder to your calendar" in page
    calendar = client.get(sent.link("week-10") + "/reminder.ics")
    assert calendar.status_code == 200 and calendar.mimetype == "text/calendar"
    assert calendar.headers["Content-Disposition"] == 'attachment; filename="next-visit.ics"'
    (attached,) = sent.emls["week-10"].iter_attachments()
    assert calendar.data == attached.get_content().encode()
    assert calendar.headers["X-Robots-Tag"] == "noindex"
    assert "Save the reminder" not in client.get(sent.link("day-0")).text
    assert client.get(sent.link("day-0") + "/reminder.ics").status_code == 404

    assert "It does not show your last name" in visible(page)
    handout = client.get(sent.link("week-10") + "/handout.pdf")
    assert handout.status_code == 200 and handout.mimetype == "application/pdf"
    assert handout.headers["Content-Disposition"] == 'inline; filename="handout.pdf"'
    text = pdf_text(handout.data)
    assert "Ann" in text and "After your treatment for chronic migraine" in text
    for never_kept in ("Quillfeather", "C7781QX", "BOTOX 155", "left temple only"):
        assert never_kept not in text


def test_without_the_clinics_consent_there_is_no_handout(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer, sent: Sent
) -> None:
    email_settings = dataclasses.replace(project.clinic.email, care_handout=False)
    clinic = dataclasses.replace(project.clinic, email=email_settings)
    app = make_app(dataclasses.replace(project, clinic=clinic), db_path, clock, renderer)
    client = app.test_client()
    assert "handout" not in visible(client.get(sent.link("week-10")).text).lower()
    refused = client.get(sent.link("week-10") + "/handout.pdf")
    assert refused.status_code == 404 and "This link does not work" in refused.text


# ------------------------------------------------------------------ viewed, never delivered


def test_the_first_view_is_recorded_and_shown_to_staff_without_changing_delivery(
    client: FlaskClient, desk: FlaskClient, sent: Sent, db_path: Path, clock: Clock
) -> None:
    with Outbox.open(db_path) as outbox:
        before = {m.step_key: m for m in outbox.messages()}
    assert client.head(sent.link("day-0")).status_code == 200  # a link checker: not a view
    assert _trail(db_path, "viewed") == []
    client.get(sent.link("day-0"))
    clock.advance(hours=1)
    client.get(sent.link("day-0"))
    client.get(sent.link("day-0") + "/handout.pdf")
    assert _trail(db_path, "viewed") == [(READ_AT.isoformat(), "patient", None)]
    with Outbox.open(db_path) as outbox:
        after = {m.step_key: m for m in outbox.messages()}
    assert after["day-0"] == dataclasses.replace(before["day-0"], viewed_at=READ_AT)
    assert after["week-2"] == before["week-2"]
    # The staff see it on the patient page and in the outbox (a new working day: log in).
    assert log_in(desk, "frontdesk", PASSWORD).status_code == 303
    results = visible(desk.get(search(desk, "Ann")).text)
    assert "Viewed on the care page: Mon 23 Nov 2026, 20:30 EST" in results
    assert results.count("Viewed on the care page") == 1
    outbox_page = visible(desk.get("/outbox").text)
    assert "Read on the care page in the last 7 days (1)" in outbox_page
    assert "Viewed on the care page: Mon 23 Nov 2026, 20:30 EST" in outbox_page


# ------------------------------------------------------------------ links that do not open


def _altered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("a" if token[middle] != "a" else "b") + token[middle + 1 :]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every outbox lookup by public id, in order (the real lookups still run)."""
    seen: list[str] = []
    original = Outbox.message_by_public_id

    def counted(self: Outbox, public_id: str) -> object:
        seen.append(public_id)
        return original(self, public_id)

    monkeypatch.setattr(Outbox, "message_by_public_id", counted)
    return seen


def test_tampered_foreign_unknown_and_malformed_links_all_get_the_same_answer(
    client: FlaskClient, sent: Sent, lookups: list[str], db_path: Path
) -> None:
    good = sent.link("day-0").rsplit("/", 1)[1]
    issued = read_care(good, SECRET).issued
    bad = {
        "tampered": _altered(good),
        "foreign": sign_care(sent.public_ids["day-0"], issued, b"another clinic's key" * 2),
        "unknown": sign_care("0123456789abcdef0123456789abcdef", issued, SECRET),
        "unsubscribe": sign(sent.public_ids["day-0"], SECRET),
        "malformed": "not-a-token",
        "truncated": good[:-4],
        "long": "a" * 500,
    }
    answers = {}
    for kind, token in bad.items():
        lookups.clear()
        response = client.get(f"{CARE_PATH}{token}")
        answers[kind] = (response.status_code, response.data,
                         [(h, response.headers.get(h)) for h in HEADERS])
        assert len(lookups) == 1, kind  # the same work for every kind: one MAC, one lookup
        for sub in ("/reminder.ics", "/handout.pdf"):
            assert client.get(f"{CARE_PATH}{token}{sub}").data == response.data
    first = answers["tampered"]
    assert all(answer == first for answer in answers.values())
    assert first[0] == 404
    page = visible(first[1].decode())
    assert "This link is not valid. It may be incomplete, or it may have been changed." in page
    assert "(617) 555-0142" in page and "call 911 now" in page
    assert ("X-Robots-Tag", "noindex") in first[2] and ("Cache-Control", "no-store") in first[2]
    assert _trail(db_path, "viewed") == []
    lookups.clear()
    assert client.get(f"{CARE_PATH}{good}").status_code == 200 and len(lookups) == 1


def test_a_link_past_its_days_says_so_and_gives_the_number(
    client: FlaskClient, sent: Sent, clock: Clock, db_path: Path
) -> None:
    # Sent at 18:00 on 23 November in New York: it opens through 23 March 2027 there.
    clock.now = dt.datetime(2027, 3, 24, 3, 59, tzinfo=dt.UTC)  # 23:59 on the 23rd (EDT)
    assert client.get(sent.link("day-0")).status_code == 200
    clock.now = dt.datetime(2027, 3, 24, 4, 0, tzinfo=dt.UTC)
    response = client.get(sent.link("day-0"))
    assert response.status_code == 410
    page = visible(response.text)
    assert "This link has expired" in page
    assert "the link in our email works for 120 days" in page
    assert "That time is over. Please call us at (617) 555-0142" in page
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert client.get(sent.link("day-0") + "/reminder.ics").status_code == 410
    assert [at for at, _, _ in _trail(db_path, "viewed")] == [
        "2027-03-24T03:59:00+00:00"]  # the expired visit is no view


def test_a_shorter_setting_closes_links_already_sent(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer, sent: Sent
) -> None:
    email_settings = dataclasses.replace(project.clinic.email, care_link_days=7)
    clinic = dataclasses.replace(project.clinic, email=email_settings)
    client = make_app(dataclasses.replace(project, clinic=clinic), db_path, clock,
                      renderer).test_client()
    clock.now = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
    assert client.get(sent.link("day-0")).status_code == 410
    assert client.get(sent.link("week-2")).status_code == 200


# ------------------------------------------------------------------ too many requests


def test_each_address_is_limited_and_told_when_to_come_back(
    project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer, sent: Sent
) -> None:
    client = make_app(project, db_path, clock, renderer,
                      care_requests_per_minute=3).test_client()
    here = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get(sent.link("day-0"), environ_base=here).status_code == 200
    assert client.get(f"{CARE_PATH}guess1", environ_base=here).status_code == 404
    assert client.get(sent.link("week-2"), environ_base=here).status_code == 200
    clock.advance(seconds=20)
    refused = client.get(sent.link("day-0"), environ_base=here)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40"
    assert refused.headers["X-Robots-Tag"] == "noindex"
    assert "Please try again in a minute." in visible(refused.text)
    assert "(617) 555-0142" in refused.text
    other = {"REMOTE_ADDR": "198.51.100.4"}
    assert client.get(sent.link("day-0"), environ_base=other).status_code == 200
    assert client.get("/unsubscribe?t=x", environ_base=here).status_code == 400  # not limited
    clock.advance(seconds=40)
    assert client.get(sent.link("day-0"), environ_base=here).status_code == 200


# ------------------------------------------------------------------ unsubscribing, as before


def test_unsubscribe_works_from_a_minimal_email_as_from_any(
    client: FlaskClient, sent: Sent, db_path: Path
) -> None:
    header = sent.emls["week-2"]["List-Unsubscribe"]
    url = header.strip("<>").removeprefix("https://care.juniperlane.example")
    page = client.get(url)
    assert page.status_code == 200 and "Stop aftercare emails?" in page.text
    text = sent.emls["week-2"].get_body(("plain",))
    assert text is not None and header.strip("<>") in text.get_content()
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    with Outbox.open(db_path) as outbox:
        assert outbox.is_suppressed("ann@example.com")

