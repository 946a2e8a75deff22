"""The commands of the web stage: serve the staff pages, and add staff accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from aftercare.cli.table import Settings, arg, backend_for, command, open_outbox, os_user
from aftercare.content.load import load_project
from aftercare.errors import InputError

if TYPE_CHECKING:
    from flask import Flask

    from aftercare.render.pool import RenderPool


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@command("serve", "serve the staff page, the SendGrid webhook and the unsubscribe page",
         arg("--host", default="127.0.0.1",
             help="address to listen on (default: 127.0.0.1, this machine only)"),
         arg("--port", type=int, default=8000, help="port (default: 8000)"),
         arg("--secure-cookies", action="store_true",
             help="mark the session cookie Secure (behind an HTTPS proxy on this machine;"
                  " always on when --host is another address)"),
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

    # A thread per desk waiting for its handout, and more for look-ups meanwhile.
    threads = max(8, 2 * render_workers + 4)
    try:
        server = create_server(app, host=args.host, port=args.port, threads=threads, ident="")
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
        webhook_public_key=(project.clinic.delivery.webhook_public_key
                            or settings.env.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None),
    )
    return create_app(project, config, now=settings.now,
                      backend=lambda: backend_for(settings, project), renderer=renderer)


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
    with open_outbox(settings) as outbox:
        now = settings.now()
        StaffAccounts(outbox).add(username, password, now)
        outbox.staff.record(now, Trail.STAFF_ADDED, f"cli:{os_user()}", f"account {username}")
    return f"added staff account {username!r}; start the staff page with `pipeline serve`"


def _read_password() -> str:
    """From a prompt (typed twice, not shown) on a terminal; else the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Repeat the password: ") != password:
        raise InputError("password", "the two passwords differ; nothing was saved")
    return password
