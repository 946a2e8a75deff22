"""Renders one campaign step into an email: HTML, plain text and an optional .ics invitation."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import textwrap
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
import jinja2
import jinja2.meta

from aftercare.calendar_invite import AllDayEvent, build_ics
from aftercare.content import Campaign, Handout, Project, Section, Step
from aftercare.errors import InputError, RenderError
from aftercare.tokens import sign
from aftercare.values import EmailAddress

TEXT_WIDTH = 72

# Previews are rendered for this made-up patient so `pipeline build` output is reproducible.
PREVIEW_FIRST_NAME = "Sample"
PREVIEW_EMAIL = EmailAddress("patient@example.com")
PREVIEW_TREATED_ON = dt.date(2026, 11, 23)
PREVIEW_PUBLIC_ID = "preview"
# Previews are signed with this public key, not the clinic's secret: a preview's unsubscribe
# link is well formed but never verifies, and building previews needs no secret.
PREVIEW_KEY = b"preview only: links signed with this key never verify"

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_LIST_ITEM = re.compile(r"^(\s*(?:[-*•]|\d+\.)\s+)(.*)$")
NBSP = "\u00a0"
# Only these break a plain-text line: a no-break space (in phone numbers) holds words together.
_BREAKING_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_ALLERGY_WORDS = ("allerg", "hives", "welts", "wheez", "asthma")
# Zero-width joiners shape some scripts' names correctly; every other control or format
# character (bidi overrides, NUL, line breaks) could disguise or break the greeting.
_KEEP_FORMAT_CHARS = {"\u200c", "\u200d"}


@dataclass(frozen=True)
class RenderedEmail:
    """One email ready for a delivery backend; holds no database or provider state."""

    subject: str
    preheader: str
    html: str
    text: str
    language: str
    ics: bytes | None          # text/calendar body for the attachment, or None
    ics_filename: str | None
    content_hash: str          # sha256 hex of subject, preheader, html, text and ics, as sent
    template_version: str      # short hash of the template files and campaign step used
    unsubscribe_url: str


@dataclass(frozen=True)
class Recipient:
    """Who one message goes to, with only what the email needs."""

    first_name: str
    email: EmailAddress
    language: str
    treated_on: dt.date
    local_due: dt.datetime | None        # when this step is due, local time (None for previews)
    public_id: str                       # message public id, used in the unsubscribe token


@dataclass(frozen=True)
class StepPreview:
    """One step rendered for the sample patient and written to disk, for `pipeline preview`."""

    email: RenderedEmail
    paths: tuple[Path, ...]              # .html, .txt and, for calendar steps, .ics

    def summary(self) -> str:
        """Subject, preview text, where the files are, then the plain text."""
        lines = [f"Subject: {self.email.subject}", f"Preview: {self.email.preheader}"]
        lines += [f"{p.suffix[1:].upper()}: {p}" for p in self.paths if p.suffix != ".txt"]
        return "\n".join(lines) + "\n\n" + self.email.text


@dataclass(frozen=True)
class _CompiledStep:
    html: jinja2.Template
    text: jinja2.Template
    version: str


class EmailRenderer:
    """Renders campaign steps; create one per run, it compiles each step's templates once."""

    def __init__(self, project: Project, key: bytes) -> None:
        self._project = project
        self._key = key
        folder = project.templates / "email"
        self._env = _environment(folder)
        self._wrapped: dict[tuple[str, str], str] = {}
        self._env.filters["wrap"] = _remembering_wrap(self._wrapped)
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._compiled: dict[tuple[str, Step], _CompiledStep] = {}

    def render(self, campaign: Campaign, step: Step, recipient: Recipient) -> RenderedEmail:
        """The step's email for one recipient; the same inputs always give the same bytes."""
        compiled = self._compile(campaign, step)
        handout = self._handout(campaign)
        clinic = self._project.clinic
        token = sign(recipient.public_id, self._key)
        unsubscribe_url = f"{clinic.email.public_base_url.rstrip('/')}/unsubscribe?t={token}"
        ics, ics_filename = self._calendar(campaign, step, recipient)
        context: dict[str, Any] = {
            "lang": recipient.language,
            "subject": step.subject,
            "preheader": step.preheader,
            "first_name": clean_name(recipient.first_name),
            "clinic": clinic,
            "brand": clinic.brand,
            "campaign": campaign,
            "step": step,
            "handout": handout,
            "sections": self._sections(campaign, step, handout),
            "emergency_signs": without_allergy(handout.emergency_if),
            "call_signs": without_allergy(handout.call_clinic_if),
            "next_visit": long_date(next_treatment_on(campaign, recipient.treated_on)),
            "has_calendar": ics is not None,
            "unsubscribe_url": unsubscribe_url,
        }
        html = _charset_first(self._inliner.inline(compiled.html.render(context)))
        text = _tidy(compiled.text.render(context))
        return RenderedEmail(
            subject=step.subject,
            preheader=step.preheader,
            html=html,
            text=text,
            language=recipient.language,
            ics=ics,
            ics_filename=ics_filename,
            content_hash=content_hash(step.subject, step.preheader, html, text, ics),
            template_version=compiled.version,
            unsubscribe_url=unsubscribe_url,
        )

    def _compile(self, campaign: Campaign, step: Step) -> _CompiledStep:
        cache_key = (campaign.id, step)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            html_name, text_name = f"{step.template}.html", f"{step.template}.txt"
            try:
                html = self._env.get_template(html_name)
                text = self._env.get_template(text_name)
            except jinja2.TemplateNotFound as exc:
                raise RenderError(f"templates/email/{exc.name}: no such template") from exc
            digest = hashlib.sha256()
            for name in (html_name, text_name):
                for used, source in _sources(self._env, name):
                    digest.update(f"{used}\0{source}\0".encode())
            digest.update(repr(step).encode())
            compiled = _CompiledStep(html, text, digest.hexdigest()[:12])
            self._compiled[cache_key] = compiled
        return compiled

    def _handout(self, campaign: Campaign) -> Handout:
        handout = self._project.handouts.get(campaign.handout)
        if handout is None:
            raise RenderError(f"campaigns/{campaign.id}.yaml: no handout {campaign.handout!r}")
        return handout

    def _sections(self, campaign: Campaign, step: Step, handout: Handout) -> tuple[Section, ...]:
        by_id = {section.id: section for section in handout.sections}
        missing = [s for s in step.sections if s not in by_id]
        if missing:
            raise RenderError(
                f"campaigns/{campaign.id}.yaml: step {step.key}: no section {missing[0]!r} "
                f"in handouts/{handout.id}.yaml"
            )
        return tuple(by_id[s] for s in step.sections)

    def _calendar(
        self, campaign: Campaign, step: Step, recipient: Recipient
    ) -> tuple[bytes | None, str | None]:
        if step.calendar is None:
            return None, None
        due = recipient.local_due.date() if recipient.local_due else step.offset.after(
            recipient.treated_on
        )
        is_last = step.key == campaign.steps[-1].key
        # The last step is the booking reminder: its event sits on the day the next treatment
        # is due (12 weeks for migraine), never before the email itself arrives.
        day = max(due, next_treatment_on(campaign, recipient.treated_on)) if is_last else due
        # DTSTAMP comes from the message, not the clock, so the same message is the same bytes.
        stamp = recipient.local_due or dt.datetime.combine(
            recipient.treated_on, dt.time(), tzinfo=dt.UTC
        )
        clinic = self._project.clinic
        domain = clinic.email.from_address.rsplit("@", 1)[1]
        event = AllDayEvent(
            uid=f"{recipient.public_id}@{domain}",
            day=day,
            summary=step.calendar.summary,
            description=step.calendar.description,
            stamp=stamp,
            organizer_name=clinic.name,
        )
        return build_ics(event), "next-visit.ics" if is_last else "check-in.ics"


def build_previews(project: Project, out_dir: Path) -> list[Path]:
    """Every step of every campaign for the sample patient, to out_dir/emails/<campaign>/<step>.*

    Everything renders before anything is written, so a template error leaves no mix of old
    and new files.
    """
    renderer = EmailRenderer(project, PREVIEW_KEY)
    recipient = preview_recipient(project)
    rendered = [
        (out_dir / "emails" / campaign_id / step.key, renderer.render(campaign, step, recipient))
        for campaign_id, campaign in sorted(project.campaigns.items())
        for step in campaign.steps
    ]
    written: list[Path] = []
    for stem, email in rendered:
        written += _write_email(stem, email)
    return written


def preview_step(
    project: Project, campaign_id: str, step_key: str, out_dir: Path = Path("build")
) -> StepPreview:
    """One step for the sample patient, written where build_previews writes it."""
    campaign = project.campaigns.get(campaign_id)
    if campaign is None:
        known = ", ".join(sorted(project.campaigns))
        raise InputError("CAMPAIGN", f"expected one of {known}; got {campaign_id!r}")
    step = next((s for s in campaign.steps if s.key == step_key), None)
    if step is None:
        known = ", ".join(s.key for s in campaign.steps)
        raise InputError("STEP", f"expected one of {known}; got {step_key!r}")
    email = EmailRenderer(project, PREVIEW_KEY).render(campaign, step, preview_recipient(project))
    paths = _write_email(out_dir / "emails" / campaign_id / step.key, email)
    return StepPreview(email, tuple(paths))


def preview_text(
    project: Project, campaign_id: str, step_key: str, out_dir: Path = Path("build")
) -> str:
    """What `pipeline preview CAMPAIGN STEP` prints: subject, preview text, file paths, text."""
    return preview_step(project, campaign_id, step_key, out_dir).summary()


def preview_recipient(project: Project) -> Recipient:
    """The made-up patient every preview is rendered for."""
    return Recipient(
        first_name=PREVIEW_FIRST_NAME,
        email=PREVIEW_EMAIL,
        language=project.clinic.language,
        treated_on=PREVIEW_TREATED_ON,
        local_due=None,
        public_id=PREVIEW_PUBLIC_ID,
    )


def without_allergy(signs: tuple[str, ...]) -> tuple[str, ...]:
    """A handout's warning signs less its allergy items: every email's warning block names the
    allergy signs itself, split by urgency, so they are never said twice or at one urgency."""
    return tuple(s for s in signs if not any(word in s.lower() for word in _ALLERGY_WORDS))


def nbsp(text: str) -> str:
    """Text whose spaces never break a line, such as a phone number."""
    return text.replace(" ", NBSP)


def next_treatment_on(campaign: Campaign, treated_on: dt.date) -> dt.date:
    """The day the next treatment (or next migraine cycle) is due."""
    return campaign.next_treatment_after.after(treated_on)


def long_date(day: dt.date) -> str:
    """A date as 'Monday 15 February', the same whatever the machine's locale."""
    return f"{_WEEKDAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]}"


def clean_name(name: str) -> str:
    """A first name with control and format characters removed and spaces collapsed."""
    kept = "".join(
        " " if unicodedata.category(ch).startswith("C") and ch not in _KEEP_FORMAT_CHARS else ch
        for ch in name
    )
    return " ".join(kept.split())


def content_hash(subject: str, preheader: str, html: str, text: str, ics: bytes | None) -> str:
    """sha256 over exactly what is sent; parts are separated so they cannot run together."""
    digest = hashlib.sha256()
    for part in (subject, preheader, html, text):
        digest.update(part.encode("utf-8") + b"\0")
    digest.update(b"ics\0" + ics if ics is not None else b"no-ics\0")
    return digest.hexdigest()


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


def _remembering_wrap(memory: dict[tuple[str, str], str]) -> Callable[..., str]:
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


def _charset_first(html: str) -> str:
    """The document with <meta charset> first in <head>, within the 1024 bytes browsers sniff."""
    # The inliner writes the kept @media rules at the top of <head>, pushing the meta down.
    meta = '<meta charset="utf-8">'
    if meta not in html or "<head>" not in html:
        return html
    return html.replace(meta, "", 1).replace("<head>", "<head>" + meta, 1)


def _tidy(text: str) -> str:
    """Plain text without trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def tel(phone: str) -> str:
    """A tel: link for a phone number as written for people, e.g. '(617) 555-0142'."""
    return "tel:" + re.sub(r"[^0-9+]", "", phone)


def _environment(folder: Path) -> jinja2.Environment:
    """Templates named .html are autoescaped; .txt ones are plain text and are not."""
    env = jinja2.Environment(
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
    return env


def _sources(env: jinja2.Environment, name: str) -> Iterator[tuple[str, str]]:
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


def _write_email(stem: Path, email: RenderedEmail) -> list[Path]:
    files = [
        (stem.with_suffix(".html"), email.html.encode()),
        (stem.with_suffix(".txt"), email.text.encode()),
    ]
    if email.ics is not None:
        files.append((stem.with_suffix(".ics"), email.ics))
    for path, data in files:
        write_atomic(path, data)
    return [path for path, _ in files]


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a temporary file beside it, then a rename."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never follow or reuse something already there; 0o666 lets the umask decide.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError("--out", f"cannot write {path}: {exc.strerror or exc}") from None
