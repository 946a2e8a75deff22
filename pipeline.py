"""The aftercare pipeline: the clinic's YAML becomes PDF handouts and timed aftercare emails.

Stages, in the order data flows (each is one module of the aftercare package):

    load      clinic.yaml, handouts/, campaigns/  -> typed Project       aftercare.content
    lint      reading grades, safety blocks, lock-screen privacy          aftercare.lint
    render    Project (+ patient)                 -> PDF handouts         aftercare.handouts
    preview   campaign steps                      -> email HTML + text    aftercare.emails
    plan      campaign + treatment date + now     -> due times (UTC)      aftercare.schedule
    enrol     patient (typed or CSV)              -> outbox (SQLite)      aftercare.intake, store
    send      due message -> email -> backend     -> outcome in outbox    aftercare.dispatch

This file is the composition root and the command line: it parses arguments, reads the
environment and the clock, calls one stage function and prints a one-line summary.
Commands that render nothing never import WeasyPrint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aftercare.content.load import load_project
from aftercare.content.model import Campaign, Project
from aftercare.errors import ContentError, InputError, PipelineError, Problem, UsageError

if TYPE_CHECKING:
    from flask import Flask

    from aftercare.delivery import Backend
    from aftercare.outbox.store import Outbox


@dataclass(frozen=True)
class Settings:
    """Where things live, from the environment; paths are relative to the project folder."""

    root: Path
    db: Path
    outbox_dir: Path
    secret_key_file: Path
    env: Mapping[str, str]

    @classmethod
    def from_env(cls, root: Path, env: Mapping[str, str]) -> Settings:
        def path(name: str, default: str) -> Path:
            return root / env.get(name, default)

        return cls(
            root=root,
            db=path("AFTERCARE_DB", "var/aftercare.db"),
            outbox_dir=path("AFTERCARE_OUTBOX_DIR", "var/outbox"),
            secret_key_file=root / "var" / "secret.key",
            env=env,
        )


# ------------------------------------------------------------------ content commands


def run_check(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.check.lint import has_errors, lint, reading_scores

    project = load_project(settings.root)
    if args.scores:
        for score in reading_scores(project):
            print(score)
    findings = lint(project, today=_today(project))
    for finding in findings:
        print(finding, file=sys.stderr)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    summary = (
        f"checked {len(project.handouts)} handouts and {len(project.campaigns)} campaigns: "
        f"{errors} errors, {warnings} warnings"
    )
    if has_errors(findings, strict=args.strict):
        raise PipelineError(summary + (" (--strict: warnings fail)" if not errors else ""))
    return summary


def run_build(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.render.build import build

    project = load_project(settings.root, only=tuple(args.topics))
    return build(project, Path(args.out), tuple(args.topics), jobs=args.jobs).summary()


def run_handout(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import check_treatment_date
    from aftercare.render.handouts import (
        HandoutRenderer,
        PatientCard,
        checkout_campaign,
        offers_diary,
        write_pdf_atomically,
    )

    project = load_project(settings.root, only=(args.topic,))
    now = _now()
    treated_on = check_treatment_date(
        "--treated-on", args.treated_on, project.clinic.timezone.zone, now
    )
    handout = project.handouts[args.topic]
    campaign = checkout_campaign(project, handout)
    if args.diary and (campaign is None or not offers_diary(campaign)):
        raise InputError("--diary", f"expected a migraine checkout handout; {args.topic} "
                                    "comes without a headache diary")
    card = PatientCard(
        args.name, treated_on, args.areas, args.provider, args.product, args.units, args.lot,
        aftercare_consent=args.aftercare_consent, reminder_consent=args.reminder_consent,
        planned_at=now,
    )
    renderer = HandoutRenderer(project)
    pdf = renderer.pdf(handout, card)
    diary = renderer.diary_pdf(card) if args.diary else None
    out = Path(args.out or f"build/checkout/{args.topic}-{treated_on.isoformat()}.pdf")
    write_pdf_atomically(pdf, out)
    summary = f"wrote {out} ({len(pdf) // 1024} KiB)"
    if diary is not None:
        write_pdf_atomically(diary, Path(args.diary))
        summary += f" and the headache diary {args.diary}"
    if not args.aftercare_consent:
        print("note: without --aftercare-consent the handout lists no email dates "
              "(as for a patient who is not enrolled)", file=sys.stderr)
    return summary


def run_preview(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.render.emails import preview_text

    project = load_project(settings.root)
    print(preview_text(project, args.campaign, args.step))
    return f"preview of {args.campaign} {args.step}"


def run_schedule(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.content.values import ZoneName
    from aftercare.enrol.rules import check_treatment_date
    from aftercare.plan.schedule import plan, rules_for

    project = load_project(settings.root)
    campaign = _campaign(project, args.campaign)
    zone = _zone(args.tz or project.clinic.timezone)
    now = _now()
    treated_on = check_treatment_date("--treated-on", args.treated_on,
                                      project.clinic.timezone.zone, now)
    planned = plan(campaign, treated_on, ZoneName(zone).zone, now,
                   rules_for(project.clinic, campaign), marketing_consent=True)
    if args.json:
        print(json.dumps([
            {"step": p.step_key, "kind": p.kind, "action": p.action, "note": p.note,
             "local": p.local_due.isoformat(), "utc": p.due_at.isoformat()}
            for p in planned
        ], indent=2))
    else:
        for p in planned:
            note = f"  ({p.note})" if p.note else ""
            print(f"{p.step_key:<10} {p.local_due:%a %d %b %Y %H:%M %Z}  "
                  f"{p.due_at:%Y-%m-%d %H:%M} UTC  {p.action}{note}")
    return f"{len(planned)} steps planned for {campaign.id}; nothing written"


# ------------------------------------------------------------------ outbox commands


def run_enroll(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import TYPED_INPUT, describe_plan, enroll_one, parse_enrollment
    from aftercare.send.withdrawal import withdraw_held

    project = load_project(settings.root)
    now, actor = _now(), f"cli:{_user()}"
    fields = {
        "email": args.email, "first_name": args.first_name, "campaign": args.campaign,
        "treated_on": args.treated_on, "timezone": args.tz or "", "language": args.language or "",
        "patient_id": args.patient_id or "",
        "marketing_consent": "true" if args.reminder_consent else "false",
    }
    # The consent is checked with every other field, and all problems are reported together.
    missing = [] if args.aftercare_consent else [
        Problem(TYPED_INPUT, None, "--aftercare-consent", NO_AFTERCARE_CONSENT)]
    try:
        enrollment = parse_enrollment(fields, project, now, recorded_by=actor)
    except ContentError as exc:
        raise ContentError([*missing, *exc.problems]) from None
    if missing:
        raise ContentError(missing)
    with _outbox(settings) as outbox:
        result = enroll_one(outbox, project, enrollment, now)
        backend = _backend(settings, project) if result.to_withdraw else None
        withdrawn = withdraw_held(outbox, backend, result.to_withdraw, now, actor)
    for line in describe_plan(result):
        print(line)
    for change in result.changes:
        print(change)
    if result.to_withdraw:
        print(f"Withdrawal: {withdrawn.summary()}")
    if not result.created:
        return ("already enrolled for that treatment date; consent updated" if result.changes
                else "already enrolled for that treatment date; nothing changed")
    return f"enrolled in {args.campaign}: {len(result.messages)} messages planned"


NO_AFTERCARE_CONSENT = (
    "required: enrol a patient only once they agree to aftercare emails (read them the wording "
    "on the checkout page, then pass --aftercare-consent); to print a handout without emails, "
    "use `pipeline handout`")


def run_import(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.csv_import import import_file

    project = load_project(settings.root)
    path = Path(args.file)
    with _outbox(settings) as outbox:
        report = import_file(outbox, project, path, _now(), recorded_by=f"import:{path.name}")
    return f"imported {path.name}: {report.created} enrolled, {report.existing} already enrolled"


def run_outbox(settings: Settings, args: argparse.Namespace) -> str:
    with _outbox(settings) as outbox:
        rows = outbox.messages(status=args.status, email=args.email)
    if args.json:
        print(json.dumps([_message_json(r) for r in rows], indent=2))
    else:
        for r in rows:
            held = (f"  held by SendGrid until {r.send_at:%Y-%m-%d %H:%M} UTC"
                    if r.state == "sent" and r.send_at and r.send_at > _now() else "")
            print(f"{r.message_id:>6} {r.state:<9} {r.due_at:%Y-%m-%d %H:%M} UTC  "
                  f"{r.campaign}/{r.step_key:<8} {r.email}  attempts={r.attempts}{held}"
                  + (f"  delivery={r.delivery}" if r.delivery else "")
                  + (f"  {r.last_error}" if r.last_error else ""))
    return f"{len(rows)} messages"


def run_cancel(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.send.withdrawal import withdraw

    project, now, actor = load_project(settings.root), _now(), f"cli:{_user()}"
    with _outbox(settings) as outbox:
        count = outbox.cancel(args.email, args.campaign, now, actor=actor)
        report = withdraw(outbox, _backend(settings, project), args.email, now, actor,
                          campaign=args.campaign)
    return f"cancelled {count} unsent messages; {report.summary()}"


def run_reschedule(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import check_treatment_date, replanner

    project = load_project(settings.root)
    now = _now()
    campaign = _campaign(project, args.campaign)
    treated_on = check_treatment_date(
        "--treated-on", args.treated_on, project.clinic.timezone.zone, now
    )
    with _outbox(settings) as outbox:
        count = outbox.reschedule(args.email, campaign.id, treated_on,
                                  replanner(project, now), now, actor=f"cli:{_user()}")
    return f"re-timed {count} unsent messages from {treated_on.isoformat()}"


def run_unsubscribe(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.content.values import EmailAddress

    try:
        email = EmailAddress.parse(args.email)
    except ValueError as exc:
        raise InputError("EMAIL", f"{exc}; got {args.email!r}") from exc
    from aftercare.send.withdrawal import withdraw

    project, now, actor = load_project(settings.root), _now(), f"cli:{_user()}"
    with _outbox(settings) as outbox:
        count = outbox.unsubscribe(email, now, source="cli", actor=actor)
        report = withdraw(outbox, _backend(settings, project), email, now, actor)
    return (f"unsubscribed; cancelled {count} unsent messages; {report.summary()}; "
            "later enrolments are refused")


def run_send_due(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.render.emails import EmailRenderer
    from aftercare.render.tokens import load_secret_key
    from aftercare.send.dispatch import send_due

    project = load_project(settings.root)
    backend = _backend(settings, project)
    if args.now and getattr(backend, "can_schedule", False):
        raise UsageError("--now is for trying the file backend; SendGrid schedules by the "
                         "real clock, so send-due with SendGrid always uses the current time")
    now = _parse_now(args.now) if args.now else _now()
    renderer = EmailRenderer(project, load_secret_key(settings.env, settings.secret_key_file))
    with _outbox(settings) as outbox:
        report = send_due(outbox, project, renderer, backend, now, args.limit)
    return report.summary()


# ------------------------------------------------------------------ staff page


def run_resolve(settings: Settings, args: argparse.Namespace) -> str:
    with _outbox(settings) as outbox:
        outbox.resolve_unknown(args.message_id, as_sent=args.sent, now=_now(),
                               actor=f"cli:{_user()}")
    return (f"message {args.message_id} marked sent" if args.sent
            else f"message {args.message_id} queued to be sent again")


def run_serve(settings: Settings, args: argparse.Namespace) -> str:
    from waitress import create_server  # type: ignore[import-untyped]

    # Beyond this machine the login must travel over HTTPS (a proxy in front): the session
    # cookie is then marked Secure, and browsers refuse to send it over plain HTTP.
    secure = args.secure_cookies or args.host not in _LOOPBACK
    app = web_app(settings, secure_cookies=secure)
    try:
        server = create_server(app, host=args.host, port=args.port, threads=4, ident="")
    except OSError as exc:
        raise InputError("--port", f"cannot listen on {args.host}:{args.port}: "
                                   f"{exc.strerror or exc}") from None
    where = f"http://{_url_host(args.host)}:{server.effective_port}/"
    print(f"serving the staff page on {where} (Ctrl+C stops it)", flush=True)
    if args.host not in _LOOPBACK:
        print("note: reachable from other machines; put it behind HTTPS (cookies are Secure)",
              file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return "stopped"


def web_app(settings: Settings, *, secure_cookies: bool = False) -> Flask:
    """The staff app as `pipeline serve` runs it: content, database, secret, delivery backend."""
    from aftercare.render.tokens import load_secret_key
    from aftercare.web import WebConfig, create_app

    project = load_project(settings.root)
    config = WebConfig(
        db=settings.db,
        secret_key=load_secret_key(settings.env, settings.secret_key_file),
        secure_cookies=secure_cookies,
        webhook_public_key=(project.clinic.delivery.webhook_public_key
                            or settings.env.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None),
    )
    return create_app(project, config, now=_now, backend=lambda: _backend(settings, project))


def run_staff(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.outbox.migrations import connect
    from aftercare.web.audit import record
    from aftercare.web.auth import StaffAccounts, check_password, check_username

    username = check_username(args.username)
    password = check_password(_read_password(), username)
    db = connect(settings.db)
    try:
        now = _now()
        StaffAccounts(db).add(username, password, now)
        record(db, now, "staff-added", f"cli:{_user()}", f"account {username}")
    finally:
        db.close()
    return f"added staff account {username!r}; start the staff page with `pipeline serve`"


def _read_password() -> str:
    """From a prompt (typed twice, not shown) on a terminal; else the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Repeat the password: ") != password:
        raise InputError("password", "the two passwords differ; nothing was saved")
    return password


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# ------------------------------------------------------------------ helpers


def _backend(settings: Settings, project: Project) -> Backend:
    from aftercare.delivery import backend_from_env

    return backend_from_env(settings.env, settings.root, delivery=project.clinic.delivery)


def _today(project: Project) -> dt.date:
    return _now().astimezone(project.clinic.timezone.zone).date()


def _now() -> dt.datetime:
    """The only place the pipeline reads the clock."""
    return dt.datetime.now(dt.UTC)


def _parse_now(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError("--now", f"expected an ISO-8601 time such as 2026-11-24T15:00Z; "
                                  f"got {text!r}") from exc
    if moment.tzinfo is None:
        raise InputError("--now", f"expected a time with a zone (Z or +01:00); got {text!r}")
    return moment.astimezone(dt.UTC)


def _zone(name: str) -> str:
    from aftercare.content.values import ZoneName

    try:
        return ZoneName.parse(name)
    except ValueError as exc:
        raise InputError("--tz", f"{exc}; got {name!r}") from exc


def _campaign(project: Project, name: str) -> Campaign:
    campaign = project.campaigns.get(name)
    if campaign is None:
        known = ", ".join(sorted(project.campaigns))
        raise InputError("CAMPAIGN", f"expected one of {known}; got {name!r}")
    return campaign


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class _outbox:  # a context manager that reads like a function at the call site
    def __init__(self, settings: Settings) -> None:
        self.path = settings.db

    def __enter__(self) -> Outbox:
        from aftercare.outbox.store import Outbox

        self.box = Outbox.open(self.path)
        return self.box

    def __exit__(self, *exc: object) -> None:
        self.box.close()


def _message_json(row: object) -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(row)  # type: ignore[call-overload]
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
            for k, v in data.items()}


# ------------------------------------------------------------------ the command line

Command = Callable[[Settings, argparse.Namespace], str]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Clinic aftercare: PDF handouts and timed aftercare emails from YAML.",
    )
    parser.add_argument("--project", default=os.environ.get("AFTERCARE_PROJECT", "."),
                        help="folder holding clinic.yaml, handouts/, campaigns/, templates/")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        return p

    p = command("check", run_check, "validate all content and lint it; exit 1 on errors")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.add_argument("--scores", action="store_true",
                   help="also print each handout's reading grades and SMOG")

    p = command("build", run_build, "render every handout and email preview that changed")
    p.add_argument("--out", default="build", help="output folder (default: build)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="processes rendering handouts (default: one per core)")
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="only these handouts")

    p = command("handout", run_handout, "print-ready handout for one patient")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("--name", required=True, help="the patient's name, printed as typed")
    p.add_argument("--treated-on", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--areas", help="areas treated, e.g. 'frown lines, forehead'")
    p.add_argument("--provider", help="who treated the patient")
    p.add_argument("--product", help="the product used, e.g. 'BOTOX Cosmetic' (printed only)")
    p.add_argument("--units", help="the units given (printed only)")
    p.add_argument("--lot", help="the product's lot number (printed only)")
    p.add_argument("--aftercare-consent", action="store_true",
                   help="the patient agreed to aftercare emails: list their dates")
    p.add_argument("--reminder-consent", "--marketing-consent", dest="reminder_consent",
                   action="store_true", help="the patient also agreed to booking reminders")
    p.add_argument("--out", metavar="FILE", help="where to write the PDF")
    p.add_argument("--diary", metavar="FILE",
                   help="also write the one-page headache diary here (migraine handouts)")

    p = command("preview", run_preview, "show one email step for a sample patient")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("step", metavar="STEP")

    p = command("schedule", run_schedule, "show when each email would go; writes nothing")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("--treated-on", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: the clinic's)")
    p.add_argument("--json", action="store_true")

    p = command("enroll", run_enroll, "enrol one patient in a campaign")
    p.add_argument("campaign", metavar="CAMPAIGN")
    p.add_argument("--email", required=True)
    p.add_argument("--first-name", required=True)
    p.add_argument("--treated-on", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--tz", metavar="ZONE")
    p.add_argument("--patient-id")
    p.add_argument("--aftercare-consent", action="store_true",
                   help="the patient agreed to aftercare emails (required to enrol)")
    p.add_argument("--reminder-consent", "--marketing-consent", dest="reminder_consent",
                   action="store_true",
                   help="the patient also agreed to reminders to book a next visit (optional)")
    p.add_argument("--language")

    p = command("import", run_import, "enrol every row of a CSV file, or none")
    p.add_argument("file", metavar="FILE.csv")

    p = command("outbox", run_outbox, "list messages in the outbox")
    p.add_argument("--status", choices=["scheduled", "sending", "sent", "failed", "cancelled",
                                        "unknown"])
    p.add_argument("--email")
    p.add_argument("--json", action="store_true")

    p = command("cancel", run_cancel, "cancel a patient's unsent messages")
    p.add_argument("--email", required=True)
    p.add_argument("--campaign")

    p = command("reschedule", run_reschedule, "re-time unsent messages from a new treatment date")
    p.add_argument("--email", required=True)
    p.add_argument("--campaign", required=True)
    p.add_argument("--treated-on", required=True, metavar="YYYY-MM-DD")

    p = command("unsubscribe", run_unsubscribe, "stop all email to an address")
    p.add_argument("email", metavar="EMAIL")

    p = command("resolve", run_resolve, "settle a message whose outcome is unknown")
    p.add_argument("message_id", type=int, metavar="MESSAGE_ID")
    outcome = p.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--sent", action="store_true", help="the patient did receive it")
    outcome.add_argument("--requeue", action="store_true", help="send it again")

    p = command("send-due", run_send_due, "send every message that is due")
    p.add_argument("--now", metavar="ISO-8601", help="pretend it is this time (testing)")
    p.add_argument("--limit", type=int, default=500)

    p = command("serve", run_serve,
                "serve the staff page, the SendGrid webhook and the unsubscribe page")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--secure-cookies", action="store_true",
                   help="mark the session cookie Secure (behind an HTTPS proxy on this machine;"
                        " always on when --host is another address)")

    p = command("staff", run_staff, "add a staff account for the staff page")
    p.add_argument("action", choices=["add"], help="add: create an account")
    p.add_argument("username", metavar="USERNAME")
    p.epilog = ("The password is asked for twice (not shown), or read from the first line of "
                "standard input when it is not a terminal; at least 12 characters.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env(Path(args.project).resolve(), os.environ)
    try:
        if not (settings.root / "clinic.yaml").is_file():
            raise UsageError(f"no clinic.yaml in {settings.root}; run from the project folder "
                             "or pass --project")
        print(args.run(settings, args))
    except PipelineError as exc:
        print(exc.show(), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `pipeline preview ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
