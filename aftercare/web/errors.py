"""Error pages: staff see what went wrong and what to do (a database that cannot be written says
that nothing was saved); anyone else gets a public page with no staff links, in their language
where the address names it; the API's callers get problem details (RFC 9457) instead of a page."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, render_template, request, session
from werkzeug.exceptions import HTTPException

from aftercare.errors import RenderError, StorageError
from aftercare.web.api.problems import ApiProblem, http_problem
from aftercare.web.public import link_language, patient_page
from aftercare.web.state import for_api

logger = logging.getLogger("aftercare.web")

STAFF_BLUEPRINTS = frozenset({"staff", "patients", "team"})
_TITLES = {404: "Page not found", 405: "Not allowed", 413: "Too large"}


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StorageError, storage_page)
    app.register_error_handler(RenderError, _render_failed)


def storage_page(error: StorageError) -> Response:
    """The database refused: 503, nothing was saved; webhook posts get text (SendGrid retries)."""
    logger.warning("database %s: %s", error.reason, error.detail)
    if request.endpoint == "public.sendgrid_webhook":
        return Response("database unavailable; nothing was recorded\n", status=503,
                        mimetype="text/plain")
    if for_api():
        return ApiProblem(503, f"the database is {error.reason}; nothing was changed; try "
                               "again later", headers={"Retry-After": "60"}).response()
    if _for_staff():
        page = render_template("storage_error.html", reason=error.reason)
    else:
        page = patient_page("public_error.html", link_language(), code=503)
    return Response(page, status=503, headers={"Retry-After": "60"})


def _render_failed(error: RenderError) -> tuple[str, int]:
    """A handout that could not be made (its render process stopped or hung): say so at once;
    at checkout nothing was enrolled, since a checkout makes the PDF first."""
    if not _for_staff():  # a patient's handout from the care page
        return patient_page("public_error.html", link_language(), code=503), 503
    page = render_template("error.html", title="The handout could not be made",
                           message=str(error), advice="Nothing was saved for this patient.")
    return page, 503


def _http_error(error: HTTPException) -> Response | tuple[str, int]:
    original = getattr(error, "original_exception", None)
    if isinstance(original, StorageError):  # raised where no handler of its own could run
        return storage_page(original)
    if for_api():
        return http_problem(error)
    code = error.code or 500
    if not _for_staff():
        return patient_page("public_error.html", link_language(), code=code), code
    page = render_template(
        "error.html",
        title=_TITLES.get(code, error.name),
        message=(
            "This page does not exist, or it has expired: checkout confirmations and searches "
            "are kept for 15 minutes only." if code == 404 else error.description or ""
        ),
        advice=None,
    )
    return page, code


def _for_staff() -> bool:
    """A staff page, or a logged-in staff member: the page may link to the staff pages."""
    if request.blueprint in STAFF_BLUEPRINTS or g.get("staff_user"):
        return True
    return getattr(session, "user", None) is not None
