"""Loading and validating clinic.yaml, handouts and campaigns: one case per kind of mistake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.errors import ContentError
from tests.conftest import FIXTURES, ROOT, edit_file

MINIMAL = FIXTURES / "minimal"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    target = tmp_path / "clinic"
    shutil.copytree(MINIMAL, target)
    return target


def _problems(root: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_project(root)
    return [str(p) for p in caught.value.problems]


def test_minimal_fixture_and_real_content_load() -> None:
    assert set(load_project(MINIMAL).handouts) == {"aftercare"}
    project = load_project(ROOT)
    assert {"botox-cosmetic", "botox-migraine"} <= set(project.campaigns)
    assert project.campaign_for("cosmetic") is project.campaigns["botox-cosmetic"]


CASES = [
    pytest.param(
        "handouts/aftercare.yaml", "kind: tip", "kind: danger",
        "handouts/aftercare.yaml:11: sections[0].callout.kind: "
        "expected one of tip, warning, emergency; got 'danger'",
        id="literal-choice",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "    heading: Today\n", "    heading: Today\n    colour: red\n",
        "handouts/aftercare.yaml:8: sections[0].colour: expected one of id, heading, paragraphs, "
        "bullets, steps, callout; got unknown key 'colour' (did you mean 'callout'?)",
        id="unknown-key",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "    paragraphs:", "    paragrafs:",
        "handouts/aftercare.yaml:8: sections[0].paragrafs: expected one of id, heading, "
        "paragraphs, bullets, steps, callout; got unknown key 'paragrafs' "
        "(did you mean 'paragraphs'?)",
        id="typo-hint",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "summary: What to do after your treatment.\n", "",
        "handouts/aftercare.yaml:1: summary: expected text; got nothing (key is missing)",
        id="missing-key",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "reviewed_on: 2026-01-01", "reviewed_on: 2026-02-30",
        "handouts/aftercare.yaml:24: review.reviewed_on: expected a real calendar date "
        "(day is out of range for month); got '2026-02-30'",
        id="impossible-date",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "next_review_due: 2027-01-01", "next_review_due: 2025-01-01",
        "handouts/aftercare.yaml:25: review.next_review_due: expected a date after reviewed_on "
        "(2026-01-01); got 2025-01-01",
        id="review-order",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "  - id: what-is-normal", "  - id: first-day",
        "handouts/aftercare.yaml:14: sections[1].id: expected a unique id; got 'first-day' again",
        id="duplicate-section-id",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "    bullets:\n      - Small", "    bullets: Small",
        "handouts/aftercare.yaml:16: sections[1].bullets: expected a list; got 'Small red bumps "
        "for about an hour.'",
        id="list-expected",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "title: After your treatment", "title: [After]",
        "handouts/aftercare.yaml:1: title: expected text; got a list",
        id="text-expected",
    ),
    pytest.param(
        "handouts/aftercare.yaml", "summary: What", "summary: : What",
        "handouts/aftercare.yaml:4: invalid YAML: mapping values are not allowed here",
        id="yaml-syntax",
    ),
    pytest.param(
        "clinic.yaml", "timezone: Europe/London", "timezone: Europe/Londn",
        "clinic.yaml:16: timezone: expected an IANA time zone such as America/New_York; "
        "got 'Europe/Londn'",
        id="timezone",
    ),
    pytest.param(
        "clinic.yaml", 'primary: "#1d5c63"', "primary: teal",
        "clinic.yaml:4: brand.primary: expected a colour written #rrggbb; got 'teal'",
        id="colour",
    ),
    pytest.param(
        "clinic.yaml", "paper_size: A4", "paper_size: A5",
        "clinic.yaml:17: paper_size: expected one of A4, Letter; got 'A5'",
        id="paper",
    ),
    pytest.param(
        "clinic.yaml", 'send_time: "10:00"', 'send_time: "25:00"',
        "clinic.yaml:19: send_time: expected a time written HH:MM (24-hour); got '25:00'",
        id="clock-time",
    ),
    pytest.param(
        "clinic.yaml", 'send_time: "10:00"',
        'send_time: "10:00"\nstaff:\n  idle_timeout_minutes: 600',
        "clinic.yaml:21: staff.idle_timeout_minutes: expected 1 to 480; got 600",
        id="idle-timeout-above-8-hours",
    ),
    pytest.param(
        "clinic.yaml", 'send_time: "10:00"',
        'send_time: "10:00"\nstaff:\n  idle_timeout_minutes: 0',
        "clinic.yaml:21: staff.idle_timeout_minutes: expected 1 to 480; got 0",
        id="idle-timeout-zero",
    ),
    pytest.param(
        "clinic.yaml", 'send_time: "10:00"',
        'send_time: "10:00"\ncsv_import:\n  max_rows: 0',
        "clinic.yaml:21: csv_import.max_rows: expected 1 to 10,000,000; got 0",
        id="import-limit",
    ),
    pytest.param(
        "clinic.yaml", 'send_time: "10:00"',
        'send_time: "10:00"\nretention:\n  months_after_last_message: 0',
        "clinic.yaml:21: retention.months_after_last_message: expected 1 to 1,200; got 0",
        id="retention",
    ),
    pytest.param(
        "clinic.yaml", "logo: logo.svg", "logo: ../../secret.svg",
        "clinic.yaml:2: logo: expected an .svg file under templates/assets/; "
        "got '../../secret.svg'",
        id="logo-outside-assets",
    ),
    pytest.param(
        "clinic.yaml", "from_address: care@clinic.example", "from_address: care at clinic",
        "clinic.yaml:21: email.from_address: expected an email address like name@example.com; "
        "got 'care at clinic'",
        id="email-address",
    ),
    pytest.param(
        "clinic.yaml", "website: https://clinic.example", "website: http://clinic.example",
        "clinic.yaml:14: website: expected an address starting https://; "
        "got 'http://clinic.example'",
        id="url",
    ),
    pytest.param(
        "campaigns/care.yaml", "handout: aftercare", "handout: aftercare-cosmetic",
        "campaigns/care.yaml:3: handout: expected a topic in handouts/; got 'aftercare-cosmetic'",
        id="cross-file-handout",
    ),
    pytest.param(
        "campaigns/care.yaml", "sections: [first-day]", "sections: [first-days]",
        "campaigns/care.yaml:15: steps[0].sections[0]: expected a section id of "
        "handouts/aftercare.yaml; got 'first-days'",
        id="cross-file-section",
    ),
    pytest.param(
        "campaigns/care.yaml", "offset: 3 months", "offset: 3 fortnights",
        "campaigns/care.yaml:19: steps[1].offset: expected a span such as '1 day', '2 weeks' or "
        "'3 months'; got '3 fortnights'",
        id="offset-syntax",
    ),
    pytest.param(
        "campaigns/care.yaml", "offset: 3 months", "offset: 1 day",
        "campaigns/care.yaml:19: steps[1].offset: expected a span later than the step before; "
        "got 1 day",
        id="offset-order",
    ),
    pytest.param(
        "campaigns/care.yaml", "offset: 1 day", "offset: 13 weeks",
        "campaigns/care.yaml:19: steps[1].offset: expected a span later than the step before; "
        "got 3 months",
        id="offset-order-from-any-date",  # 3 months after 1 Feb is 89 days; 13 weeks is 91
    ),
    pytest.param(
        "campaigns/care.yaml",
        "    template: day-1\n    grace: 14",
        "    template: month-3\n    grace: 14",
        "campaigns/care.yaml:24: steps[1].template: expected templates/email/month-3.html to "
        "exist; it does not",
        id="missing-template",
    ),
    pytest.param(
        "campaigns/care.yaml", "quiet_weekdays: [sunday]", "quiet_weekdays: [sundy]",
        "campaigns/care.yaml:6: quiet_weekdays[0]: expected one of monday, tuesday, wednesday, "
        "thursday, friday, saturday, sunday; got 'sundy'",
        id="weekday",
    ),
    pytest.param(
        "campaigns/care.yaml", "kind: marketing", "kind: promo",
        "campaigns/care.yaml:20: steps[1].kind: expected one of clinical, marketing; got 'promo'",
        id="step-kind",
    ),
    pytest.param(
        "campaigns/care.yaml", "warning_signs: true", "warning_signs: yes",
        "campaigns/care.yaml:16: steps[0].warning_signs: expected true or false; got 'yes'",
        id="bool",
    ),
    pytest.param(
        "campaigns/care.yaml", "quiet_weekdays: [sunday]",
        "quiet_weekdays: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]",
        "campaigns/care.yaml:6: quiet_weekdays: expected at least one weekday that is not quiet "
        "(later emails and the next treatment date move to one); got all seven",
        id="all-weekdays-quiet",
    ),
    pytest.param(
        "campaigns/care.yaml", "title: Care\n", "title: Care\ntitle: Again\n",
        "campaigns/care.yaml:2: title: this key appears twice; keep one",
        id="duplicate-key",
    ),
    pytest.param(
        "clinic.yaml", "  public_base_url: https://care.clinic.example\n",
        "  public_base_url: https://care.clinic.example\n  content: brief\n",
        "clinic.yaml:25: email.content: expected one of full, minimal; got 'brief'",
        id="content-mode",
    ),
    pytest.param(
        "campaigns/care.yaml", "quiet_weekdays: [sunday]\n",
        "quiet_weekdays: [sunday]\ncontent: secret\n",
        "campaigns/care.yaml:7: content: expected one of full, minimal; got 'secret'",
        id="campaign-content-mode",
    ),
    pytest.param(
        "clinic.yaml", "  public_base_url: https://care.clinic.example\n",
        "  public_base_url: https://care.clinic.example\n  care_link_days: 0\n",
        "clinic.yaml:25: email.care_link_days: expected 1 to 730 (days a care page link "
        "opens); got 0",
        id="care-link-days",
    ),
    pytest.param(
        "clinic.yaml", "  public_base_url: https://care.clinic.example\n",
        "  public_base_url: https://care.clinic.example\n  care_handout: sometimes\n",
        "clinic.yaml:25: email.care_handout: expected true or false; got 'sometimes'",
        id="care-handout",
    ),
    pytest.param(
        "campaigns/care.yaml", "quiet_weekdays: [sunday]\n",
        "quiet_weekdays: [sunday]\ncontent: minimal\n",
        "campaigns/care.yaml:7: content: expected templates/email/minimal.html to exist for "
        "minimal emails; it does not",
        id="minimal-template-missing",
    ),
    pytest.param(
        "clinic.yaml", "  public_base_url: https://care.clinic.example\n",
        "  public_base_url: https://care.clinic.example\n  content: minimal\n",
        "campaigns/care.yaml: content: expected templates/email/minimal.txt to exist for "
        "minimal emails (from the clinic's email.content); it does not",
        id="clinic-minimal-template-missing",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "expected"), CASES)
def test_each_mistake_is_reported_with_file_line_and_key(
    project_dir: Path, name: str, old: str, new: str, expected: str
) -> None:
    edit_file(project_dir, name, old, new)
    assert expected in _problems(project_dir)


def test_all_problems_of_a_run_are_reported_together(project_dir: Path) -> None:
    edit_file(project_dir, "handouts/aftercare.yaml", "kind: tip", "kind: danger")
    edit_file(project_dir, "clinic.yaml", "paper_size: A4", "paper_size: A5")
    edit_file(project_dir, "campaigns/care.yaml", "kind: marketing", "kind: promo")
    problems = _problems(project_dir)
    assert [p.split(":")[0] for p in problems] == [
        "campaigns/care.yaml", "clinic.yaml", "handouts/aftercare.yaml",
    ]


def test_unsafe_yaml_tags_are_refused_not_executed(project_dir: Path) -> None:
    edit_file(project_dir, "handouts/aftercare.yaml", "summary: What to do after your treatment.",
          "summary: !!python/object/apply:os.system ['echo owned']")
    problems = _problems(project_dir)
    assert problems == [
        "handouts/aftercare.yaml:4: summary: expected plain YAML; "
        "got the tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    ]


def test_second_campaign_for_the_same_indication_is_refused(project_dir: Path) -> None:
    shutil.copy(project_dir / "campaigns/care.yaml", project_dir / "campaigns/care-two.yaml")
    assert (
        "campaigns/care-two.yaml:2: indication: expected one campaign per indication; "
        "care already serves 'cosmetic'" in _problems(project_dir)
    )


def test_bad_file_name_is_reported(project_dir: Path) -> None:
    shutil.copy(project_dir / "handouts/aftercare.yaml", project_dir / "handouts/After Care.yaml")
    assert any("handouts/After Care.yaml: file name: expected a lower-case id" in p
               for p in _problems(project_dir))


def test_non_utf8_file_is_reported(project_dir: Path) -> None:
    (project_dir / "handouts/aftercare.yaml").write_bytes("title: Caf\xe9\n".encode("latin-1"))
    assert any(p.startswith("handouts/aftercare.yaml: expected UTF-8 text")
               for p in _problems(project_dir))


def test_line_numbers_are_kept_for_later_checks() -> None:
    project = load_project(MINIMAL)
    assert project.line_of("handouts/aftercare.yaml", "sections[1]") == 14
    assert project.line_of("campaigns/care.yaml", "steps[0].subject") == 12
