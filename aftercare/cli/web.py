"""The commands of the web stage: serve the staff pages, and add staff accounts."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import sys
import time
from typing import TYPE_CHECKING

from aftercare.cli.table import Settings, arg, backend_for, command, open_outbox, os_user
from aftercare.content.load import load_project
from aftercare.errors import InputError, PipelineError, UsageError

if TYPE_CHECKING:
    from flask import Flask

    from aftercare.outbox.store import Outbox
    from aftercare.render.pool import RenderPool
    from aftercare.web.auth import StaffAccounts


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
ADMINISTRATOR = "administrator"


@command("serve", "serve the staff page, the SendGrid webhook and the patients' pages",
         arg("--host", default="127.0.0.1",
             help="address to listen on (default: 127.0.0.1, this machine only)"),
         arg("--port", type=int, default=8000, help="port (default: 8000)"),
         arg("--secure-cookies", action="store_true",
             help="mark the session cookie Secure (behind an HTTPS proxy on this machine;"
                  " always on when --host is another address)"),
         arg("--trusted-proxy", metavar="ADDRESS",
             help="the address of the HTTPS proxy in front: its X-Forwarded-For header then "
                  "gives each client's address, which login throttling and the care page's "
                  "rate limit count by"),
         arg("--render-workers", type=int, default=None, metavar="N",
             help="processes rendering handouts, each warm (default: one per core, at most 4;"
                  " 0: render inside the web process, one at a time)"))
def run_serve(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.render.pool import RenderPool, default_size

    workers = default_size() if args.render_workers is None else args.render_workers
    if workers < 0:
        raise InputError("render_workers", f"expected 0 or more; got {workers}")
    # Beyond this machine the login must travel over HTTPS (a proxy in front): the session
    # cookie is then marked Secure, and browsers refuse to send it over plain HTTP.
    secure = args.secure_cookies or args.host not in _LOOPBACK
    pool = RenderPool(load_project(settings.root), workers) if workers else None
    try:
        return _serve(web_app(settings, secure_cookies=secure, renderer=pool), args, workers)
    finally:
        if pool is not None:
            pool.close()


def _serve(app: Flask, args: argparse.Namespace, render_workers: int) -> str:
    from waitress import create_server  # type: ignore[import-untyped]

    _log_to_stderr()
    # A thread per desk waiting for its handout, and more for look-ups meanwhile.
    threads = max(8, 2 * render_workers + 4)
    try:
        # Behind a proxy every request comes from the proxy; it says who the client is.
        proxy = {} if not args.trusted_proxy else {
            "trusted_proxy": args.trusted_proxy, "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for"}, "clear_untrusted_proxy_headers": True}
        server = create_server(app, host=args.host, port=args.port, threads=threads, ident="",
                               **proxy)
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


def _log_to_stderr() -> None:
    """The app's logs, the request log among them, one line each on standard error."""
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime  # times in UTC, like the outbox's
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    for name in ("aftercare", "waitress"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def web_app(
    settings: Settings, *, secure_cookies: bool = False, renderer: RenderPool | None = None
) -> Flask:
    """The staff app as `pipeline serve` runs it: content, database, secret, delivery backend,
    and its handout renderer (a pool of processes; None: one inside the web process)."""
    from aftercare.render.tokens import load_secret_key
    from aftercare.web import WebConfig, create_app

    project = load_project(settings.root)
    config = WebConfig(
        db=settings.db,
        secret_key=load_secret_key(settings.env, settings.secret_key_file),
        secure_cookies=secure_cookies,
        webhook_public_key=_webhook_key(project.clinic.delivery.webhook_public_key,
                                        settings.env.get("SENDGRID_WEBHOOK_PUBLIC_KEY")),
        api_rate_per_minute=_rate(settings.env.get("AFTERCARE_API_RATE_PER_MINUTE", "120")),
    )
    return create_app(project, config, now=settings.now,
                      backend=lambda: backend_for(settings, project), renderer=renderer)


def _webhook_key(in_clinic: str | None, in_env: str | None) -> str | None:
    """The webhook's verification key, checked now: a key that does not parse would otherwise
    refuse every post SendGrid makes, unnoticed until someone reads the log."""
    from aftercare.delivery.sendgrid_events import load_public_key

    key, source = ((in_clinic, "clinic.yaml: delivery.webhook_public_key") if in_clinic
                   else (in_env, "SENDGRID_WEBHOOK_PUBLIC_KEY"))
    if not key:
        return None
    try:
        load_public_key(key)
    except ValueError as exc:
        raise PipelineError(
            f"{source}: the SendGrid webhook verification key does not parse ({exc}); copy it "
            "again from SendGrid (Settings, Mail Settings, Event Webhook: the verification "
            "key), or remove it (the webhook then answers 403); the staff page was not started"
        ) from None
    return key


@command("staff", "manage the staff page's accounts",
         arg("action", choices=["add", "list", "remove", "reset-password", "unlock"],
             help="add: create an account; list: every account, its last login and whether a "
                  "client is locked out of it; remove: end its sessions and stop it logging in; "
                  "reset-password: set a new one and end its sessions; unlock: lift the delays "
                  "and lockouts failed logins put on it"),
         arg("username", metavar="USERNAME", nargs="?"),
         arg("--client", metavar="ADDRESS",
             help="unlock: only for this client address (default: every client)"),
         arg("--role", choices=["front_desk", "manager", "administrator"],
             help="add: front_desk (checkout and finding patients at their sites), manager "
                  "(also the outbox, unknown deliveries and the staff of their sites) or "
                  "administrator (everything, every site; the default)"),
         arg("--site", metavar="SITE", action="append", default=[],
             help="add: a site they work at (repeat for several); front desk staff and "
                  "managers need one at least, an administrator none"),
         epilog="A new password is asked for twice (not shown), or read from the first line of "
                "standard input when it is not a terminal; at least 12 characters. Each action "
                "is written to the audit log. The command line acts as an administrator: "
                "whoever runs it holds the database and its secrets.")
def run_staff(settings: Settings, args: argparse.Namespace) -> str:
    from aftercare.outbox.vocabulary import Trail
    from aftercare.render.tokens import load_secret_key
    from aftercare.web.auth import StaffAccounts, check_password, check_username

    if args.action == "list":
        with open_outbox(settings) as outbox:
            accounts = StaffAccounts(outbox, load_secret_key(settings.env,
                                                             settings.secret_key_file))
            return _list_staff(outbox, accounts, settings.now(), f"cli:{os_user()}")
    if args.username is None:
        raise UsageError(f"staff {args.action}: USERNAME is required")
    username = check_username(args.username)
    if (args.role or args.site) and args.action != "add":
        raise UsageError(f"staff {args.action}: --role and --site go with add only")
    role, sites = (_role_and_sites(settings, args.role or ADMINISTRATOR, args.site)
                   if args.action == "add" else (ADMINISTRATOR, ()))
    password = (check_password(_read_password(), username)
                if args.action in ("add", "reset-password") else "")
    actor = f"cli:{os_user()}"
    with open_outbox(settings) as outbox:
        now = settings.now()
        accounts = StaffAccounts(outbox, load_secret_key(settings.env, settings.secret_key_file))
        if args.action == "add":
            accounts.add(username, password, now, role, sites)
            where = ", ".join(sites) or "every site"
            outbox.staff.record(now, Trail.STAFF_ADDED, actor,
                                f"account {username} as {role} at {where}")
            return (f"added staff account {username!r}: {role} at {where}; start the staff "
                    "page with `pipeline serve`")
        if args.action == "unlock":
            return _unlock(outbox, accounts, username, args.client, now, actor)
        if args.action == "remove":
            account, ended = accounts.remove(username)
            outbox.staff.record(now, Trail.STAFF_REMOVED, actor,
                                f"account {account.username}; {_sessions(ended)} ended")
            return (f"removed staff account {account.username!r}: it can no longer log in; "
                    f"{_sessions(ended)} ended")
        account, ended = accounts.reset_password(username, password)
        outbox.staff.record(now, Trail.STAFF_PASSWORD_RESET, actor,
                            f"account {account.username}; {_sessions(ended)} ended")
        return f"new password set for {account.username!r}; {_sessions(ended)} ended"


def _role_and_sites(
    settings: Settings, role: str, sites: list[str]
) -> tuple[str, tuple[str, ...]]:
    """The new account's role and sites, checked against the project's sites."""
    from aftercare.enrol.rules import known_sites
    from aftercare.web.roles import check_account, command_line

    known = known_sites(load_project(settings.root)) if sites else ()
    return check_account(command_line(os_user()), role, sites, known)


def _list_staff(outbox: Outbox, accounts: StaffAccounts, now: dt.datetime, actor: str) -> str:
    """One line per account: its number (the request log's staff#<id>), name, role, the sites
    it works at, last login, and the clients locked out of it."""
    from aftercare.outbox.vocabulary import Trail

    rows = [("ID", "USERNAME", "ROLE", "SITES", "LAST LOGIN", "LOCKED")]
    for account in outbox.staff.listing():
        last = ("never" if account.last_login_at is None
                else f"{account.last_login_at:%Y-%m-%d %H:%M} UTC")
        clients = [] if account.disabled else accounts.locked_clients(account.username, now)
        locked = ("removed" if account.disabled else
                  f"yes: {', '.join(clients)}" if clients else "no")
        sites = "every site" if account.sites is None else ",".join(account.sites)
        rows.append((str(account.id), account.username, account.role, sites, last, locked))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
              + "  " + row[5])
    outbox.staff.record(now, Trail.STAFF_LISTED, actor)
    removed = sum(1 for row in rows[1:] if row[5] == "removed")
    return f"{len(rows) - 1} staff accounts" + (f" ({removed} removed)" if removed else "")


def _unlock(outbox: Outbox, accounts: StaffAccounts, username: str, client: str | None,
            now: dt.datetime, actor: str) -> str:
    from aftercare.outbox.vocabulary import Trail

    removed = accounts.unlock(username, client)
    account = outbox.staff.find(username)
    # A name with no account is not written to the audit log: it may be anything typed.
    name = "an unknown account" if account is None else f"account {account.username}"
    where = "every client" if client is None else f"client {client}"
    outbox.staff.record(now, Trail.STAFF_UNLOCKED, actor,
                        f"{name}, {where}; {removed} failure counts cleared")
    return f"unlocked {username!r} for {where}: {removed} failure counts cleared"


def _sessions(count: int) -> str:
    return f"{count} session" + ("" if count == 1 else "s")


def _read_password() -> str:
    """From a prompt (typed twice, not shown) on a terminal; else the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Repeat the password: ") != password:
        raise InputError("password", "the two passwords differ; nothing was saved")
    return password


def _rate(text: str) -> int:
    """AFTERCARE_API_RATE_PER_MINUTE: calls a minute per API key."""
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise InputError("AFTERCARE_API_RATE_PER_MINUTE",
                         f"expected a whole number from 1 to 100000; got {text[:20]!r}")
    return int(text)
