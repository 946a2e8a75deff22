"""The app's long-lived objects, and the outbox each request opens and closes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app, g, request

from aftercare.content.model import Campaign, Project
from aftercare.outbox.database import Location
from aftercare.outbox.store import Outbox
from aftercare.render.emails import EmailRenderer
from aftercare.web.auth import StaffAccounts
from aftercare.web.cache import ScratchCache
from aftercare.web.client_limit import ClientLimit

if TYPE_CHECKING:
    from aftercare.delivery import Backend
    from aftercare.render.handouts import HandoutRenderer
    from aftercare.render.pool import RenderPool

EXTENSION = "aftercare"
# The booking-system API's routes: machines call them with a key, never with a staff session.
API_PREFIX = "/api/"


@dataclass(frozen=True)
class WebConfig:
    """What the app needs from the environment (built by ``pipeline serve``, or by tests)."""

    db: Location  # an SQLite file, or a postgresql:// URL
    secret_key: bytes
    secure_cookies: bool = False
    webhook_public_key: str | None = None
    # A working day after its login a session ends whatever its use; the idle timeout is the
    # clinic's (clinic.yaml: staff.idle_timeout_minutes).
    session_lifetime: dt.timedelta = dt.timedelta(hours=8)
    # Care page requests one client address may make in a minute: a patient reading, saving
    # the reminder and the handout makes a few; guessing links or flooding the PDF gets no far.
    care_requests_per_minute: int = 30
    api_rate_per_minute: int = 120  # calls per API key, in bursts of up to as many
    # How long a request waits for the first answer to its Idempotency-Key before a 409.
    api_idempotency_wait: dt.timedelta = dt.timedelta(seconds=10)


@dataclass
class AppState:
    """Shared by every request: content, config, the clock, one PDF renderer and short caches."""

    project: Project
    config: WebConfig
    now: Callable[[], dt.datetime]
    backend: Callable[[], Backend]
    renderer: HandoutRenderer | RenderPool  # `pipeline serve`: a pool of warm processes
    stylesheet: str  # staff.css with the clinic's colours
    logo: bytes
    fonts: Mapping[str, bytes]  # file name -> the bundled font, for @font-face
    # The logos of sites with their own (sites/<id>.yaml), shown on their patients' pages.
    site_logos: Mapping[str, bytes] = field(default_factory=dict)
    # WeasyPrint promises nothing about threads; waitress serves with several. A pool needs
    # no lock (each of its processes renders one handout at a time).
    render_lock: AbstractContextManager[object] = field(default_factory=threading.Lock)
    scratch: ScratchCache = field(init=False)
    emails: EmailRenderer = field(init=False)  # the care pages' content, as the emails have it
    care_limit: ClientLimit = field(init=False)

    def __post_init__(self) -> None:
        self.scratch = ScratchCache(dt.timedelta(minutes=15), self.now)
        self.emails = EmailRenderer(self.project, self.config.secret_key)
        self.care_limit = ClientLimit(self.config.care_requests_per_minute,
                                      dt.timedelta(minutes=1), self.now)

    def today(self) -> dt.date:
        """Today in the clinic's time zone."""
        return self.now().astimezone(self.project.clinic.timezone.zone).date()

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.project.clinic.timezone.zone)

    def campaign(self, campaign_id: str) -> Campaign | None:
        return self.project.campaigns.get(campaign_id)


def current() -> AppState:
    state: AppState = current_app.extensions[EXTENSION]
    return state


def for_api() -> bool:
    """This request is under /api/, whether or not it matched one of the API's routes."""
    return request.path.startswith(API_PREFIX)


def outbox() -> Outbox:
    """This request's outbox (one database connection per request, closed at its end)."""
    if "outbox" not in g:
        g.outbox = Outbox.open(current().config.db, current().config.secret_key)
    box: Outbox = g.outbox
    return box


def accounts() -> StaffAccounts:
    return StaffAccounts(outbox(), current().config.secret_key)


def close_handles(_: BaseException | None = None) -> None:
    """Close whatever this request opened (registered as an app-context teardown)."""
    box = g.pop("outbox", None)
    if box is not None:
        box.close()
