"""Proves every minimal email private, in every language: rendered for the sample patient and
handed to each backend as for sending, no part of it names a treatment, condition, medicine or
body area, or quotes a handout."""

from __future__ import annotations

import base64
import datetime as dt
import email.parser
import email.policy
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

from aftercare.check.findings import Finding
from aftercare.check.privacy import (
    PRIVATE_WORDS,
    SPANISH_PRIVATE_WORDS,
    _quoted_list,
    fold,
    named_words,
    private_pattern,
)
from aftercare.check.readability import split_sentences
from aftercare.check.wording import _handout_units
from aftercare.content.model import MINIMAL_TEMPLATE, Campaign, Project, Step
from aftercare.delivery import OutgoingEmail
from aftercare.delivery.files import build_message
from aftercare.delivery.sendgrid import SendGridBackend
from aftercare.errors import PipelineError, Problem
from aftercare.render.emails import EmailRenderer, RenderedEmail, clean_name
from aftercare.render.previews import PREVIEW_KEY, preview_recipient

# On top of the words no subject may hold (PRIVATE_WORDS): body areas, what a treatment
# involves, and words that point to a condition. A minimal email needs none of them. Whole
# words, any case; plurals and possessives match too.
MINIMAL_WORDS: tuple[str, ...] = (
    # body areas
    "face", "facial", "forehead", "brow", "eyebrow", "eyelid", "eye", "glabella", "glabellar",
    "neck", "shoulder", "jaw", "chin", "lip", "mouth", "throat", "scalp", "skin", "head",
    "muscle", "nerve", "underarm", "armpit", "bladder",
    # what a treatment involves
    "needle", "shot", "inject", "injected", "injecting", "dose", "neuromodulator", "dermal",
    "medicine", "medication", "prescription", "drug", "side effect", "medwatch", "fda",
    # signs and conditions
    "diary", "pain", "chronic", "neurologist", "neurology", "dermatologist", "dermatology",
    "droop", "droopy", "drooping", "bruise", "bruising", "swelling", "numbness", "spasm",
    "sweating", "hyperhidrosis", "expression lines", "fine lines", "smile lines",
    "laugh lines",
)
# The same in Spanish (on top of SPANISH_PRIVATE_WORDS), written with their accents and matched
# with or without them. Every list applies to every language's minimal email.
SPANISH_MINIMAL_WORDS: tuple[str, ...] = (
    # body areas
    "cara", "frente", "ceja", "párpado", "ojo", "glabela", "glabelar", "cuello", "hombro",
    "mandíbula", "barbilla", "mentón", "labio", "boca", "garganta", "cuero cabelludo", "piel",
    "cabeza", "músculo", "muscular", "nervio", "axila", "vejiga",
    # what a treatment involves
    "aguja", "inyectar", "inyectado", "inyectada", "inyectaron", "dosis", "neuromodulador",
    "dérmico", "dérmica", "medicamento", "medicina", "receta", "fármaco", "droga",
    "efecto secundario", "efectos secundarios",
    # signs and conditions
    "diario", "dolor", "crónico", "crónica", "neurólogo", "neuróloga", "neurología",
    "dermatólogo", "dermatóloga", "dermatología", "caído", "caída", "moretón", "hematoma",
    "hinchazón", "inflamación", "entumecimiento", "adormecimiento", "espasmo", "sudor",
    "sudoración", "hiperhidrosis", "líneas finas", "líneas de la sonrisa", "líneas de la risa",
)
# A handout sentence (or heading, or list item) of at least this many words found in a minimal
# email is a quotation; shorter ones ("Call us.") say nothing about the patient.
MIN_QUOTED_WORDS = 3
_WHY = "a minimal email must not name a treatment, condition, medicine or body area"
_LINK = "(link)"
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# The moment the lint hands the sample message over: before its send time, like a held one.
_HANDED_OVER = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def minimal_words(project: Project) -> tuple[str, ...]:
    """Every word a minimal email must not hold, in any language: all four lists and the
    clinic's own words."""
    return (*PRIVATE_WORDS, *SPANISH_PRIVATE_WORDS, *MINIMAL_WORDS, *SPANISH_MINIMAL_WORDS,
            *project.clinic.email.privacy_words)


def check_minimal_emails(project: Project) -> Iterator[Finding]:
    """Each step of a minimal campaign, in every language it can be sent in, everything its
    email and its hand-over say, checked against the word lists and the text of every
    handout."""
    minimal = [c for _, c in sorted(project.campaigns.items())
               if project.content_of(c) == "minimal"]
    if not minimal:
        return
    pattern = private_pattern((*MINIMAL_WORDS, *SPANISH_MINIMAL_WORDS,
                               *project.clinic.email.privacy_words))
    renderer = EmailRenderer(project, PREVIEW_KEY)
    # What clinic.yaml says is in every minimal email: reported once, where it is written.
    in_clinic: set[str] = set()
    for key, text in clinic_values(project):
        named = named_words(pattern, text)
        in_clinic.update(fold(word) for word in named)
        if named:
            yield Finding("error", Problem(
                "clinic.yaml", project.line_of("clinic.yaml", key), key,
                f"names {_quoted_list(named)}, which every minimal email shows; {_WHY}"))
    for code in project.languages:
        translation = project.translations.get(code)
        quotes = handout_quotes(project, code)
        recipient = preview_recipient(project, code)
        for campaign in minimal:
            if translation is not None and translation.missing_for(campaign):
                continue  # check_untranslated names what the language lacks to send it
            local = project.in_language(code).campaigns[campaign.id]
            file = (f"campaigns/{campaign.id}.yaml" if translation is None
                    else f"campaigns/{code}/{campaign.id}.yaml")
            for index, step in enumerate(campaign.steps):
                try:
                    rendered = renderer.render(campaign, step, recipient, "minimal")
                except PipelineError:
                    continue  # check_email_wording reports a step that cannot be rendered
                where = f"steps[{index}]" if translation is None else f"steps.{step.key}"
                written = local.step(step.key) or step
                yield from _step_findings(project, (file, where), campaign, written, rendered,
                                          (pattern, quotes, in_clinic))


def _step_findings(
    project: Project, at: tuple[str, str], campaign: Campaign, step: Step,
    rendered: RenderedEmail, rules: tuple[re.Pattern[str], dict[str, str], set[str]],
) -> Iterator[Finding]:
    """What one step's minimal email names or quotes, each reported where it first shows (the
    preview text, not again in the HTML that carries it, nor in each backend's copy)."""
    (file, where), (pattern, quotes, in_clinic) = at, rules
    seen = set(in_clinic)
    for part, key, text in email_parts(project, campaign, step, rendered):
        path = f"{where}{key}"
        line = project.line_of(file, path) or project.line_of(file, where)
        named = [w for w in named_words(pattern, text) if fold(w) not in seen]
        quoted = [q for q in quoted_sentences(text, quotes) if q not in seen]
        seen.update([fold(w) for w in named] + quoted)
        if named:
            yield Finding("error", Problem(
                file, line, path, f"the minimal email names {_quoted_list(named)} in "
                f"{part}; {_WHY}"))
        if quoted:
            yield Finding("error", Problem(
                file, line, path, f"the minimal email quotes a handout in {part}: "
                f"{_quoted_list(quoted)}; the care page shows handouts, the email "
                "only links to it"))


def clinic_values(project: Project) -> Iterator[tuple[str, str]]:
    """(key path, value) of what clinic.yaml puts in every email or its hand-over."""
    clinic, sender = project.clinic, project.clinic.email
    yield "name", clinic.name
    yield from ((f"address[{i}]", line) for i, line in enumerate(clinic.address))
    yield "hours", clinic.hours
    yield "website", clinic.website
    yield "email.from_name", sender.from_name
    yield "email.from_address", sender.from_address
    yield "email.reply_to", sender.reply_to
    yield "email.public_base_url", sender.public_base_url
    for code, local in sorted(project.translations.items()):
        yield f"translations.{code}.hours", local.clinic.hours


def email_parts(
    project: Project, campaign: Campaign, step: Step, rendered: RenderedEmail
) -> Iterator[tuple[str, str, str]]:
    """(where, key path under the step, text) for every part of the email and its hand-over,
    with our own signed links masked (a random token could spell anything)."""

    def masked(text: str) -> str:
        for url in (rendered.unsubscribe_url, rendered.care_url):
            if url:
                text = text.replace(url, _LINK)
        return text

    yield "its subject", ".subject", rendered.subject
    yield "its preview text", ".preheader", rendered.preheader
    template = f"templates/email/{MINIMAL_TEMPLATE}"
    # In another language, the shared template's sentences come from its file of sentences.
    words = "" if rendered.language == project.clinic.language else (
        f" with templates/i18n/{rendered.language}.yaml")
    yield f"its plain text ({template}.txt{words})", "", masked(rendered.text)
    yield f"its HTML ({template}.html{words})", "", masked(html_text(rendered.html))
    if step.calendar is not None:
        yield "its calendar entry's title", ".calendar.summary", step.calendar.summary
        yield "its calendar entry's description", ".calendar.description", step.calendar.description
    if rendered.ics is not None:
        yield "its calendar attachment", ".calendar", calendar_text(rendered.ics)
        yield "its calendar attachment's name", ".calendar", rendered.ics_filename or ""
    outgoing = sample_outgoing(project, campaign, step, rendered)
    yield "the message the file backend writes", "", masked(message_text(outgoing))
    payload = SendGridBackend("check-only", sandbox=False).build_payload(outgoing, _HANDED_OVER)
    yield "the request to SendGrid", "", masked(" ".join(payload_strings(payload)))


def sample_outgoing(
    project: Project, campaign: Campaign, step: Step, rendered: RenderedEmail
) -> OutgoingEmail:
    """The sample patient's message as dispatch hands it to a backend."""
    sender = project.clinic.email
    recipient = preview_recipient(project)
    return OutgoingEmail(
        public_id=recipient.public_id, to=recipient.email,
        to_name=clean_name(recipient.first_name), from_address=sender.from_address,
        from_name=sender.from_name, reply_to=sender.reply_to, campaign=campaign.id,
        step_key=step.key, rendered=rendered, send_at=_HANDED_OVER + dt.timedelta(hours=1),
        minimal=rendered.minimal,
    )


def message_text(outgoing: OutgoingEmail) -> str:
    """Every header and every decoded part of the .eml the file backend writes."""
    raw = build_message(outgoing).as_bytes()
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    texts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        texts += [f"{name}: {value}" for name, value in part.items()]
        if part.is_multipart():
            continue
        content = part.get_content()
        text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
        texts.append(html_text(text) if part.get_content_type() == "text/html" else text)
    return "\n".join(texts)


def payload_strings(value: Any) -> Iterator[str]:
    """Every key and string value of a SendGrid request body; attachments decoded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            if key == "content" and isinstance(item, str):
                yield base64.b64decode(item).decode("utf-8")  # an attachment's body
            elif key == "value" and value.get("type") == "text/html":
                yield html_text(str(item))
            else:
                yield from payload_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from payload_strings(item)
    elif value is not None:
        yield str(value)


class _HtmlText(HTMLParser):
    """What an HTML document says: its text, comments and attribute values, not its tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.texts += [value for _, value in attrs if value]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def handle_comment(self, data: str) -> None:
        self.texts.append(data)


def html_text(document: str) -> str:
    """The text, comments and attribute values of an HTML document, one per line."""
    parser = _HtmlText()
    parser.feed(document)
    parser.close()
    return "\n".join(parser.texts)


def calendar_text(ics: bytes) -> str:
    """An .ics file's text with its folded lines joined and its escapes undone."""
    text = ics.decode("utf-8").replace("\r\n ", "")
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], text)


def handout_quotes(project: Project, language: str | None = None) -> dict[str, str]:
    """Every sentence, heading and list item of at least MIN_QUOTED_WORDS words of every
    handout, in the clinic's language and in ``language``, by its words (as compared) -> as
    written."""
    quotes: dict[str, str] = {}
    local = project.in_language(language or project.clinic.language)
    handouts = [*sorted(project.handouts.items()), *sorted(local.handouts.items())]
    for _, handout in handouts:
        for unit in _handout_units(handout):
            for sentence in split_sentences(unit):
                key = _words(sentence)
                if key.count(" ") + 1 >= MIN_QUOTED_WORDS:
                    quotes.setdefault(key, sentence)
    return quotes


def quoted_sentences(text: str, quotes: dict[str, str]) -> list[str]:
    """The handout sentences ``text`` holds, word for word (case, spacing and punctuation
    aside), as written in the handout."""
    words = f" {_words(text)} "
    return [sentence for key, sentence in quotes.items() if f" {key} " in words]


def _words(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))
