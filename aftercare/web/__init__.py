"""The staff web app and the public endpoints, as one Flask app built by ``create_app``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from aftercare.content.model import Brand, Project
from aftercare.web.state import EXTENSION, AppState, WebConfig, close_handles

if TYPE_CHECKING:
    from aftercare.delivery import Backend
    from aftercare.render.handouts import HandoutRenderer
    from aftercare.render.pool import RenderPool

__all__ = ["WebConfig", "create_app"]

FONT_FACES = ("Regular", "Bold")


def create_app(
    project: Project,
    config: WebConfig,
    now: Callable[[], dt.datetime],
    backend: Callable[[], Backend],
    renderer: HandoutRenderer | RenderPool | None = None,
) -> Flask:
    """The app; ``now`` is the only clock it reads, ``backend`` makes the delivery backend.

    Building the handout renderer loads WeasyPrint, fonts and CSS (about a second), so it is
    done here once, not per request; tests may pass one they share, and `pipeline serve`
    passes a pool of warm renderer processes (aftercare.render.pool), which needs no lock.
    """
    import contextlib
    import threading

    from aftercare.render.handouts import HandoutRenderer
    from aftercare.web.api import register as register_api
    from aftercare.web.care import care
    from aftercare.web.errors import register as register_error_pages
    from aftercare.web.figures import figures
    from aftercare.web.patients import patients
    from aftercare.web.public import public
    from aftercare.web.requestlog import install as log_requests
    from aftercare.web.security import configure
    from aftercare.web.staff import staff
    from aftercare.web.team import team

    staff_templates = project.templates / "staff"
    app = Flask(__name__, template_folder=str(staff_templates), static_folder=None)
    assets = project.templates / "assets"
    app.extensions[EXTENSION] = AppState(
        project=project,
        config=config,
        now=now,
        backend=backend,
        renderer=renderer if renderer is not None else HandoutRenderer(project),
        stylesheet=_stylesheet(staff_templates / "staff.css", project.clinic.brand),
        logo=(assets / project.clinic.logo).read_bytes(),
        fonts=_fonts(assets / "fonts"),
        site_logos={site_id: (assets / site.clinic.logo).read_bytes()
                    for site_id, site in project.sites.items()
                    if site.clinic.logo != project.clinic.logo},
        render_lock=(contextlib.nullcontext() if getattr(renderer, "thread_safe", False)
                     else threading.Lock()),
    )
    configure(app, config.secret_key, config.secure_cookies, config.session_lifetime,
              dt.timedelta(minutes=project.clinic.staff.idle_timeout_minutes))
    app.register_blueprint(public)
    app.register_blueprint(care)
    app.register_blueprint(staff)
    app.register_blueprint(patients)
    app.register_blueprint(team)
    app.register_blueprint(figures)
    register_api(app, config)
    app.teardown_appcontext(close_handles)
    register_error_pages(app)
    log_requests(app)
    app.jinja_env.globals["clinic"] = project.clinic
    _pages_in_languages(app, project)
    return app


def _pages_in_languages(app: Flask, project: Project) -> None:
    """Pages patients see are in their language: each render's ``lang`` picks the sentences
    (``_()``) and the dates; staff pages are in the clinic's own language."""
    import jinja2
    from markupsafe import Markup

    from aftercare.dates import Style, format_day
    from aftercare.render.i18n import by_context, translator

    own = project.clinic.language
    translators = {code: translator(project, code) for code in project.languages}
    app.jinja_env.add_extension("jinja2.ext.i18n")
    gettext, ngettext = by_context(translators, own)
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True)

    def dated(style: Style) -> object:
        @jinja2.pass_context
        def date_filter(context: jinja2.runtime.Context, day: dt.date) -> str:
            return format_day(day, style, context.get("lang") or own)
        return date_filter

    app.jinja_env.filters["long_date"] = dated("long")
    app.jinja_env.filters["full_date"] = dated("full")
    app.jinja_env.filters["strong"] = lambda text: Markup("<strong>{}</strong>").format(text)
    app.jinja_env.filters["nowrap"] = lambda text: Markup(
        '<span class="nowrap">{}</span>').format(text)


def _stylesheet(path: Path, brand: Brand) -> str:
    """staff.css after a :root block of the clinic's colours, each checked for contrast."""
    from aftercare.render.page import contrast_ratio, tint

    # Buttons and the header put white text on the primary colour; a light brand colour
    # would make them unreadable, so the text colour stands in for it.
    primary = brand.primary if contrast_ratio("#ffffff", brand.primary) >= 4.5 else brand.text
    colours = {
        "primary": primary,
        "primary-tint": tint(primary, 0.08),
        "accent": brand.accent if contrast_ratio("#ffffff", brand.accent) >= 4.5 else brand.text,
        "accent-tint": tint(brand.accent, 0.08),
        "text": brand.text,
        "muted": tint(brand.text, 0.8),
        "rule": tint(brand.text, 0.6),  # field borders: 3:1 or more against white
    }
    properties = "".join(f"  --{name}: {value};\n" for name, value in colours.items())
    return f":root {{\n{properties}}}\n\n" + path.read_text(encoding="utf-8")


def _fonts(folder: Path) -> dict[str, bytes]:
    names = [f"AtkinsonHyperlegible-{face}.ttf" for face in FONT_FACES]
    return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}
