"""The restricted URL fetcher: data: URLs and regular files inside templates/, nothing else."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from weasyprint.urls import FatalURLFetchingError

from aftercare.render.fetcher import MAX_FILE_BYTES, RefusedURLError, RestrictedURLFetcher
from tests.conftest import ROOT


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of the stylesheet inside a templates folder, with a secret file beside it."""
    folder = tmp_path / "templates"
    (folder / "assets").mkdir(parents=True)
    shutil.copy(ROOT / "templates" / "assets" / "handout.css", folder / "assets" / "handout.css")
    (tmp_path / "secret.txt").write_text("not for handouts", encoding="utf-8")
    return folder


@pytest.fixture
def fetcher(templates: Path) -> RestrictedURLFetcher:
    return RestrictedURLFetcher(templates)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and block) any attempt to open a connection."""
    attempts: list[Any] = []

    def refuse_connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise AssertionError(f"the fetcher tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    return attempts


def _refusal(fetcher: RestrictedURLFetcher, url: str) -> str:
    with pytest.raises(RefusedURLError) as caught:
        fetcher.fetch(url)
    assert fetcher.refused[-1] == url
    return caught.value.reason


def _read(fetcher: RestrictedURLFetcher, url: str) -> bytes:
    response = fetcher.fetch(url)
    try:
        body: bytes = response.read()
    finally:
        response.close()
    return body


def test_refusal_stops_the_render() -> None:
    # WeasyPrint only stops for this family; any other exception merely skips the resource.
    assert issubclass(RefusedURLError, FatalURLFetchingError)


def test_serves_a_file_inside_templates(fetcher: RestrictedURLFetcher, templates: Path) -> None:
    path = templates / "assets" / "handout.css"
    response = fetcher.fetch(path.as_uri())
    try:
        assert response.read() == path.read_bytes()
        assert response.content_type == "text/css"
    finally:
        response.close()
    assert fetcher.refused == []


def test_serves_data_urls(fetcher: RestrictedURLFetcher) -> None:
    assert _read(fetcher, "data:text/css,p%20%7Bcolor%3Ared%7D") == b"p {color:red}"
    assert _read(fetcher, "data:text/plain;base64,aGVsbG8=") == b"hello"
    assert fetcher.refused == []


def test_refuses_system_files(fetcher: RestrictedURLFetcher) -> None:
    assert _refusal(fetcher, "file:///etc/passwd") == "outside the templates folder"
    assert _refusal(fetcher, "file:///dev/zero") == "outside the templates folder"
    assert fetcher.refused == ["file:///etc/passwd", "file:///dev/zero"]


def test_refuses_paths_climbing_out_of_templates(
    fetcher: RestrictedURLFetcher, templates: Path
) -> None:
    base = templates.as_uri()
    for url in (
        f"{base}/../secret.txt",
        f"{base}/assets/../../secret.txt",
        f"{base}/assets/%2e%2e/%2e%2e/secret.txt",
    ):
        assert _refusal(fetcher, url) == "outside the templates folder", url
    real = RestrictedURLFetcher(ROOT / "templates")
    assert _refusal(real, f"{(ROOT / 'templates').as_uri()}/../pyproject.toml") == (
        "outside the templates folder"
    )


def test_refuses_a_symlink_that_points_outside(
    fetcher: RestrictedURLFetcher, templates: Path
) -> None:
    link = templates / "assets" / "logo.svg"
    link.symlink_to(templates.parent / "secret.txt")
    assert _refusal(fetcher, link.as_uri()) == "outside the templates folder"
    folder_link = templates / "assets" / "more"
    folder_link.symlink_to(templates.parent, target_is_directory=True)
    assert _refusal(fetcher, (folder_link / "secret.txt").as_uri()) == (
        "outside the templates folder"
    )


def test_a_symlink_inside_templates_is_followed(
    fetcher: RestrictedURLFetcher, templates: Path
) -> None:
    link = templates / "assets" / "copy.css"
    link.symlink_to(templates / "assets" / "handout.css")
    assert _read(fetcher, link.as_uri()) == (templates / "assets" / "handout.css").read_bytes()


def test_refuses_what_is_not_a_regular_file(
    fetcher: RestrictedURLFetcher, templates: Path
) -> None:
    assert _refusal(fetcher, (templates / "assets").as_uri()) == "not a regular file"
    fifo = templates / "assets" / "pipe.css"
    os.mkfifo(fifo)
    assert _refusal(fetcher, fifo.as_uri()) == "not a regular file"
    assert _refusal(fetcher, (templates / "missing.css").as_uri()) == "no such file"


def test_refuses_files_too_large_to_be_an_asset(
    fetcher: RestrictedURLFetcher, templates: Path
) -> None:
    big = templates / "assets" / "big.svg"
    with big.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    assert _refusal(fetcher, big.as_uri()) == f"larger than {MAX_FILE_BYTES} bytes"


def test_refuses_file_urls_naming_another_host(
    fetcher: RestrictedURLFetcher, templates: Path
) -> None:
    path = (templates / "assets" / "handout.css").as_posix()
    assert _refusal(fetcher, f"file://fileserver{path}") == (
        "file URLs on other hosts (fileserver) are not allowed"
    )
    assert _read(fetcher, f"file://localhost{path}").startswith(b"/*")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.css",
        "https://example.com/font.ttf",
        "ftp://example.com/logo.svg",
        "HTTP://EXAMPLE.COM/X.CSS",
        "//example.com/x.css",
        "javascript:alert(1)",
    ],
)
def test_refuses_other_protocols_without_touching_the_network(
    fetcher: RestrictedURLFetcher, no_network: list[Any], url: str
) -> None:
    assert _refusal(fetcher, url).startswith("only file: and data: URLs are allowed")
    assert no_network == []


def test_refuses_a_local_http_server_before_connecting(
    fetcher: RestrictedURLFetcher, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/x.css").respond_with_data("p {}", content_type="text/css")
    url = httpserver.url_for("/x.css")
    assert _refusal(fetcher, url) == "only file: and data: URLs are allowed, not http"
    assert httpserver.log == []
