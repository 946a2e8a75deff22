"""Builds every handout PDF and email preview, in parallel, re-rendering only what has changed."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aftercare.content.model import Campaign, Handout, Project, Step
from aftercare.content.sites import FOLDER as SITES_FOLDER
from aftercare.content.sites import IMPLICIT_SITE
from aftercare.errors import InputError, PipelineError, RenderError
from aftercare.files import write_output
from aftercare.render.manifest import DIARY_KEY as DIARY_KEY
from aftercare.render.manifest import MANIFEST_NAME as MANIFEST_NAME
from aftercare.render.manifest import (
    InputHasher,
    Target,
    digest_of,
    is_up_to_date,
    preview_stem,
    write_manifest,
)
from aftercare.render.manifest import read_manifest as read_manifest
from aftercare.render.page import offers_diary

if TYPE_CHECKING:
    from aftercare.render.handouts import HandoutRenderer

# WeasyPrint is imported only when a handout has to be rendered: checking the manifest of an
# up-to-date build must stay far below the half second an import of WeasyPrint costs.

# Worker processes start from a clean interpreter: WeasyPrint drives Pango, fontconfig and
# GLib through cffi, and a process forked after they started (or with threads running)
# can deadlock or crash. "forkserver" forks each worker from a clean server process;
# "spawn" is the fallback where it is missing.
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
# The server imports these once, and every worker is forked with them already imported:
# importing WeasyPrint starts no thread and no font machinery (fonts are loaded by each
# worker's renderer, after the fork), and doing it once instead of once per worker made the
# pool ready about 0.4 s sooner on two cores.
FORKSERVER_PRELOAD = ("__main__", "aftercare.render.handouts", "weasyprint")


@dataclass(frozen=True)
class BuildReport:
    """What one build did: each target was either rendered and written, or already up to date."""

    out_dir: Path
    rendered: tuple[str, ...]  # target keys, e.g. "handouts/the-procedure", "emails/c/day-1"
    up_to_date: tuple[str, ...]
    written: tuple[Path, ...]  # every file written, in order
    jobs: int  # handout renderers used: 0 none, 1 this process, more: worker processes

    @property
    def handouts_rendered(self) -> int:
        return sum(_kind(key) == "handouts" for key in self.rendered)

    @property
    def previews_rendered(self) -> int:
        return sum(_kind(key) == "emails" for key in self.rendered)

    @property
    def handouts_up_to_date(self) -> int:
        return sum(_kind(key) == "handouts" for key in self.up_to_date)

    @property
    def previews_up_to_date(self) -> int:
        return sum(_kind(key) == "emails" for key in self.up_to_date)

    def summary(self) -> str:
        """One line for the CLI, e.g. "wrote 1 handout and 3 email previews to build/; ..."."""
        diary = any(_is_diary(key) for key in (*self.rendered, *self.up_to_date))
        line = f"wrote {self._counts(self.rendered, diary)} to {self.out_dir}/"
        if self.up_to_date:
            line += f"; {self._counts(self.up_to_date, diary)} already up to date"
        return line

    @staticmethod
    def _counts(keys: Sequence[str], diary: bool) -> str:
        handouts = _count(sum(_kind(key) == "handouts" for key in keys), "handout")
        previews = _count(sum(_kind(key) == "emails" for key in keys), "email preview")
        if not diary:
            return f"{handouts} and {previews}"
        diaries = _count(sum(map(_is_diary, keys)), "headache diary", "headache diaries")
        return f"{handouts}, {diaries} and {previews}"


def build(
    project: Project, out_dir: Path, topics: Sequence[str] = (), jobs: int | None = None
) -> BuildReport:
    """Render what is out of date to out_dir: handouts/<id>.pdf and emails/<campaign>/<step>.*,
    and for each site of sites/ its checkout sheets and email previews under sites/<id>/.

    With topics, only those handouts (and no email previews). ``jobs`` worker processes
    render handouts (default: one per available core); they start from a fresh interpreter,
    so a script that calls this must guard its own work with ``if __name__ == "__main__"``.
    Everything renders before anything is written, so a failure leaves the previous build
    untouched.
    """
    if jobs is not None and jobs < 1:
        raise InputError("jobs", f"expected 1 or more; got {jobs}")
    targets = plan(project, topics)
    manifest_path = out_dir / MANIFEST_NAME
    manifest = read_manifest(manifest_path)
    stale = [t for t in targets if not is_up_to_date(t, manifest, out_dir)]
    stale_keys = {t.key for t in stale}
    fresh = tuple(t.key for t in targets if t.key not in stale_keys)
    handouts = [t for t in stale if t.is_handout]
    previews = [t for t in stale if not t.is_handout]
    workers = min(jobs or available_cores(), len(handouts))
    rendered: dict[str, dict[str, bytes]] = {}
    if workers > 1:
        rendered.update(_render_in_workers(project, handouts, previews, workers))
    else:
        rendered.update(_render_handouts_here(project, handouts))
        rendered.update(_render_previews(project, previews))
    written = _write_outputs(out_dir, stale, rendered)
    write_manifest(manifest_path, project, manifest, stale, rendered)
    return BuildReport(
        out_dir, tuple(t.key for t in stale), fresh, tuple(written), workers if handouts else 0
    )


def available_cores() -> int:
    """Cores this process may run on (a container or taskset can allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------- what to build, and from what


def plan(project: Project, topics: Sequence[str] = ()) -> list[Target]:
    """Every target of the build with the hash of its inputs; raises InputError for a bad topic."""
    chosen = list(dict.fromkeys(topics)) or sorted(project.handouts)
    unknown = [topic for topic in chosen if topic not in project.handouts]
    if unknown:
        known = ", ".join(sorted(project.handouts))
        raise InputError("topic", f"expected one of {known}; got {', '.join(map(repr, unknown))}")
    hasher = InputHasher(project)
    targets = []
    for language in project.languages:
        local = project.in_language(language)
        folder = "" if language == project.clinic.language else f"{language}/"
        targets += [_handout_target(project, hasher, topic, language) for topic in chosen
                    if topic in local.handouts]
        if not topics and any(offers_diary(c) for c in local.campaigns.values()):
            parts = [hasher.code(), hasher.document("clinic.yaml", project.clinic),
                     hasher.tree("templates")]
            key = DIARY_KEY.replace("/", f"/{folder}", 1)
            targets.append(Target(key, digest_of(parts), (f"{key}.pdf",)))
        if not topics:
            for campaign_id, campaign in sorted(project.campaigns.items()):
                missing = project.translations[language].missing_for(campaign) if folder else []
                targets += [_preview_target(project, hasher, campaign_id, campaign, step,
                                            language) for step in campaign.steps if not missing]
    return targets + [t for site in sorted(project.sites) if not topics
                      for t in _site_targets(project, hasher, site)]


def _site_targets(project: Project, hasher: InputHasher, site: str) -> list[Target]:
    """A site's checkout sheets and email previews: what its patients get, with its numbers,
    hours and sender; under sites/<id>/, remade when its file changes."""
    local = project.at_site(site)
    own = hasher.document(f"{SITES_FOLDER}/{site}.yaml", local.clinic)
    targets = []
    for language in project.languages:
        sheets = sorted({c.handout for c in project.campaigns.values()})
        targets += [_handout_target(project, hasher, topic, language) for topic in sheets
                    if topic in project.in_language(language).handouts]
        folder = "" if language == project.clinic.language else language
        targets += [_preview_target(project, hasher, campaign_id, campaign, step, language)
                    for campaign_id, campaign in sorted(project.campaigns.items())
                    if not (folder and project.translations[language].missing_for(campaign))
                    for step in campaign.steps]
    prefix = f"{SITES_FOLDER}/{site}/"
    return [Target(prefix + t.key, digest_of([t.inputs, own]),
                   tuple(prefix + name for name in t.outputs)) for t in targets]


def target_site(key: str) -> tuple[str, str]:
    """A key's site and the rest: "sites/portland/handouts/x" -> ("portland", "handouts/x")."""
    first, _, rest = key.partition("/")
    if first == SITES_FOLDER:
        site, _, inner = rest.partition("/")
        return site, inner
    return IMPLICIT_SITE, key


def target_language(project: Project, key: str) -> tuple[str, str]:
    """A target key's language and the rest of it: ("es", "handouts/x") for "handouts/es/x"."""
    kind, _, rest = key.partition("/")
    first, slash, after = rest.partition("/")
    if slash and first in project.translations:
        return first, f"{kind}/{after}"
    return project.clinic.language, key


def _sources(project: Project, hasher: InputHasher, folder: str, name: str, language: str,
             model: object) -> list[str]:
    """The hashes of a content file and, for a translation, of its translation too."""
    parts = [hasher.document(f"{folder}/{name}.yaml", model)]
    if language != project.clinic.language:
        parts.append(hasher.document(f"{folder}/{language}/{name}.yaml", model))
    return parts


def _handout_target(project: Project, hasher: InputHasher, topic: str, language: str) -> Target:
    handout = project.handouts[topic]
    # A campaign's own handout is its checkout sheet, and the campaign fills in its dates.
    campaign = next((c for c in project.campaigns.values() if c.handout == topic), None)
    parts = [
        hasher.code(),
        hasher.document("clinic.yaml", project.clinic),
        *_sources(project, hasher, "handouts", topic, language, handout),
        *(_sources(project, hasher, "campaigns", campaign.id, language, campaign) if campaign
          else ["no campaign"]),
        # The template loader and the URL fetcher can both reach any file under templates/.
        hasher.tree("templates"),
    ]
    folder = "" if language == project.clinic.language else f"{language}/"
    key = f"handouts/{folder}{topic}"
    return Target(key, digest_of(parts), (f"{key}.pdf",))


def _preview_target(
    project: Project, hasher: InputHasher, campaign_id: str, campaign: Campaign, step: Step,
    language: str,
) -> Target:
    handout: Handout | str = project.handouts.get(campaign.handout, "missing")
    parts = [
        hasher.code(),
        hasher.document("clinic.yaml", project.clinic),
        *_sources(project, hasher, "campaigns", campaign_id, language, campaign),
        # The handout's sections are quoted.
        *_sources(project, hasher, "handouts", campaign.handout, language, handout),
        # Email templates are loaded from templates/email/ and can reach nothing else; other
        # languages take their shared sentences from templates/i18n/.
        hasher.tree("templates/email"),
        *([hasher.tree("templates/i18n")] if language != project.clinic.language else []),
    ]
    stem = preview_stem(project, language, campaign_id, step.key)
    suffixes = (".html", ".txt") + ((".ics",) if step.calendar is not None else ())
    return Target(stem, digest_of(parts), tuple(stem + suffix for suffix in suffixes))


# ---------------------------------------------------------------- rendering


def _render_handouts_here(project: Project, targets: Sequence[Target]) -> Iterator[
    tuple[str, dict[str, bytes]]
]:
    if not targets:
        return
    from aftercare.render.handouts import HandoutRenderer

    renderer = HandoutRenderer(project)
    for target in targets:
        yield target.key, _render_handout(renderer, project, target)


def _render_handout(
    renderer: HandoutRenderer, project: Project, target: Target
) -> dict[str, bytes]:
    site, key = target_site(target.key)
    renderer = renderer.at_site(site)
    language, key = target_language(project, key)
    if key == DIARY_KEY:
        return {target.outputs[0]: renderer.diary_pdf(None, language)}
    topic = key.removeprefix("handouts/")
    handout = project.in_language(language).handouts[topic]
    return {target.outputs[0]: renderer.pdf(handout, None)}


def _render_previews(project: Project, targets: Sequence[Target]) -> Iterator[
    tuple[str, dict[str, bytes]]
]:
    if not targets:
        return
    from aftercare.render.emails import EmailRenderer
    from aftercare.render.previews import PREVIEW_KEY, preview_recipient

    renderer = EmailRenderer(project, PREVIEW_KEY)
    for target in targets:
        site, key = target_site(target.key)
        language, key = target_language(project, key)
        _, campaign_id, step_key = key.split("/")
        campaign = project.campaigns[campaign_id]
        step = campaign.step(step_key)
        if step is None:  # the plan made the key from the campaign itself
            raise RenderError(f"campaigns/{campaign_id}.yaml: no step {step_key!r}")
        email = renderer.render(campaign, step, preview_recipient(project, language, site))
        files = {".html": email.html.encode(), ".txt": email.text.encode(), ".ics": email.ics}
        yield target.key, {
            name: data for name in target.outputs
            if (data := files[name[name.rindex("."):]]) is not None
        }


def _render_in_workers(
    project: Project, handouts: Sequence[Target], previews: Sequence[Target], workers: int
) -> dict[str, dict[str, bytes]]:
    """Handouts in ``workers`` processes, each holding one renderer; previews here meanwhile."""
    # Longest first (content size stands in for render time), so no worker is left with a
    # long handout at the end while the others sit idle.
    order = sorted(handouts, key=lambda t: _content_size(project, t), reverse=True)
    context = multiprocessing.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    results: dict[str, dict[str, bytes]] = {}
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(project,)
    ) as pool:
        futures = [pool.submit(_work, target) for target in order]
        try:
            # The email previews need no WeasyPrint and take milliseconds: render them here
            # while the workers import WeasyPrint.
            results.update(_render_previews(project, previews))
            for future in futures:
                key, outputs, error = future.result()
                if error is not None:
                    raise RenderError(error)
                results[key] = outputs
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _content_size(project: Project, target: Target) -> int:
    language, key = target_language(project, target_site(target.key)[1])
    handout = project.in_language(language).handouts.get(key.removeprefix("handouts/"))
    return len(repr(handout)) if handout is not None else 0  # the diary: one short page


# One renderer per worker process: fonts and stylesheets are loaded once, then reused. If it
# cannot be built (a font missing from templates/), the message, for every task to report.
_worker: tuple[Project, HandoutRenderer] | str | None = None


def _start_worker(project: Project) -> None:
    global _worker
    from aftercare.render.handouts import HandoutRenderer

    try:
        _worker = (project, HandoutRenderer(project))
    except PipelineError as exc:
        # Raised here it would only break the pool, and the user would see a traceback.
        _worker = str(exc)


def _work(target: Target) -> tuple[str, dict[str, bytes], str | None]:
    """Render one handout in a worker; a user-facing error comes back as its message."""
    assert _worker is not None, "the pool initializer did not run"
    if isinstance(_worker, str):
        return target.key, {}, _worker
    project, renderer = _worker
    try:
        return target.key, _render_handout(renderer, project, target), None
    except PipelineError as exc:
        # Our errors carry constructor arguments that do not survive pickling; their
        # message does, and that is what the user sees.
        return target.key, {}, str(exc)


# ---------------------------------------------------------------- writing


def _write_outputs(
    out_dir: Path, targets: Sequence[Target], rendered: Mapping[str, Mapping[str, bytes]]
) -> list[Path]:
    written: list[Path] = []
    for target in targets:
        for name, data in rendered[target.key].items():
            write_output(out_dir / name, data)
            written.append(out_dir / name)
    return written


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _kind(key: str) -> str:
    """What a target key makes: "handouts", "emails" or "printouts" (a site's too)."""
    return target_site(key)[1].partition("/")[0]


def _is_diary(key: str) -> bool:
    """The headache diary's target, in any language ("printouts/es/headache-diary")."""
    kind, _, name = DIARY_KEY.partition("/")
    return key.startswith(f"{kind}/") and key.endswith(f"/{name}")
