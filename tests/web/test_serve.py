"""`pipeline serve` itself: the real command in a subprocess, on this machine only."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import ROOT


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from /proc/net/tcp (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:
                    found.add(address)
    return found


def test_serve_answers_on_127_0_0_1_only(tmp_path: Path) -> None:
    env = {**os.environ, "AFTERCARE_DB": str(tmp_path / "aftercare.db"),
           "AFTERCARE_SECRET_KEY": "k" * 40, "PYTHONUNBUFFERED": "1"}
    env.pop("SENDGRID_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT), "serve", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        started = re.fullmatch(r"serving the staff page on http://127\.0\.0\.1:(\d+)/ "
                               r"\(Ctrl\+C stops it\)\n", line)
        assert started, line + (server.stderr.read() if server.stderr else "")
        port = int(started[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as response:
            assert response.status == 200
            assert b"<h1>Log in</h1>" in response.read()
            assert response.headers["X-Frame-Options"] == "DENY"
        if os.path.exists("/proc/net/tcp"):
            assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
    assert server.returncode == 0, err
    assert out.strip().endswith("stopped")
    assert "Traceback" not in err
