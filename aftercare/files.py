"""Writing a file whole or not at all: a temporary file beside it, synced, then moved into place."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from aftercare.errors import InputError


def write_atomically(
    path: Path, data: bytes, *, private: bool = False, replace: bool = True
) -> bool:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half.

    ``private`` makes the file readable by its owner only (mode 600), whatever the umask;
    otherwise the umask decides. With ``replace=False`` an existing file is kept and False is
    returned: the new file is linked into place, which fails if the name exists, so two
    processes writing at once cannot both believe their own file is the one on disk. Raises
    OSError; the folder must exist.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never follow or reuse something already there.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600 if private else 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            if private:
                os.fchmod(file.fileno(), 0o600)  # the umask may have removed the owner's bits
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temporary, path)
            written = True
        else:
            try:
                os.link(temporary, path)
                written = True
            except FileExistsError:
                written = False
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _sync_folder(path.parent)
    return written


def new_beside(target: Path) -> Path:
    """A new, empty, owner-only file beside ``target`` (its folder made if needed), to write a
    copy into that replaces ``target`` only once it is whole (``moved_into_place``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return partial


@contextlib.contextmanager
def moved_into_place(partial: Path, target: Path) -> Iterator[None]:
    """``partial`` becomes ``target`` when the block ends without an error; it is removed in
    any case, so a failed copy leaves an older ``target`` whole."""
    try:
        yield
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def write_output(path: Path, data: bytes, field: str = "out") -> None:
    """Write a file the user asked for (a handout, a preview, the build's manifest), making its
    folder; a failure is an InputError on ``field``, and nothing half-written is left."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(field, f"cannot create {path.parent}: {exc.strerror}") from None
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise InputError(field, f"cannot write {path}: {exc.strerror or exc}") from None


def _sync_folder(folder: Path) -> None:
    # The rename itself is durable only once the folder is synced; not all systems allow it.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
