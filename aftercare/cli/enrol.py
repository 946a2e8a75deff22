"""The commands of the plan and enrol stages: schedule, enroll, import."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aftercare.cli.table import (
    Settings,
    arg,
    backend_for,
    command,
    find_campaign,
    open_outbox,
    os_user,
    parse_zone,
)
from aftercare.content.load import load_project


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
    campaign = find_campaign(project, args.campaign)
    zone = parse_zone(args.tz or project.clinic.timezone)
    now = settings.now()
    treated_on = check_treatment_date(args.treated_on, project.clinic.timezone.zone, now)
    planned = plan(campaign, treated_on, zone.zone, now, rules_for(project.clinic, campaign),
                   marketing_consent=True)
    lines = describe_plan(campaign, planned, zone.zone)
    if args.json:
        print(json.dumps([line.as_json() for line in lines], indent=2))
    else:
        print("\n".join(plan_text(lines)))
    return f"{len(planned)} steps planned for {campaign.id}; nothing written"


# How to give the aftercare consent at the command line, after the service's message.
CONSENT_HINT = (
    "(read them the wording on the checkout page, then pass --aftercare-consent); to print a "
    "handout without emails, use `pipeline handout`")


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
    from aftercare.enrol.service import Consents, check_enrolment, enrol
    from aftercare.plan.describe import describe_plan, plan_text
    from aftercare.send.withdrawal import withdraw_held

    project = load_project(settings.root)
    now, actor = settings.now(), f"cli:{os_user()}"
    fields = {
        "email": args.email, "first_name": args.first_name, "campaign": args.campaign,
        "treated_on": args.treated_on, "timezone": args.tz or "", "language": args.language or "",
        "patient_id": args.patient_id or "",
    }
    # The consent is checked with every other field, and all problems are reported together.
    consents = Consents(args.aftercare_consent, args.reminder_consent, recorded_by=actor)
    enrollment = check_enrolment(fields, consents, project, now, consent_hint=CONSENT_HINT)
    with open_outbox(settings) as outbox:
        done = enrol(outbox, project, enrollment, now, lambda held: withdraw_held(
            outbox, backend_for(settings, project), held, now, actor))
    result = done.result
    campaign = project.campaigns[enrollment.campaign]
    for line in plan_text(describe_plan(campaign, result.messages, enrollment.timezone.zone)):
        print(line)
    for change in result.changes:
        print(change)
    if done.withdrawn is not None:
        print(f"Withdrawal: {done.withdrawn.summary()}")
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
    with open_outbox(settings) as outbox:
        report = import_file(outbox, project, path, settings.now(),
                             recorded_by=f"import:{path.name}")
    return f"imported {path.name}: {report.created} enrolled, {report.existing} already enrolled"
