"""Renders one campaign step into an email in the recipient's language (HTML, plain text and an
optional .ics invitation), full or minimal, and into the care page's content: the full email's
own part, from the same templates."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from dataclasses import dataclass
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
from aftercare.dates import format_day, format_span
from aftercare.errors import RenderError
from aftercare.plan.schedule import next_treatment_day
from aftercare.render.calendar import AllDayEvent, build_ics
from aftercare.render.care_links import care_link, care_link_expiry, sent_moment
from aftercare.render.email_env import environment, sources
from aftercare.render.i18n import Translator, install, translator
from aftercare.render.plaintext import remembering_wrap, tidy
from aftercare.render.tokens import sign, sign_care

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


@dataclass(frozen=True)
class _Language:
    """What rendering in one language needs: the project as its readers see it (clinic,
    campaigns, handouts in that language), its template environment and its sentences."""

    code: str
    project: Project
    env: jinja2.Environment
    translator: Translator
    folder: str  # where its step templates are, under templates/email/: "" or "es/"


class EmailRenderer:
    """Renders campaign steps; create one per run, it compiles each step's templates once."""

    def __init__(self, project: Project, key: bytes) -> None:
        self._project = project
        self._key = key
        self._wrapped: dict[tuple[str, str], str] = {}
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._compiled: dict[tuple[str, str, Step, ContentMode], _CompiledStep] = {}
        self._languages: dict[str, _Language] = {}

    def render(
        self, campaign: Campaign, step: Step, recipient: Recipient,
        content: ContentMode | None = None,
    ) -> RenderedEmail:
        """The step's email for one recipient, in the recipient's language and the campaign's
        content mode unless ``content`` says; the same inputs always give the same bytes.
        RenderError when that language lacks any part of it."""
        mode = content or self._project.content_of(campaign)
        lang = self._language(recipient.language)
        campaign, step = self._localised(lang, campaign, step)
        compiled = self._compile(lang, campaign, step, mode)
        context = self._context(lang, campaign, step, recipient, compiled)
        care_url = None
        if mode == "minimal":
            token = sign_care(recipient.public_id, sent_moment(recipient), self._key)
            care_url = care_link(lang.project.clinic, token, lang.folder.rstrip("/"))
            expires = care_link_expiry(lang.project.clinic, recipient)
            context.update(care_url=care_url, care_until=format_day(expires, "full", lang.code))
        ics, ics_filename = self._calendar(lang, campaign, step, recipient)
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
        """What the step's full email carries of its own, for the care page, in the
        recipient's language: rendered by the same templates with ``care`` set, which leaves
        out the email's frame."""
        lang = self._language(recipient.language)
        campaign, step = self._localised(lang, campaign, step)
        compiled = self._compile(lang, campaign, step, "full")
        context = self._context(lang, campaign, step, recipient, compiled)
        ics, ics_filename = self._calendar(lang, campaign, step, recipient)
        context.update(care=True, has_calendar=ics is not None)
        body = Markup(compiled.html.render(context).strip())
        expires = care_link_expiry(lang.project.clinic, recipient)
        return CarePage(body, ics, ics_filename, expires)

    def _context(
        self, lang: _Language, campaign: Campaign, step: Step, recipient: Recipient,
        compiled: _CompiledStep,
    ) -> dict[str, Any]:
        handout = self._handout(lang, campaign)
        clinic = lang.project.clinic
        token = sign(recipient.public_id, self._key)
        # A link whose token was cut still names the page's language, before the token.
        shown = f"l={lang.code}&" if lang.folder else ""
        unsubscribe_url = (f"{clinic.email.public_base_url.rstrip('/')}/unsubscribe?"
                           f"{shown}t={token}")
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
            "sections": _sections(campaign, step, handout),
            "quoted_html": compiled.quoted_html,
            "quoted_text": compiled.quoted_text,
            "warning_html": compiled.warning_html,
            "warning_text": compiled.warning_text,
            "contact_html": compiled.contact_html,
            "contact_text": compiled.contact_text,
            "next_visit": format_day(next_treatment_on(clinic, campaign, recipient.treated_on),
                                     "weekday", lang.code),
            "unsubscribe_url": unsubscribe_url,
            "care": False,
        }

    def _language(self, code: str) -> _Language:
        """Everything rendering in ``code`` needs, set up the first time it is asked for."""
        found = self._languages.get(code)
        if found is None:
            translate = translator(self._project, code)
            env = install(environment(self._project.templates / "email"), translate)
            env.filters["wrap"] = remembering_wrap(self._wrapped)
            env.filters["span"] = lambda offset: format_span(offset.amount, offset.unit, code)
            folder = "" if code == self._project.clinic.language else f"{code}/"
            found = _Language(code, self._project.in_language(code), env, translate, folder)
            self._languages[code] = found
        return found

    def _localised(self, lang: _Language, campaign: Campaign, step: Step
                   ) -> tuple[Campaign, Step]:
        """The campaign and step as written in the language (the source's own in its own)."""
        if self._project.language_of(campaign) == lang.code:
            return campaign, step
        local = lang.project.campaigns.get(campaign.id)
        local_step = None if local is None else local.step(step.key)
        if local is None or local_step is None:
            raise RenderError(f"campaigns/{lang.code}/{campaign.id}.yaml: expected the words "
                              f"of step {step.key} in {lang.code}; there are none")
        return local, local_step

    def _compile(
        self, lang: _Language, campaign: Campaign, step: Step, mode: ContentMode
    ) -> _CompiledStep:
        cache_key = (lang.code, campaign.id, step, mode)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            template = step_template(step, mode, lang.folder)
            html_name, text_name = f"{template}.html", f"{template}.txt"
            try:
                html = lang.env.get_template(html_name)
                text = lang.env.get_template(text_name)
            except jinja2.TemplateNotFound as exc:
                raise RenderError(f"templates/email/{exc.name}: no such template") from exc
            digest = hashlib.sha256()
            for name in (html_name, text_name):
                for used, source in sources(lang.env, name):
                    digest.update(f"{used}\0{source}\0".encode())
            digest.update(repr(step).encode())
            if lang.translator.strings is not None:
                digest.update(repr(sorted(lang.translator.strings.items())).encode())
            handout = self._handout(lang, campaign)
            # A minimal email quotes nothing and shows the generic safety line, not the
            # handout's warning signs (they name body areas).
            nothing = (Markup(""), "")
            full = mode == "full"
            compiled = _CompiledStep(html, text, digest.hexdigest()[:12],
                                     *(_quoted(lang, campaign, step, handout) if full else nothing),
                                     *(_warning_blocks(lang, step, handout) if full else nothing),
                                     *_blocks(lang, "contact", lang.project.clinic))
            self._compiled[cache_key] = compiled
        return compiled

    def _handout(self, lang: _Language, campaign: Campaign) -> Handout:
        handout = lang.project.handouts.get(campaign.handout)
        if handout is None:
            if lang.folder:
                raise RenderError(f"handouts/{lang.code}/{campaign.handout}.yaml: expected the "
                                  f"handout the emails quote, in {lang.code}; there is none")
            raise RenderError(f"campaigns/{campaign.id}.yaml: no handout {campaign.handout!r}")
        return handout

    def _calendar(
        self, lang: _Language, campaign: Campaign, step: Step, recipient: Recipient
    ) -> tuple[bytes | None, str | None]:
        if step.calendar is None:
            return None, None
        due = recipient.local_due.date() if recipient.local_due else step.offset.after(
            recipient.treated_on
        )
        clinic = lang.project.clinic
        is_last = step.key == campaign.steps[-1].key
        # The last step is the booking reminder: its event sits on the day the next treatment
        # is due (12 weeks for migraine), never before the email itself arrives.
        next_day = next_treatment_on(clinic, campaign, recipient.treated_on)
        day = max(due, next_day) if is_last else due
        # DTSTAMP comes from the message, not the clock, so the same message is the same bytes.
        stamp = sent_moment(recipient)
        domain = clinic.email.from_address.rsplit("@", 1)[1]
        entry = step.calendar.filled(clinic.name)
        event = AllDayEvent(
            uid=f"{recipient.public_id}@{domain}",
            day=day,
            summary=entry.summary,
            description=entry.description,
            stamp=stamp,
            organizer_name=clinic.name,
        )
        # The attachment's file name is shown to the patient: in their language too.
        name = "next-visit.ics" if is_last else "check-in.ics"
        return build_ics(event), lang.translator.gettext(name)


def _quoted(lang: _Language, campaign: Campaign, step: Step, handout: Handout
            ) -> tuple[Markup, str]:
    """The handout sections the step quotes, HTML and text, one after another."""
    pairs = [_blocks(lang, "section", s) for s in _sections(campaign, step, handout)]
    return Markup("\n".join(h for h, _ in pairs)), "\n".join(t for _, t in pairs)


def _warning_blocks(lang: _Language, step: Step, handout: Handout) -> tuple[Markup, str]:
    """The step's warning block, HTML and text, from the macros every email shares."""
    if not step.warning_signs:
        return Markup(""), ""
    return _blocks(lang, "warning_signs", lang.project.clinic, handout.emergency_if,
                   handout.call_clinic_if)


def _blocks(lang: _Language, macro: str, *args: object) -> tuple[Markup, str]:
    """A macro of _macros.html and _macros.txt called once (empty where a project's templates
    do not have it)."""
    called = []
    for kind in ("html", "txt"):
        try:
            module = lang.env.get_template(f"_macros.{kind}").module
        except jinja2.TemplateNotFound:
            module = None
        function = getattr(module, macro, None)
        called.append("" if function is None else str(function(*args)))
    return Markup(called[0]), called[1]


def _sections(campaign: Campaign, step: Step, handout: Handout) -> tuple[Section, ...]:
    by_id = {section.id: section for section in handout.sections}
    missing = [s for s in step.sections if s not in by_id]
    if missing:
        raise RenderError(
            f"campaigns/{campaign.id}.yaml: step {step.key}: no section {missing[0]!r} "
            f"in handouts/{handout.id}.yaml"
        )
    return tuple(by_id[s] for s in step.sections)


def step_template(step: Step, mode: ContentMode, folder: str = "") -> str:
    """The template a step's email is rendered from (under templates/email/, without its
    extension): the step's own, in the language's folder ("es/"), or the minimal email that
    every language shares (its sentences are translated through ``_()``)."""
    return f"{folder}{step.template}" if mode == "full" else MINIMAL_TEMPLATE


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
