"""Plain text for emails: wrapped at 72 columns, list items hung, phone numbers kept whole."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator

import jinja2

TEXT_WIDTH = 72
NBSP = "\u00a0"
_LIST_ITEM = re.compile(r"^(\s*(?:[-*•]|\d+\.)\s+)(.*)$")
# Only these break a plain-text line: a no-break space (in phone numbers) holds words together.
_BREAKING_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def nbsp(text: str) -> str:
    """Text whose spaces never break a line, such as a phone number."""
    return text.replace(" ", NBSP)


def wrap(text: str, marker: str = "") -> str:
    """Plain text wrapped at 72 columns; blank lines part paragraphs, '- ' or '1. ' start items.

    With ``marker`` the whole text is one item hung under the marker (a bullet or a number).
    Words are never broken, so a long web address stays whole on its own line.
    """
    if marker:
        return _fill(" ".join(_BREAKING_SPACE.split(text.strip())), marker)
    blocks = re.split(r"\n\s*\n", text.strip("\n"))
    return "\n\n".join("\n".join(_fill(item, lead) for lead, item in _items(b)) for b in blocks)


def _items(block: str) -> Iterator[tuple[str, str]]:
    lead, words = "", list[str]()
    for line in block.splitlines():
        match = _LIST_ITEM.match(line)
        if match and words:
            yield lead, " ".join(words)
        if match:
            lead, words = match[1], [match[2]]
        else:
            words.append(line.strip(" \t"))
    if words:
        yield lead, " ".join(w for w in words if w)


def _fill(text: str, lead: str) -> str:
    return textwrap.fill(
        text,
        width=TEXT_WIDTH,
        initial_indent=lead,
        subsequent_indent=" " * len(lead),
        break_long_words=False,
        break_on_hyphens=False,
    )


# Distinct texts a renderer remembers wrapped; real content has a few hundred (the handouts'
# sections, the templates' own lines). Past this, the memory starts again: it only saves time.
_WRAP_MEMORY = 4096


def remembering_wrap(memory: dict[tuple[str, str], str]) -> Callable[..., str]:
    """``wrap`` remembering its results in ``memory``: the same sections and lines come back
    in every message, and wrapping them was a third of the time spent rendering one.

    Text holding the recipient's name (the greeting) is wrapped afresh and never kept.
    """

    @jinja2.pass_context
    def wrap_filter(context: jinja2.runtime.Context, text: str, marker: str = "") -> str:
        name = context.get("first_name")
        if name and name in text:
            return wrap(text, marker)
        key = (text, marker)
        wrapped = memory.get(key)
        if wrapped is None:
            if len(memory) >= _WRAP_MEMORY:
                memory.clear()
            wrapped = memory[key] = wrap(text, marker)
        return wrapped

    return wrap_filter


def tidy(text: str) -> str:
    """Plain text without trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
