"""The aftercare pipeline: the clinic's YAML becomes PDF handouts and timed aftercare emails.

Stages, in the order data flows (each is a package of aftercare; its commands, each with its
arguments beside its handler, are in aftercare.cli):

    content   clinic.yaml, handouts/, campaigns/  -> typed Project        aftercare.content
    check     reading grades, safety, lock-screen privacy, delivery        aftercare.check
    plan      campaign + treatment date + now     -> due times (UTC)       aftercare.plan
    render    Project (+ patient)                 -> PDF handouts, emails  aftercare.render
    enrol     patient (typed or CSV), one rule set -> outbox               aftercare.enrol
    outbox    patients, enrolments, messages, trail, staff (SQLite)        aftercare.outbox
    delivery  one email -> file or SendGrid; provider facts and events     aftercare.delivery
    send      claim due -> render -> deliver -> record; withdrawals        aftercare.send
    web       the staff pages, the webhook, the public pages and the API   aftercare.web
    report    outbox -> per-site figures per step and day; chart, CSV     aftercare.report

    check build handout preview translation   aftercare.cli.content
    schedule enroll import                aftercare.cli.enrol
    outbox cancel reschedule unsubscribe resolve send-due worker   aftercare.cli.outbox
    serve staff                           aftercare.cli.web
    forget retention backup               aftercare.cli.lifecycle
    apikey                                aftercare.cli.api
    report                                aftercare.cli.report

This file is the composition root: it reads the environment and the clock, runs one command
and prints its one-line summary (on standard error when the command prints JSON, so that
standard output holds the JSON alone). The stages report problems by field name
("treated_on"); they are shown as the command's options (``--treated-on``). Commands that
render nothing never import WeasyPrint.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import aftercare.cli.content
import aftercare.cli.enrol
import aftercare.cli.lifecycle
import aftercare.cli.outbox
import aftercare.cli.report
import aftercare.cli.web

# isort: split
import aftercare.cli.api  # noqa: F401  (each module registers its commands, in this order)
from aftercare.cli.table import Settings, build_parser, shown_as_options
from aftercare.content.load import load_project  # noqa: F401  (for tests and scripts)
from aftercare.errors import PipelineError, UsageError


def _now() -> dt.datetime:
    """The only place the pipeline reads the clock."""
    return dt.datetime.now(dt.UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env(Path(args.project).resolve(), os.environ, lambda: _now())
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
