"""The staff page for managers and administrators: the accounts of staff at their sites, and
adding, resetting the password of, or removing one."""

from __future__ import annotations

from typing import Final

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from aftercare.enrol.rules import known_sites
from aftercare.errors import InputError, StorageError
from aftercare.outbox.records import StaffListing
from aftercare.outbox.vocabulary import Trail
from aftercare.web import security, state
from aftercare.web.auth import check_password, check_username
from aftercare.web.forms import sentence
from aftercare.web.roles import (
    ADMINISTRATOR,
    ROLE_LABELS,
    ROLES,
    Action,
    StaffMember,
    check_account,
    current_staff,
    require,
    site_choices,
)

team = Blueprint("team", __name__)
security.guard(team)

FIELDS: Final = ("username", "role")


@team.app_context_processor
def _permissions() -> dict[str, object]:
    """``staff_may(action)`` for the navigation: only what the signed-in member may open."""

    def staff_may(action: Action) -> bool:
        if g.get("staff_id") is None:
            return False
        try:
            return current_staff().may(action)
        except StorageError:  # the page saying the database failed must still be shown
            return False

    return {"staff_may": staff_may, "role_labels": ROLE_LABELS}


@team.get("/staff")
def accounts() -> str:
    own = site_choices(require("staff"), known_sites(state.current().project))
    return _page({"username": "", "role": "front_desk"}, own if len(own) == 1 else (), {})


@team.post("/staff")
def add() -> BaseResponse | tuple[str, int]:
    staff = require("staff")
    values = {name: request.form.get(name, "").strip() for name in FIELDS}
    sites = tuple(request.form.getlist("site"))
    password = request.form.get("password", "")
    app = state.current()
    accounts_ = state.accounts()
    errors: dict[str, str] = {}
    checked = None
    # Every field's problem at once, in the form's order.
    try:
        check_username(values["username"])
    except InputError as exc:
        errors[exc.field] = sentence(exc)
    try:
        check_password(password, values["username"])
    except InputError as exc:
        errors[exc.field] = sentence(exc)
    try:
        checked = check_account(staff, values["role"], sites, known_sites(app.project))
        if not errors:
            accounts_.add(values["username"], password, app.now(), *checked)
    except InputError as exc:
        errors.setdefault(exc.field, sentence(exc))
    if errors or checked is None:
        return _page(values, sites, errors), 400
    role, chosen = checked
    where = "every site" if not chosen else ", ".join(chosen)
    state.outbox().staff.record(app.now(), Trail.STAFF_ADDED, staff.actor(),
                                f"account {values['username']} as {role} at {where}")
    flash(f"Added {values['username']} ({ROLE_LABELS[role].lower()} at {where}). "
          "Give them their password in person.")
    return redirect(url_for("team.accounts"), code=303)


@team.post("/staff/<int:staff_id>/password")
def reset_password(staff_id: int) -> BaseResponse | tuple[str, int]:
    staff, account = _managed(staff_id)
    try:
        _, ended = state.accounts().reset_password(account.username,
                                                   request.form.get("password", ""))
    except InputError as exc:
        return _page({"username": "", "role": "front_desk"}, (),
                     {f"password-{staff_id}": sentence(exc)}), 400
    state.outbox().staff.record(state.current().now(), Trail.STAFF_PASSWORD_RESET,
                                staff.actor(), f"account {account.username}; {ended} sessions "
                                               "ended")
    flash(f"New password set for {account.username}; they were logged out everywhere.")
    return redirect(url_for("team.accounts"), code=303)


@team.post("/staff/<int:staff_id>/remove")
def remove(staff_id: int) -> BaseResponse | str:
    staff, account = _managed(staff_id)
    if account.id == staff.staff_id:
        flash("You cannot remove your own account: ask another manager or an administrator.")
        return redirect(url_for("team.accounts"), code=303)
    if request.form.get("confirm") != "yes":
        return render_template("team_remove.html", account=account)
    _, ended = state.accounts().remove(account.username)
    state.outbox().staff.record(state.current().now(), Trail.STAFF_REMOVED, staff.actor(),
                                f"account {account.username}; {ended} sessions ended")
    flash(f"Removed {account.username}: they can no longer log in.")
    return redirect(url_for("team.accounts"), code=303)


def _visible(staff: StaffMember) -> list[StaffListing]:
    """The active accounts this member manages: everyone for an administrator; for a manager,
    the front desk staff and managers who work only at the manager's sites."""
    return [a for a in state.outbox().staff.listing()
            if not a.disabled and staff.may_manage(a.role, a.sites)]


def _managed(staff_id: int) -> tuple[StaffMember, StaffListing]:
    """The member and an account they manage; any other id is answered as a missing page."""
    staff = require("staff")
    for account in _visible(staff):
        if account.id == staff_id:
            return staff, account
    abort(404)


def _page(values: dict[str, str], sites: tuple[str, ...], errors: dict[str, str]) -> str:
    staff = require("staff")
    roles = [(role, ROLE_LABELS[role]) for role in ROLES
             if role != ADMINISTRATOR or staff.role == ADMINISTRATOR]
    return render_template(
        "team.html", accounts=_visible(staff), values=values, chosen=sites, errors=errors,
        roles=roles, sites=site_choices(staff, known_sites(state.current().project)), me=staff)
