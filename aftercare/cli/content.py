"""The commands of the content, check and render stages: check, build, handout, preview."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aftercare.cli.table import Settings, arg, command
from aftercare.content.load import load_project
from aftercare.content.model import Handout, Project
from aftercare.errors import InputError, PipelineError


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
    findings = lint(project, today=settings.today(project))
    for finding in findings:
        print(finding, file=sys.stderr)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    translated = "".join(
        f", and {len(local.handouts)} handouts and {len(local.campaigns)} campaigns in {code}"
        for code, local in sorted(project.translations.items()))
    summary = (
        f"checked {len(project.handouts)} handouts and {len(project.campaigns)} campaigns"
        f"{translated}: {errors} errors, {warnings} warnings"
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
             help="also write the one-page headache diary here (migraine handouts)"),
         arg("--language", metavar="L", help="the patient's language, e.g. es (default: the "
                                               "clinic's)"),
         arg("--also-language", metavar="L",
             help="a second sheet in this language, after the first (one PDF)"))
def run_handout(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import check_treatment_date, language_code
    from aftercare.files import write_output
    from aftercare.render.card import PatientCard
    from aftercare.render.handouts import HandoutRenderer
    from aftercare.render.page import checkout_campaign, offers_diary

    project = load_project(settings.root, only=(args.topic,))
    now = settings.now()
    treated_on = check_treatment_date(args.treated_on, project.clinic.timezone.zone, now)
    handout = project.handouts[args.topic]
    languages = [language_code(args.language or project.clinic.language)]
    if args.also_language:
        languages.append(language_code(args.also_language))
    sheets = [_in_language(project, args.topic, code, field)
              for code, field in zip(languages, ("language", "also_language"), strict=False)]
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
    pdf = renderer.pdf_sheets(sheets, card) if campaign else renderer.pdf(sheets[0], card)
    diary = renderer.diary_pdf(card, languages[0]) if args.diary else None
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
         arg("step", metavar="STEP"),
         arg("--language", metavar="L", help="in this language, e.g. es (default: the clinic's)"))
def run_preview(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.enrol.rules import language_code
    from aftercare.render.previews import preview_text

    project = load_project(settings.root)
    code = language_code(args.language or project.clinic.language)
    if code not in project.languages:
        raise InputError("language", f"expected one of {', '.join(project.languages)}; got "
                                     f"{args.language!r}")
    print(preview_text(project, args.campaign, args.step, language=code))
    return f"preview of {args.campaign} {args.step}" + (f" in {code}" if args.language else "")


def _in_language(project: Project, topic: str, code: str, field: str) -> Handout:
    """The topic's handout in a language; InputError on ``field`` when it has none."""
    handout = project.in_language(code).handouts.get(topic)
    if handout is None or project.language_of(handout) != code:
        known = ", ".join(c for c in project.languages
                          if topic in project.in_language(c).handouts)
        raise InputError(field, f"expected a language {topic} is written in ({known}); got "
                                f"{code!r}")
    return handout


@command("translation", "record a translation or its review; list every translation's state",
         arg("action", choices=["stamp", "status"],
             help="stamp: record who translated or reviewed FILE, and its source now; "
                  "status: list every translation file"),
         arg("files", nargs="*", metavar="FILE",
             help="translation files, e.g. handouts/es/aftercare-cosmetic.yaml"),
         arg("--translated-by", metavar="NAME",
             help="FILE was (re)translated from its source as it is now: a draft again"),
         arg("--reviewed-by", metavar="NAME",
             help="a qualified medical translator and a clinician reviewed FILE against its "
                  "source as it is now (name both)"),
         arg("--on", metavar="YYYY-MM-DD", help="the date to record (default: today)"),
         epilog="`pipeline check` warns (an error with --strict) when a translation's source "
                "changed since its review, or since its translation for a draft.")
def run_translation(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.check.translations import used_sentences
    from aftercare.content.schema import parse_date
    from aftercare.content.stamp import stamp, translation_files

    project = load_project(settings.root)
    if args.action == "status":
        files = translation_files(project)
        for file in files:
            record = file.record
            reviewed = (f"reviewed on {record.reviewed_on} by {record.reviewed_by}"
                        if record.status == "reviewed" else "not reviewed")
            print(f"{file.name}: {record.status}, translated on {record.translated_on} by "
                  f"{record.translated_by}; {reviewed}")
        return f"{len(files)} translation files"
    if not args.files or not (args.translated_by or args.reviewed_by):
        raise InputError("files", "expected FILE... and --translated-by NAME or --reviewed-by "
                                  "NAME")
    try:
        day = parse_date(args.on) if args.on else settings.now().astimezone(
            project.clinic.timezone.zone).date()
    except ValueError as exc:
        raise InputError("on", f"{exc}; got {args.on!r}") from None
    for name in args.files:
        name = Path(name).as_posix().removeprefix("./")
        record = stamp(project, name, day, translated_by=args.translated_by,
                       reviewed_by=args.reviewed_by, sentences=used_sentences(project))
        print(f"{name}: {record.status}, source recorded as of {day}")
    load_project(settings.root)  # the files still load, or the error says what broke
    return f"stamped {len(args.files)} translation files"
