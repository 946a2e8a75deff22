"""Content limits: aliases, deep nesting and oversized files are refused at once, with file and
line, by the real `pipeline check` in a child process (time and peak memory measured)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from aftercare.content.schema import MAX_BYTES, read_document
from tests.conftest import FIXTURES, ROOT
from tests.measure import measure

# Generous bounds: the machine running the tests may be busy. The figures before the
# limits: 37 s and about 2.5 GB for the alias file; a RecursionError for the deep one.
SECONDS = 5.0
PEAK_MB = 100.0


def alias_bomb() -> str:
    """About 170 KB: one list of 1,000 bullets, reused through an alias 3,000 times."""
    lines = [
        "title: Alias test", "indication: general", "version: '1'", "summary: A test.",
        "review: {reviewed_by: Dr A, reviewed_on: 2026-01-01, next_review_due: 2027-01-01}",
        "sources: [{title: A source}]", "sections:", "  - id: base", "    heading: Base",
        "    bullets: &big",
    ]
    lines += [f"      - Item number {i} of the list that is reused." for i in range(1000)]
    lines += [f"  - {{id: s{i}, heading: H, bullets: *big}}" for i in range(3000)]
    return "\n".join(lines) + "\n"


def check(project: Path) -> tuple[int, str, float, float]:
    run = measure([sys.executable, str(ROOT / "pipeline.py"), "--project", str(project), "check"])
    return run.returncode, run.stderr, run.seconds, run.peak_mb


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(FIXTURES / "minimal", copy)
    return copy


def test_an_alias_bomb_is_refused_at_its_first_alias_quickly_and_in_little_memory(
    project: Path,
) -> None:
    text = alias_bomb()
    assert 160_000 < len(text.encode()) < MAX_BYTES
    (project / "handouts" / "bomb.yaml").write_text(text, encoding="utf-8")
    code, err, seconds, peak_mb = check(project)
    assert code == 1
    assert err.splitlines()[0] == (
        "handouts/bomb.yaml:1011: expected the text written out where it is used; got an alias "
        "(*big): aliases are not allowed in content, so that what a reviewer reads is what "
        "patients get")
    assert "Traceback" not in err
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert peak_mb < PEAK_MB, f"{peak_mb:.0f} MB"


def test_nesting_50000_levels_deep_is_refused_with_file_and_line(project: Path) -> None:
    deep = "title: Deep\nsummary: " + "[" * 50_000 + "]" * 50_000 + "\n"
    (project / "handouts" / "deep.yaml").write_text(deep, encoding="utf-8")
    code, err, seconds, peak_mb = check(project)
    assert code == 1
    assert err.splitlines()[0] == (
        "handouts/deep.yaml:2: expected at most 20 levels of lists and mappings inside each "
        "other; got more")
    assert "RecursionError" not in err and "Traceback" not in err
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert peak_mb < PEAK_MB, f"{peak_mb:.0f} MB"


def test_a_deep_block_mapping_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("".join(f"{'  ' * i}k{i}:\n" for i in range(30)), encoding="utf-8")
    problems = [str(p) for p in read_document(path, "deep.yaml").problems]
    assert problems == ["deep.yaml:20: expected at most 20 levels of lists and mappings inside "
                        "each other; got more"]


def test_an_anchor_without_an_alias_is_harmless_and_a_single_alias_is_refused(
    tmp_path: Path
) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("a: &x text\nb: *x\n", encoding="utf-8")
    problems = [str(p) for p in read_document(path, "one.yaml").problems]
    assert problems == ["one.yaml:2: expected the text written out where it is used; got an "
                        "alias (*x): aliases are not allowed in content, so that what a reviewer "
                        "reads is what patients get"]
    path.write_text("a: &x text\nb: other\n", encoding="utf-8")
    assert read_document(path, "one.yaml").problems == []


def test_a_file_larger_than_the_limit_is_refused_without_parsing_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("title: " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    problems = [str(p) for p in read_document(path, "huge.yaml").problems]
    assert problems == ["huge.yaml: expected a file of at most 256 KB; got a larger one"]
