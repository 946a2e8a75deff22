"""End to end in a real browser: Chromium, driven by Playwright, against `pipeline serve`.

Screenshots of every page go to test-artifacts/. These tests skip only when Chromium is not
installed and this is not CI; in CI (CI=true) a missing browser fails them. The patients' pages
are checked with axe-core (installed by `npm ci`), WCAG 2.1 A and AA rules: no violation.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pypdf import PdfReader

from aftercare.check.minimal import minimal_words
from aftercare.content.load import load_project
from aftercare.render.tokens import sign
from tests.conftest import ROOT
from tests.render.test_minimal import QUOTABLE, _words

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
SECRET = "b" * 40
USER, PASSWORD = "frontdesk", "correct horse battery"
# Every field of the checkout form, in the order Tab reaches them.
FIELDS = ["f-treatment", "f-treated_on", "f-areas", "f-provider", "f-product", "f-units",
          "f-lot", "f-first_name", "f-last_name", "f-email", "f-language", "f-also_print",
          "f-consent_aftercare", "f-consent_marketing"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"width": 390, "height": 844}  # a phone held upright, in CSS pixels


def _need_browser() -> None:
    problem = None
    if not CHROMIUM.exists():
        problem = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem}: browser tests must run in CI")
    pytest.skip(f"{problem}; browser tests skipped outside CI")


def server_env(database: Path) -> dict[str, str]:
    """What `pipeline serve` and the commands beside it run with: this database, this secret,
    emails written as files beside the database."""
    env = {**os.environ, "AFTERCARE_DB": str(database), "AFTERCARE_SECRET_KEY": SECRET,
           "AFTERCARE_OUTBOX_DIR": str(database.parent / "outbox"), "PYTHONUNBUFFERED": "1"}
    env.pop("SENDGRID_API_KEY", None)
    return env


COMMAND = [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`pipeline serve` on a free port with one staff account: (base URL, database)."""
    _need_browser()
    folder = tmp_path_factory.mktemp("serve")
    env = server_env(folder / "aftercare.db")
    command = COMMAND
    subprocess.run([*command, "staff", "add", USER], input=PASSWORD + "\n", env=env, text=True,
                   check=True, capture_output=True, timeout=60)
    process = subprocess.Popen([*command, "serve", "--port", "0"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    started = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
    try:
        assert started, process.stderr.read() if process.stderr else "no output"
        yield started[0], folder / "aftercare.db"
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        browser.set_default_timeout(10_000)
        try:
            yield browser
        finally:
            browser.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(context: BrowserContext, server: tuple[str, Path]) -> Iterator[Page]:
    context.clear_cookies()
    tab = context.new_page()
    yield tab
    tab.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A and AA rules run on the page as it is: each violation, with the
    elements it found. The script is handed to the page by the browser's debugging protocol,
    so the page's own Content-Security-Policy stays as the server sent it."""
    assert AXE.is_file(), f"{AXE} is missing: run `npm ci` (bash .ci/setup --test installs it)"
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate("""async (tags) => {
        const found = await axe.run(document, {runOnly: {type: "tag", values: tags}});
        return {passes: found.passes.length, violations: found.violations.map(v =>
            `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`)};
    }""", WCAG_21_AA)
    assert result["passes"] > 0, result  # it ran, and checked the page
    violations: list[str] = result["violations"]
    return violations


def find_patient(page: Page, query: str) -> str:
    """The staff page's patient search for ``query``: the text of its results."""
    page.get_by_role("link", name="Find a patient").click()
    page.get_by_label("Email address or first name").fill(query)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/patients/[\w-]+$"))
    return page.inner_text("main")


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/checkout")  # anonymous: sent to the login page
    assert page.url == f"{base}/login"
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/checkout")


def test_log_in_check_out_look_up_and_see_the_outbox(
    page: Page, server: tuple[str, Path]
) -> None:
    base, database = server
    page.goto(f"{base}/login")
    shot(page, "01-login")
    log_in(page, base)
    assert page.get_by_label("Treatment date").input_value()  # today, filled in
    shot(page, "02-checkout")

    page.get_by_label("Treatment", exact=True).select_option("botox-cosmetic")
    page.get_by_label("Areas treated").fill("frown lines, forehead")
    page.get_by_label("Treated by").fill("Dr Rivera")
    page.get_by_label("First name").fill("<b>Ann</b>")
    page.get_by_label("Last name").fill("Quillfeather")
    page.get_by_label("Email address", exact=True).fill("ann@example")  # a typing mistake
    page.get_by_label("I agree that the clinic may email me").check()
    page.get_by_role("button", name="Enrol and print handout").click()
    error = page.locator("#email-error")
    assert "Enter an email address like name@example.com." in error.inner_text()
    assert page.evaluate("document.activeElement.className") == "error-summary"
    assert page.get_by_label("First name").input_value() == "<b>Ann</b>"  # nothing lost
    shot(page, "03-checkout-problem")

    page.get_by_label("Email address", exact=True).fill("ann@example.com")
    page.get_by_role("button", name="Enrol and print handout").click()
    page.wait_for_url(re.compile(r"/checkout/[\w-]+$"))
    assert "The handout for <b>Ann</b> Quillfeather is ready to print." in page.inner_text("main")
    rows = page.locator("table tbody tr")
    # The first email goes out on the treatment evening, so its status depends on the hour the
    # test runs at (the server keeps real time); the second is always ahead.
    assert rows.count() == 3 and "Will be sent" in rows.nth(1).inner_text()
    shot(page, "04-confirmation")

    link = page.get_by_role("link", name=re.compile("Open the handout to print"))
    assert link.get_attribute("target") == "_blank"
    pdf = page.request.get(f"{base}{link.get_attribute('href')}")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline;")
    body = pdf.body()
    assert body.startswith(b"%PDF-")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert "<b>Ann</b> Quillfeather" in text and "Dr Rivera" in text

    main = find_patient(page, "ANN@example.com")
    assert "<b>Ann</b>" in main and "ann@example.com" in main and "Scheduled" in main
    shot(page, "05-lookup")

    page.get_by_role("link", name="Outbox").click()
    assert "Due in the next 7 days" in page.inner_text("main")
    shot(page, "06-outbox")

    db = sqlite3.connect(database)
    public_id = db.execute("SELECT public_id FROM messages ORDER BY id LIMIT 1").fetchone()[0]
    db.close()
    page.goto(f"{base}/unsubscribe?t={sign(public_id, SECRET.encode())}")
    assert "Stop aftercare emails?" in page.inner_text("main")
    assert axe_violations(page) == []
    shot(page, "07-unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    assert "You are unsubscribed" in page.inner_text("main")
    assert axe_violations(page) == []
    shot(page, "08-unsubscribed")
    page.goto(f"{base}/unsubscribe?t=altered")
    assert "This link does not work" in page.inner_text("main")
    assert axe_violations(page) == []


def focus_style(page: Page) -> dict[str, Any]:
    style: dict[str, Any] = page.evaluate("""() => {
        const e = document.activeElement, s = getComputedStyle(e);
        return {id: e.id || e.textContent.trim(), outline: s.outlineStyle,
                width: parseFloat(s.outlineWidth), shadow: s.boxShadow};
    }""")
    return style


def test_the_checkout_works_from_the_keyboard_with_focus_always_visible(
    page: Page, server: tuple[str, Path]
) -> None:
    base, _ = server
    page.goto(f"{base}/login")
    # Login: the username has focus already.
    page.wait_for_function("document.activeElement.id === 'f-username'")
    page.keyboard.type(USER)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/checkout")

    typed = {"f-areas": "forehead", "f-first_name": "Bea", "f-email": "bea@example.com"}
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        style = focus_style(page)
        reached.append(style["id"])
        assert style["outline"] != "none" and style["width"] >= 2, style
        if style["id"] == "f-areas":
            shot(page, "09-keyboard-focus")
        if style["id"] == "f-treatment":
            page.keyboard.press("ArrowDown")  # the first treatment
        elif style["id"] in typed:
            page.keyboard.type(typed[style["id"]])
        elif style["id"] == "f-consent_aftercare":
            page.keyboard.press("Space")
        elif style["id"] == "Enrol and print handout":
            break
    assert reached[0] == "Skip to main content"
    # A date field takes three stops (month, day, year); each field comes once, in order.
    fields = list(dict.fromkeys(r for r in reached if r in FIELDS))
    assert fields == FIELDS, reached
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/checkout/[\w-]+$"))
    assert "The handout for Bea is ready to print." in page.inner_text("main")
    # The confirmation puts focus on the handout link: Enter opens it.
    assert focus_style(page)["id"].startswith("Open the handout to print")


def test_the_accessibility_check_finds_what_it_should(page: Page) -> None:
    page.set_content('<html><body><img src="data:,"><a href="#"></a></body></html>')
    found = axe_violations(page)
    assert [v.split(" ")[0] for v in found] == [
        "document-title", "html-has-lang", "image-alt", "link-name"]


def test_a_migraine_patient_reads_their_aftercare_on_a_phone_and_staff_see_it_was_viewed(
    context: BrowserContext, page: Page, server: tuple[str, Path]
) -> None:
    """Done when: enrolled at the checkout page, the patient gets an email that gives nothing
    of the treatment away, reads the aftercare on a phone, and the staff see it was read."""
    base, database = server
    # At the desk: a migraine checkout, with details that are printed and never kept.
    log_in(page, base)
    page.get_by_label("Treatment", exact=True).select_option("botox-migraine")
    page.get_by_label("Areas treated").fill("forehead, temples, neck and shoulders")
    page.get_by_label("Treated by").fill("Dr Rivera")
    page.get_by_label("First name").fill("Dana")
    page.get_by_label("Last name").fill("Okonkwo")
    page.get_by_label("Email address", exact=True).fill("dana@example.com")
    page.get_by_label("I agree that the clinic may email me").check()
    page.get_by_role("button", name="Enrol and print handout").click()
    page.wait_for_url(re.compile(r"/checkout/[\w-]+$"))

    # The first email goes out when it is due (the file backend writes it as the provider
    # would receive it).
    db = sqlite3.connect(database)
    public_id, due = db.execute(
        "SELECT m.public_id, m.due_at FROM messages AS m JOIN enrollments AS e"
        " ON e.id = m.enrollment_id JOIN patients AS p ON p.id = e.patient_id"
        " WHERE p.email = 'dana@example.com' AND m.step_key = 'day-0'").fetchone()
    db.close()
    subprocess.run([*COMMAND, "send-due", "--now", due], env=server_env(database), check=True,
                   capture_output=True, timeout=120)
    raw = (database.parent / "outbox" / f"{public_id}.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)

    # It gives nothing away: no word of the list, no handout sentence, in any header or part.
    everything = "\n".join(
        [f"{k}: {v}" for part in message.walk() for k, v in part.items()]
        + [str(part.get_content()) for part in message.walk() if not part.is_multipart()])
    readable = re.sub(r"https://care\.juniperlane\.example/\S+", " ", everything)
    readable = re.sub(r"<[^>]+>", " ", readable)
    for word in minimal_words(load_project(ROOT)):
        spelled = r"\s+".join(re.escape(w) for w in word.split()).replace("'", "['’]?")
        assert not re.search(rf"(?<!\w){spelled}(?:['’]s|s|es)?(?!\w)", readable, re.I), word
    assert not [s for s in QUOTABLE if _words(s) in _words(readable)]
    plain = message.get_body(("plain",))
    assert plain is not None
    found = re.search(r"https://care\.juniperlane\.example(/care/[a-z2-7]+)\s",
                      plain.get_content())
    assert found, "no care link in the email"

    # On the phone: no staff session, an upright phone's width.
    context.clear_cookies()
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(f"{base}{found[1]}")
    assert phone.get_by_role("heading", name="Your first few days", level=1).is_visible()
    assert phone.get_by_role("heading", name="The first 24 hours").is_visible()
    main = phone.inner_text("main")
    assert "Do not rub or massage the needle spots." in main
    assert "Get emergency care now" in main and "Okonkwo" not in main
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"
    size = phone.evaluate("parseFloat(getComputedStyle(document.querySelector('.care li'))"
                          ".fontSize)")
    assert size >= 16
    assert axe_violations(phone) == []
    shot(phone, "10-care-page-phone")
    phone.emulate_media(media="print")
    assert not phone.locator(".site-header").is_visible()
    assert phone.locator(".care h1").is_visible()
    shot(phone, "11-care-page-print")
    phone.emulate_media(media="screen")
    phone.goto(f"{base}/care/not-a-real-link")
    assert "This link does not work" in phone.inner_text("main")
    assert axe_violations(phone) == []
    shot(phone, "12-care-link-not-valid")
    phone.close()

    # At the desk: the patient page and the outbox say it was read.
    log_in(page, base)
    assert "Viewed on the care page:" in find_patient(page, "dana@example.com")
    shot(page, "13-lookup-viewed")
    page.get_by_role("link", name="Outbox").click()
    viewed = page.locator("section", has=page.get_by_role(
        "heading", name=re.compile("Read on the care page")))
    assert "Dana" in viewed.inner_text() and "Viewed on the care page:" in viewed.inner_text()


def test_a_spanish_checkout_gives_a_spanish_handout_spanish_emails_and_a_spanish_care_page(
    context: BrowserContext, page: Page, server: tuple[str, Path], tmp_path: Path
) -> None:
    base, database = server
    log_in(page, base)
    page.get_by_label("Treatment", exact=True).select_option("botox-migraine")
    page.get_by_label("First name").fill("Lucía")
    page.get_by_label("Last name").fill("Peña")
    page.get_by_label("Email address", exact=True).fill("lucia@example.com")
    page.get_by_label("Language of the handout and emails").select_option(label="Español")
    page.get_by_label("Also print the handout in").select_option(label="English")
    page.get_by_label("I agree that the clinic may email me").check()
    shot(page, "14-checkout-spanish")
    page.get_by_role("button", name="Enrol and print handout").click()
    page.wait_for_url(re.compile(r"/checkout/[\w-]+$"))
    main = page.inner_text("main")
    assert "The handout for Lucía Peña is ready to print." in main
    assert "(Español and English)" in main
    shot(page, "15-confirmation-spanish")

    link = page.get_by_role("link", name=re.compile("Open the handout to print"))
    pdf = PdfReader(io.BytesIO(page.request.get(f"{base}{link.get_attribute('href')}").body()))
    pages = ["".join(p.extract_text().split()) for p in pdf.pages]
    assert len(pages) == 4 and pdf.trailer["/Root"]["/Lang"] == "es-US"
    assert "LucíaPeña" in pages[0] and "Busqueatencióndeemergenciaahora" in pages[0]
    assert "Sabuscaatención" not in pages[0] and "Getemergencycarenow" in pages[2]
    diary = page.get_by_role("link", name=re.compile("Open the headache diary"))
    diary_pdf = PdfReader(io.BytesIO(page.request.get(f"{base}{diary.get_attribute('href')}")
                                     .body()))
    assert "Midiariodedolordecabeza" in "".join(diary_pdf.pages[0].extract_text().split())

    assert "Language: Español" in find_patient(page, "lucia@example.com")
    shot(page, "16-lookup-spanish")

    # The first email, sent as cron would send it a day later: in Spanish, and minimal (the
    # migraine emails are), with a link to the Spanish care page.
    outbox = tmp_path / "outbox"
    env = {**os.environ, "AFTERCARE_DB": str(database), "AFTERCARE_SECRET_KEY": SECRET,
           "AFTERCARE_OUTBOX_DIR": str(outbox)}
    env.pop("SENDGRID_API_KEY", None)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ")
    subprocess.run([sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT),
                    "send-due", "--now", later], env=env, check=True, capture_output=True,
                   timeout=120)
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(outbox.glob("*.eml"))]
    subjects = [m["Subject"] for m in messages if m["To"].endswith("<lucia@example.com>")
                or m["To"] == "lucia@example.com"]
    assert subjects == ["Cómo cuidarse después de su visita"]
    (sent,) = [m for m in messages if "lucia@example.com" in m["To"]]
    assert isinstance(sent, EmailMessage)
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Hola, Lucía:" in text and "Sus notas de cuidados" in text
    assert "Las primeras 24 horas" not in text  # the aftercare itself is on the care page
    found = re.search(r"https://care\.juniperlane\.example(/care/es/[a-z2-7]+)\s", text)
    assert found, "no Spanish care link in the email"

    # On the phone: the care page in Spanish, accessible.
    context.clear_cookies()
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(f"{base}{found[1]}")
    assert phone.get_attribute("html", "lang") == "es"
    assert phone.get_by_role("heading", name="Sus primeros días", level=1).is_visible()
    assert phone.get_by_role("heading", name="Las primeras 24 horas").is_visible()
    assert "Busque atención de emergencia ahora" in phone.inner_text("main")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe_violations(phone) == []
    shot(phone, "17-care-page-spanish-phone")
    phone.goto(f"{base}/care/es/not-a-real-link")
    assert phone.get_attribute("html", "lang") == "es"
    assert "Este enlace no funciona" in phone.inner_text("main")
    assert axe_violations(phone) == []
    shot(phone, "18-care-link-not-valid-spanish")
    phone.close()

    db = sqlite3.connect(database)
    public_id = db.execute(
        "SELECT m.public_id FROM messages AS m JOIN enrollments AS e ON e.id = m.enrollment_id"
        " JOIN patients AS p ON p.id = e.patient_id WHERE p.email = ? ORDER BY m.id LIMIT 1",
        ("lucia@example.com",)).fetchone()[0]
    db.close()
    page.goto(f"{base}/unsubscribe?l=es&t={sign(public_id, SECRET.encode())}")
    assert page.get_attribute("html", "lang") == "es"
    assert "¿Dejar de recibir correos de cuidados?" in page.inner_text("main")
    assert axe_violations(page) == []
    shot(page, "19-unsubscribe-spanish")
