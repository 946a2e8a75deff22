"""sites/<id>.yaml: each site overrides the organisation's clinic.yaml for its patients."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from aftercare.content.load import load_project
from aftercare.enrol.rules import known_sites
from aftercare.errors import ContentError
from tests.conftest import ROOT
from tests.projects import copy_of_the_clinic


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """The clinic's real content with its two sample sites."""
    project = copy_of_the_clinic(ROOT, tmp_path / "clinic")
    shutil.copytree(ROOT / "sites", project / "sites")
    return project


def _problems(root: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_project(root)
    return [str(p) for p in caught.value.problems]


def test_the_two_sample_sites_differ_in_zone_numbers_and_sender() -> None:
    project = load_project(ROOT)
    assert known_sites(project) == ("main", "portland", "scottsdale")
    portland = project.at_site("portland").clinic
    scottsdale = project.at_site("scottsdale").clinic
    assert (str(portland.timezone), str(scottsdale.timezone)) == (
        "America/Los_Angeles", "America/Phoenix")
    assert (portland.phone, portland.urgent_line) == ("(503) 555-0117", "(503) 555-0118")
    assert (scottsdale.phone, scottsdale.urgent_line) == ("(480) 555-0163", "(480) 555-0164")
    assert (portland.email.from_name, portland.email.from_address) == (
        "Juniper Lane Portland", "portland@juniperlane.example")
    assert scottsdale.email.reply_to == "scottsdale-desk@juniperlane.example"
    assert scottsdale.logo == "logo-scottsdale.svg"
    # What a site does not name stays the organisation's.
    assert portland.logo == project.clinic.logo == "logo.svg"
    assert portland.brand == project.clinic.brand
    assert portland.email.public_base_url == project.clinic.email.public_base_url


def test_closures_add_to_the_organisations_and_send_time_overrides() -> None:
    project = load_project(ROOT)
    portland = project.at_site("portland").clinic
    assert portland.email.closed_on == (
        dt.date(2026, 12, 24), dt.date(2026, 12, 25), dt.date(2027, 1, 1))
    assert str(portland.send_time) == "09:30"
    assert project.at_site("scottsdale").clinic.send_time == project.clinic.send_time


def test_the_organisations_own_site_is_clinic_yaml_as_written() -> None:
    project = load_project(ROOT)
    assert project.at_site("main") is project
    assert project.at_site("main").clinic.phone == "(617) 555-0142"


def test_a_site_reads_its_own_hours_in_each_language() -> None:
    project = load_project(ROOT)
    spanish = project.at_site("scottsdale").in_language("es").clinic
    assert spanish.hours == "de lunes a viernes, de 8 a. m. a 4 p. m."
    assert spanish.phone == "(480) 555-0163"
    assert spanish.locale == project.in_language("es").clinic.locale


def test_no_sites_folder_means_one_implicit_site(tmp_path: Path) -> None:
    project = load_project(copy_of_the_clinic(ROOT, tmp_path / "clinic"))
    assert project.sites == {}
    assert known_sites(project) == ("main",)


def test_a_file_for_main_overrides_the_organisations_own_site(chain: Path) -> None:
    (chain / "sites" / "main.yaml").write_text("name: Juniper Lane Brookline\n")
    project = load_project(chain)
    assert known_sites(project) == ("main", "portland", "scottsdale")
    assert project.at_site("main").clinic.name == "Juniper Lane Brookline"
    assert project.at_site("main").clinic.phone == project.clinic.phone


def test_unknown_keys_and_bad_values_name_file_line_and_key(chain: Path) -> None:
    (chain / "sites" / "bad.yaml").write_text(
        "name: Juniper Lane Bad\n"
        "phone: (555) 010-0000\n"
        "fax: (555) 010-0001\n"
        "timezone: Mars/Olympus\n"
        "email:\n"
        "  from_address: not-an-address\n"
    )
    assert _problems(chain) == [
        "sites/bad.yaml:3: fax: expected one of name, phone, urgent_line, emergency_number, "
        "hours, address, timezone, send_time, website, booking_url, logo, email, "
        "translations; got unknown key 'fax'",
        "sites/bad.yaml:4: timezone: expected an IANA time zone such as America/New_York; got "
        "'Mars/Olympus'",
        "sites/bad.yaml:6: email.from_address: expected an email address like "
        "name@example.com; got 'not-an-address'",
    ]


def test_a_logo_outside_templates_assets_is_refused(chain: Path) -> None:
    (chain / "sites" / "escape.yaml").write_text(
        "name: Escape\nlogo: ../../clinic.yaml\n")
    assert _problems(chain) == [
        "sites/escape.yaml:2: logo: expected an .svg file under templates/assets/; got "
        "'../../clinic.yaml'",
    ]


def test_own_hours_need_their_translation_and_a_sender_name_plain_ascii(chain: Path) -> None:
    (chain / "sites" / "late.yaml").write_text(
        "name: Late\nhours: Sunday, noon to 4 pm\nemail:\n  from_name: Clínica\n")
    assert _problems(chain) == [
        "sites/late.yaml:2: hours: expected translations.es.hours beside the site's own hours "
        "(its patients reading es see them); got none",
        "sites/late.yaml:4: email.from_name: expected plain ASCII (SendGrid refuses others); "
        "got 'Clínica'",
    ]


def test_a_blank_name_is_refused(chain: Path) -> None:
    (chain / "sites" / "blank.yaml").write_text("name: ' '\n")
    assert _problems(chain) == ["sites/blank.yaml:1: name: expected text; got an empty string"]


def test_a_bad_file_name_and_a_missing_name_are_reported(chain: Path) -> None:
    (chain / "sites" / "North_Side.yaml").write_text("name: North\n")
    (chain / "sites" / "nameless.yaml").write_text("phone: (555) 010-0000\n")
    assert _problems(chain) == [
        "sites/North_Side.yaml: file name: expected a lower-case id of letters, digits and "
        "hyphens",
        "sites/nameless.yaml:1: name: expected text; got nothing (key is missing)",
    ]
