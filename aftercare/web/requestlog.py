"""The request log: one line per request for the administrator (method, route pattern, status,
duration, and a staff member's id, an API key's name or "public"); never a path's ids, a query
string, a form or a token."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

logger = logging.getLogger("aftercare.requests")


def install(app: Flask) -> None:
    """Time every request from its start, and log it when its response is ready."""
    app.before_request(_start)
    app.after_request(_log)


def _start() -> None:
    g.request_started = time.perf_counter()


def _log(response: Response) -> Response:
    # The route's pattern ("/patients/<key>"), never the path: ids in paths are capabilities.
    route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
    started = g.get("request_started")
    took = "-" if started is None else f"{(time.perf_counter() - started) * 1000:.0f}ms"
    staff_id = g.get("staff_id")
    who = f"staff#{staff_id}" if staff_id is not None else g.get("api_caller", "public")
    logger.info("%s %s %d %s %s", request.method, route, response.status_code, took, who)
    return response
