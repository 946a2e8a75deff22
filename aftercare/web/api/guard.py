"""Who may call the API: a Bearer key that exists and is not revoked, within its rate and its
site; and the trail entry every call leaves under the key's name (route and status only).

The API is called by machines, with a key: it uses no staff session and no cookie, so it
needs no CSRF token, and the staff pages' login and CSRF checks are not loosened for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Final

from flask import current_app, g, request
from flask.wrappers import Response

from aftercare.errors import StorageError
from aftercare.outbox.api_keys import api_actor
from aftercare.outbox.records import ApiKeyRecord
from aftercare.web import state
from aftercare.web.api.bodies import MAX_BODY
from aftercare.web.api.keys import RateLimiter, bearer_token, hash_key
from aftercare.web.api.problems import ApiProblem

logger = logging.getLogger("aftercare.web")

EXTENSION: Final = "aftercare-api"
PUBLIC: Final = frozenset({"api.openapi"})  # the API's description holds no data
_REALM: Final = 'Bearer realm="aftercare"'


@dataclass(frozen=True)
class ApiState:
    """Shared by every API request: the rate limiter and how long a repeated request waits."""

    limiter: RateLimiter
    idempotency_wait: dt.timedelta


def api_state() -> ApiState:
    found: ApiState = current_app.extensions[EXTENSION]
    return found


def authenticate() -> None:
    """Before every API request: the body limit, then the key, its rate and whether it is
    revoked; refusals are problem details (401 with WWW-Authenticate, 429 with Retry-After)."""
    request.max_content_length = MAX_BODY
    if request.endpoint in PUBLIC:
        return
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise ApiProblem(401, "expected an API key: Authorization: Bearer <key>",
                         headers={"WWW-Authenticate": _REALM})
    key = state.outbox().api_keys.find(hash_key(token))
    if key is None:
        raise _invalid_token("this API key is not known")
    g.api_caller = api_actor(key.name)  # who the request log names ("api:<name>"), never the key
    allowance = api_state().limiter.take(key.id, state.current().now())
    if not allowance.allowed:
        if allowance.first_refusal:  # the trail records one refusal a minute, not a flood
            g.api_key = key
            g.api_note = " (rate limit reached; more refusals this minute are not recorded)"
        raise ApiProblem(
            429, f"this key may make {api_state().limiter.per_minute} calls a minute; try "
                 f"again in {allowance.retry_after} seconds",
            headers={"Retry-After": str(allowance.retry_after)})
    g.api_key = key
    if key.revoked_at is not None:
        g.api_note = " (key revoked)"
        raise _invalid_token("this API key was revoked")


def current_key() -> ApiKeyRecord:
    key: ApiKeyRecord = g.api_key
    return key


def authorise(site: str) -> None:
    """403 unless the key may act for ``site``."""
    key = current_key()
    if key.site is not None and key.site != site:
        raise ApiProblem(403, f"this key acts for site {key.site!r} only; the request is for "
                              f"site {site!r}")


def audit(response: Response) -> Response:
    """After every API request made with a known key: one trail entry under its name."""
    key: ApiKeyRecord | None = g.pop("api_key", None)
    if key is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        detail = f"{request.method} {rule} -> {response.status_code}{g.get('api_note', '')}"
        try:
            state.outbox().api_keys.record_call(key.name, state.current().now(), detail,
                                                g.get("api_enrollment"))
        except StorageError as exc:  # the answer is made (a 503 when its own write failed)
            logger.warning("API call not in the trail: the database is %s", exc.reason)
    return response


def _invalid_token(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, headers={
        "WWW-Authenticate": f'{_REALM}, error="invalid_token"'})
