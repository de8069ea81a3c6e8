"""Which domains a clinic may send from: granted by a platform administrator."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from dripcare.cli import main
from dripcare.config import Settings
from tests.factories import make_clinic


def domains(clinic: int, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["clinic", "domains", "--clinic", str(clinic), *args], catch_exceptions=False
    )


def test_a_new_clinic_may_send_from_its_senders_domain(settings: Settings) -> None:
    clinic = make_clinic(sender="care@Riverside.example")
    assert json.loads(domains(clinic, "--json").output)["domains"] == ["riverside.example"]


def test_domains_are_added_and_removed(settings: Settings) -> None:
    clinic = make_clinic()
    added = domains(clinic, "--add", "Mail.Riverside.example.", "--add", "riverside-care.example")
    assert added.output == (
        f"clinic {clinic} may send from: mail.riverside.example, riverside-care.example, "
        "riverside.example\n"
    )
    removed = domains(clinic, "--remove", "riverside-care.example")
    assert "riverside-care.example" not in removed.output


def test_the_domain_of_the_current_sender_cannot_be_removed(settings: Settings) -> None:
    clinic = make_clinic()
    result = domains(clinic, "--remove", "riverside.example")
    assert result.exit_code == 2
    assert "change its sender address (admin branding page) before removing" in result.output


def test_a_domain_that_is_not_one_is_refused(settings: Settings) -> None:
    result = domains(make_clinic(), "--add", "not a domain")
    assert result.exit_code == 2
    assert "is not a domain name; give one such as riverside.example" in result.output


def test_a_domain_another_clinic_sends_from_is_refused(settings: Settings) -> None:
    holder = make_clinic(sender="care@riverside.example")
    other = make_clinic(sender="care@lakeside.example")
    result = domains(other, "--add", "Riverside.example")
    assert result.exit_code == 2
    assert f"riverside.example is already a sending domain of clinic {holder}" in result.output
    assert "riverside.example" not in domains(other).output
