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


def stop(server: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop the server as Ctrl+C does; what it wrote to standard output and error."""
    server.send_signal(signal.SIGINT)
    try:
        return server.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.communicate()


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
        out, err = stop(server)
    assert server.returncode == 0, err
    assert out.strip().endswith("stopped")
    assert "Traceback" not in err


class Browser:
    """A browser of its own (cookies, no redirects followed) behind the proxy as ``client``."""

    def __init__(self, base: str, client: str) -> None:
        import http.cookiejar

        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.base, self.client = base, client
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), Stay)

    def send(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        import urllib.error
        import urllib.parse

        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=data,
                                         headers={"X-Forwarded-For": self.client})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def log_in(self, username: str, password: str) -> int:
        page = self.send("/login")[1]
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found
        return self.send("/login", {"username": username, "password": password,
                                    "csrf_token": found[1]})[0]


def test_serve_logs_each_request_and_throttles_each_client_behind_the_proxy(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "AFTERCARE_DB": str(tmp_path / "aftercare.db"),
           "AFTERCARE_SECRET_KEY": "k" * 40, "PYTHONUNBUFFERED": "1"}
    env.pop("SENDGRID_API_KEY", None)
    env.pop("SENDGRID_WEBHOOK_PUBLIC_KEY", None)
    pipeline = [sys.executable, str(ROOT / "pipeline.py"), "--project", str(ROOT)]
    subprocess.run([*pipeline, "staff", "add", "frontdesk"], input="a long passphrase\n",
                   env=env, check=True, capture_output=True, text=True)
    server = subprocess.Popen(
        [*pipeline, "serve", "--port", "0", "--trusted-proxy", "127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        started = re.search(r":(\d+)/ ", server.stdout.readline())
        assert started
        base = f"http://127.0.0.1:{started[1]}"
        attacker, desk = Browser(base, "203.0.113.7"), Browser(base, "192.0.2.10")
        statuses = [attacker.log_in("frontdesk", "a wrong password") for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert desk.log_in("frontdesk", "a long passphrase") == 303
        assert desk.send("/checkout?email=zenobia@example.org")[0] == 200
    finally:
        _, err = stop(server)
    lines = [line for line in err.splitlines() if " aftercare.requests: " in line]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO aftercare\.requests: "
    assert all(re.fullmatch(stamp + r"(GET|POST) \S+ \d{3} \d+ms (public|staff#\d+)", line)
               for line in lines), lines
    seen = [(line.split(": ", 1)[1].rsplit(" ", 2)[0], line.rsplit(" ", 1)[1]) for line in lines]
    public = "public"
    assert seen == [("GET /login 200", public), ("POST /login 401", public)] * 3 + [
        ("GET /login 200", public), ("POST /login 429", public),
        ("GET /login 200", public), ("POST /login 303", public),
        ("GET /checkout 200", "staff#1"),
    ]
    for secret in ("zenobia", "a wrong password", "a long passphrase", "frontdesk"):
        assert secret not in err
