"""A two-site outbox with known figures, written only through the outbox's own operations.

The clinic's days are New York's: the span of 30 days ending "now" (Monday 23 November 2026,
10:00 in New York) runs from Sunday 25 October to 23 November, across the end of daylight
saving time (1 November). Expected figures are listed in ``MAIN`` and ``NORTH``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from aftercare.content.values import EmailAddress, ZoneName
from aftercare.outbox.database import Location
from aftercare.outbox.records import DeliveryReport, Enrollment
from aftercare.outbox.store import Outbox
from aftercare.outbox.vocabulary import DeliveryEvent
from aftercare.plan.schedule import PlannedMessage

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York
ENROLLED = dt.datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
FIRST_DAY = dt.date(2026, 10, 25)
COSMETIC, MIGRAINE = "botox-cosmetic", "botox-migraine"
_events = itertools.count(1)


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


# The expected totals over the 30 days, and the forecast, per site and step (steps not listed
# count zero everywhere).
MAIN = {
    (COSMETIC, "day-0"): {"scheduled": 5, "sent": 4, "delivered": 3, "bounced": 1, "dropped": 0,
                          "spam_reports": 0, "unsubscribed": 1, "viewed": 1, "forecast": 2},
    (COSMETIC, "week-2"): {"scheduled": 0, "sent": 0, "delivered": 0, "bounced": 0,
                           "dropped": 0, "spam_reports": 0, "unsubscribed": 0, "viewed": 0,
                           "forecast": 1},
}
NORTH = {
    (MIGRAINE, "day-0"): {"scheduled": 2, "sent": 2, "delivered": 1, "bounced": 0, "dropped": 1,
                          "spam_reports": 1, "unsubscribed": 0, "viewed": 0, "forecast": 0},
}


def patient(name: str, site: str = "main", campaign: str = COSMETIC) -> Enrollment:
    return Enrollment(
        email=EmailAddress.parse(f"{name.lower()}@example.com"), first_name=name,
        campaign=campaign, treated_on=dt.date(2026, 10, 1), timezone=ZoneName("America/New_York"),
        language="en", marketing_consent=False, recorded_by="staff:frontdesk",
        consent_wording_version="v1", site=site,
    )


def plan(*steps: tuple[str, dt.datetime] | tuple[str, dt.datetime, str]) -> list[PlannedMessage]:
    """Messages due at the given times; a third item "skip" stores one already cancelled."""
    return [PlannedMessage(step[0], "clinical", step[1], step[1],
                           "skip" if step[2:] == ("skip",) else "send",
                           "skipped: no consent to reminders" if step[2:] else None)
            for step in steps]


def report(box: Outbox, kind: DeliveryEvent, email: str, message: str | None,
           when: dt.datetime) -> None:
    box.apply_delivery_events([DeliveryReport(f"ev-{next(_events)}", kind, message, email,
                                              when, None)], when, "sendgrid")


def send(box: Outbox, when: dt.datetime, *, held_until: dt.datetime | None = None) -> tuple[
        int, str]:
    """Claim the one message due by ``when`` (or by ``held_until``) and record it accepted."""
    (claim,) = box.claim_due(when, 1, horizon=held_until)
    box.mark_sent(claim.message_id, provider_id=f"sg-{claim.message_id}", content_hash="h",
                  template_version="v1", now=when, send_at=held_until, batch=None)
    return claim.message_id, claim.public_id


def seed(path: Location) -> None:
    with Outbox.open(path) as box:
        _seed(box)


def _enrol(box: Outbox, who: Enrollment, steps: Sequence[PlannedMessage]) -> None:
    box.enroll(who, steps, ENROLLED)


def _seed(box: Outbox) -> None:
    _enrol(box, patient("Dora"), plan(("day-0", at(10, 20, 12))))
    _enrol(box, patient("Cato"), plan(("day-0", at(10, 31, 12)), ("week-2", at(11, 14, 12))))
    _enrol(box, patient("Gil"), plan(("day-0", at(11, 10, 12))))
    _enrol(box, patient("Hana", "north", MIGRAINE), plan(("day-0", at(11, 15, 14))))
    _enrol(box, patient("Ivo", "north", MIGRAINE), plan(("day-0", at(11, 16, 14))))
    _enrol(box, patient("Ada"), plan(("day-0", at(11, 20, 23)), ("week-2", at(11, 26, 15)),
                                    ("month-3", at(12, 20, 15), "skip")))
    _enrol(box, patient("Ben"), plan(("day-0", at(11, 22, 23)), ("week-2", at(11, 29, 15))))
    _enrol(box, patient("Fay"), plan(("day-0", at(11, 24, 14))))
    # Before the span: sent on 20 October; delivered at the very first moment of 25 October in
    # New York (04:00 UTC, daylight saving time), which counts; a second report is not a second.
    _, dora = send(box, at(10, 20, 12))
    report(box, DeliveryEvent.DELIVERED, "dora@example.com", dora, at(10, 25, 4))
    report(box, DeliveryEvent.DELIVERED, "dora@example.com", dora, at(10, 25, 6))
    # Cato: sent, delivered, then used the email's unsubscribe link (his week-2 is cancelled,
    # so it is not scheduled); SendGrid's own unsubscribe event a day later counts no twice.
    cato_id, cato = send(box, at(10, 31, 12))
    report(box, DeliveryEvent.DELIVERED, "cato@example.com", cato, at(10, 31, 12, 1))
    box.unsubscribe("cato@example.com", at(11, 2, 12), source="link", actor="patient",
                    message_id=cato_id)
    report(box, DeliveryEvent.UNSUBSCRIBED, "cato@example.com", cato, at(11, 3, 12))
    # Gil: refused for good by the provider: scheduled, not sent.
    (gil,) = box.claim_due(at(11, 10, 12), 1)
    box.mark_failed(gil.message_id, "invalid address", at(11, 10, 12))
    # North: Hana's dropped, Ivo's delivered then reported as spam.
    _, hana = send(box, at(11, 15, 14))
    report(box, DeliveryEvent.DROPPED, "hana@example.com", hana, at(11, 15, 14, 1))
    _, ivo = send(box, at(11, 16, 14))
    report(box, DeliveryEvent.DELIVERED, "ivo@example.com", ivo, at(11, 16, 14, 5))
    report(box, DeliveryEvent.COMPLAINED, "ivo@example.com", ivo, at(11, 18, 12))
    # Ada: sent at 18:00 on 20 November in New York, delivered at 23:30 there (04:30 UTC on
    # the 21st: New York's 20th), her care page opened at 00:30 on the 21st there.
    ada_id, ada = send(box, at(11, 20, 23))
    report(box, DeliveryEvent.DELIVERED, "ada@example.com", ada, at(11, 21, 4, 30))
    box.record_view(ada_id, at(11, 21, 5, 30), "patient")
    # Ben: bounced; his week-2 is cancelled with the suppression.
    _, ben = send(box, at(11, 22, 23))
    report(box, DeliveryEvent.BOUNCED, "ben@example.com", ben, at(11, 22, 23, 5))
    # An event naming no message of ours counts nowhere.
    report(box, DeliveryEvent.BOUNCED, "nobody@example.com", None, at(11, 22, 23, 6))
    # Fay: handed over at 07:00 today, held by the provider until 09:00 tomorrow in New York.
    send(box, at(11, 23, 12), held_until=at(11, 24, 14))
    # Eve, checked out this morning: her day-0 waits for 12:00 today; Ada's week-2 for Thursday.
    box.enroll(patient("Eve"), plan(("day-0", at(11, 23, 17))), at(11, 23, 14))
