"""Email previews: a step rendered for a made-up patient and written where the build puts it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from aftercare.content.model import Project
from aftercare.content.values import EmailAddress
from aftercare.errors import InputError
from aftercare.files import write_output
from aftercare.render.emails import EmailRenderer, Recipient, RenderedEmail
from aftercare.render.manifest import preview_stem

# Previews are rendered for this made-up patient so `pipeline build` output is reproducible.
PREVIEW_FIRST_NAME = "Sample"
PREVIEW_EMAIL = EmailAddress("patient@example.com")
PREVIEW_TREATED_ON = dt.date(2026, 11, 23)
PREVIEW_PUBLIC_ID = "preview"
# Previews are signed with this public key, not the clinic's secret: a preview's unsubscribe
# link is well formed but never verifies, and building previews needs no secret.
PREVIEW_KEY = b"preview only: links signed with this key never verify"


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


def preview_step(
    project: Project, campaign_id: str, step_key: str, out_dir: Path = Path("build"),
    language: str | None = None,
) -> StepPreview:
    """One step for the sample patient, in ``language`` (default: the clinic's), written where
    the build writes it."""
    campaign = project.campaigns.get(campaign_id)
    if campaign is None:
        known = ", ".join(sorted(project.campaigns))
        raise InputError("campaign", f"expected one of {known}; got {campaign_id!r}")
    step = campaign.step(step_key)
    if step is None or step.key != step_key:
        known = ", ".join(s.key for s in campaign.steps)
        raise InputError("step", f"expected one of {known}; got {step_key!r}")
    recipient = preview_recipient(project, language)
    email = EmailRenderer(project, PREVIEW_KEY).render(campaign, step, recipient)
    stem = out_dir / preview_stem(project, recipient.language, campaign_id, step.key)
    paths = _write_email(stem, email)
    return StepPreview(email, tuple(paths))


def preview_text(
    project: Project, campaign_id: str, step_key: str, out_dir: Path = Path("build"),
    language: str | None = None,
) -> str:
    """What `pipeline preview CAMPAIGN STEP` prints: subject, preview text, file paths, text."""
    return preview_step(project, campaign_id, step_key, out_dir, language).summary()



def preview_recipient(project: Project, language: str | None = None) -> Recipient:
    """The made-up patient every preview is rendered for, reading ``language`` (default: the
    clinic's own)."""
    return Recipient(
        first_name=PREVIEW_FIRST_NAME,
        email=PREVIEW_EMAIL,
        language=language or project.clinic.language,
        treated_on=PREVIEW_TREATED_ON,
        local_due=None,
        public_id=PREVIEW_PUBLIC_ID,
    )


def _write_email(stem: Path, email: RenderedEmail) -> list[Path]:
    files = [
        (stem.with_suffix(".html"), email.html.encode()),
        (stem.with_suffix(".txt"), email.text.encode()),
    ]
    if email.ics is not None:
        files.append((stem.with_suffix(".ics"), email.ics))
    for path, data in files:
        write_output(path, data)
    return [path for path, _ in files]
