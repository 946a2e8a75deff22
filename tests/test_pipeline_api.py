"""`pipeline apikey`: a key shown once, stored as a hash, listed and revoked by name."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PIPELINE = [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT)]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "AFTERCARE_DB": str(tmp_path / "aftercare.db"),
           "AFTERCARE_OUTBOX_DIR": str(tmp_path / "outbox"),
           "AFTERCARE_SECRET_KEY": "k" * 40, "PYTHONUNBUFFERED": "1"}
    env.pop("SENDGRID_API_KEY", None)
    return env


def pipeline(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIPELINE, *argv], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_apikey_add_shows_the_key_once_and_list_and_revoke_never_show_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    added = pipeline(env, "apikey", "add", "booking", "--site", "main")
    assert added.returncode == 0, added.stderr
    key, summary = added.stdout.splitlines()
    assert re.fullmatch(r"aftercare_[A-Za-z0-9_-]{43}", key)
    assert summary == ("added API key 'booking' for site main; it is shown only this once: "
                       "send it as `Authorization: Bearer <key>`")
    listed = pipeline(env, "apikey", "list", "--json")
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["site"], row["revoked_at"]) == ("booking", "main", None)
    assert listed.stderr == "1 API key\n"
    assert key not in (tmp_path / "aftercare.db").read_bytes().decode("latin-1")
    again = pipeline(env, "apikey", "add", "booking")
    assert again.returncode == 1 and "a key called 'booking' already exists" in again.stderr
    north = pipeline(env, "apikey", "add", "north", "--site", "north")
    assert north.returncode == 1
    assert north.stderr == ("error: --site: expected main (the sites of this installation); "
                            "got 'north'\n")
    bad = pipeline(env, "apikey", "add", "Booking System")
    assert bad.returncode == 1 and bad.stderr.startswith("error: NAME: expected 1 to 64")
    revoked = pipeline(env, "apikey", "revoke", "booking")
    assert revoked.stdout == "revoked key 'booking': calls with it are refused from now on\n"
    assert pipeline(env, "apikey", "revoke", "booking").stdout == (
        "key 'booking' was already revoked\n")
    text = pipeline(env, "apikey", "list").stdout
    assert text.startswith("booking  site=main  created ") and " revoked " in text
    assert pipeline(env, "apikey", "revoke", "nobody").returncode == 1
