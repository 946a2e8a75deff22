"""What every benchmark shares: sizes, timing, medians, goal lines, and copies of the project."""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does; --smoke shrinks everything so CI stays fast."""

    smoke: bool
    checkout_reps: int  # warm renders measured, each for ours and for the floor
    cold_reps: int  # cold commands (weasyprint, chromium) measured
    build_reps: int  # full builds measured, each with 1 and with 2 worker processes
    build_sites: int  # a multi-site clinic: the handouts this many times over (1: real only)
    noop_reps: int  # up-to-date rebuilds measured
    emails: int  # messages rendered with one renderer
    emails_baseline: int  # messages rendered with a fresh renderer each
    dispatched: int  # messages sent through the local server
    dispatched_baseline: int  # messages sent one request at a time
    import_rows: int  # rows in the CSV file imported by `pipeline import`
    scheduled: int  # scheduled messages in the outbox when due messages are claimed
    claim_reps: int
    desk_rounds: int = 1  # rounds of one desk, then four desks, checking out
    desk_checkouts: int = 1  # checkouts per desk per round
    pg_patients: int = 1_000  # patients (three messages each) in the PostgreSQL outbox
    pg_small: int = 100  # the same, for the baseline
    pg_claims: int = 20  # claims timed, one message each
    claim_seconds: float = 0.3  # each run of claiming workers lasts this long
    worker_messages: int = 40  # messages sent by workers through the look-alike
    handover_messages: int = 6  # messages falling due while `pipeline worker`s run
    handover_spread: float = 2.0  # seconds over which they fall due
    handover_interval: float = 0.5  # the workers' --interval

    @classmethod
    def choose(cls, smoke: bool) -> Sizes:
        if smoke:
            return cls(True, 1, 1, 1, 1, 1, 20, 3, 20, 5, 200, 1_000, 1)
        return cls(False, 15, 5, 3, 3, 5, 2_000, 60, 300, 40, 10_000, 100_000, 5,
                   desk_rounds=6, desk_checkouts=6, pg_patients=100_000, pg_small=1_000,
                   pg_claims=200, claim_seconds=4.0, worker_messages=600,
                   handover_messages=80, handover_spread=30.0, handover_interval=10.0)


@dataclass
class Goal:
    """One goal of the issue: what was measured, against what, and whether it was met."""

    section: str
    name: str
    measured: str
    target: str
    met: bool | None  # None: not measured (skipped)

    @property
    def verdict(self) -> str:
        return "skipped" if self.met is None else ("PASS" if self.met else "MISS")


@dataclass
class Section:
    """Collects a benchmark's printed lines and goals."""

    title: str
    goals: list[Goal] = field(default_factory=list)

    def line(self, label: str, value: str) -> None:
        print(f"  {label:<58} {value}", flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def goal(self, name: str, measured: str, target: str, met: bool | None) -> None:
        goal = Goal(self.title, name, measured, target, met)
        self.goals.append(goal)
        print(f"  -> {name}: {measured}; goal {target}: {goal.verdict}", flush=True)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def interleaved(
    actions: Mapping[str, Callable[[int], object]], reps: int
) -> dict[str, list[float]]:
    """Time each action ``reps`` times, taking turns (and swapping the order each round), so a
    busy neighbour or a slow minute weighs on every contender alike."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    names = list(actions)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            times[name].append(timed(functools.partial(actions[name], rep)))
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """Median with the range, e.g. "0.412 s (0.398-0.455, n=15)"."""
    if len(values) == 1:
        return f"{values[0]:.3f} s (n=1)"
    return f"{median(values):.3f} s ({min(values):.3f}-{max(values):.3f}, n={len(values)})"


def run_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``python -c code args`` from the project folder; return its wall time and result."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"a benchmark subprocess failed:\n{result.stderr[-3000:]}")
    return seconds, result


def copy_project(target: Path, handouts: Iterable[str] | None = None, sites: int = 1) -> Path:
    """A copy of the clinic's content to change freely; with ``sites`` > 1 every handout also
    appears as site2-..., site3-..., like a clinic with several sites and their own topics."""
    target.mkdir(parents=True)
    shutil.copy(ROOT / "clinic.yaml", target)
    shutil.copytree(ROOT / "templates", target / "templates")
    shutil.copytree(ROOT / "campaigns", target / "campaigns")
    (target / "handouts").mkdir()
    chosen = sorted(handouts) if handouts is not None else sorted(
        p.stem for p in (ROOT / "handouts").glob("*.yaml"))
    for topic in chosen:
        source = ROOT / "handouts" / f"{topic}.yaml"
        shutil.copy(source, target / "handouts")
        for site in range(2, sites + 1):
            shutil.copy(source, target / "handouts" / f"site{site}-{topic}.yaml")
    return target


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}
