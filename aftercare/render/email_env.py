"""The email templates' Jinja environment: .html autoescaped, .txt not, the filters the
templates use, and the files one template reads (for its version hash)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jinja2
import jinja2.meta
from markupsafe import Markup

from aftercare.render.i18n import EXTENSIONS
from aftercare.render.plaintext import nbsp, wrap


def environment(folder: Path) -> jinja2.Environment:
    """Templates named .html are autoescaped; .txt ones are plain text and are not."""
    env = jinja2.Environment(
        extensions=EXTENSIONS,
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",),
            disabled_extensions=("txt",),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    env.filters["tel"] = tel
    env.filters["nbsp"] = nbsp
    env.filters["phone"] = phone_link
    return env


def sources(env: jinja2.Environment, name: str) -> Iterator[tuple[str, str]]:
    """The template and every template it extends, imports or includes, each once, in order."""
    seen: set[str] = set()
    pending = [name]
    loader = env.loader
    assert loader is not None
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        source, _, _ = loader.get_source(env, current)
        yield current, source
        referenced = jinja2.meta.find_referenced_templates(env.parse(source))
        pending += sorted(r for r in referenced if r is not None)


def phone_link(number: str) -> Markup:
    """A phone number as an HTML tel: link that never wraps (a filter: cheaper than a macro,
    and every email shows several)."""
    return Markup('<a class="phone" href="{}">{}</a>').format(tel(number), nbsp(number))


def tel(phone: str) -> str:
    """A tel: link for a phone number as written for people, e.g. '(617) 555-0142'."""
    return "tel:" + re.sub(r"[^0-9+]", "", phone)
