"""The security boundary of rendering: a URL fetcher serving data: URLs and files in one folder."""

from __future__ import annotations

import mimetypes
import os
import stat
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

# Our assets are a logo, four fonts and a stylesheet, all well under this; a larger file is
# a mistake or an attack (WeasyPrint would otherwise read /dev/zero until memory runs out).
MAX_FILE_BYTES = 8 * 1024 * 1024


class RefusedURLError(FatalURLFetchingError):  # type: ignore[misc]  # WeasyPrint has no types
    """A resource outside the allow-list was requested; WeasyPrint stops the render on this."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"refused {_shorten(url)}: {reason}")


class RestrictedURLFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint has no types
    """Serves data: URLs and regular files under ``root``; refuses everything else, fatally.

    The check lives here rather than in ``base_url`` because a ``<base href>`` in a
    document replaces the base URL; whatever the document says, every fetch ends here.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False)
        self.root = root.resolve(strict=True)
        self.refusals: list[RefusedURLError] = []  # in order, for tests and audit

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            # urllib's DataHandler decodes it in memory; nothing is opened.
            return super().fetch(url, headers)
        if scheme != "file":
            not_this = f", not {scheme}" if scheme else ""
            self._refuse(url, f"only file: and data: URLs are allowed{not_this}")
        path = self._allowed_path(url)
        return URLFetcherResponse(url, self._read(url, path), _headers_for(path))

    def _allowed_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            self._refuse(url, f"file URLs on other hosts ({parts.netloc}) are not allowed")
        try:
            # strict=True fails on missing files; resolving follows every symlink and "..",
            # so a link inside the folder that points outside it is judged by its target.
            path = Path(url2pathname(parts.path)).resolve(strict=True)
        except (OSError, ValueError, RuntimeError):
            self._refuse(url, "no such file")
        if not path.is_relative_to(self.root):
            self._refuse(url, "outside the templates folder")
        return path

    def _read(self, url: str, path: Path) -> bytes:
        try:
            # O_NONBLOCK: opening a FIFO would wait for a writer; the fstat below refuses it.
            # O_NOFOLLOW: a symlink swapped in since the path was resolved is not followed.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            self._refuse(url, "cannot be opened")
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                self._refuse(url, "not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                self._refuse(url, f"larger than {MAX_FILE_BYTES} bytes")
            file = os.fdopen(descriptor, "rb")
        except BaseException:
            os.close(descriptor)
            raise
        with file:
            body = file.read(MAX_FILE_BYTES + 1)
        if len(body) > MAX_FILE_BYTES:  # it grew after the check
            self._refuse(url, f"larger than {MAX_FILE_BYTES} bytes")
        return body

    @property
    def refused(self) -> list[str]:
        """Every URL refused so far, in order."""
        return [refusal.url for refusal in self.refusals]

    def _refuse(self, url: str, reason: str) -> NoReturn:
        refusal = RefusedURLError(url, reason)
        self.refusals.append(refusal)
        raise refusal


def _headers_for(path: Path) -> dict[str, str]:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return {"Content-Type": kind}


def _shorten(url: str) -> str:
    # data: URLs can be megabytes long; an error message needs only their start.
    return url if len(url) <= 120 else f"{url[:117]}..."
