"""Makes a real database file unwritable from outside the program, in a way that holds when
the tests run as root (who ignores file modes).

For an ordinary user, mode 0444 does it. Root writes through any mode, so for root the file
gets the immutable attribute (``chattr +i``), which stops root too. Where the file system has no
such attribute (some container file systems), SQLite's own ``query_only`` setting is switched
on for every connection the program opens: SQLite then refuses writes with the same error
(SQLITE_READONLY) as for a read-only file. Whichever way, the test first proves that a write
really fails.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import aftercare.outbox.sqlite


@contextmanager
def unwritable(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """While inside: ``path`` cannot be written; yields how ("mode 0444", "immutable", ...)."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        how, undo = "mode 0444", lambda: os.chmod(path, 0o600)
    elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        how = "immutable"

        def undo() -> None:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        real = aftercare.outbox.sqlite.connect

        def query_only(where: Path) -> sqlite3.Connection:
            connection = real(where)
            connection.execute("PRAGMA query_only = ON")
            return connection

        monkeypatch.setattr(aftercare.outbox.sqlite, "connect", query_only)
        how, undo = "query_only", lambda: None
    try:
        if how != "query_only":
            with pytest.raises(PermissionError):
                path.open("r+b").close()
        yield how
    finally:
        undo()
