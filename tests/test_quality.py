"""The house rules, checked: ruff and mypy clean, short modules that say their job, lean imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the house rules

MAX_LINES = 400


def _modules() -> list[Path]:
    return [ROOT / "pipeline.py", *sorted((ROOT / "aftercare").rglob("*.py"))]


def test_every_module_stays_under_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_LINES}
    assert long == {}


def test_every_module_opens_with_a_sentence_saying_its_job() -> None:
    missing = []
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        first = (doc or "").split("\n\n", 1)[0]
        if not first or not first.rstrip().endswith("."):
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; before = set(sys.modules); {statement}; print(*sorted(sys.modules))"
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in result.stdout.split()}


@pytest.mark.parametrize(("module", "absent"), [
    # The delivery interface knows nothing of rendering.
    ("aftercare.delivery", {"jinja2", "css_inline", "weasyprint"}),
    ("aftercare.delivery.files", {"jinja2", "css_inline", "weasyprint"}),
    # The outbox needs no YAML, no templates and no provider library.
    ("aftercare.outbox.store", {"yaml", "jinja2", "weasyprint", "sendgrid"}),
    ("aftercare.send.withdrawal", {"yaml", "jinja2", "weasyprint", "sendgrid"}),
    # Planning is pure: no YAML reader, no renderer.
    ("aftercare.plan.describe", {"yaml", "jinja2", "weasyprint"}),
])
def test_a_stage_imports_only_what_it_needs(module: str, absent: set[str]) -> None:
    assert _imported_after(f"import {module}") & absent == set()
