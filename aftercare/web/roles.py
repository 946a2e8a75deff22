"""Who may do what, and where: staff roles, the sites each staff member works at, and the one
function every staff route calls to learn who is signed in (``current_staff``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final, Literal

from flask import abort, g

from aftercare.errors import InputError

Role = Literal["front_desk", "manager", "administrator"]
ROLES: Final[tuple[Role, ...]] = ("front_desk", "manager", "administrator")
ROLE_LABELS: Final[dict[str, str]] = {
    "front_desk": "Front desk", "manager": "Manager", "administrator": "Administrator"}
ADMINISTRATOR: Final[Role] = "administrator"

# What each role may do. "checkout": the checkout form and its handouts; "lookup": find a
# patient, and cancel, reschedule or unsubscribe them; "outbox": the outbox page; "resolve":
# settle a message whose delivery is unknown; "staff": the accounts of staff of their sites;
# "figures": delivery figures. An administrator may do everything at every site.
Action = Literal["checkout", "lookup", "outbox", "resolve", "staff", "figures"]
_DESK: Final = frozenset({"checkout", "lookup"})
_ALLOWED: Final[dict[str, frozenset[str]]] = {
    "front_desk": _DESK,
    "manager": _DESK | {"outbox", "resolve", "staff", "figures"},
    "administrator": _DESK | {"outbox", "resolve", "staff", "figures"},
}


@dataclass(frozen=True)
class StaffMember:
    """A signed-in staff member (or the command line, which acts as an administrator)."""

    staff_id: int
    username: str
    role: str  # one of ROLES; anything else (a hand-edited database) may do nothing
    sites: frozenset[str] | None  # the sites they work at; None: every site

    def may(self, action: Action, site: str | None = None) -> bool:
        """Whether they may do ``action`` at ``site`` (None: at one of their sites at least)."""
        if action not in _ALLOWED.get(self.role, frozenset()):
            return False
        return site is None or self.works_at(site)

    def works_at(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def may_manage(self, role: str, sites: Collection[str] | None) -> bool:
        """Whether they may add, see or remove an account with this role and these sites: an
        administrator any; a manager those that are not administrators and work only at the
        manager's own sites; nobody else any."""
        if not self.may("staff"):
            return False
        if self.role == ADMINISTRATOR:
            return True
        if role not in ROLES or role == ADMINISTRATOR or not sites:
            return False
        return self.sites is None or set(sites) <= self.sites

    @property
    def where(self) -> str:
        """Their sites in words, for the audit log and the pages: "every site", "north, south"."""
        return "every site" if self.sites is None else ", ".join(sorted(self.sites))

    def actor(self, site: str | None = None) -> str:
        """Who did it, as the audit log records it: name, role, and the site acted at (or,
        for what concerns no one site, the sites they work at)."""
        return f"staff:{self.username} ({self.role} at {site or self.where})"


def member(staff_id: int, username: str, role: str, sites: Iterable[str] | None) -> StaffMember:
    return StaffMember(staff_id, username, role, None if sites is None else frozenset(sites))


def command_line(os_user: str) -> StaffMember:
    """Whoever runs the command line holds the database and its secrets: an administrator."""
    return StaffMember(0, os_user, ADMINISTRATOR, None)


def check_role(text: str) -> Role:
    """The role named, or InputError on ``role``."""
    for role in ROLES:
        if text == role:
            return role
    raise InputError("role", f"expected one of {', '.join(ROLES)}; got {text[:40]!r}")


def check_account(
    creator: StaffMember, role: str, sites: Collection[str], known: Collection[str]
) -> tuple[Role, tuple[str, ...]]:
    """The role and sites of an account ``creator`` is about to add, checked: an administrator
    works at every site (no site named); the others at one or more known sites. A manager adds
    only front desk staff and managers, and only at their own sites."""
    checked = check_role(role)
    chosen = tuple(sorted(set(sites)))
    for site in chosen:
        if site not in known:
            raise InputError("site", f"expected one of {', '.join(sorted(known))}; got "
                                     f"{site[:40]!r}")
    if checked == ADMINISTRATOR and chosen:
        raise InputError("site", "an administrator works at every site; name no site")
    if checked != ADMINISTRATOR and not chosen:
        raise InputError("site", f"a {checked} account needs at least one site")
    if not creator.may_manage(checked, chosen):
        raise InputError("role", f"{creator.role} accounts may add only front desk and "
                                 "manager accounts at their own sites")
    return checked, chosen


def site_choices(staff: StaffMember, known: Iterable[str]) -> tuple[str, ...]:
    """The sites the checkout form offers them: those they work at that still exist."""
    return tuple(site for site in known if staff.works_at(site))


# ---------------------------------------------------------------- the signed-in staff member


def current_staff() -> StaffMember:
    """The staff member signed in to this request (inside a staff route only): their role
    and sites are read once per request, so a change takes effect at their next click."""
    found = g.get("staff_member")
    if isinstance(found, StaffMember):
        return found
    from aftercare.web import state

    staff_id: int = g.staff_id
    role, sites = state.outbox().staff.access(staff_id)
    g.staff_member = member(staff_id, g.staff_user, role, sites)
    return g.staff_member  # type: ignore[no-any-return]


def require(action: Action, site: str | None = None) -> StaffMember:
    """The signed-in staff member if they may do ``action`` (at ``site``); else the answer an
    address that does not exist gets (404, the page without the navigation), so that a refusal
    tells nothing about what exists."""
    staff = current_staff()
    if not staff.may(action, site):
        g.pop("staff_user", None)  # as before the login guard: the request log keeps staff_id
        abort(404)
    return staff
