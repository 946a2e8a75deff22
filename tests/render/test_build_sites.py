"""The build makes each site's checkout sheets and email previews under sites/<id>/, and
remakes them only when something they are made from changed (the site's file among them)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pypdf import PdfReader

from aftercare.content.load import load_project
from aftercare.render.build import build
from tests.conftest import ROOT
from tests.render.test_build import CAMPAIGN, EVERYTHING, _copy_project

SITE = {"sites/portland/handouts/aftercare-cosmetic"} | {
    f"sites/portland/emails/{CAMPAIGN}/{step}" for step in ("day-0", "week-2", "month-3")}


def _text(pdf: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(pdf).pages).split())


def test_a_sites_sheets_and_previews_are_built_in_its_folder_and_kept_up_to_date(
    tmp_path: Path,
) -> None:
    project = _copy_project(tmp_path / "project")
    (project / "sites").mkdir()
    site_file = project / "sites" / "portland.yaml"
    shutil.copy(ROOT / "sites" / "portland.yaml", site_file)
    out = tmp_path / "out"
    first = build(load_project(project), out, jobs=1)
    assert set(first.rendered) == EVERYTHING | SITE
    assert first.summary().startswith("wrote 3 handouts and 6 email previews to ")
    sheet = out / "sites" / "portland" / "handouts" / "aftercare-cosmetic.pdf"
    text = _text(sheet)
    assert "Juniper Lane Portland" in text and "(503) 555-0117" in text
    assert "(617) 555-0142" not in text
    assert "(617) 555-0142" in _text(out / "handouts" / "aftercare-cosmetic.pdf")
    day_0 = (out / "sites" / "portland" / "emails" / CAMPAIGN / "day-0.txt").read_text()
    assert "(503) 555-0117" in " ".join(day_0.split())

    again = build(load_project(project), out, jobs=1)
    assert again.rendered == ()

    site_file.write_text(site_file.read_text().replace("(503) 555-0117", "(503) 555-0120"))
    changed = build(load_project(project), out, jobs=1)
    assert set(changed.rendered) == SITE
    assert "(503) 555-0120" in _text(sheet)
