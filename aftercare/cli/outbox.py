"""The commands of the outbox and send stages: outbox, cancel, reschedule, unsubscribe,
resolve, send-due."""

from __future__ import annotations

import argparse
import dataclasses
import json

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
from aftercare.errors import UsageError
from aftercare.outbox.vocabulary import State


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
    from aftercare.render.emails import EmailRenderer
    from aftercare.render.tokens import load_secret_key
    from aftercare.send.dispatch import send_due

    project = load_project(settings.root)
    backend = backend_for(settings, project)
    if args.now and scheduling(backend) is not None:
        raise UsageError("--now is for trying the file backend; SendGrid schedules by the "
                         "real clock, so send-due with SendGrid always uses the current time")
    now = parse_now(args.now) if args.now else settings.now()
    renderer = EmailRenderer(project, load_secret_key(settings.env, settings.secret_key_file))
    with open_outbox(settings) as outbox:
        report = send_due(outbox, project, renderer, backend, now, args.limit)
    return report.summary()
