"""Every email, as rendered, checked against the caniemail.com data for the clients patients use.

The check runs doiuse-email (Node.js, installed by .ci/setup --test from package-lock.json) on
every step of every campaign. A feature a client lacks must be listed below with what that
client shows instead; anything else fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.render.emails import EmailRenderer
from aftercare.render.previews import PREVIEW_KEY, preview_recipient
from tests.conftest import ROOT
from tests.render.test_emails import preview_all

# Gmail (web, iOS and Android apps, mobile web), Outlook for Windows (the Word-based desktop
# app, the Windows Mail app, and the new Outlook, which renders like Outlook.com), Apple Mail
# on macOS and iOS Mail.
CLIENTS = (
    "gmail.desktop-webmail", "gmail.ios", "gmail.android", "gmail.mobile-webmail",
    "outlook.windows", "outlook.windows-mail", "outlook.outlook-com",
    "apple-mail.macos", "apple-mail.ios",
)
# Each feature some of those clients lack, and what a patient sees there instead.
ACCEPTED = {
    "@media": "only the dark-mode colours use it: without it the email keeps its light colours "
              "(the layout itself needs no @media)",
    "display:none": "hides the preview text: where it is not hidden, one line of preview text "
                    "shows above the email",
    "overflow": "hides the preview text: Outlook hides it with mso-hide:all instead",
    "white-space": "keeps phone numbers on one line: their spaces are no-break spaces anyway",
    "role attribute": "tells screen readers that layout tables are not data tables; without it "
                      "they read the cells in order, which is the reading order",
    "aria-label attribute": "names the email for screen readers; without it they read the title",
}
_ERROR = re.compile(r"^`(?P<feature>.+)` is not supported by `(?P<client>[a-z0-9.-]+)`$")
CHECKER = ROOT / "tests" / "email_clients.mjs"


def check(files: list[Path]) -> dict[str, dict[str, list[str]]]:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for this test: run bash .ci/setup --test"
    assert (ROOT / "node_modules" / "doiuse-email").is_dir(), "run bash .ci/setup --test"
    done = subprocess.run([node, str(CHECKER), ",".join(CLIENTS), *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=True)
    results: dict[str, dict[str, list[str]]] = json.loads(done.stdout)["results"]
    return results


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every email as sent, in every language, and the full emails of minimal campaigns too
    (another clinic may send those)."""
    out = tmp_path_factory.mktemp("emails")
    project = load_project(ROOT)
    written = preview_all(project, out)
    renderer = EmailRenderer(project, PREVIEW_KEY)
    for language in project.languages:
        for campaign in project.campaigns.values():
            if project.content_of(campaign) != "minimal":
                continue
            for step in campaign.steps:
                recipient = preview_recipient(project, language)
                full = renderer.render(campaign, step, recipient, "full")
                path = out / f"{language}-{campaign.id}-{step.key}-full.html"
                path.write_text(full.html, encoding="utf-8")
                written.append(path)
    return sorted(p for p in written if p.suffix == ".html")


def test_every_email_uses_only_features_its_clients_support_or_that_have_a_fallback(
    rendered: list[Path],
) -> None:
    project = load_project(ROOT)
    # Every step in English and in Spanish; a minimal campaign's full emails too.
    assert len(rendered) == len(project.languages) * sum(
        len(c.steps) * (1 + (project.content_of(c) == "minimal"))
        for c in project.campaigns.values())
    unsupported: dict[str, set[str]] = {}
    for file, result in check(rendered).items():
        for error in result["errors"]:
            match = _ERROR.match(error)
            assert match is not None, f"{file}: unexpected checker output {error!r}"
            assert match["client"] in CLIENTS
            unsupported.setdefault(match["feature"], set()).add(match["client"])
    surprises = {f: sorted(c) for f, c in unsupported.items() if f not in ACCEPTED}
    assert surprises == {}, "features these clients lack, with no fallback listed in ACCEPTED"
    # The list stays honest: every accepted gap is one the emails really have.
    assert sorted(unsupported) == sorted(ACCEPTED)


def test_the_checker_flags_a_layout_outlook_cannot_show(tmp_path: Path) -> None:
    page = tmp_path / "flex.html"
    page.write_text('<!DOCTYPE html><html><body><div style="display: flex">'
                    "<p>One</p><p>Two</p></div></body></html>")
    errors = check([page])[str(page)]["errors"]
    assert errors == ["`display:flex` is not supported by `outlook.windows`",
                      "`display:flex` is not supported by `outlook.windows-mail`"]


def test_the_layout_reads_well_without_media_queries(rendered: list[Path]) -> None:
    for file in rendered:
        html = file.read_text()
        # One fluid column: max-width for the clients that know it, a 600px table that only
        # Outlook for Windows reads (conditional comments) for the one that does not.
        assert re.search(r'class="container" style="max-width: 600px;margin: 0 auto;', html)
        ghost = re.search(r"<!--\[if mso\]>\s*<table role=\"presentation\" width=\"600\" "
                          r"align=\"center\"[^>]*><tr><td>\s*<!\[endif\]-->", html)
        assert ghost is not None, file
        assert html.count("<!--[if mso]>") == html.count("<![endif]-->") == 3
        # The only @media rule is the dark-mode extra.
        assert re.findall(r"@media[^{]*", html) == ["@media (prefers-color-scheme: dark) "]
        # Nothing in the layout is wider than a phone: no fixed widths beyond the ghost table.
        widths = {int(w) for w in re.findall(r'width="(\d+)"', html)}
        assert widths <= {600}, file
