"""Writing files whole or not at all, through one function."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aftercare.errors import InputError
from aftercare.files import write_atomically, write_output


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    assert write_atomically(target, b"first")
    assert write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_private_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        write_atomically(tmp_path / "key", b"secret", private=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600


def test_without_replace_an_existing_file_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "key"
    assert write_atomically(target, b"mine", replace=False)
    assert not write_atomically(target, b"theirs", replace=False)
    assert target.read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def no_space(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_an_output_makes_its_folder_and_reports_its_field(tmp_path: Path) -> None:
    write_output(tmp_path / "deep" / "er" / "x.pdf", b"%PDF")
    assert (tmp_path / "deep" / "er" / "x.pdf").read_bytes() == b"%PDF"
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InputError) as caught:
        write_output(tmp_path / "file" / "x.pdf", b"%PDF", "diary")
    assert caught.value.field == "diary"
    assert str(caught.value).startswith(f"diary: cannot create {tmp_path / 'file'}")
