"""The benchmark suite runs from a clean checkout: every benchmark, tiny sizes, no timing checks."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from tests.conftest import ROOT

SECTIONS = (
    "Machine",
    "1. Checkout",
    "2. `pipeline build`",
    "3. Email rendering",
    "4. Dispatch",
    "5. `pipeline import`",
    "6. Many desks at once",
    "7. PostgreSQL and parallel workers",
    "8. `pipeline report`",
    "Summary",
)
GOALS = (
    "checkout render vs the floor",
    "checkout render vs a cold command",
    "stretch: faster than warm headless Chromium",
    "commands that render nothing do not import WeasyPrint",
    "parallel build",
    "up-to-date rebuild",
    "a changed handout re-renders only what depends on it",
    "email rendering on one core",
    "dispatch rate with bounded concurrency",
    "no message sent twice, none left unsent",
    "`pipeline import` of",
    "finding due messages stays proportional to what is due",
    "four desks at once: p95 at most twice one desk's",
    "look-ups stay quick while renders run",
    "one site's figures among",
    "time per claim among",
    "claims per second with 2 and 4 workers on PostgreSQL",
    "no message claimed twice",
    "delivery with 4 workers against one",
    "each message handed over once",
    "due to hand-over with `pipeline worker`",
    "zero duplicates through `pipeline worker`",
    "`pipeline report` for one site among",
    "one site's figures cost in proportion to the site",
    "figures grouped in one query per family",
)


def test_the_benchmark_suite_runs_every_benchmark_in_smoke_mode() -> None:
    result = subprocess.run([sys.executable, "bench/run.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout
    assert result.returncode == 0, output[-4000:] + result.stderr[-4000:]
    assert "Traceback" not in output + result.stderr, output[-4000:] + result.stderr[-4000:]
    lines = output.splitlines()
    for title in SECTIONS:
        assert any(line.startswith(title) for line in lines), f"no section {title!r}"
    summary = output[output.index("\nSummary"):]
    for goal in GOALS:
        verdicts = [line.split()[0] for line in summary.splitlines() if goal in line]
        assert verdicts, f"no figure for {goal!r}"
        assert set(verdicts) <= {"PASS", "MISS", "skipped"}, verdicts
    # What the suite prints goes into bench/RESULTS.md: it must name no folder of the machine.
    assert str(ROOT) not in output
    assert tempfile.gettempdir() not in output
