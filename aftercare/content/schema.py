"""Builds frozen dataclasses from YAML nodes, collecting every problem with file, line and key path.

The field types of a dataclass are its schema: text, whole numbers, true/false, dates,
literal choices, tuples of any of these, mappings (read-only, in the file's order), nested
dataclasses, and any class with a
``parse(text)`` classmethod that raises ``ValueError("expected ...")``. Unknown keys are
problems, so a typo in clinical text never passes silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from aftercare.content.values import FrozenMap
from aftercare.errors import Problem

T = TypeVar("T")

# Safe loading already refuses to construct objects; we also refuse to read them as text.
_PLAIN_TAGS = tuple(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)


# Content is small (the largest shipped file is about 7 KB) and shallow (at most 5 levels). These
# limits refuse a pathological file at once, before the pure-Python parser spends time on it.
MAX_BYTES: Final = 256 * 1024
MAX_DEPTH: Final = 20
# Aliases are refused outright rather than allowed up to a budget: content is clinical text
# that a clinician reviews, and an alias makes a reviewer read text in one place that patients
# get in another. Writing each text where it is printed keeps review and output the same (and
# a file that reuses one list thousands of times can no longer blow up in size).
NO_ALIASES: Final = (
    "expected the text written out where it is used; got an alias ({alias}): aliases are not "
    "allowed in content, so that what a reviewer reads is what patients get"
)


class _Refused(Exception):
    """The reader stopped at a construct content may not use (``mark`` is where it starts)."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _ContentLoader(yaml.SafeLoader):
    """Safe loading that refuses aliases and deep nesting while it composes, so a hostile file
    is stopped at its first alias or at the limit's depth, not after expanding it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, NO_ALIASES.format(alias=f"*{event.anchor}"))
        if self._depth >= MAX_DEPTH:
            raise _Refused(event.start_mark, f"expected at most {MAX_DEPTH} levels of lists "
                           "and mappings inside each other; got more")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class Invalid(Exception):
    """Raised inside a builder for a value that cannot be used; the problem is already recorded."""


@dataclasses.dataclass
class Document:
    """One YAML file's node tree, with the name it is reported under and the problems found."""

    name: str
    root: yaml.Node | None
    problems: list[Problem]
    lines: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(Problem(self.name, line, path, message))

    def line_of(self, path: str) -> int | None:
        """The line ``path`` was written on; for a key left out, the line of what holds it."""
        while path:
            if path in self.lines:
                return self.lines[path]
            shorter = re.sub(r"(?:\.[^.\[]+|\[\d+\])$", "", path)
            if shorter == path:
                break
            path = shorter
        return None

    def add_at(self, path: str, message: str) -> None:
        """Record a problem found after building (a cross-field check) at the line of ``path``."""
        self.problems.append(Problem(self.name, self.line_of(path), path, message))


def read_document(path: Path, name: str) -> Document:
    """Parse a YAML file safely into nodes; syntax errors, duplicate keys, aliases, deep nesting
    and an oversized file become problems."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return Document(name, None, [Problem(name, None, "", f"cannot read file: {exc.strerror}")])
    if len(data) > MAX_BYTES:
        too_big = f"expected a file of at most {MAX_BYTES // 1024} KB; got a larger one"
        return Document(name, None, [Problem(name, None, "", too_big)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Document(name, None, [Problem(name, None, "", f"expected UTF-8 text; {exc.reason}")])
    loader = _ContentLoader(text)
    try:
        root = loader.get_single_node()
    except _Refused as exc:
        line = exc.mark.line + 1 if exc.mark is not None else None
        return Document(name, None, [Problem(name, line, "", exc.message)])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        return Document(name, None, [Problem(name, line, "", f"invalid YAML: {reason}")])
    except yaml.YAMLError as exc:
        return Document(name, None, [Problem(name, None, "", f"invalid YAML: {exc}")])
    finally:
        loader.dispose()
    return Document(name, root, [])


def build(cls: type[T], doc: Document) -> T | None:
    """Build ``cls`` from the document's root, or return None when any problem was found."""
    if doc.root is None:
        if not doc.problems:
            doc.add(None, "", f"expected {_describe(cls)}; got an empty file")
        return None
    before = len(doc.problems)
    try:
        value = _build(cls, doc.root, "", doc)
    except Invalid:
        return None
    return value if len(doc.problems) == before else None


def _build(tp: Any, node: yaml.Node, path: str, doc: Document) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if not node.tag.startswith(_PLAIN_TAGS):
        doc.add(node, path, f"expected plain YAML; got the tag {node.tag!r}")
        raise Invalid
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if _is_null(node):
            return None
        return _build(options[0], node, path, doc)
    if origin is Literal:
        return _build_literal(tp, node, path, doc)
    if origin is tuple:
        return _build_tuple(get_args(tp)[0], node, path, doc)
    if origin is Mapping:
        key_type, value_type = get_args(tp)
        return _build_mapping(key_type, value_type, node, path, doc)
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return scalar(node, path, doc)
    parse = getattr(tp, "parse", None)
    if callable(parse):
        text = _text(node, path, doc, _describe(tp))
        try:
            return parse(text)
        except ValueError as exc:
            doc.add(node, path, f"{exc}; got {text!r}")
            raise Invalid from exc
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build_dataclass(tp, node, path, doc)
    raise TypeError(f"schema: unsupported field type {tp!r} at {path}")


def _build_dataclass(cls: type[Any], node: yaml.Node, path: str, doc: Document) -> Any:
    if not isinstance(node, yaml.MappingNode):
        doc.add(node, path or "(top level)", f"expected {_describe(cls)}; got {_got(node)}")
        raise Invalid
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.metadata.get("yaml", True)}
    seen: dict[str, yaml.Node] = {}
    values: dict[str, Any] = {}
    failed = False
    for key_node, value_node in node.value:
        key = str(key_node.value)
        key_path = f"{path}.{key}" if path else key
        if key in seen:
            doc.add(key_node, key_path, "this key appears twice; keep one")
            failed = True
            continue
        seen[key] = key_node
        if key not in fields:
            doc.add(key_node, key_path, _unknown_key_message(key, list(fields)))
            failed = True
            continue
        try:
            values[key] = _build(hints[key], value_node, key_path, doc)
        except Invalid:
            failed = True
    for name, field in fields.items():
        if name in seen:
            continue
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            key_path = f"{path}.{name}" if path else name
            expected = _describe(hints[name])
            doc.add(node, key_path, f"expected {expected}; got nothing (key is missing)")
            failed = True
    if failed:
        raise Invalid
    return cls(**values)


def _build_tuple(item: Any, node: yaml.Node, path: str, doc: Document) -> tuple[Any, ...]:
    if _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        doc.add(node, path, f"expected a list; got {_got(node)}")
        raise Invalid
    items: list[Any] = []
    failed = False
    for index, child in enumerate(node.value):
        try:
            items.append(_build(item, child, f"{path}[{index}]", doc))
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    return tuple(items)


def _build_mapping(
    key_type: Any, value_type: Any, node: yaml.Node, path: str, doc: Document
) -> FrozenMap[Any, Any]:
    if _is_null(node):
        return FrozenMap()
    if not isinstance(node, yaml.MappingNode):
        doc.add(node, path, f"expected a mapping; got {_got(node)}")
        raise Invalid
    items: dict[Any, Any] = {}
    failed = False
    for key_node, value_node in node.value:
        key_text = str(key_node.value)
        key_path = f"{path}.{key_text}" if path else key_text
        try:
            key = _build(key_type, key_node, key_path, doc)
            if key in items:
                doc.add(key_node, key_path, "this key appears twice; keep one")
                raise Invalid
            items[key] = _build(value_type, value_node, key_path, doc)
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    return FrozenMap(items)


def _build_literal(tp: Any, node: yaml.Node, path: str, doc: Document) -> str:
    choices = [str(c) for c in get_args(tp)]
    text = _text(node, path, doc, _describe(tp))
    if text not in choices:
        doc.add(node, path, f"expected one of {', '.join(choices)}; got {text!r}")
        raise Invalid
    return text


def _text(node: yaml.Node, path: str, doc: Document, expected: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or _is_null(node):
        doc.add(node, path, f"expected {expected}; got {_got(node)}")
        raise Invalid
    return str(node.value)


def _build_str(node: yaml.Node, path: str, doc: Document) -> str:
    text = _text(node, path, doc, "text").strip()
    if not text:
        doc.add(node, path, "expected text; got an empty string")
        raise Invalid
    return " ".join(text.split()) if "\n" in text else text


def _build_int(node: yaml.Node, path: str, doc: Document) -> int:
    text = _text(node, path, doc, "a whole number")
    if node.tag != "tag:yaml.org,2002:int" or not text.lstrip("-").isdigit():
        doc.add(node, path, f"expected a whole number; got {text!r}")
        raise Invalid
    return int(text)


def _build_bool(node: yaml.Node, path: str, doc: Document) -> bool:
    text = _text(node, path, doc, "true or false")
    if text not in ("true", "false"):
        doc.add(node, path, f"expected true or false; got {text!r}")
        raise Invalid
    return text == "true"


def _build_date(node: yaml.Node, path: str, doc: Document) -> dt.date:
    text = _text(node, path, doc, "a date (YYYY-MM-DD)")
    try:
        return parse_date(text)
    except ValueError as exc:
        doc.add(node, path, f"{exc}; got {text!r}")
        raise Invalid from exc


def parse_date(text: str) -> dt.date:
    """Read a calendar date written YYYY-MM-DD; the error says what was expected."""
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise ValueError("expected a date (YYYY-MM-DD)")
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError as exc:
        raise ValueError(f"expected a real calendar date ({exc})") from exc


_SCALARS: dict[Any, Callable[[yaml.Node, str, Document], Any]] = {
    str: _build_str,
    int: _build_int,
    bool: _build_bool,
    dt.date: _build_date,
}


def _is_null(node: yaml.Node) -> bool:
    return (
        isinstance(node, yaml.ScalarNode)
        and node.tag == "tag:yaml.org,2002:null"
        and node.value in ("", "~", "null", "Null", "NULL")
    )


def _got(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    return repr(str(node.value))


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _describe(next(a for a in get_args(tp) if a is not type(None)))
    if origin is Literal:
        return "one of " + ", ".join(str(c) for c in get_args(tp))
    if origin is tuple:
        return "a list"
    if origin is Mapping:
        return "a mapping"
    if hasattr(tp, "expected"):
        return str(tp.expected)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    names = {
        str: "text",
        int: "a whole number",
        bool: "true or false",
        dt.date: "a date (YYYY-MM-DD)",
    }
    if tp in names:
        return names[tp]
    return str(getattr(tp, "__name__", "a value"))


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"expected one of {', '.join(allowed)}; got unknown key {key!r}{hint}"
