"""Renders one campaign step into an email (HTML, plain text and an optional .ics invitation),
full or minimal, and into the care page's content: the full email's own part, from the same
templates."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
import jinja2
import jinja2.meta
from markupsafe import Markup

from aftercare.content.model import (
    MINIMAL_TEMPLATE,
    Campaign,
    Clinic,
    ContentMode,
    Handout,
    Project,
    Section,
    Step,
)
from aftercare.content.values import EmailAddress
from aftercare.dates import format_day
from aftercare.errors import RenderError
from aftercare.plan.schedule import next_treatment_day
from aftercare.render.calendar import AllDayEvent, build_ics
from aftercare.render.plaintext import nbsp, remembering_wrap, tidy, wrap
from aftercare.render.tokens import sign, sign_care

# Zero-width joiners shape some scripts' names correctly; every other control or format
# character (bidi overrides, NUL, line breaks) could disguise or break the greeting.
_KEEP_FORMAT_CHARS = {"\u200c", "\u200d"}
# Where `pipeline serve` shows the care page of the message a token names.
CARE_PATH = "/care/"


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
    content: ContentMode = "full"
    care_url: str | None = None  # a minimal email's link to its care page

    @property
    def minimal(self) -> bool:
        """A minimal email: the provider must learn nothing the email does not say."""
        return self.content == "minimal"


@dataclass(frozen=True)
class CarePage:
    """A step as its care page shows it: the full email's own part and the step's .ics."""

    body: Markup               # the title, content, warning signs and contact block, as HTML
    ics: bytes | None
    ics_filename: str | None
    expires_on: dt.date        # the last day the link opens the page (the patient's zone)


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
class _CompiledStep:
    html: jinja2.Template
    text: jinja2.Template
    version: str
    # The quoted handout sections, the warning block and the contact block are the same in
    # every message of a step: rendered once, when the step is compiled.
    quoted_html: Markup
    quoted_text: str
    warning_html: Markup
    warning_text: str
    contact_html: Markup
    contact_text: str


class EmailRenderer:
    """Renders campaign steps; create one per run, it compiles each step's templates once."""

    def __init__(self, project: Project, key: bytes) -> None:
        self._project = project
        self._key = key
        folder = project.templates / "email"
        self._env = _environment(folder)
        self._wrapped: dict[tuple[str, str], str] = {}
        self._env.filters["wrap"] = remembering_wrap(self._wrapped)
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._compiled: dict[tuple[str, Step, ContentMode], _CompiledStep] = {}

    def render(
        self, campaign: Campaign, step: Step, recipient: Recipient,
        content: ContentMode | None = None,
    ) -> RenderedEmail:
        """The step's email for one recipient, in the campaign's content mode unless
        ``content`` says; the same inputs always give the same bytes."""
        mode = content or self._project.content_of(campaign)
        compiled = self._compile(campaign, step, mode)
        context = self._context(campaign, step, recipient, compiled)
        care_url = None
        if mode == "minimal":
            token = sign_care(recipient.public_id, sent_moment(recipient), self._key)
            base = self._project.clinic.email.public_base_url.rstrip("/")
            care_url = f"{base}{CARE_PATH}{token}"
            expires = care_link_expiry(self._project.clinic, recipient)
            context.update(care_url=care_url, care_until=format_day(expires, "full"))
        ics, ics_filename = self._calendar(campaign, step, recipient)
        context["has_calendar"] = ics is not None
        html = _charset_first(self._inliner.inline(compiled.html.render(context)))
        text = tidy(compiled.text.render(context))
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
            unsubscribe_url=context["unsubscribe_url"],
            content=mode,
            care_url=care_url,
        )

    def care_page(self, campaign: Campaign, step: Step, recipient: Recipient) -> CarePage:
        """What the step's full email carries of its own, for the care page: rendered by the
        same templates with ``care`` set, which leaves out the email's frame."""
        compiled = self._compile(campaign, step, "full")
        context = self._context(campaign, step, recipient, compiled)
        ics, ics_filename = self._calendar(campaign, step, recipient)
        context.update(care=True, has_calendar=ics is not None)
        body = Markup(compiled.html.render(context).strip())
        expires = care_link_expiry(self._project.clinic, recipient)
        return CarePage(body, ics, ics_filename, expires)

    def _context(
        self, campaign: Campaign, step: Step, recipient: Recipient, compiled: _CompiledStep
    ) -> dict[str, Any]:
        handout = self._handout(campaign)
        clinic = self._project.clinic
        token = sign(recipient.public_id, self._key)
        unsubscribe_url = f"{clinic.email.public_base_url.rstrip('/')}/unsubscribe?t={token}"
        return {
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
            "quoted_html": compiled.quoted_html,
            "quoted_text": compiled.quoted_text,
            "warning_html": compiled.warning_html,
            "warning_text": compiled.warning_text,
            "contact_html": compiled.contact_html,
            "contact_text": compiled.contact_text,
            "next_visit": format_day(next_treatment_on(clinic, campaign, recipient.treated_on),
                                     "weekday"),
            "unsubscribe_url": unsubscribe_url,
            "care": False,
        }

    def _compile(self, campaign: Campaign, step: Step, mode: ContentMode) -> _CompiledStep:
        cache_key = (campaign.id, step, mode)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            template = step.template if mode == "full" else MINIMAL_TEMPLATE
            html_name, text_name = f"{template}.html", f"{template}.txt"
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
            clinic = self._project.clinic
            # A minimal email quotes nothing and shows the generic safety line, not the
            # handout's warning signs (they name body areas).
            nothing = (Markup(""), "")
            compiled = _CompiledStep(html, text, digest.hexdigest()[:12],
                                     *(self._quoted(campaign, step) if mode == "full" else nothing),
                                     *(self._warning_blocks(campaign, step) if mode == "full"
                                       else nothing),
                                     *self._blocks("contact", clinic))
            self._compiled[cache_key] = compiled
        return compiled

    def _quoted(self, campaign: Campaign, step: Step) -> tuple[Markup, str]:
        """The handout sections the step quotes, HTML and text, one after another."""
        sections = self._sections(campaign, step, self._handout(campaign))
        pairs = [self._blocks("section", s) for s in sections]
        return Markup("\n".join(h for h, _ in pairs)), "\n".join(t for _, t in pairs)

    def _warning_blocks(self, campaign: Campaign, step: Step) -> tuple[Markup, str]:
        """The step's warning block, HTML and text, from the macros every email shares."""
        if not step.warning_signs:
            return Markup(""), ""
        handout = self._handout(campaign)
        return self._blocks("warning_signs", self._project.clinic,
                            handout.emergency_if, handout.call_clinic_if)

    def _blocks(self, macro: str, *args: object) -> tuple[Markup, str]:
        """A macro of _macros.html and _macros.txt called once (empty where a project's
        templates do not have it)."""
        called = []
        for kind in ("html", "txt"):
            try:
                module = self._env.get_template(f"_macros.{kind}").module
            except jinja2.TemplateNotFound:
                module = None
            function = getattr(module, macro, None)
            called.append("" if function is None else str(function(*args)))
        return Markup(called[0]), called[1]

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
        next_day = next_treatment_on(self._project.clinic, campaign, recipient.treated_on)
        day = max(due, next_day) if is_last else due
        # DTSTAMP comes from the message, not the clock, so the same message is the same bytes.
        stamp = sent_moment(recipient)
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


def sent_moment(recipient: Recipient) -> dt.datetime:
    """When the message is meant to reach the patient (a preview: the treatment day, 00:00
    UTC): its calendar stamp, and the time its care page link counts from."""
    return recipient.local_due or dt.datetime.combine(
        recipient.treated_on, dt.time(), tzinfo=dt.UTC)


def care_link_expiry(clinic: Clinic, recipient: Recipient) -> dt.date:
    """The last day the care page link of this message opens, in the patient's zone."""
    sent = sent_moment(recipient)
    return (sent + dt.timedelta(days=clinic.email.care_link_days)).date()


def phone_link(number: str) -> Markup:
    """A phone number as an HTML tel: link that never wraps (a filter: cheaper than a macro,
    and every email shows several)."""
    return Markup('<a class="phone" href="{}">{}</a>').format(tel(number), nbsp(number))


def next_treatment_on(clinic: Clinic, campaign: Campaign, treated_on: dt.date) -> dt.date:
    """The day the next treatment (or next migraine cycle) is due: the date the printed
    handout shows, moved on to a day the clinic is open."""
    return next_treatment_day(clinic, campaign, treated_on)


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


def _charset_first(html: str) -> str:
    """The document with <meta charset> first in <head>, within the 1024 bytes browsers sniff."""
    # The inliner writes the kept @media rules at the top of <head>, pushing the meta down.
    meta = '<meta charset="utf-8">'
    if meta not in html or "<head>" not in html:
        return html
    return html.replace(meta, "", 1).replace("<head>", "<head>" + meta, 1)


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
    env.filters["phone"] = phone_link
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
