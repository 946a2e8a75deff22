"""The build: incremental (a manifest of input hashes), parallel, and all-or-nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aftercare.render.build as build_module
import aftercare.render.handouts
from aftercare.content.load import load_project
from aftercare.content.model import Handout, Project
from aftercare.errors import InputError, RenderError
from aftercare.render.build import MANIFEST_NAME, BuildReport, build, read_manifest
from tests.conftest import ROOT

# A small copy of the clinic's content: a campaign handout (its emails quote it), a general
# one (no campaign), and the campaign, so each kind of dependency is present.
HANDOUTS = ("aftercare-cosmetic", "the-procedure")
CAMPAIGN = "botox-cosmetic"
PREVIEWS = {f"emails/{CAMPAIGN}/{step}" for step in ("day-0", "week-2", "month-3")}
EVERYTHING = {f"handouts/{topic}" for topic in HANDOUTS} | PREVIEWS


def _copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copy(ROOT / "clinic.yaml", target)
    shutil.copytree(ROOT / "templates", target / "templates")
    (target / "handouts").mkdir()
    for topic in HANDOUTS:
        shutil.copy(ROOT / "handouts" / f"{topic}.yaml", target / "handouts")
    (target / "campaigns").mkdir()
    shutil.copy(ROOT / "campaigns" / f"{CAMPAIGN}.yaml", target / "campaigns")
    return target


@pytest.fixture(scope="module")
def first_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, BuildReport]:
    """The small project, built once in this process: (project folder, output, report)."""
    base = tmp_path_factory.mktemp("first")
    project = _copy_project(base / "project")
    out = base / "out"
    return project, out, build(load_project(project), out, jobs=1)


@pytest.fixture
def built(first_build: tuple[Path, Path, BuildReport], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the built project and its output, for a test to change."""
    project, out, _ = first_build
    shutil.copytree(project, tmp_path / "project")
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "project", tmp_path / "out"


class _QuickRenderer:
    """Stands in for HandoutRenderer where only which handouts get rendered matters."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def at_site(self, site: str) -> _QuickRenderer:
        return _QuickRenderer(self.project.at_site(site))

    def pdf(self, handout: Handout, patient: None) -> bytes:
        return b"%PDF-quick " + repr(handout).encode()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aftercare.render.handouts, "HandoutRenderer", _QuickRenderer)


def _rebuild(project: Path, out: Path, *topics: str, jobs: int = 1) -> BuildReport:
    return build(load_project(project, only=topics), out, topics, jobs=jobs)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_first_build_renders_every_handout_and_preview(
    first_build: tuple[Path, Path, BuildReport],
) -> None:
    _, out, report = first_build
    assert set(report.rendered) == EVERYTHING
    assert report.up_to_date == ()
    assert sorted(p.name for p in (out / "handouts").iterdir()) == [
        "aftercare-cosmetic.pdf", "the-procedure.pdf"]
    assert (out / "emails" / CAMPAIGN / "day-0.html").is_file()
    assert (out / "emails" / CAMPAIGN / "week-2.ics").is_file()  # a calendar step
    assert report.summary().startswith("wrote 2 handouts and 3 email previews to ")


def test_a_second_build_renders_nothing(built: tuple[Path, Path]) -> None:
    project, out = built
    before = _files(out)
    report = _rebuild(project, out)
    assert report.rendered == ()
    assert set(report.up_to_date) == EVERYTHING
    assert report.jobs == 0
    assert _files(out) == before
    assert report.summary().endswith(
        "wrote 0 handouts and 0 email previews to "
        f"{out}/; 2 handouts and 3 email previews already up to date")


def test_changing_one_general_handout_renders_only_that_handout(
    built: tuple[Path, Path], quick: None,
) -> None:
    project, out = built
    _append(project / "handouts" / "the-procedure.yaml", "# reviewed again\n")
    assert _rebuild(project, out).rendered == ("handouts/the-procedure",)
    assert _rebuild(project, out).rendered == ()


def test_changing_a_campaign_handout_also_renders_the_emails_that_quote_it(
    built: tuple[Path, Path], quick: None,
) -> None:
    project, out = built
    _append(project / "handouts" / "aftercare-cosmetic.yaml", "# reviewed again\n")
    assert set(_rebuild(project, out).rendered) == {"handouts/aftercare-cosmetic"} | PREVIEWS


def test_changing_a_campaign_renders_its_emails_and_the_handouts_that_show_its_dates(
    built: tuple[Path, Path], quick: None,
) -> None:
    project, out = built
    _append(project / "campaigns" / f"{CAMPAIGN}.yaml", "# checked\n")
    # the-procedure is a general handout: no campaign dates, so it is not rendered again.
    assert set(_rebuild(project, out).rendered) == {"handouts/aftercare-cosmetic"} | PREVIEWS


@pytest.mark.parametrize("changed", ["clinic.yaml", "templates/email/_layout.html"])
def test_changing_clinic_yaml_or_an_email_template_renders_everything(
    built: tuple[Path, Path], quick: None, changed: str
) -> None:
    project, out = built
    path = project / changed
    _append(path, "\n# changed\n" if path.suffix == ".yaml" else "\n")
    # Handouts hash the whole templates/ folder: their loader and fetcher can reach all of it.
    assert set(_rebuild(project, out).rendered) == EVERYTHING


@pytest.mark.parametrize("changed", [
    "templates/handout/macros.html", "templates/assets/handout.css", "templates/assets/logo.svg",
])
def test_changing_a_handout_template_or_asset_renders_every_handout_and_no_email(
    built: tuple[Path, Path], quick: None, changed: str
) -> None:
    project, out = built
    _append(project / changed, "\n/* changed */\n" if changed.endswith(".css") else "\n")
    assert set(_rebuild(project, out).rendered) == {f"handouts/{t}" for t in HANDOUTS}


def test_a_new_file_under_templates_counts_as_a_change(
    built: tuple[Path, Path], quick: None
) -> None:
    project, out = built
    (project / "templates" / "handout" / "extra.html").write_text("<p>unused</p>\n")
    assert set(_rebuild(project, out).rendered) == {f"handouts/{t}" for t in HANDOUTS}


def test_a_deleted_output_is_built_again(built: tuple[Path, Path], quick: None) -> None:
    project, out = built
    (out / "handouts" / "the-procedure.pdf").unlink()
    (out / "emails" / CAMPAIGN / "week-2.ics").unlink()
    report = _rebuild(project, out)
    assert set(report.rendered) == {"handouts/the-procedure", f"emails/{CAMPAIGN}/week-2"}
    assert (out / "handouts" / "the-procedure.pdf").is_file()
    assert (out / "emails" / CAMPAIGN / "week-2.ics").is_file()


def test_an_output_changed_by_hand_is_built_again(built: tuple[Path, Path]) -> None:
    project, out = built
    pdf = out / "handouts" / "aftercare-cosmetic.pdf"
    original = pdf.read_bytes()
    pdf.write_bytes(b"%PDF-1.7 not what we wrote")
    assert _rebuild(project, out).rendered == ("handouts/aftercare-cosmetic",)
    assert pdf.read_bytes() == original  # renders are reproducible


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": 999, "targets": {}}'])
def test_a_missing_or_unreadable_manifest_means_build_everything(
    built: tuple[Path, Path], quick: None, content: bytes
) -> None:
    project, out = built
    (out / MANIFEST_NAME).write_bytes(content)
    assert set(_rebuild(project, out).rendered) == EVERYTHING


def test_the_manifest_maps_each_output_to_the_hashes_of_its_inputs_and_bytes(
    built: tuple[Path, Path],
) -> None:
    _, out = built
    data = json.loads((out / MANIFEST_NAME).read_text())
    assert data["format"] == 1
    entry = data["targets"]["handouts/the-procedure"]
    assert len(entry["inputs"]) == 64
    assert list(entry["outputs"]) == ["handouts/the-procedure.pdf"]
    assert sorted(data["targets"][f"emails/{CAMPAIGN}/week-2"]["outputs"]) == [
        f"emails/{CAMPAIGN}/week-2.{suffix}" for suffix in ("html", "ics", "txt")]


def test_the_manifest_is_replaced_whole_or_not_at_all(
    built: tuple[Path, Path], quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, out = built
    manifest = out / MANIFEST_NAME
    before = manifest.read_bytes()
    _append(project / "handouts" / "the-procedure.yaml", "# again\n")
    real_replace = os.replace

    def failing_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if Path(target).name == MANIFEST_NAME:
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(InputError, match="No space left on device"):
        _rebuild(project, out)
    assert manifest.read_bytes() == before
    assert not [p.name for p in out.rglob("*.tmp")]
    monkeypatch.undo()
    # The manifest still records the old input hash, so the next build renders it again.
    assert _rebuild(project, out).rendered == ("handouts/the-procedure",)
    assert read_manifest(manifest)  # valid, whole JSON
    assert not [p.name for p in out.rglob("*.tmp")]


def test_building_some_topics_keeps_what_the_manifest_knows_about_the_others(
    built: tuple[Path, Path], quick: None,
) -> None:
    project, out = built
    for topic in HANDOUTS:
        _append(project / "handouts" / f"{topic}.yaml", "# again\n")
    report = _rebuild(project, out, "the-procedure")
    assert report.rendered == ("handouts/the-procedure",)
    assert report.summary().startswith("wrote 1 handout and 0 email previews")
    # The other handout and the previews are still known, and still out of date.
    assert set(_rebuild(project, out).rendered) == {"handouts/aftercare-cosmetic"} | PREVIEWS


def test_an_unknown_topic_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    project = load_project(ROOT)
    with pytest.raises(InputError, match=r"expected one of .*; got 'nope'"):
        build(project, tmp_path / "out", ("nope",), jobs=1)
    assert not (tmp_path / "out").exists()


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="jobs: expected 1 or more; got 0"):
        build(load_project(ROOT), tmp_path / "out", jobs=0)


def test_a_parallel_build_writes_exactly_what_a_sequential_build_writes(
    first_build: tuple[Path, Path, BuildReport], tmp_path: Path
) -> None:
    project, sequential, _ = first_build
    report = build(load_project(project), tmp_path / "parallel", jobs=2)
    assert report.jobs == 2
    assert set(report.rendered) == EVERYTHING
    assert _files(tmp_path / "parallel") == _files(sequential)


def test_a_refused_resource_fails_the_build_and_writes_nothing(built: tuple[Path, Path]) -> None:
    project, out = built
    shutil.rmtree(out)
    handout_html = project / "templates" / "handout" / "handout.html"
    handout_html.write_text(handout_html.read_text().replace(
        "<main>", '<main><img src="file:///etc/passwd" alt="">'))
    with pytest.raises(RenderError, match="refused file:///etc/passwd: outside the templates"):
        build(load_project(project), out, jobs=1)
    assert not out.exists()


class _RefusingRenderer:
    def at_site(self, site: str) -> _RefusingRenderer:
        return self

    def pdf(self, handout: Handout, patient: None) -> bytes:
        raise InputError("name", "expected letters the handout font has")


def test_a_worker_hands_back_our_errors_as_their_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # Our errors do not survive pickling (their constructors take other arguments), so a
    # worker returns the message and the parent raises it as a RenderError.
    project = load_project(ROOT)
    monkeypatch.setattr(build_module, "_worker", (project, _RefusingRenderer()))
    target = build_module.plan(project, ["the-procedure"])[0]
    assert build_module._work(target) == (
        "handouts/the-procedure", {}, "name: expected letters the handout font has")


def test_a_worker_whose_renderer_cannot_start_reports_why_for_each_handout(
    built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir, _ = built
    (project_dir / "templates" / "assets" / "fonts" / "AtkinsonHyperlegible-Bold.ttf").unlink()
    project = load_project(project_dir)
    monkeypatch.setattr(build_module, "_worker", None)
    build_module._start_worker(project)  # as the pool runs it in each worker
    for target in build_module.plan(project, HANDOUTS):
        key, outputs, error = build_module._work(target)
        assert (key, outputs) == (target.key, {})
        assert error is not None
        assert error.startswith("cannot read the handout font "
                                "templates/assets/fonts/AtkinsonHyperlegible-Bold.ttf")


def test_an_up_to_date_build_does_not_import_weasyprint(built: tuple[Path, Path]) -> None:
    project, out = built
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from aftercare.render.build import build\n"
        "from aftercare.content.load import load_project\n"
        f"report = build(load_project(Path({str(project)!r})), Path({str(out)!r}))\n"
        "print(len(report.rendered), 'weasyprint' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.stdout.split() == ["0", "False"], result.stderr
