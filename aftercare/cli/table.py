"""The command table: each command's arguments beside its handler, the settings every handler
gets, and the field names of the stages shown as the command's own options."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftercare.content.model import Campaign, Project
from aftercare.content.sites import Site
from aftercare.errors import ContentError, InputError, PipelineError
from aftercare.outbox.database import Location, is_url

if TYPE_CHECKING:
    from aftercare.content.values import EmailAddress, ZoneName
    from aftercare.delivery import Backend
    from aftercare.outbox.store import Outbox


@dataclass(frozen=True)
class Settings:
    """Where things live, from the environment; paths are relative to the project folder."""

    root: Path
    db: Location  # an SQLite file, or a postgresql:// URL
    outbox_dir: Path
    secret_key_file: Path
    env: Mapping[str, str]
    now: Callable[[], dt.datetime]  # the clock: pipeline.py reads it, nothing else does

    def today(self, project: Project) -> dt.date:
        """Today in the clinic's time zone."""
        return self.now().astimezone(project.clinic.timezone.zone).date()

    @classmethod
    def from_env(
        cls, root: Path, env: Mapping[str, str], now: Callable[[], dt.datetime]
    ) -> Settings:
        def path(name: str, default: str) -> Path:
            return root / env.get(name, default)

        database = env.get("AFTERCARE_DB", "")
        return cls(
            root=root,
            db=database if is_url(database) else path("AFTERCARE_DB", "var/aftercare.db"),
            outbox_dir=path("AFTERCARE_OUTBOX_DIR", "var/outbox"),
            secret_key_file=root / "var" / "secret.key",
            env=env,
            now=now,
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


# ------------------------------------------------------------------ helpers the commands share


def backend_for(settings: Settings, project: Project) -> Backend:
    from aftercare.delivery import backend_from_env

    return backend_from_env(settings.env, settings.root, delivery=project.clinic.delivery)


def parse_now(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError("now", f"expected an ISO-8601 time such as 2026-11-24T15:00Z; "
                                f"got {text!r}") from exc
    if moment.tzinfo is None:
        raise InputError("now", f"expected a time with a zone (Z or +01:00); got {text!r}")
    return moment.astimezone(dt.UTC)


def parse_email(text: str) -> EmailAddress:
    from aftercare.content.values import EmailAddress

    try:
        return EmailAddress.parse(text)
    except ValueError as exc:
        raise InputError("email", f"{exc}; got {text!r}") from exc


def parse_zone(name: str) -> ZoneName:
    from aftercare.content.values import ZoneName

    try:
        return ZoneName.parse(name)
    except ValueError as exc:
        raise InputError("timezone", f"{exc}; got {name!r}") from exc


def find_campaign(project: Project, name: str) -> Campaign:
    campaign = project.campaigns.get(name)
    if campaign is None:
        known = ", ".join(sorted(project.campaigns))
        raise InputError("campaign", f"expected one of {known}; got {name!r}")
    return campaign


def find_site(project: Project, name: str | None) -> Site:
    """The site a command names (the organisation's own, main, when it names none)."""
    from aftercare.enrol.rules import known_sites
    from aftercare.outbox.records import IMPLICIT_SITE

    site, known = name or IMPLICIT_SITE, known_sites(project)
    if site not in known:
        raise InputError("site", f"expected one of {', '.join(known)}; got {site!r}")
    return Site(site, project.at_site(site).clinic)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def open_outbox(settings: Settings) -> Iterator[Outbox]:
    """The outbox, with the clinic's secret key, so that erased addresses are recognised."""
    from aftercare.outbox.store import Outbox
    from aftercare.render.tokens import load_secret_key

    secret = load_secret_key(settings.env, settings.secret_key_file)
    with Outbox.open(settings.db, secret) as outbox:
        yield outbox


def jsonable(data: Mapping[str, object]) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
            for k, v in data.items()}
