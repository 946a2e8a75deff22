"""Records in a translation file who translated or reviewed it, when, and from what source: its
``translation:`` block is rewritten in place (the rest of the file, comments included, is kept).

The hashes written are the source's as it is now (see fingerprint.py): `pipeline check` then
names every part of the source that changes after this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from aftercare.content.fingerprint import campaign_parts, digest, handout_parts, template_parts
from aftercare.content.model import Project, TranslationRecord
from aftercare.errors import InputError

# The keys of a record, in the order they are written.
ORDER = ("source", "language", "status", "translated_by", "translated_on", "translated_from",
         "reviewed_by", "reviewed_on", "reviewed_from")
_KEY = re.compile(r"^  ([a-z_]+):(.*)$")


@dataclasses.dataclass(frozen=True)
class TranslationFile:
    """A translation file of a project: where it is, its language and its record."""

    name: str                         # "handouts/es/aftercare-cosmetic.yaml"
    language: str                     # "es"
    record: TranslationRecord

    def source_parts(self, project: Project, sentences: Iterable[str] = ()) -> dict[str, str]:
        """The hash of each part of its source as the source is now (``sentences``: the
        shared sentences the templates and the code write, for the sentences file)."""
        return source_parts(project, self.name, self.language, sentences)


def translation_files(project: Project) -> list[TranslationFile]:
    """Every translation file of the project, by name."""
    return sorted(
        (TranslationFile(name, language, record)
         for language, local in project.translations.items()
         for name, record in local.records.items()),
        key=lambda f: f.name,
    )


def source_parts(
    project: Project, name: str, language: str, sentences: Iterable[str] = ()
) -> dict[str, str]:
    """What a translation file follows, hashed part by part. The shared sentences' file
    follows the set of sentences written in English (each key is its own source, so a changed
    sentence is missing its translation anyway; the hash tells a reviewed file that a sentence
    came or went since its review)."""
    folder, _, rest = name.partition("/")
    stem = Path(name).stem
    if folder == "handouts":
        return handout_parts(project.handouts[stem])
    if folder == "campaigns":
        return campaign_parts(project.campaigns[stem])
    if rest.startswith("email/"):
        local = project.translations[language]
        return template_parts(project.templates / "email", local.templates)
    return {"sentences": digest(sorted(set(sentences)))}


def stamp(
    project: Project, name: str, day: dt.date, *, translated_by: str | None = None,
    reviewed_by: str | None = None, sentences: Iterable[str] = (),
) -> TranslationRecord:
    """Record a new translation (``translated_by``: a draft again, any review forgotten) or a
    review (``reviewed_by``) of the file ``name``, dated ``day``; returns the new record."""
    found = {f.name: f for f in translation_files(project)}.get(name)
    if found is None:
        known = ", ".join(found_name for found_name in sorted(
            f.name for f in translation_files(project))) or "none"
        raise InputError("files", f"expected a translation file of this project ({known}); "
                                 f"got {name!r}")
    record, parts = found.record, found.source_parts(project, sentences)
    if translated_by is not None:
        record = dataclasses.replace(
            record, status="draft", translated_by=translated_by, translated_on=day,
            translated_from=parts, reviewed_by=None, reviewed_on=None, reviewed_from=None)
    if reviewed_by is not None:
        if day < record.translated_on:
            raise InputError("on", f"expected a review on or after the translation "
                                   f"({record.translated_on}); got {day}")
        record = dataclasses.replace(
            record, status="reviewed", reviewed_by=reviewed_by, reviewed_on=day,
            reviewed_from=parts, translated_from=record.translated_from or parts)
    path = project.root / name
    path.write_text(rewrite_record(path.read_text(encoding="utf-8"), record), encoding="utf-8")
    return record


def rewrite_record(text: str, record: TranslationRecord) -> str:
    """The file's text with its ``translation:`` block holding ``record``; each key keeps the
    comment written after it, and comment lines keep their place before their key."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "translation:"), None)
    if start is None:
        raise InputError("files", "expected a top-level 'translation:' block; there is none")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "#"))):
        end += 1
    comments: dict[str, tuple[int, str]] = {}
    before: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in lines[start + 1:end]:
        match = _KEY.match(line.rstrip("\n"))
        if match:
            comment = _trailing_comment(match[2])
            comments[match[1]] = (line.find(comment) if comment else 0, comment)
            before[match[1]], pending = pending, []
        elif line.lstrip().startswith("#") and line.startswith("  ") and not line.startswith(
                "    "):
            pending.append(line if line.endswith("\n") else line + "\n")
    block = ["translation:\n"]
    for key in ORDER:
        block += before.get(key, [])
        block += _written(key, getattr(record, key), *comments.get(key, (0, "")))
    return "".join(lines[:start] + block + pending + lines[end:])


def _written(key: str, value: object, column: int, comment: str) -> list[str]:
    """The key's lines; its comment where it was (at least two spaces after the value)."""
    def with_comment(line: str) -> str:
        if not comment:
            return line + "\n"
        return line + " " * max(2, column - len(line)) + comment + "\n"

    if isinstance(value, Mapping):
        if not value:
            return [with_comment(f"  {key}: {{}}")]
        return [with_comment(f"  {key}:")] + [f"    {_scalar(k)}: {_scalar(v)}\n"
                                               for k, v in value.items()]
    return [with_comment(f"  {key}: {_scalar(value)}")]


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dt.date):
        return value.isoformat()
    dumped = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=10_000)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def _trailing_comment(rest: str) -> str:
    """The "# ..." after a key's value, if any (a # inside quotes is not one)."""
    match = re.search(r"\s#\s.*$", rest)
    if match is None or rest[: match.start()].count('"') % 2 or rest[: match.start()].count(
            "'") % 2:
        return ""
    return match.group(0).strip()
