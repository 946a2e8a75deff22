"""The booking-system API under /api/v1/: JSON in and out, keys instead of staff logins."""

from __future__ import annotations

from flask import Flask

from aftercare.web.api.guard import EXTENSION, ApiState
from aftercare.web.api.keys import RateLimiter
from aftercare.web.state import WebConfig


def register(app: Flask, config: WebConfig) -> None:
    """Add the API's routes, its rate limiter and its refusals to the app."""
    from aftercare.web.api.routes import api

    app.extensions[EXTENSION] = ApiState(RateLimiter(config.api_rate_per_minute),
                                         config.api_idempotency_wait)
    app.register_blueprint(api)
