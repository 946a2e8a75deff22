"""Roles in a real browser against `pipeline serve`: a manager made on the command line adds a
front desk account on the staff page (checked with axe-core, WCAG 2.1 AA); the front desk
member then sees only checkout and look-up, and the outbox is not there for them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from tests.web.test_browser import (  # noqa: F401  (the fixtures: one server, one browser)
    COMMAND,
    axe_violations,
    context,
    page,
    server,
    server_env,
    shot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

MANAGER, DESK, PASSWORD = "manager1", "desk1", "a long enough passphrase"


def sign_in(page: Page, base: str, username: str) -> None:  # noqa: F811
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/checkout")


def test_a_manager_adds_a_front_desk_account_who_sees_only_the_desk_pages(
    page: Page, server: tuple[str, Path]  # noqa: F811
) -> None:
    base, database = server
    made = subprocess.run(
        [*COMMAND, "staff", "add", MANAGER, "--role", "manager", "--site", "main"],
        input=PASSWORD + "\n", env=server_env(database), text=True, capture_output=True,
        timeout=60, check=True)
    assert made.stdout.startswith(f"added staff account '{MANAGER}': manager at main;")

    sign_in(page, base, MANAGER)
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link").all_inner_texts() == [
        "Checkout", "Find a patient", "Outbox", "Staff", "Figures"]
    nav.get_by_role("link", name="Staff").click()
    page.wait_for_url(f"{base}/staff")
    main = page.inner_text("main")
    assert "The front desk staff and managers who work at your sites (main)." in main
    assert MANAGER in main and "frontdesk" not in main  # the administrator is not theirs
    options = page.get_by_label("Role").locator("option").all_inner_texts()
    assert options == ["Front desk", "Manager"]
    assert axe_violations(page) == []
    shot(page, "roles-01-staff")

    page.get_by_role("button", name="Add account").click()  # nothing filled in
    assert "Expected 1 to 64 letters" in page.inner_text(".error-summary")
    assert axe_violations(page) == []
    page.get_by_label("Username").fill(DESK)
    page.locator("#f-password").fill(PASSWORD)
    page.get_by_label("Role").select_option("front_desk")
    assert page.get_by_role("checkbox", name="main").is_checked()  # their only site
    page.get_by_role("button", name="Add account").click()
    page.wait_for_url(f"{base}/staff")
    assert f"Added {DESK} (front desk at main)." in page.inner_text("main")
    assert page.locator("table tbody tr").filter(has_text=DESK).count() == 1
    shot(page, "roles-02-added")

    sign_in(page, base, DESK)
    assert nav.get_by_role("link").all_inner_texts() == ["Checkout", "Find a patient"]
    assert page.locator("#f-site").count() == 0  # one site: no choice to make
    page.goto(f"{base}/outbox")
    assert "Page not found" in page.title()
    page.goto(f"{base}/staff")
    assert re.search("does not exist", page.inner_text("main"))
    shot(page, "roles-03-front-desk-refused")
