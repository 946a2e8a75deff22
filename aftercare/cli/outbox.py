"""The commands of the outbox and send stages: outbox, cancel, reschedule, unsubscribe,
resolve, send-due, worker."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING

from aftercare.cli.table import (
    Settings,
    arg,
    backend_for,
    command,
    find_campaign,
    jsonable,
    open_outbox,
    os_user,
    parse_email,
    parse_now,
)
from aftercare.content.load import load_project
from aftercare.errors import InputError, UsageError
from aftercare.outbox.vocabulary import State

if TYPE_CHECKING:
    from aftercare.content.model import Project
    from aftercare.delivery import Backend
    from aftercare.render.emails import EmailRenderer
    from aftercare.send.dispatch import DispatchReport


@command("outbox", "list messages in the outbox",
         arg("--status", choices=[state.value for state in State]),
         arg("--email"),
         arg("--json", action="store_true"))
def run_outbox(settings: Settings, args: argparse.Namespace) -> str:
    with open_outbox(settings) as outbox:
        rows = outbox.messages(status=args.status, email=args.email)
    if args.json:
        print(json.dumps([jsonable(dataclasses.asdict(r)) for r in rows], indent=2))
    else:
        now = settings.now()
        for r in rows:
            held = (f"  held by SendGrid until {r.send_at:%Y-%m-%d %H:%M} UTC"
                    if r.state == "sent" and r.send_at and r.send_at > now else "")
            print(f"{r.message_id:>6} {r.state:<9} {r.due_at:%Y-%m-%d %H:%M} UTC  "
                  f"{r.campaign}/{r.step_key:<8} {r.email}  attempts={r.attempts}{held}"
                  + (f"  delivery={r.delivery}" if r.delivery else "")
                  + (f"  viewed={r.viewed_at:%Y-%m-%d %H:%M} UTC" if r.viewed_at else "")
                  + (f"  {r.last_error}" if r.last_error else ""))
    return f"{len(rows)} messages"


@command("cancel", "cancel a patient's unsent messages",
         arg("--email", required=True),
         arg("--campaign"))
def run_cancel(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.send.withdrawal import cancel

    project, now, actor = load_project(settings.root), settings.now(), f"cli:{os_user()}"
    with open_outbox(settings) as outbox:
        stopped = cancel(outbox, backend_for(settings, project), args.email, now, actor,
                         campaign=args.campaign)
    return f"cancelled {stopped.cancelled} unsent messages; {stopped.withdrawn.summary()}"


@command("reschedule", "re-time unsent messages from a new treatment date",
         arg("--email", required=True),
         arg("--campaign", required=True),
         arg("--treated-on", required=True, metavar="YYYY-MM-DD"))
def run_reschedule(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.enrolment import replanner
    from aftercare.enrol.rules import check_treatment_date

    project = load_project(settings.root)
    now = settings.now()
    campaign = find_campaign(project, args.campaign)
    treated_on = check_treatment_date(args.treated_on, project.clinic.timezone.zone, now)
    with open_outbox(settings) as outbox:
        count = outbox.reschedule(args.email, campaign.id, treated_on,
                                  replanner(project, now), now, actor=f"cli:{os_user()}")
    return f"re-timed {count} unsent messages from {treated_on.isoformat()}"


@command("unsubscribe", "stop all email to an address",
         arg("email", metavar="EMAIL"))
def run_unsubscribe(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.send.withdrawal import unsubscribe

    email = parse_email(args.email)
    project, now, actor = load_project(settings.root), settings.now(), f"cli:{os_user()}"
    with open_outbox(settings) as outbox:
        stopped = unsubscribe(outbox, backend_for(settings, project), email, now, source="cli",
                              actor=actor)
    return (f"unsubscribed; cancelled {stopped.cancelled} unsent messages; "
            f"{stopped.withdrawn.summary()}; later enrolments are refused")


@command("resolve", "settle a message whose outcome is unknown",
         arg("message_id", type=int, metavar="MESSAGE_ID"),
         arg("--sent", action="store_true", exclusive=True, help="the patient did receive it"),
         arg("--requeue", action="store_true", exclusive=True, help="send it again"))
def run_resolve(settings: Settings, args: argparse.Namespace) -> str:
    with open_outbox(settings) as outbox:
        outbox.resolve_unknown(args.message_id, as_sent=args.sent, now=settings.now(),
                               actor=f"cli:{os_user()}")
    return (f"message {args.message_id} marked sent" if args.sent
            else f"message {args.message_id} queued to be sent again")


# ------------------------------------------------------------------ send


@command("send-due", "send every message that is due",
         arg("--now", metavar="ISO-8601", help="pretend it is this time (testing)"),
         arg("--limit", type=int, default=500))
def run_send_due(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.delivery import scheduling
    from aftercare.send.dispatch import send_due

    project, backend, renderer = _sending(settings)
    if args.now and scheduling(backend) is not None:
        raise UsageError("--now is for trying the file backend; SendGrid schedules by the "
                         "real clock, so send-due with SendGrid always uses the current time")
    now = parse_now(args.now) if args.now else settings.now()
    with open_outbox(settings) as outbox:
        report = send_due(outbox, project, renderer, backend, now, args.limit)
    return report.summary()


@command("worker", "send due messages in a loop until stopped (SIGTERM or Ctrl+C)",
         arg("--interval", type=float, default=10.0, metavar="SECONDS",
             help="pause between runs, made 25%% longer or shorter at random (default: 10)"),
         arg("--limit", type=int, default=500, help="messages per run (default: 500)"),
         epilog="Run several at once if you like: processes on one machine sharing the SQLite "
                "file, or machines sharing one PostgreSQL database; each message is claimed by "
                "one of them. On SIGTERM or Ctrl+C a worker claims nothing more, records the "
                "messages in flight and exits; a second signal exits at once (its messages in "
                "flight become unknown after the 15-minute lease, never sent again).")
def run_worker(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.send.worker import StopFlag, stopping_on_signals, work

    if args.interval <= 0 or args.limit < 1:
        raise InputError("interval" if args.interval <= 0 else "limit", "expected a number "
                         f"above 0; got {args.interval if args.interval <= 0 else args.limit}")
    project, backend, renderer = _sending(settings)

    def said(line: str) -> None:
        print(line, flush=True)

    said(f"worker started: send-due about every {args.interval:g} s (SIGTERM or Ctrl+C stops)")
    with stopping_on_signals(StopFlag(), said) as stop:
        totals = work(lambda: open_outbox(settings), project, renderer, backend, settings.now,
                      interval=args.interval, limit=args.limit, stop=stop,
                      report=lambda r: said(r.summary()) if _eventful(r) else None)
    return totals.summary()


def _sending(settings: Settings) -> tuple[Project, Backend, EmailRenderer]:
    """What sending needs: the content, the delivery backend, and the email renderer."""
    from aftercare.render.emails import EmailRenderer
    from aftercare.render.tokens import load_secret_key

    project = load_project(settings.root)
    renderer = EmailRenderer(project, load_secret_key(settings.env, settings.secret_key_file))
    return project, backend_for(settings, project), renderer


def _eventful(report: DispatchReport) -> bool:
    return bool(report.claimed or report.released or report.withdrawn)
