"""The emergency number from the clinic's country, with the clinic's own override (issue 13)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.people import emergency_numbers
from dripcare.people.clinic_setup import create_clinic
from tests.factories import make_clinic

CLINIC = [
    "clinic",
    "create",
    "--name",
    "Harbour",
    "--sender",
    "care@harbour.example",
    "--phone",
    "020 7946 0000",
    "--timezone",
    "Europe/London",
]


@pytest.mark.parametrize(
    ("country", "number"),
    [
        ("US", "911"),
        ("CA", "911"),
        ("GB", "999"),
        ("IE", "112"),
        ("DE", "112"),
        ("FR", "112"),
        ("AU", "000"),
        ("NZ", "111"),
        ("gb", "999"),
        (" nz ", "111"),
    ],
)
def test_the_table_gives_each_countrys_number(country: str, number: str) -> None:
    assert emergency_numbers.number_for(country) == number


def test_the_uk_has_nhs_111_for_advice_and_ireland_999_too() -> None:
    assert emergency_numbers.SERVICES["GB"].advice == "NHS 111"
    assert "999" in emergency_numbers.SERVICES["IE"].also
    assert emergency_numbers.number_for("JP") == ""  # not in the table: never a guess


@pytest.mark.parametrize(
    ("country", "override", "message"),
    [
        ("XX", "", "no emergency number is known for country XX: give the clinic's emergency"),
        ("Germany", "", "must be a two-letter ISO 3166 code such as US, GB or DE"),
        ("", "", "must be a two-letter ISO 3166 code"),
        ("1A", "112", "must be a two-letter ISO 3166 code"),
    ],
)
def test_an_unusable_country_is_refused_with_what_to_do(
    country: str, override: str, message: str
) -> None:
    with pytest.raises(UserError) as info:
        emergency_numbers.check_country(country, override)
    assert message in str(info.value)


def test_a_country_outside_the_table_is_accepted_with_the_clinics_own_number() -> None:
    assert emergency_numbers.check_country("jp", "119") == "JP"


def test_clinic_number_follows_its_country_unless_overridden(settings: Settings) -> None:
    uk = make_clinic(country="gb")
    own = make_clinic(name="Own", country="GB", emergency_number=" 112 ")
    plain = make_clinic(name="Plain")
    with session_scope() as session:
        clinics = {cid: session.get(Clinic, cid) for cid in (uk, own, plain)}
        got = {
            cid: (c.country, c.emergency_override, c.emergency_number)
            for cid, c in clinics.items()
            if c is not None
        }
        moved = clinics[uk]
        assert moved is not None
        moved.country = "AU"
        assert moved.emergency_number == "000"

    assert got[uk] == ("GB", "", "999")
    assert got[own] == ("GB", "112", "112")
    assert got[plain] == ("US", "", "911")  # the default: 911 was the only number before


def test_create_clinic_keeps_the_old_emergency_number_argument(settings: Settings) -> None:
    with session_scope() as session:
        clinic = create_clinic(
            session,
            name="Old Caller",
            sender="care@old.example",
            phone="+1 555 010 0100",
            timezone="America/New_York",
            emergency_number="911",
        )
        assert (clinic.country, clinic.emergency_number) == ("US", "911")


def test_create_clinic_refuses_an_unknown_country_and_saves_nothing(settings: Settings) -> None:
    with session_scope() as session, pytest.raises(UserError) as info:
        create_clinic(
            session,
            name="Nowhere",
            sender="care@nowhere.example",
            phone="+1 555 010 0100",
            timezone="UTC",
            country="XX",
        )
    assert "no emergency number is known for country XX" in str(info.value)
    with session_scope() as session:
        assert session.query(Clinic).count() == 0


def test_cli_clinic_create_takes_the_country(settings: Settings) -> None:
    result = CliRunner().invoke(main, [*CLINIC, "--country", "GB", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    listed = CliRunner().invoke(main, ["clinic", "list", "--json"])

    assert (data["country"], data["emergency_number"]) == ("GB", "999")
    assert json.loads(listed.stdout)[0]["emergency_number"] == "999"


def test_cli_refuses_an_unknown_country_with_a_clear_message(settings: Settings) -> None:
    result = CliRunner().invoke(main, [*CLINIC, "--country", "XX"])

    assert result.exit_code != 0
    assert "no emergency number is known for country XX" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(main, [*CLINIC, "--country", "XX", "--emergency-number", "112"])
    assert ok.exit_code == 0, ok.output
