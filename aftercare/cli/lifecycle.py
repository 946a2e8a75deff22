"""The commands of patient data's lifecycle: forget a patient, apply the retention period, and
back up the database."""

from __future__ import annotations

import argparse
from pathlib import Path

from aftercare.cli.table import (
    Settings,
    arg,
    backend_for,
    command,
    open_outbox,
    os_user,
    parse_email,
)
from aftercare.content.load import load_project
from aftercare.errors import PipelineError


@command("forget", "erase a patient's name, address and patient id, keeping anonymous counts "
         "and the trail of what was sent when",
         arg("email", metavar="EMAIL"),
         epilog="Unsent emails are cancelled first (and withdrawn from SendGrid). The address is "
                "kept only as a keyed hash, so a later unsubscribe or bounce still matches.")
def run_forget(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.send.withdrawal import cancel

    email = parse_email(args.email)
    project, now, actor = load_project(settings.root), settings.now(), f"cli:{os_user()}"
    with open_outbox(settings) as outbox:
        stopped = cancel(outbox, backend_for(settings, project), email, now, actor)
        erased = outbox.forget(email, now, actor)
    if erased.already:
        return "this address was erased before; nothing is left to erase"
    still = (f"; {stopped.withdrawn.kept} email(s) already with SendGrid will still be "
             "delivered" if stopped.withdrawn.kept else "")
    return (f"erased the patient's name, address and patient id ({erased.enrollments} "
            f"enrolments; {stopped.cancelled + erased.cancelled} unsent emails cancelled"
            f"{still}); the counts and the trail are kept")


@command("retention", "erase the patients whose last email is older than clinic.yaml's "
         "retention.months_after_last_message",
         arg("--dry-run", action="store_true", help="only say how many would be erased"))
def run_retention(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.dates import months_before

    project, now, actor = load_project(settings.root), settings.now(), f"cli:{os_user()}"
    months = project.clinic.retention.months_after_last_message
    if months is None:
        raise PipelineError("clinic.yaml: retention.months_after_last_message is not set; "
                            "nothing is erased by time (set it, for example to 24)")
    with open_outbox(settings) as outbox:
        due = outbox.due_for_retention(months_before(now, months), now)
        if args.dry_run:
            return (f"{len(due)} patients have had no email for {months} months; "
                    "nothing erased (dry run)")
        try:
            for address in due:
                outbox.forget(address, now, actor, f"retention: {months} months after the "
                              "last message", scrub=False)
            dropped = outbox.drop_expired_answers(now, scrub=False)
        finally:
            outbox.scrub()  # once for all of them: on PostgreSQL it reads whole tables
    answers = f"; deleted {dropped} API answers kept over a day" if dropped else ""
    return f"erased {len(due)} patients with no email for {months} months{answers}"


@command("backup", "copy the database, consistently, while the staff page and send-due run",
         arg("file", metavar="FILE"),
         epilog="The copy is one moment of the database, checked, owner-only; an older FILE is "
                "replaced once the new copy is complete.")
def run_backup(settings: Settings, args: argparse.Namespace) -> str:
    target = Path(args.file)
    with open_outbox(settings) as outbox:
        size = outbox.backup(target, settings.now(), f"cli:{os_user()}")
    return f"backed up the outbox to {target} ({size / 1024:,.0f} KB, checked)"
