"""The benchmark suite: `python bench/run.py [--smoke] [--only 1,3]`.

Prints the machine, then each figure of the speed issue as measured values and as a ratio
against a baseline measured in the same run (medians of several repetitions), with PASS or
MISS against the goal. The figures are informational: the exit status is 0 whatever they
are, and 1 only if a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project and bench/ importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    bench_build,
    bench_checkout,
    bench_desks,
    bench_dispatch,
    bench_emails,
    bench_intake,
    bench_report,
    bench_workers,
    machine,
)
from bench.common import Goal, Section, Sizes

BENCHMARKS: dict[str, tuple[str, Callable[[Sizes, Section], None]]] = {
    "1": ("1. Checkout: one personalised handout, as `pipeline serve` renders it",
          bench_checkout.run),
    "2": ("2. `pipeline build`: every handout and email preview", bench_build.run),
    "3": ("3. Email rendering", bench_emails.run),
    "4": ("4. Dispatch to a SendGrid-compatible server 50 ms away", bench_dispatch.run),
    "5": ("5. `pipeline import` and finding due messages", bench_intake.run),
    "6": ("6. Many desks at once: checkouts through `pipeline serve`", bench_desks.run),
    "7": ("7. PostgreSQL and parallel workers", bench_workers.run),
    "8": ("8. `pipeline report`: per-site figures on a large outbox", bench_report.run),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, for CI: checks that every benchmark runs")
    parser.add_argument("--only", metavar="N[,N...]", default=",".join(BENCHMARKS),
                        help="run only these benchmarks, e.g. --only 1,3")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: expected numbers from 1 to {len(BENCHMARKS)}; got {unknown}")
    sizes = Sizes.choose(args.smoke)

    print("Machine", flush=True)
    for label, value in machine.describe():
        print(f"  {label:<16} {value}", flush=True)
    print(f"  {'sizes':<16} {'smoke (tiny, timings meaningless)' if sizes.smoke else 'full'}")
    print(f"  {'load average':<16} {_load()} (other work on the machine slows every figure)")

    goals: list[Goal] = []
    failed: list[str] = []
    started = time.perf_counter()
    for number in chosen:
        title, benchmark = BENCHMARKS[number]
        print(f"\n{title}", flush=True)
        section = Section(title)
        began = time.perf_counter()
        try:
            benchmark(sizes, section)
        except Exception:  # report it, and go on with the other benchmarks
            traceback.print_exc(file=sys.stdout)
            failed.append(title)
        goals += section.goals
        print(f"  ({time.perf_counter() - began:.0f} s; load average {_load()})", flush=True)

    print(f"\nSummary ({time.perf_counter() - started:.0f} s)")
    for goal in goals:
        print(f"  {goal.verdict:<8} {goal.name}: {goal.measured} (goal {goal.target})")
    for title in failed:
        print(f"  ERROR    {title}: the benchmark did not run (traceback above)")
    return 1 if failed else 0


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1, 5, 15 min)"


if __name__ == "__main__":
    sys.exit(main())
