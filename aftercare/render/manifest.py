"""The build's memory: what each output was made from (hashes), kept in a manifest file."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from aftercare.content.model import Project
from aftercare.errors import InputError
from aftercare.files import write_output

MANIFEST_NAME = ".build-manifest.json"
MANIFEST_FORMAT = 1
# Every library whose version can change the bytes of a handout or an email.
_RENDERING_LIBRARIES = (
    "aftercare-pipeline", "weasyprint", "pydyf", "tinyhtml5", "tinycss2", "cssselect2",
    "pyphen", "pillow", "fonttools", "jinja2", "markupsafe", "css-inline", "segno", "pyyaml",
)
_PACKAGE = Path(__file__).resolve().parents[1]  # the whole aftercare package


# The one-page headache diary printed with migraine handouts: not a topic, so it has its own
# folder (a topic may take any name).
DIARY_KEY = "printouts/headache-diary"


def preview_stem(project: Project, language: str, campaign_id: str, step_key: str) -> str:
    """Where a step's preview goes under the output folder, without its suffix:
    emails/<campaign>/<step>, or emails/<language>/<campaign>/<step> for a translation."""
    folder = "" if language == project.clinic.language else f"{language}/"
    return f"emails/{folder}{campaign_id}/{step_key}"


@dataclass(frozen=True)
class Target:
    """One unit of output: a handout or the diary (PDF), or one email step's .html, .txt, .ics."""

    key: str  # "handouts/<topic>", "printouts/headache-diary" or "emails/<campaign>/<step>"
    inputs: str  # sha256 over everything the output is made from
    outputs: tuple[str, ...]  # paths relative to the output folder, "/"-separated

    @property
    def is_handout(self) -> bool:
        """Rendered to PDF by a handout renderer (a topic or the diary)."""
        return self.key.startswith(("handouts/", "printouts/"))


class InputHasher:
    """sha256 of input files and folders, each read once per build."""

    def __init__(self, project: Project) -> None:
        self.root = project.root
        self._files: dict[str, str] = {}
        self._trees: dict[str, str] = {}
        self._code: str | None = None

    def document(self, name: str, model: object) -> str:
        """The YAML file's bytes; a project built in code, without the file, hashes the model."""
        digest = self._file(self.root / name)
        return f"{name}:{digest}" if digest else f"{name}:model:{digest_of([repr(model)])}"

    def tree(self, folder: str) -> str:
        if folder not in self._trees:
            base = self.root / folder
            parts = [f"{path.relative_to(base).as_posix()}:{self._file(path)}"
                     for path in _files_under(base)]
            self._trees[folder] = f"{folder}/:{digest_of(parts)}"
        return self._trees[folder]

    def code(self) -> str:
        """This package's own source and the versions of the libraries that render."""
        if self._code is None:
            versions = [f"{name}=={_version(name)}" for name in _RENDERING_LIBRARIES]
            sources = [f"{path.relative_to(_PACKAGE).as_posix()}:{self._file(path)}"
                       for path in sorted(_PACKAGE.rglob("*.py"))]
            self._code = "code:" + digest_of(versions + sources)
        return self._code

    def _file(self, path: Path) -> str:
        key = str(path)
        if key not in self._files:
            try:
                self._files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:
                self._files[key] = ""
            except OSError as exc:
                raise InputError(str(path), f"cannot read: {exc.strerror}") from None
        return self._files[key]


def _files_under(folder: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subfolders, names in os.walk(folder):
        subfolders.sort()
        found += [Path(directory) / name for name in sorted(names)]
    return found


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def digest_of(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


# ---------------------------------------------------------------- the manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The targets of the last build; a missing or unreadable manifest means "build it all"."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return {}
    targets = data.get("targets")
    return targets if isinstance(targets, dict) else {}


def is_up_to_date(target: Target, manifest: Mapping[str, Any], out_dir: Path) -> bool:
    entry = manifest.get(target.key)
    if not isinstance(entry, dict) or entry.get("inputs") != target.inputs:
        return False
    recorded = entry.get("outputs")
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(target.outputs):
        return False
    for name in target.outputs:
        try:
            actual = hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
        except OSError:
            return False  # deleted, or unreadable: build it again
        if actual != recorded[name]:
            return False  # changed by hand since: build it again
    return True


def write_manifest(
    path: Path,
    project: Project,
    previous: Mapping[str, Any],
    built: Sequence[Target],
    rendered: Mapping[str, Mapping[str, bytes]],
) -> None:
    # Targets outside this build (other topics) keep their entries; ones whose content was
    # deleted from the project are forgotten.
    current = {DIARY_KEY}
    for language in project.languages:
        local = project.in_language(language)
        folder = "" if language == project.clinic.language else f"{language}/"
        current |= {f"handouts/{folder}{topic}" for topic in local.handouts} | {
            f"emails/{folder}{campaign_id}/{step.key}"
            for campaign_id, campaign in project.campaigns.items()
            for step in campaign.steps
        } | {DIARY_KEY.replace("/", f"/{folder}", 1)}
    targets = {key: entry for key, entry in previous.items() if key in current}
    for target in built:
        outputs = rendered[target.key]
        targets[target.key] = {
            "inputs": target.inputs,
            "outputs": {name: hashlib.sha256(outputs[name]).hexdigest() for name in outputs},
        }
    if targets == previous and path.is_file():
        return  # nothing changed: leave the file (and the disk) alone
    data = {"format": MANIFEST_FORMAT, "targets": dict(sorted(targets.items()))}
    write_output(path, (json.dumps(data, indent=1) + "\n").encode())
