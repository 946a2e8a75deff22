"""3. Email rendering on one core: one renderer for the run, against a fresh renderer per email."""

from __future__ import annotations

import datetime as dt

from bench.common import ROOT, Section, Sizes, timed

GOAL_RATE = 300  # messages per second on one core
KEY = b"benchmark key: links signed with it verify nowhere"


def run(sizes: Sizes, section: Section) -> None:
    from aftercare.content.load import load_project
    from aftercare.content.values import EmailAddress
    from aftercare.render.emails import EmailRenderer, Recipient

    project = load_project(ROOT)
    steps = [(campaign, step) for _, campaign in sorted(project.campaigns.items())
             for step in campaign.steps]

    def recipient(i: int) -> Recipient:
        treated_on = dt.date(2026, 3, 2) + dt.timedelta(days=i % 60)
        return Recipient(
            first_name=("Ana", "Zoë", "Björn", "Li", "Chloé")[i % 5] + f" {i}",
            email=EmailAddress(f"patient{i}@example.com"),
            language=project.clinic.language,
            treated_on=treated_on,
            local_due=dt.datetime.combine(treated_on + dt.timedelta(days=1), dt.time(10),
                                          tzinfo=project.clinic.timezone.zone),
            public_id=f"{i:032x}",
        )

    renderer = EmailRenderer(project, KEY)
    for campaign, step in steps:  # compile each step once, as the first message of a run does
        renderer.render(campaign, step, recipient(0))

    def reused() -> None:
        for i in range(sizes.emails):
            campaign, step = steps[i % len(steps)]
            renderer.render(campaign, step, recipient(i))

    def fresh() -> None:
        for i in range(sizes.emails_baseline):
            campaign, step = steps[i % len(steps)]
            EmailRenderer(project, KEY).render(campaign, step, recipient(i))

    fresh_rate = sizes.emails_baseline / timed(fresh)
    rate = sizes.emails / timed(reused)
    section.note(f"{len(steps)} steps (HTML with CSS inlined, plain text, .ics where the step "
                 "has one), a different patient each; one process, one thread")
    section.line(f"one renderer for the run, {sizes.emails} messages", f"{rate:.0f} messages/s")
    section.line(f"baseline: a fresh renderer per message, {sizes.emails_baseline} messages",
                 f"{fresh_rate:.0f} messages/s")
    section.line("ratio", f"{rate / fresh_rate:.1f} times the baseline")
    section.goal("email rendering on one core", f"{rate:.0f} messages/s",
                 f">= {GOAL_RATE} messages/s", rate >= GOAL_RATE)
