"""Turns outbox records into rows for the staff pages: step labels, local times, plain states."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from aftercare.content.model import Project
from aftercare.outbox.erasure import HIDDEN
from aftercare.outbox.records import MessageView
from aftercare.outbox.vocabulary import State
from aftercare.plan.describe import moment_words, step_words
from aftercare.web.forms import language_label, treatment_label

Localise = Callable[[dt.datetime], dt.datetime]
ERASED: Final = "(erased)"  # a patient whose name and address were erased: only counts remain

STATE_LABELS: Final[dict[State, str]] = {
    State.SCHEDULED: "Scheduled",
    State.SENDING: "Sending now",
    State.SENT: "Sent",
    State.FAILED: "Failed",
    State.CANCELLED: "Cancelled",
    State.UNKNOWN: "Unknown: check",
}


@dataclass(frozen=True)
class MessageRow:
    """One message of an enrolment on the lookup page."""

    message_id: int
    step: str
    label: str
    when: str
    state: str
    state_label: str
    note: str | None
    viewed: str | None = None  # when the patient first opened its care page (clinic time)


@dataclass(frozen=True)
class EnrollmentRow:
    """One treatment a patient is enrolled for, with its messages."""

    campaign: str
    treatment: str
    treated_on: dt.date
    messages: tuple[MessageRow, ...]
    latest: bool  # the one a reschedule moves (the newest in its campaign)

    @property
    def unsent(self) -> int:
        return sum(m.state == "scheduled" for m in self.messages)


@dataclass(frozen=True)
class PatientRow:
    """One patient found by a lookup."""

    email: str
    first_name: str
    unsubscribed: bool
    enrollments: tuple[EnrollmentRow, ...]
    language: str = ""  # the language their emails are in: "es"

    @property
    def language_name(self) -> str:
        """That language by its own name: "Español"."""
        return language_label(self.language) if self.language else ""


@dataclass(frozen=True)
class OutboxRow:
    """One message on the outbox page."""

    message_id: int
    first_name: str
    email: str
    treatment: str
    step: str
    label: str
    when: str
    state_label: str
    note: str | None
    viewed: str | None = None  # when the patient first opened its care page (clinic time)


def patient_rows(
    project: Project,
    messages: Sequence[MessageView],
    unsubscribed: Callable[[str], bool],
    local: Localise,
) -> list[PatientRow]:
    """Messages grouped by patient, then by enrolment (campaign and treatment date)."""
    by_patient: dict[str, list[MessageView]] = {}
    for message in messages:
        by_patient.setdefault(message.email, []).append(message)
    patients: list[PatientRow] = []
    for email, own in sorted(by_patient.items(), key=lambda item: item[0].casefold()):
        by_enrollment: dict[tuple[str, dt.date], list[MessageView]] = {}
        for message in own:
            by_enrollment.setdefault((message.campaign, message.treated_on), []).append(message)
        newest = {campaign: max(day for c, day in by_enrollment if c == campaign)
                  for campaign, _ in by_enrollment}
        enrollments = tuple(
            EnrollmentRow(
                campaign=campaign,
                treatment=_treatment(project, campaign),
                treated_on=day,
                messages=tuple(_message_row(project, m, local) for m in rows),
                latest=newest[campaign] == day,
            )
            for (campaign, day), rows in sorted(
                by_enrollment.items(), key=lambda item: item[0][1], reverse=True)
        )
        patients.append(PatientRow(email, own[-1].first_name, unsubscribed(email), enrollments,
                                   own[-1].language))
    return patients


def outbox_rows(
    project: Project, messages: Iterable[MessageView], local: Localise
) -> list[OutboxRow]:
    """Messages for the outbox page, in due order."""
    return [
        OutboxRow(
            message_id=m.message_id,
            first_name=m.first_name,
            email=ERASED if m.email.startswith(HIDDEN) else m.email,
            treatment=_treatment(project, m.campaign),
            **_step_fields(project, m.campaign, m.step_key),
            when=moment_words(local(m.due_at)),
            state_label=STATE_LABELS[m.state],
            note=m.last_error,
            viewed=_viewed(m, local),
        )
        for m in messages
    ]


def _message_row(project: Project, message: MessageView, local: Localise) -> MessageRow:
    return MessageRow(
        message_id=message.message_id,
        **_step_fields(project, message.campaign, message.step_key),
        when=moment_words(local(message.due_at)),
        state=message.state,
        state_label=STATE_LABELS[message.state],
        note=message.last_error,
        viewed=_viewed(message, local),
    )


def _viewed(message: MessageView, local: Localise) -> str | None:
    return None if message.viewed_at is None else moment_words(local(message.viewed_at))


def _treatment(project: Project, campaign_id: str) -> str:
    campaign = project.campaigns.get(campaign_id)
    return campaign_id if campaign is None else treatment_label(campaign)


def _step_fields(project: Project, campaign_id: str, step_key: str) -> dict[str, str]:
    step, label = step_words(project.campaigns.get(campaign_id), step_key)
    return {"step": step, "label": label}
