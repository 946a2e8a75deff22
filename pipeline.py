"""The aftercare pipeline: the clinic's YAML becomes PDF handouts and timed aftercare emails.

Stages, in the order data flows (each is a package of aftercare):

    content   clinic.yaml, handouts/, campaigns/  -> typed Project       aftercare.content
    check     reading grades, safety, lock-screen privacy, delivery       aftercare.check
    plan      campaign + treatment date + now     -> due times (UTC)      aftercare.plan
    render    Project (+ patient)                 -> PDF handouts, emails aftercare.render
    enrol     patient (typed or CSV), one rule set -> outbox              aftercare.enrol
    outbox    patients, enrolments, messages, trail, staff (SQLite)       aftercare.outbox
    delivery  one email -> file or SendGrid; provider facts and events    aftercare.delivery
    send      claim due -> render -> deliver -> record; withdrawals       aftercare.send
    web       the staff pages, the webhook and the public pages           aftercare.web

This file is the composition root and the command line: it parses arguments, reads the
environment and the clock, calls one stage function and prints a one-line summary. Each
command's arguments stand next to its handler. The stages report problems by field name
("treated_on"); this file shows them as its options (``--treated-on``). Commands that render
nothing never import WeasyPrint.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftercare.content.load import load_project
from aftercare.content.model import Campaign, Project
from aftercare.errors import ContentError, InputError, PipelineError, Problem, UsageError
from aftercare.outbox.vocabulary import State

if TYPE_CHECKING:
    from flask import Flask

    from aftercare.content.values import ZoneName
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


# ------------------------------------------------------------------ the command table

Run = Callable[[Settings, argparse.Namespace], str]


@dataclass(frozen=True)
class Arg:
    """One argument of a command, as argparse takes it; ``exclusive`` ones form one group."""

    names: tuple[str, ...]
    options: Mapping[str, Any]
    exclusive: bool = False

    @property
    def dest(self) -> str:
        if "dest" in self.options:
            return str(self.options["dest"])
        name = next((n for n in self.names if n.startswith("--")), self.names[0])
        return name.lstrip("-").replace("-", "_")

    @property
    def shown(self) -> str:
        """How an error names it: its first option, or its metavar."""
        first = self.names[0]
        return first if first.startswith("-") else str(self.options.get("metavar", first))


def arg(*names: str, exclusive: bool = False, **options: Any) -> Arg:
    return Arg(names, options, exclusive)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Run
    args: tuple[Arg, ...]
    epilog: str | None = None


COMMANDS: list[Command] = []


def command(name: str, help: str, *args: Arg, epilog: str | None = None) -> Callable[[Run], Run]:
    """Register ``run`` as the command ``name`` with these arguments."""

    def register(run: Run) -> Run:
        COMMANDS.append(Command(name, help, run, args, epilog))
        return run

    return register


# The stages' names for a field, where the command's option is named otherwise.
FIELD_ALIASES: Mapping[str, str] = {
    "timezone": "tz", "marketing_consent": "reminder_consent", "topic": "topics",
}


# ------------------------------------------------------------------ content and render


@command("check", "validate all content and lint it; exit 1 on errors",
         arg("--strict", action="store_true", help="warnings fail too"),
         arg("--scores", action="store_true",
             help="also print each handout's reading grades and SMOG"))
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


@command("build", "render every handout and email preview that changed",
         arg("--out", default="build", help="output folder (default: build)"),
         arg("--jobs", type=int, metavar="N",
             help="processes rendering handouts (default: one per core)"),
         arg("topics", nargs="*", metavar="TOPIC", help="only these handouts"))
def run_build(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.render.build import build

    project = load_project(settings.root, only=tuple(args.topics))
    return build(project, Path(args.out), tuple(args.topics), jobs=args.jobs).summary()


@command("handout", "print-ready handout for one patient",
         arg("topic", metavar="TOPIC"),
         arg("--name", required=True, help="the patient's name, printed as typed"),
         arg("--treated-on", required=True, metavar="YYYY-MM-DD"),
         arg("--areas", help="areas treated, e.g. 'frown lines, forehead'"),
         arg("--provider", help="who treated the patient"),
         arg("--product", help="the product used, e.g. 'BOTOX Cosmetic' (printed only)"),
         arg("--units", help="the units given (printed only)"),
         arg("--lot", help="the product's lot number (printed only)"),
         arg("--aftercare-consent", action="store_true",
             help="the patient agreed to aftercare emails: list their dates"),
         arg("--reminder-consent", "--marketing-consent", dest="reminder_consent",
             action="store_true", help="the patient also agreed to booking reminders"),
         arg("--out", metavar="FILE", help="where to write the PDF"),
         arg("--diary", metavar="FILE",
             help="also write the one-page headache diary here (migraine handouts)"))
def run_handout(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import check_treatment_date
    from aftercare.files import write_output
    from aftercare.render.card import PatientCard
    from aftercare.render.handouts import HandoutRenderer
    from aftercare.render.page import checkout_campaign, offers_diary

    project = load_project(settings.root, only=(args.topic,))
    now = _now()
    treated_on = check_treatment_date(args.treated_on, project.clinic.timezone.zone, now)
    handout = project.handouts[args.topic]
    campaign = checkout_campaign(project, handout)
    if args.diary and (campaign is None or not offers_diary(campaign)):
        raise InputError("diary", f"expected a migraine checkout handout; {args.topic} "
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
    write_output(out, pdf)
    summary = f"wrote {out} ({len(pdf) // 1024} KiB)"
    if diary is not None:
        write_output(Path(args.diary), diary, "diary")
        summary += f" and the headache diary {args.diary}"
    if not args.aftercare_consent:
        print("note: without --aftercare-consent the handout lists no email dates "
              "(as for a patient who is not enrolled)", file=sys.stderr)
    return summary


@command("preview", "show one email step for a sample patient",
         arg("campaign", metavar="CAMPAIGN"),
         arg("step", metavar="STEP"))
def run_preview(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.render.previews import preview_text

    project = load_project(settings.root)
    print(preview_text(project, args.campaign, args.step))
    return f"preview of {args.campaign} {args.step}"


# ------------------------------------------------------------------ plan and enrol


@command("schedule", "show when each email would go; writes nothing",
         arg("campaign", metavar="CAMPAIGN"),
         arg("--treated-on", required=True, metavar="YYYY-MM-DD"),
         arg("--tz", metavar="ZONE", help="IANA time zone (default: the clinic's)"),
         arg("--json", action="store_true"))
def run_schedule(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import check_treatment_date
    from aftercare.plan.describe import describe_plan, plan_text
    from aftercare.plan.schedule import plan, rules_for

    project = load_project(settings.root)
    campaign = _campaign(project, args.campaign)
    zone = _zone(args.tz or project.clinic.timezone)
    now = _now()
    treated_on = check_treatment_date(args.treated_on, project.clinic.timezone.zone, now)
    planned = plan(campaign, treated_on, zone.zone, now, rules_for(project.clinic, campaign),
                   marketing_consent=True)
    lines = describe_plan(campaign, planned, zone.zone)
    if args.json:
        print(json.dumps([line.as_json() for line in lines], indent=2))
    else:
        print("\n".join(plan_text(lines)))
    return f"{len(planned)} steps planned for {campaign.id}; nothing written"


NO_AFTERCARE_CONSENT = (
    "required: enrol a patient only once they agree to aftercare emails (read them the wording "
    "on the checkout page, then pass --aftercare-consent); to print a handout without emails, "
    "use `pipeline handout`")


@command("enroll", "enrol one patient in a campaign",
         arg("campaign", metavar="CAMPAIGN"),
         arg("--email", required=True),
         arg("--first-name", required=True),
         arg("--treated-on", required=True, metavar="YYYY-MM-DD"),
         arg("--tz", metavar="ZONE"),
         arg("--patient-id"),
         arg("--aftercare-consent", action="store_true",
             help="the patient agreed to aftercare emails (required to enrol)"),
         arg("--reminder-consent", "--marketing-consent", dest="reminder_consent",
             action="store_true",
             help="the patient also agreed to reminders to book a next visit (optional)"),
         arg("--language"))
def run_enroll(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.enrolment import enroll_one
    from aftercare.enrol.rules import TYPED_INPUT, parse_enrollment
    from aftercare.plan.describe import describe_plan, plan_text
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
        Problem(TYPED_INPUT, None, "aftercare_consent", NO_AFTERCARE_CONSENT)]
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
    campaign = project.campaigns[enrollment.campaign]
    for line in plan_text(describe_plan(campaign, result.messages, enrollment.timezone.zone)):
        print(line)
    for change in result.changes:
        print(change)
    if result.to_withdraw:
        print(f"Withdrawal: {withdrawn.summary()}")
    if not result.created:
        return ("already enrolled for that treatment date; consent updated" if result.changes
                else "already enrolled for that treatment date; nothing changed")
    return f"enrolled in {args.campaign}: {len(result.messages)} messages planned"


@command("import", "enrol every row of a CSV file, or none",
         arg("file", metavar="FILE.csv"))
def run_import(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.csv_import import import_file

    project = load_project(settings.root)
    path = Path(args.file)
    with _outbox(settings) as outbox:
        report = import_file(outbox, project, path, _now(), recorded_by=f"import:{path.name}")
    return f"imported {path.name}: {report.created} enrolled, {report.existing} already enrolled"


# ------------------------------------------------------------------ outbox


@command("outbox", "list messages in the outbox",
         arg("--status", choices=[state.value for state in State]),
         arg("--email"),
         arg("--json", action="store_true"))
def run_outbox(settings: Settings, args: argparse.Namespace) -> str:
    with _outbox(settings) as outbox:
        rows = outbox.messages(status=args.status, email=args.email)
    if args.json:
        print(json.dumps([_jsonable(dataclasses.asdict(r)) for r in rows], indent=2))
    else:
        now = _now()
        for r in rows:
            held = (f"  held by SendGrid until {r.send_at:%Y-%m-%d %H:%M} UTC"
                    if r.state == "sent" and r.send_at and r.send_at > now else "")
            print(f"{r.message_id:>6} {r.state:<9} {r.due_at:%Y-%m-%d %H:%M} UTC  "
                  f"{r.campaign}/{r.step_key:<8} {r.email}  attempts={r.attempts}{held}"
                  + (f"  delivery={r.delivery}" if r.delivery else "")
                  + (f"  {r.last_error}" if r.last_error else ""))
    return f"{len(rows)} messages"


@command("cancel", "cancel a patient's unsent messages",
         arg("--email", required=True),
         arg("--campaign"))
def run_cancel(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.send.withdrawal import cancel

    project, now, actor = load_project(settings.root), _now(), f"cli:{_user()}"
    with _outbox(settings) as outbox:
        stopped = cancel(outbox, _backend(settings, project), args.email, now, actor,
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
    now = _now()
    campaign = _campaign(project, args.campaign)
    treated_on = check_treatment_date(args.treated_on, project.clinic.timezone.zone, now)
    with _outbox(settings) as outbox:
        count = outbox.reschedule(args.email, campaign.id, treated_on,
                                  replanner(project, now), now, actor=f"cli:{_user()}")
    return f"re-timed {count} unsent messages from {treated_on.isoformat()}"


@command("unsubscribe", "stop all email to an address",
         arg("email", metavar="EMAIL"))
def run_unsubscribe(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.content.values import EmailAddress
    from aftercare.send.withdrawal import unsubscribe

    try:
        email = EmailAddress.parse(args.email)
    except ValueError as exc:
        raise InputError("email", f"{exc}; got {args.email!r}") from exc
    project, now, actor = load_project(settings.root), _now(), f"cli:{_user()}"
    with _outbox(settings) as outbox:
        stopped = unsubscribe(outbox, _backend(settings, project), email, now, source="cli",
                              actor=actor)
    return (f"unsubscribed; cancelled {stopped.cancelled} unsent messages; "
            f"{stopped.withdrawn.summary()}; later enrolments are refused")


@command("resolve", "settle a message whose outcome is unknown",
         arg("message_id", type=int, metavar="MESSAGE_ID"),
         arg("--sent", action="store_true", exclusive=True, help="the patient did receive it"),
         arg("--requeue", action="store_true", exclusive=True, help="send it again"))
def run_resolve(settings: Settings, args: argparse.Namespace) -> str:
    with _outbox(settings) as outbox:
        outbox.resolve_unknown(args.message_id, as_sent=args.sent, now=_now(),
                               actor=f"cli:{_user()}")
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
    backend = _backend(settings, project)
    if args.now and scheduling(backend) is not None:
        raise UsageError("--now is for trying the file backend; SendGrid schedules by the "
                         "real clock, so send-due with SendGrid always uses the current time")
    now = _parse_now(args.now) if args.now else _now()
    renderer = EmailRenderer(project, load_secret_key(settings.env, settings.secret_key_file))
    with _outbox(settings) as outbox:
        report = send_due(outbox, project, renderer, backend, now, args.limit)
    return report.summary()


# ------------------------------------------------------------------ web


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@command("serve", "serve the staff page, the SendGrid webhook and the unsubscribe page",
         arg("--host", default="127.0.0.1",
             help="address to listen on (default: 127.0.0.1, this machine only)"),
         arg("--port", type=int, default=8000, help="port (default: 8000)"),
         arg("--secure-cookies", action="store_true",
             help="mark the session cookie Secure (behind an HTTPS proxy on this machine;"
                  " always on when --host is another address)"))
def run_serve(settings: Settings, args: argparse.Namespace) -> str:
    from waitress import create_server  # type: ignore[import-untyped]

    # Beyond this machine the login must travel over HTTPS (a proxy in front): the session
    # cookie is then marked Secure, and browsers refuse to send it over plain HTTP.
    secure = args.secure_cookies or args.host not in _LOOPBACK
    app = web_app(settings, secure_cookies=secure)
    try:
        server = create_server(app, host=args.host, port=args.port, threads=4, ident="")
    except OSError as exc:
        raise InputError("port", f"cannot listen on {args.host}:{args.port}: "
                                 f"{exc.strerror or exc}") from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving the staff page on http://{host}:{server.effective_port}/ (Ctrl+C stops it)",
          flush=True)
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


@command("staff", "add a staff account for the staff page",
         arg("action", choices=["add"], help="add: create an account"),
         arg("username", metavar="USERNAME"),
         epilog="The password is asked for twice (not shown), or read from the first line of "
                "standard input when it is not a terminal; at least 12 characters.")
def run_staff(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.outbox.vocabulary import Trail
    from aftercare.web.auth import StaffAccounts, check_password, check_username

    username = check_username(args.username)
    password = check_password(_read_password(), username)
    with _outbox(settings) as outbox:
        now = _now()
        StaffAccounts(outbox).add(username, password, now)
        outbox.staff.record(now, Trail.STAFF_ADDED, f"cli:{_user()}", f"account {username}")
    return f"added staff account {username!r}; start the staff page with `pipeline serve`"


def _read_password() -> str:
    """From a prompt (typed twice, not shown) on a terminal; else the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Repeat the password: ") != password:
        raise InputError("password", "the two passwords differ; nothing was saved")
    return password


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
        raise InputError("now", f"expected an ISO-8601 time such as 2026-11-24T15:00Z; "
                                f"got {text!r}") from exc
    if moment.tzinfo is None:
        raise InputError("now", f"expected a time with a zone (Z or +01:00); got {text!r}")
    return moment.astimezone(dt.UTC)


def _zone(name: str) -> ZoneName:
    from aftercare.content.values import ZoneName

    try:
        return ZoneName.parse(name)
    except ValueError as exc:
        raise InputError("timezone", f"{exc}; got {name!r}") from exc


def _campaign(project: Project, name: str) -> Campaign:
    campaign = project.campaigns.get(name)
    if campaign is None:
        known = ", ".join(sorted(project.campaigns))
        raise InputError("campaign", f"expected one of {known}; got {name!r}")
    return campaign


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def _outbox(settings: Settings) -> Iterator[Outbox]:
    from aftercare.outbox.store import Outbox

    with Outbox.open(settings.db) as outbox:
        yield outbox


def _jsonable(data: Mapping[str, object]) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
            for k, v in data.items()}


# ------------------------------------------------------------------ the command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Clinic aftercare: PDF handouts and timed aftercare emails from YAML.",
    )
    parser.add_argument("--project", default=os.environ.get("AFTERCARE_PROJECT", "."),
                        help="folder holding clinic.yaml, handouts/, campaigns/, templates/")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for c in COMMANDS:
        p = sub.add_parser(c.name, help=c.help, description=c.help, epilog=c.epilog)
        p.set_defaults(run=c.run, command_args=c.args)
        group = None
        for a in c.args:
            if a.exclusive:
                group = group or p.add_mutually_exclusive_group(required=True)
                group.add_argument(*a.names, **a.options)
            else:
                p.add_argument(*a.names, **a.options)
    return parser


def shown_as_options(exc: PipelineError, args: Sequence[Arg]) -> PipelineError:
    """The error with each field named as the command's option (``--treated-on``)."""
    from aftercare.enrol.rules import TYPED_INPUT

    names = {a.dest: a.shown for a in args}

    def shown(field: str) -> str:
        return names.get(FIELD_ALIASES.get(field, field), names.get(field, field))

    if isinstance(exc, InputError):
        return exc.named(shown(exc.field))
    if isinstance(exc, ContentError):
        return ContentError(dataclasses.replace(p, path=shown(p.path)) if p.file == TYPED_INPUT
                            else p for p in exc.problems)
    return exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env(Path(args.project).resolve(), os.environ)
    try:
        if not (settings.root / "clinic.yaml").is_file():
            raise UsageError(f"no clinic.yaml in {settings.root}; run from the project folder "
                             "or pass --project")
        summary = args.run(settings, args)
        # With --json, standard output holds the JSON alone.
        print(summary, file=sys.stderr if getattr(args, "json", False) else sys.stdout)
    except PipelineError as exc:
        print(shown_as_options(exc, args.command_args).show(), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `pipeline preview ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
