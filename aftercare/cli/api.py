"""The API's command: add, list and revoke the keys booking systems call it with."""

from __future__ import annotations

import argparse
import json

from aftercare.cli.table import Settings, arg, command, open_outbox, os_user
from aftercare.errors import InputError


@command("apikey", "add, list or revoke a key for the booking-system API",
         arg("action", choices=["add", "list", "revoke"]),
         arg("name", metavar="NAME", nargs="?",
             help="the key's name, shown in the trail for each call (add, revoke)"),
         arg("--site", metavar="S", help="the only site the key may act for (add; default: "
                                         "every site)"),
         arg("--json", action="store_true", help="list as JSON"),
         epilog="A new key is printed once, on standard output, and stored only as a hash: "
                "copy it into the booking system then. A name is never used twice.")
def run_apikey(settings: Settings, args: argparse.Namespace) -> str:
    if args.action == "list":
        return _list(settings, args.json)
    if args.name is None:
        raise InputError("name", f"expected the key's name: pipeline apikey {args.action} NAME")
    if args.action == "add":
        return _add(settings, args.name, args.site)
    if args.site is not None:
        raise InputError("site", "only `apikey add` takes a site")
    with open_outbox(settings) as outbox:
        revoked = outbox.api_keys.revoke(args.name, settings.now(), f"cli:{os_user()}")
    return (f"revoked key {args.name!r}: calls with it are refused from now on" if revoked
            else f"key {args.name!r} was already revoked")


def _add(settings: Settings, name: str, site: str | None) -> str:
    from aftercare.content.load import load_project
    from aftercare.enrol.rules import known_sites
    from aftercare.web.api.keys import check_key_name, hash_key, new_key

    check_key_name(name)
    if site is not None:
        sites = known_sites(load_project(settings.root))
        if site not in sites:
            raise InputError("site", f"expected {' or '.join(sites)} (the sites of this "
                                     f"installation); got {site!r}")
    key = new_key()
    with open_outbox(settings) as outbox:
        outbox.api_keys.add(name, hash_key(key), site, settings.now(), f"cli:{os_user()}")
    print(key)
    where = "every site" if site is None else f"site {site}"
    return (f"added API key {name!r} for {where}; it is shown only this once: send it as "
            "`Authorization: Bearer <key>`")


def _list(settings: Settings, as_json: bool) -> str:
    with open_outbox(settings) as outbox:
        keys = outbox.api_keys.all()
    rows = [{"name": k.name, "site": k.site, "created_at": k.created_at.isoformat(),
             "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat()}
            for k in keys]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = "active" if row["revoked_at"] is None else f"revoked {row['revoked_at']}"
            print(f"{row['name']}  site={row['site'] or '*'}  created {row['created_at']}  "
                  f"{state}")
    return f"{len(rows)} API key{'' if len(rows) == 1 else 's'}"
