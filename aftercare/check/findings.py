"""A broken house rule as `pipeline check` reports it: an error, or a warning (an error with
--strict)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from aftercare.errors import Problem

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One broken house rule; an error fails `pipeline check`, a warning only with --strict."""

    severity: Severity
    problem: Problem

    def __str__(self) -> str:
        return f"{self.severity}: {self.problem}"


def has_errors(findings: Iterable[Finding], strict: bool) -> bool:
    """Whether the findings fail a check; in strict mode warnings count as errors."""
    return any(strict or f.severity == "error" for f in findings)
