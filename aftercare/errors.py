"""The user-facing error family: each error knows its exit code and how to show itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PipelineError(Exception):
    """A problem the user can fix; shown once at the CLI edge without a traceback."""

    exit_code = 1

    def show(self) -> str:
        return f"error: {self}"


class UsageError(PipelineError):
    """The command was called the wrong way."""

    exit_code = 2


class ContentError(PipelineError):
    """One or more problems in the clinic's YAML, a CSV file or typed input, reported together."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems), key=_problem_order)
        super().__init__("\n".join(str(p) for p in self.problems))

    def show(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [str(p) for p in self.problems]
        if count > 1:
            lines.append(f"{count} {noun} found; nothing was written.")
        return "\n".join(lines)


class InputError(PipelineError):
    """A bad value typed by a person (a name, a date, an email address).

    ``field`` is the core's name for it ("treated_on"); the command line shows its option
    (``--treated-on``) and the web page marks its form field, each from a table of its own.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def named(self, name: str) -> InputError:
        """The same error reported under another name for the field (an option, a column)."""
        renamed = InputError(name, self.message)
        renamed.__cause__ = self.__cause__
        return renamed


class MissingGlyphs(InputError):
    """Typed text holds characters the handout font cannot print; ``characters`` lists them."""

    def __init__(self, field: str, characters: tuple[str, ...]) -> None:
        self.characters = characters
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in characters)
        super().__init__(field, f"expected letters the handout font has; got {shown}")


class StorageError(PipelineError):
    """The database could not be written (or read): nothing of the operation was saved.

    ``reason`` says why, in words staff can act on: "locked" (another program is writing),
    "read-only", "full" or "unavailable".
    """

    ADVICE: ClassVar[Mapping[str, str]] = {
        "locked": "another program is writing to it (a large import, perhaps); try again in a "
                  "minute",
        "read-only": "it cannot be written (its file or disk is read-only, or belongs to another "
                     "user); ask the administrator",
        "full": "the disk is full; ask the administrator to free space",
        "unavailable": "it cannot be opened or read; ask the administrator",
    }

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        advice = self.ADVICE.get(reason, self.ADVICE["unavailable"])
        super().__init__(f"the database is {reason}: {advice}; nothing was saved ({detail})")


class RenderError(PipelineError):
    """The renderer refused a resource or logged a warning; the output was not written."""


def _problem_order(p: Problem) -> tuple[str, int, str, str]:
    return (p.file, p.line or 0, p.path, p.message)
