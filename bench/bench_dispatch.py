"""4. Dispatch through a local SendGrid-compatible server that takes 50 ms over every request."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, Section, Sizes, timed

LATENCY = 0.050  # seconds the server waits before answering each request
GOAL_RATE = 100  # messages per second
CAMPAIGN = "botox-cosmetic"
ENROLLED_AT = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in Boston
KEY = b"benchmark key: links signed with it verify nowhere"


class SlowSendGrid:
    """A local stand-in for the SendGrid v3 API (127.0.0.1 only) that records every request."""

    def __init__(self) -> None:
        from pytest_httpserver import HTTPServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.sent: list[str] = []  # custom_args.message_id of every Mail Send request
        self.other: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.server.expect_request("/v3/mail/send", method="POST").respond_with_handler(
            self._mail_send)
        self.server.expect_request("/v3/mail/batch", method="POST").respond_with_handler(
            self._new_batch)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._anything_else)

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def __enter__(self) -> SlowSendGrid:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    def _mail_send(self, request: Any) -> Any:
        from werkzeug import Response

        time.sleep(LATENCY)
        message_id = (request.get_json(silent=True) or {}).get("custom_args", {}).get(
            "message_id", "?")
        with self._lock:
            self.sent.append(message_id)
        return Response(status=202, headers={"X-Message-Id": uuid.uuid4().hex})

    def _new_batch(self, request: Any) -> Any:
        from werkzeug import Response

        time.sleep(LATENCY)
        with self._lock:
            self.other["new batch"] += 1
        return Response(f'{{"batch_id": "{uuid.uuid4()}"}}', status=201,
                        content_type="application/json")

    def _anything_else(self, request: Any) -> Any:
        from werkzeug import Response

        time.sleep(LATENCY)
        with self._lock:
            self.other[f"{request.method} {request.path}"] += 1
        return Response("{}", status=201, content_type="application/json")


def run(sizes: Sizes, section: Section) -> None:
    from aftercare.content.load import load_project

    project = load_project(ROOT)
    parallel = project.clinic.delivery.max_parallel
    one_at_a_time = _with_parallel(project, 1)
    wider = max(8, parallel * 2)
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as folder:
        baseline = _dispatch(one_at_a_time, Path(folder) / "one.db", sizes.dispatched_baseline)
        measured = _dispatch(project, Path(folder) / "many.db", sizes.dispatched)
        widened = _dispatch(_with_parallel(project, wider), Path(folder) / "wide.db",
                            sizes.dispatched)
    section.note(f"{LATENCY * 1000:.0f} ms added to every request by the local server; "
                 f"the clinic's delivery.max_parallel is {parallel}: at most "
                 f"{parallel / LATENCY:.0f} messages/s can go out")
    rows = ((f"one request at a time (max_parallel 1), {baseline['due']} due", baseline),
            (f"the clinic's settings (max_parallel {parallel}), {measured['due']} due",
             measured),
            (f"for comparison, max_parallel {wider}, {widened['due']} due", widened))
    for label, result in rows:
        section.line(label, f"{result['rate']:.0f} messages/s ({result['seconds']:.2f} s)")
        section.line("  sent, requests, distinct messages requested, duplicates",
                     f"{result['sent']}, {result['requests']}, {result['distinct']}, "
                     f"{result['duplicates']}")
        if result["other"]:
            section.line("  other requests", ", ".join(f"{k}: {v}"
                                                       for k, v in result["other"].items()))
    section.line("ratio", f"{measured['rate'] / baseline['rate']:.1f} times one at a time")
    results = (baseline, measured, widened)
    duplicates = sum(r["duplicates"] for r in results)
    complete = all(r["sent"] == r["due"] == r["distinct"] and not r["unrecorded"]
                   for r in results)
    section.goal("dispatch rate with bounded concurrency", f"{measured['rate']:.0f} messages/s",
                 f">= {GOAL_RATE} messages/s", measured["rate"] >= GOAL_RATE)
    section.goal("no message sent twice, none left unsent",
                 f"{duplicates} duplicates; {'all' if complete else 'NOT all'} due sent once",
                 "0 duplicates, all sent", duplicates == 0 and complete)


def _with_parallel(project: Any, parallel: int) -> Any:
    clinic = project.clinic
    delivery = dataclasses.replace(clinic.delivery, max_parallel=parallel)
    return dataclasses.replace(project, clinic=dataclasses.replace(clinic, delivery=delivery))


def _dispatch(project: Any, db: Path, count: int) -> dict[str, Any]:
    """Enrol ``count`` patients treated on one day, then send every day-1 email at its time."""
    from aftercare.delivery.sendgrid import SendGridBackend
    from aftercare.enrol.enrolment import plan_for
    from aftercare.enrol.rules import parse_enrollment
    from aftercare.outbox.store import Outbox
    from aftercare.render.emails import EmailRenderer
    from aftercare.send.dispatch import send_due

    treated_on = ENROLLED_AT.astimezone(project.clinic.timezone.zone).date()
    items = []
    for i in range(count):
        fields = {"email": f"patient{i}@example.com", "first_name": f"Pat {i}",
                  "campaign": CAMPAIGN, "treated_on": treated_on.isoformat(),
                  "marketing_consent": "true"}
        enrollment = parse_enrollment(fields, project, ENROLLED_AT, recorded_by="bench")
        items.append((enrollment, plan_for(project, enrollment, ENROLLED_AT)))
    first_due = min(entry.due_at for _, plan in items for entry in plan)
    now = first_due + dt.timedelta(minutes=1)  # every day-1 email is due, nothing later is
    with Outbox.open(db) as outbox, SlowSendGrid() as server:
        outbox.enroll_many(items, ENROLLED_AT)
        due = sum(1 for m in outbox.messages(status="scheduled")
                  if m.due_at <= now)
        backend = SendGridBackend("SG.benchmark-key", host=server.url)
        renderer = EmailRenderer(project, KEY)
        holder: dict[str, Any] = {}
        seconds = timed(lambda: holder.setdefault("report", send_due(
            outbox, project, renderer, backend, now, count + 10)))
        sent_rows = outbox.messages(status="sent")
        requested = Counter(server.sent)
        public_ids = {m.public_id for m in sent_rows}
        return {
            "due": due,
            "seconds": seconds,
            "sent": len(sent_rows),
            "rate": len(sent_rows) / seconds,
            "requests": len(server.sent),
            "distinct": len(requested),
            "duplicates": sum(n - 1 for n in requested.values()),
            "unrecorded": len(set(requested) - public_ids),  # requested, not recorded as sent
            "other": dict(server.other),
        }
