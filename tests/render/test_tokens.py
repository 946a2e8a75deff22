"""Unsubscribe tokens: round trip, tampering and wrong keys refused; the secret key's sources."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftercare.errors import PipelineError
from aftercare.render.tokens import load_secret_key, sign, verify

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
PUBLIC_ID = "3f2b8c1e9a7d4e6f8b0c2d4e6f8a0b1c"


@given(st.text(min_size=1, max_size=80))
def test_any_public_id_round_trips(public_id: str) -> None:
    assert verify(sign(public_id, KEY), KEY) == public_id


def test_token_is_url_safe_and_carries_only_the_id() -> None:
    token = sign(PUBLIC_ID, KEY)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert sign(PUBLIC_ID, KEY) == token  # deterministic: the same message, the same link


def test_every_single_character_change_is_refused() -> None:
    token = sign(PUBLIC_ID, KEY)
    for index, char in enumerate(token):
        for replacement in {"A", "B", "-", "_", "."} - {char}:
            altered = token[:index] + replacement + token[index + 1 :]
            assert verify(altered, KEY) is None, altered


def test_a_token_for_another_id_cannot_be_spliced() -> None:
    mine, theirs = sign("mine", KEY), sign("theirs", KEY)
    spliced = theirs.split(".")[0] + "." + mine.split(".")[1]
    assert verify(spliced, KEY) is None


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.", ".abc", "a.b.c", "cHJldmlldw.!!!!", "cHJldmlldw. ", "é.é"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert verify(token, KEY) is None


def test_wrong_key_is_refused() -> None:
    assert verify(sign(PUBLIC_ID, KEY), OTHER_KEY) is None


def test_padding_or_non_canonical_spelling_is_refused() -> None:
    payload, signature = sign(PUBLIC_ID, KEY).split(".")
    assert verify(f"{payload}==.{signature}", KEY) is None
    assert verify(f"{payload}.{signature}=", KEY) is None


# ------------------------------------------------------------------ load_secret_key


def test_env_key_wins_and_no_file_is_created(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret.key"
    value = "x" * 40
    assert load_secret_key({"AFTERCARE_SECRET_KEY": value}, key_file) == value.encode()
    assert not key_file.exists()


@pytest.mark.parametrize("value", ["", "short", "x" * 31])
def test_short_env_key_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(PipelineError) as caught:
        load_secret_key({"AFTERCARE_SECRET_KEY": value}, tmp_path / "secret.key")
    assert str(caught.value) == (
        f"AFTERCARE_SECRET_KEY: expected at least 32 characters; got {len(value)}"
    )


def test_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret.key"
    first = load_secret_key({}, key_file)
    assert len(first) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() == first
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret.key"]  # no temp left
    assert load_secret_key({}, key_file) == first
    assert verify(sign(PUBLIC_ID, first), load_secret_key({}, key_file)) == PUBLIC_ID


def test_key_file_is_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_secret_key({}, tmp_path / "secret.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_two_keys_created_in_different_places_differ(tmp_path: Path) -> None:
    assert load_secret_key({}, tmp_path / "a.key") != load_secret_key({}, tmp_path / "b.key")


def test_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(b"z" * 48)
    key_file.chmod(0o600)
    assert load_secret_key({}, key_file) == b"z" * 48


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(b"z" * 8)
    key_file.chmod(0o600)
    with pytest.raises(PipelineError) as caught:
        load_secret_key({}, key_file)
    assert str(caught.value) == f"{key_file}: expected a key of at least 32 bytes; got 8"


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_bytes(b"z" * 32)
    key_file.chmod(0o644)
    with pytest.raises(PipelineError) as caught:
        load_secret_key({}, key_file)
    assert str(caught.value) == (
        f"{key_file}: expected a file only its owner can read (mode 600); got mode 644. "
        f"Fix it with: chmod 600 {key_file}"
    )
