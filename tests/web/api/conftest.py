"""The API's tests share one rule: every request and response under /api/ is checked against the
OpenAPI document by a real validator, in the app itself, so no test can go around it.

The app of every test in this folder (the test client's and a real server's alike) carries the
check; a test fails at teardown if any exchange broke the document. A response must always
conform. A request the document calls invalid must have been refused (4xx), so the document is
never looser than the API; a path or method it does not list must have got a 404 or 405.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from flask.wrappers import Response
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_spec_validator import validate
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import TestResponse

from aftercare.content.model import Project
from aftercare.enrol.rules import CONSENT_WORDING_VERSION
from aftercare.outbox.store import Outbox
from aftercare.render.handouts import HandoutRenderer
from aftercare.web.api.keys import hash_key, new_key
from aftercare.web.api.openapi import document
from aftercare.web.api.problems import MEDIA_TYPE
from tests.web.conftest import NOW, Clock, make_app


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    request_errors: tuple[str, ...]  # what the document finds wrong with the request


class Contract:
    """Checks each API exchange against the OpenAPI document with openapi-core."""

    def __init__(self, spec: dict[str, Any]) -> None:
        validate(spec)  # openapi-spec-validator: the document itself is valid OpenAPI 3.1
        config = Config(extra_media_type_deserializers={MEDIA_TYPE: json.loads})
        self.openapi = OpenAPI.from_dict(spec, config=config)
        self.failures: list[str] = []
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def attach(self, app: Flask) -> Flask:
        app.after_request(self.check)
        return app

    def check(self, response: Response) -> Response:
        """After every request of an app under test: judge its exchange if it is the API's."""
        if request.path.startswith("/api/"):
            self.judge(_Asked(request), WerkzeugOpenAPIResponse(response), request.method,
                       request.path)
        return response

    def judge(self, asked: Any, answered: Any, method: str, path: str) -> None:
        """Record what the document finds wrong with one exchange (openapi-core's request and
        response protocols: a web framework's wrappers, or MockRequest and MockResponse)."""
        try:
            found: list[Exception] = list(self.openapi.iter_request_errors(asked))
        except RecursionError as exc:  # JSON nested deeper than any reader goes
            found = [exc]
        failures: list[str] = []
        status = answered.status_code
        where = f"{method} {path} -> {status}"
        if any(isinstance(e, PathNotFound | OperationNotFound) for e in found):
            body = json.loads(answered.data)
            if (status not in (404, 405) or answered.content_type != MEDIA_TYPE
                    or body.get("status") != status):
                failures.append(f"{where}: not in the document, and not a 404/405 problem")
        else:
            failures += [f"{where}: response: {e}"
                         for e in self.openapi.iter_response_errors(asked, answered)]
            if found and not 400 <= status < 500:
                failures.append(f"{where}: the document refuses this request ({found[0]}), "
                                "but the API accepted it")
        with self._lock:
            self.failures += failures
            self.exchanges.append(Exchange(method, path, status,
                                           tuple(str(e) for e in found)))


class _Asked(WerkzeugOpenAPIRequest):
    """The request as openapi-core reads it; a body past the size limit reads as none."""

    @property
    def body(self) -> bytes | None:
        try:
            return self.request.get_data(as_text=False)
        except RequestEntityTooLarge:
            return b""


@pytest.fixture
def contract(project: Project) -> Iterator[Contract]:
    """The check every API test in this folder runs under; any broken exchange fails it."""
    made = Contract(json.loads(json.dumps(document(project))))
    yield made
    assert made.failures == []


def api_app(project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer,
            contract: Contract, **config: object) -> Flask:
    """An app (with WebConfig changes) carrying the contract check."""
    return contract.attach(make_app(project, db_path, clock, renderer, **config))


@pytest.fixture
def app(project: Project, db_path: Path, clock: Clock, renderer: HandoutRenderer,
        contract: Contract) -> Flask:
    return api_app(project, db_path, clock, renderer, contract)


@pytest.fixture
def key(db_path: Path) -> str:
    """An API key for every site, added as `pipeline apikey add booking` adds it."""
    return add_key(db_path, "booking")


def add_key(db_path: Path, name: str, site: str | None = None) -> str:
    token = new_key()
    with Outbox.open(db_path) as outbox:
        outbox.api_keys.add(name, hash_key(token), site, NOW, "cli:admin")
    return token


def call(client: FlaskClient, method: str, path: str, key: str | None, *,
         json: object = None, headers: dict[str, str] | None = None,
         data: bytes | None = None) -> TestResponse:
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return client.open(f"/api/v1{path}", method=method, json=json, data=data, headers=sent)


def enrolment(**changes: object) -> dict[str, Any]:
    """A valid enrolment request body; ``changes`` replace members (None removes one)."""
    body: dict[str, Any] = {
        "campaign": "botox-cosmetic",
        "patient": {"first_name": "Ann", "email": "ann@example.com", "external_id": "P-1042"},
        "treated_on": "2026-11-23",
        "consents": {"aftercare": True, "reminders": True, "recorded_by": "maria",
                     "wording_version": CONSENT_WORDING_VERSION},
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not None}


DAY = dt.timedelta(days=1)


@contextmanager
def running(app: Flask) -> Iterator[str]:
    """The app behind waitress (4 threads, as `pipeline serve` runs it) on a free port of
    127.0.0.1; yields its base URL and stops it at the end."""
    from waitress import create_server  # type: ignore[import-untyped]

    server = create_server(app, host="127.0.0.1", port=0, threads=4, ident="")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Closed from the loop's own thread: sockets closed from this one could vanish under
        # the select() the loop is in (EBADF in the server's thread, about one run in ten).
        from waitress import wasyncore  # type: ignore[import-untyped]

        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive()
