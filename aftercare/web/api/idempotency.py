"""The Idempotency-Key header: a repeated request gets the first answer; another body is a 409.

The key is reserved in the outbox before the request is answered, so two requests with the
same key at once (a booking system retrying on a timeout) are answered once: the second waits
for the first's answer and gets it too, or a 409 if it takes too long. Answers a retry could
change (401, 403, 429, 5xx) are not kept.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Final, ParamSpec

from flask import g, make_response, request
from flask.typing import ResponseReturnValue
from flask.wrappers import Response

from aftercare.outbox.idempotency import KEEP_FOR
from aftercare.outbox.records import StoredAnswer
from aftercare.web import state
from aftercare.web.api.guard import api_state, current_key
from aftercare.web.api.problems import (
    IDEMPOTENCY_KEY_IN_PROGRESS,
    IDEMPOTENCY_KEY_REUSED,
    MEDIA_TYPE,
    ApiProblem,
)

HEADER: Final = "Idempotency-Key"
STALE_AFTER: Final = dt.timedelta(minutes=1)  # a request not answered by then has died
_POLL: Final = 0.05  # seconds between looks at a reservation another request holds
_KEY: Final = re.compile(r'"?([\x21\x23-\x7e]{1,255})"?')  # visible ASCII; quotes allowed
_NOT_KEPT: Final = frozenset({401, 403, 408, 429})

P = ParamSpec("P")


def idempotent(view: Callable[P, ResponseReturnValue]) -> Callable[P, Response]:
    """Answer ``view`` once per Idempotency-Key (when the request has one)."""

    @functools.wraps(view)
    def answer(*args: P.args, **kwargs: P.kwargs) -> Response:
        header = request.headers.get(HEADER)
        if header is None:
            return _respond(view, *args, **kwargs)
        match = _KEY.fullmatch(header.strip())
        if match is None:
            raise ApiProblem(400, f"{HEADER}: expected 1 to 255 visible ASCII characters "
                                  "(a UUID, say)")
        key, key_id = match[1], current_key().id
        table = state.outbox().idempotency
        fingerprint = _fingerprint()
        deadline = time.monotonic() + api_state().idempotency_wait.total_seconds()
        while True:
            found = table.reserve(key_id, key, fingerprint, state.current().now(),
                                  STALE_AFTER, KEEP_FOR)
            if found.outcome != "in-progress" or time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
        if found.outcome == "other-body":
            raise ApiProblem(409, f"this {HEADER} was first sent with another method, path or "
                                  "body; send a new key for a new request",
                             IDEMPOTENCY_KEY_REUSED)
        if found.outcome == "in-progress":
            raise ApiProblem(409, "the first request with this key is still being answered; "
                                  "repeat this one in a few seconds", IDEMPOTENCY_KEY_IN_PROGRESS,
                             headers={"Retry-After": "2"})
        if found.answer is not None:
            g.api_note = " (repeated request: first answer given again)"
            return _replay(found.answer)
        try:
            response = _respond(view, *args, **kwargs)
        except BaseException:
            table.release(key_id, key)  # a crash: the client may try again
            raise
        if response.status_code >= 500 or response.status_code in _NOT_KEPT:
            table.release(key_id, key)
        else:
            kept = StoredAnswer(response.status_code, response.headers.get("Location"),
                                response.get_data(as_text=True))
            # The enrolment the answer is about: erasing its patient deletes the answer.
            about = g.get("api_answer_about", g.get("api_enrollment"))
            table.finish(key_id, key, kept, about)
        return response

    return answer


def _respond(view: Callable[P, ResponseReturnValue], *args: P.args,
             **kwargs: P.kwargs) -> Response:
    """The view's answer, its refusals included (so that they are kept too)."""
    try:
        return make_response(view(*args, **kwargs))
    except ApiProblem as problem:
        return problem.response()


def _fingerprint() -> str:
    return fingerprint(request.method, request.path, request.get_data(cache=True))


def fingerprint(method: str, path: str, data: bytes) -> str:
    """The method, path and body, the body's JSON written one way (member order, spacing)."""
    try:
        body = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        body = data
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


def _replay(answer: StoredAnswer) -> Response:
    mimetype = MEDIA_TYPE if answer.status >= 400 else "application/json"
    response = Response(answer.body, answer.status, mimetype=mimetype)
    if answer.location:
        response.headers["Location"] = answer.location
    response.headers["Idempotent-Replayed"] = "true"
    return response
