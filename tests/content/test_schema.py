"""The YAML schema reader: dataclass fields are the schema; every problem has file, line, key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from aftercare.content.schema import build, parse_date, read_document
from aftercare.content.values import Slug


@dataclass(frozen=True)
class Inner:
    name: str
    count: int = 0


@dataclass(frozen=True)
class Outer:
    id: Slug
    when: dt.date
    kind: Literal["a", "b"]
    flag: bool
    items: tuple[Inner, ...]
    note: str | None = None


GOOD = """\
id: first-one
when: 2026-11-23
kind: a
flag: true
items:
  - name: x
    count: 2
  - name: >
      folded
      text
"""


def _problems(tmp_path: Path, text: str) -> tuple[Outer | None, list[str]]:
    path = tmp_path / "thing.yaml"
    path.write_text(text, encoding="utf-8")
    doc = read_document(path, "thing.yaml")
    return build(Outer, doc), [str(p) for p in doc.problems]


def test_a_good_document_builds_typed_frozen_values(tmp_path: Path) -> None:
    value, problems = _problems(tmp_path, GOOD)
    assert problems == []
    assert value == Outer(Slug("first-one"), dt.date(2026, 11, 23), "a", True,
                          (Inner("x", 2), Inner("folded text")))


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("kind: a", "kind: c", "thing.yaml:3: kind: expected one of a, b; got 'c'"),
    ("flag: true", "flag: yes", "thing.yaml:4: flag: expected true or false; got 'yes'"),
    ("    count: 2", "    count: two", "thing.yaml:7: items[0].count: expected a whole number"),
    ("id: first-one", "id: First One", "thing.yaml:1: id: expected a lower-case id"),
    ("when: 2026-11-23", "when: 2026-02-30", "thing.yaml:2: when: expected a real calendar date"),
    ("flag: true", "flag: true\nflg: true", "thing.yaml:5: flg: expected one of id, when, kind, "
     "flag, items, note; got unknown key 'flg' (did you mean 'flag'?)"),
    ("flag: true\n", "", "thing.yaml:1: flag: expected true or false; got nothing (key is "
     "missing)"),
    ("id: first-one", "id: !!python/object:os.system x", "thing.yaml:1: id: expected plain YAML"),
    ("kind: a", "kind: a\nkind: b", "thing.yaml:4: kind: this key appears twice; keep one"),
])
def test_each_problem_names_the_line_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    value, problems = _problems(tmp_path, GOOD.replace(old, new, 1))
    assert value is None
    assert any(p.startswith(expected) for p in problems), problems


def test_an_empty_file_and_broken_yaml_are_problems_not_crashes(tmp_path: Path) -> None:
    assert _problems(tmp_path, "")[1] == ["thing.yaml: expected a mapping; got an empty file"]
    value, problems = _problems(tmp_path, "id: [unclosed\n")
    assert value is None and problems[0].startswith("thing.yaml:2: invalid YAML")


def test_parse_date_says_what_it_expected() -> None:
    assert parse_date("2026-01-31") == dt.date(2026, 1, 31)
    for text in ("26-01-31", "2026/01/31", "2026-1-x"):
        with pytest.raises(ValueError, match=r"expected a date \(YYYY-MM-DD\)"):
            parse_date(text)
