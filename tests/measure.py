"""Runs a command in a fresh child process and reports its exit status, output, wall time and
peak memory, so that limits on time and memory are checked on the real program."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# A fresh interpreter runs the command as its only child, so RUSAGE_CHILDREN holds that one
# command's peak, not that of anything the test run started before.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
json.dump({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
           "seconds": seconds, "peak_mb": peak_mb}, sys.stdout)
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float  # the largest resident set the command reached, in MiB


def measure(argv: Sequence[str], env: Mapping[str, str] | None = None,
            timeout: float = 120) -> Measured:
    """Run ``argv`` to the end; its figures, whatever its exit status."""
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], capture_output=True,
                          text=True, env=None if env is None else dict(env), timeout=timeout,
                          check=True)
    return Measured(**json.loads(done.stdout))
